"""Errors, once (core/errors.py): every exit status comes out of a real command, and the same mistake gets
the same status and one line in every sub-command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import weights_fetch
from engine_stand_ins import gradient_gray
from core import cli, errors
from core.errors import EXIT_CODES, FAILED, INPUT, INTERNAL, MODEL, OK, OUTPUT, USAGE, TinctError

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line or "internal error" in line]


def _subclasses(cls: type) -> list[type]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


@pytest.fixture
def models(install_named):
    """"tiny" and "tinyab" (takes hints) work; "fragile" runs out of memory and "buggy" has a bug on a white image; "absent" has no weights."""
    install_named({"tiny": ("test-tiny-logits", {}), "tinyab": ("test-tiny-ab", {}), "fragile": ("test-fails-on-bright", {"error": "memory"}),
                   "buggy": ("test-fails-on-bright", {"error": "bug"})}, missing=("absent",))


def test_errors_every_status_comes_out_of_a_real_command(tmp_path, capsys, models):
    photo = tmp_path / "a.png"
    Image.fromarray(gradient_gray()).save(photo)
    white = tmp_path / "white.png"
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(white)
    (tmp_path / "a_file").write_text("not a folder")
    cases = [
        (OK, ["colorize", photo, "--model", "tiny", "--device", "cpu", "-o", tmp_path / "ok.png"], None),
        (FAILED, ["colorize", white, "--model", "fragile", "--device", "cpu"], "out of memory"),
        (USAGE, ["colorize", photo, "--model", "tiny", "--temperature", "7"], "--temperature"),
        (INPUT, ["colorize", tmp_path / "missing.png", "--model", "tiny"], "missing.png"),
        (OUTPUT, ["colorize", photo, "--model", "tiny", "--out-dir", tmp_path / "a_file"], "--out-dir"),
        (MODEL, ["colorize", photo, "--model", "absent", "--device", "cpu"], "tinct weights fetch absent"),
        (INTERNAL, ["colorize", white, "--model", "buggy", "--device", "cpu", "-o", tmp_path / "bug.png"],
         "internal error: TypeError"),
    ]
    for status, args, words in cases:
        code, out, err = _run(args, capsys)
        assert code == status, (args, err)
        if status == OK:
            assert _error_lines(err) == [] and (tmp_path / "ok.png").is_file()
            continue
        lines = _error_lines(err)
        assert len(lines) == 1 and words in lines[0] and lines[0].startswith("tinct colorize: "), (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "bug.png").exists() and not (tmp_path / "white_color.png").exists()
    with pytest.raises(SystemExit) as exited:  # argparse's own usage errors: the same status
        cli.main(["colorize", str(photo), "--no-such-option"])
    assert exited.value.code == USAGE


def test_errors_an_internal_error_shows_its_traceback_when_asked(tmp_path, capsys, models, monkeypatch):
    white = tmp_path / "white.png"
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(white)
    monkeypatch.setenv(errors.DEBUG_ENV, "1")
    with pytest.raises(TypeError, match="unsupported operand"):
        cli.main(["colorize", str(white), "--model", "buggy", "--device", "cpu"])


# Each sub-command that reads files (and each file option of colorize), given one that is not there.
MISSING_INPUT = [
    ["colorize", "{missing}", "--model", "tiny"],
    ["colorize", "{photo}", "--model", "tiny", "--mask", "{missing}", "--mask-colorize"],
    ["colorize", "{photo}", "--model", "tinyab", "--hints", "{missing}"],
    ["colorize", "{photo}", "--model", "tiny", "--reference", "{missing}"],
    ["video", "{missing}", "{out}/out.mp4", "--model", "tiny"],
    ["info", "{missing}"],
    ["eval", "{missing}", "--models", "tiny"],
    ["eval-hints", "{missing}", "--model", "tiny"],
    ["eval-post", "--synthetic", "--data", "{missing}", "--out", "{out}"],
    ["eval-video", "--video", "{missing}", "--simulate", "1"],
    ["weights", "import", "eccv16", "{missing}"],
    ["train", "--data-root", "{missing}", "--run-dir", "{out}/run", "--steps", "1", "--minutes", "0.01"],
]


def test_errors_a_missing_input_file_is_the_same_status_and_one_line_in_every_sub_command(tmp_path, capsys, models):
    photo = tmp_path / "a.png"
    Image.fromarray(gradient_gray()).save(photo)
    missing = tmp_path / "not-here.png"
    seen = set()
    for template in MISSING_INPUT:
        args = [a.format(missing=missing, photo=photo, out=tmp_path) for a in template]
        code, out, err = _run(args, capsys)
        lines = err.strip().splitlines()
        assert code == INPUT and len(lines) == 1, (args, code, err)
        assert lines[0].startswith(f"tinct {args[0]}: error: ") and "not-here" in lines[0], (args, err)
        seen.add(args[0])
    assert not missing.exists()
    assert seen >= {"colorize", "video", "info", "eval", "eval-hints", "eval-post", "eval-video", "weights", "train"}


def test_errors_help_and_readme_list_every_exit_status():
    done = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in done.stdout
        assert f"| {code} |" in readme, f"README's CLI section does not list exit status {code}"


def test_errors_every_kind_carries_a_documented_status():
    import core.cli_control
    import core.cluster
    import core.device
    import core.imageio
    import core.reference
    import core.training.loop
    import core.video.io
    import core.video.pipeline
    from core.options import OptionError

    expected = {core.imageio.ImageReadError: INPUT, core.imageio.ImageWriteError: OUTPUT,
                core.device.DeviceError: USAGE, core.reference.ReferenceError: INPUT,
                core.cli_control.ControlInputError: INPUT, core.cluster.ClusterError: USAGE,
                core.video.io.VideoIOError: INPUT, core.video.io.VideoWriteError: OUTPUT,
                core.video.io.VideoOptionError: USAGE, core.video.pipeline.DamagedFrameError: INPUT,
                core.training.loop.TrainingDataError: INPUT, core.training.loop.InitWeightsError: MODEL,
                OptionError: USAGE, weights_fetch.WeightsMissing: MODEL, weights_fetch.CacheError: OUTPUT,
                weights_fetch.SourceMissing: INPUT}
    for cls, status in expected.items():
        assert errors.exit_code_of(cls("x")) == status, cls
    for cls in (core.device.DeviceError, core.reference.ReferenceError, core.cli_control.ControlInputError,
                OptionError):
        assert issubclass(cls, ValueError), cls  # callers that catch ValueError still do
    for cls in _subclasses(TinctError) + _subclasses(weights_fetch.WeightsError):
        assert getattr(cls, "exit_code", None) in EXIT_CODES or cls is errors.Interrupted, cls
    # weights_fetch imports nothing from core: its numbers are written there too, and must agree
    assert (weights_fetch.errors.INPUT, weights_fetch.errors.OUTPUT, weights_fetch.errors.MODEL) == (INPUT, OUTPUT,
                                                                                                     MODEL)
    assert errors.exit_code_of(RuntimeError("a bug")) == INTERNAL
    assert errors.exit_code_of(KeyboardInterrupt()) == errors.INTERRUPTED
    from core.interrupt import Terminated

    assert errors.exit_code_of(Terminated()) == errors.TERMINATED
    assert errors.Interrupted("x", terminated=True).exit_code == errors.TERMINATED
    assert [errors.batch_exit_code(c) for c in ([], [INPUT, INPUT], [INPUT, OUTPUT])] == [OK, INPUT, FAILED]
