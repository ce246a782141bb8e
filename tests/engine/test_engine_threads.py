"""The engine's CPU threads (core/threads.py): no more than the idle cores, so a busy machine does not
make every torch barrier wait for a thread the scheduler has set aside."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine_stand_ins import gradient_gray
from core import cli
from core.errors import USAGE
from core.options import OptionError
from core.pipeline import Colorizer
from core import threads as threads_module
from core.threads import AUTO, available_cores, busy_elsewhere, choose_threads, cpu_threads, task_state

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts running threads in /proc")


def test_choose_threads_takes_a_request_as_is_and_otherwise_leaves_the_busy_cores():
    assert choose_threads(3, pool=2, cores=2, busy=2) == 3  # asked for: exactly that
    assert choose_threads(AUTO, pool=4, cores=8, busy=None) == 4  # unknown load: torch's pool
    assert choose_threads(AUTO, pool=4, cores=8, busy=0) == 4  # never more than the pool
    assert choose_threads(AUTO, pool=4, cores=8, busy=5) == 3
    assert choose_threads(AUTO, pool=2, cores=2, busy=1) == 1
    assert choose_threads(AUTO, pool=2, cores=2, busy=7) == 1  # at least one
    with pytest.raises(ValueError):
        choose_threads(-1, pool=2, cores=2, busy=0)


def _fake_proc(root: Path, running: int, states: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "loadavg").write_text(f"1.50 0.80 0.40 {running}/123 4567\n")
    for index, state in enumerate(states):
        task = root / "self" / "task" / str(100 + index)
        task.mkdir(parents=True)
        task.joinpath("stat").write_text(f"{100 + index} (tinct (worker)) {state} 1 2 3 4 5\n")
    return root


@linux_only
def test_busy_elsewhere_counts_the_running_threads_of_other_processes(tmp_path):
    # 5 running in all, 2 of them ours (a name with a space and a parenthesis must not shift the fields)
    proc = _fake_proc(tmp_path, 5, ["R", "S", "R", "D"])
    assert busy_elsewhere(proc, samples=2, gap_s=0.0) == 3
    assert busy_elsewhere(_fake_proc(tmp_path / "b", 1, ["R", "R"]), samples=1) == 0  # never below 0
    (tmp_path / "c").mkdir()
    assert busy_elsewhere(tmp_path / "c") is None  # no /proc/loadavg: unknown


def _spinners(count: int) -> list[subprocess.Popen]:
    """``count`` CPU-bound processes, each in a session of its own (as another application is)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
             for _ in range(count)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(task_state(Path(f"/proc/{p.pid}/stat").read_text()) == "R" for p in procs):
            break
        time.sleep(0.05)
    return procs


@linux_only
def test_a_busy_machine_gets_one_thread_and_the_pool_is_restored(tiny_colorizer):
    cores = available_cores()
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a pool with something to reduce, whatever earlier tests left
    pool = torch.get_num_threads()
    spinners = _spinners(cores)
    try:
        assert busy_elsewhere() >= cores - 1  # the least of three samples sees them (one may be off-core)
        with cpu_threads(torch.device("cpu")) as call:
            assert call.threads == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == pool
        tiny_colorizer.colorize_array(gradient_gray())
        assert tiny_colorizer.last_threads == 1 and torch.get_num_threads() == pool
    finally:
        for p in spinners:
            p.kill()
            p.wait()
        torch.set_num_threads(before)


def test_an_explicit_thread_count_is_used_exactly_and_checked(gray8):
    from engine_stand_ins import TinyLogitsModel

    pool = torch.get_num_threads()
    colorizer = Colorizer(TinyLogitsModel(), "cpu", threads=3)
    out = colorizer.colorize_array(gray8)
    assert out.shape == (*gray8.shape, 3) and colorizer.last_threads == 3 and torch.get_num_threads() == pool
    with pytest.raises(OptionError, match="threads"):
        Colorizer(TinyLogitsModel(), "cpu", threads=-1)


def test_the_cli_takes_threads_and_refuses_a_bad_count_in_one_line(tmp_path, capsys, tiny_models):
    photo = tmp_path / "a.png"
    Image.fromarray(gradient_gray()).save(photo)
    code = cli.main(["colorize", str(photo), "--model", "tiny", "--device", "cpu", "--threads", "-2"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert code == USAGE and len(lines) == 1 and "--threads" in lines[0], err
    code = cli.main(["video", str(tmp_path / "film.mp4"), str(tmp_path / "out.mp4"), "--threads", "-1"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == USAGE and len(lines) == 1 and "--threads" in lines[0]  # the same option, the same check
    out = tmp_path / "one.png"
    assert cli.main(["colorize", str(photo), "--model", "tiny", "--device", "cpu", "--threads", "1", "-o", str(out)]) == 0
    assert np.asarray(Image.open(out)).shape == (*gradient_gray().shape, 3)


@linux_only
def test_a_long_call_counts_again_when_the_load_arrives(monkeypatch):
    """Load that starts during a call (between its bands) is seen at the next count."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    spinners = []
    try:
        with cpu_threads(torch.device("cpu")) as call:
            spinners = _spinners(available_cores())
            monkeypatch.setattr(threads_module, "RECOUNT_S", 0.0)
            assert call.recount() == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with cpu_threads(torch.device("cpu"), requested=2) as call:  # a fixed count is never changed
            assert call.recount() == 2 and torch.get_num_threads() == 2
    finally:
        for p in spinners:
            p.kill()
            p.wait()
        torch.set_num_threads(before)
