"""The GIMP harness shares the chroot: overlapping sessions and a person's GIMP survive each other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gimp_env  # noqa: E402


def _alive(process: subprocess.Popen) -> bool:
    return process.poll() is None


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_session_stops_only_what_it_started(gimp3):
    if gimp3.root is None:
        pytest.skip("GIMP runs natively here: there is no shared chroot")
    root = gimp3.root
    variables = {"PATH": "/usr/bin:/bin"}
    person = _start(["chroot", str(root), "/bin/sleep", "300"])  # like a person's GIMP: not started by a session
    try:
        with gimp_env.gimp3_session(gimp3) as first:
            first_worker = _start(first.command(["/bin/sleep", "300"], variables))
            entry = gimp_env._sessions_dir(root) / f"{first.tag}.json"
            first_mounts = json.loads(entry.read_text())
            with gimp_env.gimp3_session(gimp3) as second:
                second_worker = _start(second.command(["/bin/sleep", "300"], variables))
                done = second.run_batch("print('second', Gimp.version())")
                assert done.returncode == 0 and "second 3." in done.stdout, done.stderr[-2000:]
            assert second_worker.wait(10) is not None, "the second session left its own process running"
            assert _alive(first_worker) and _alive(person), "the second session stopped processes it did not start"
            mounted = set(gimp_env._mounts_under(root))
            assert set(first_mounts) <= mounted, "the second session unmounted what the first still uses"
            done = first.run_batch("print('first', Gimp.version())")
            assert done.returncode == 0 and "first 3." in done.stdout, done.stderr[-2000:]
        assert first_worker.wait(10) is not None
        assert _alive(person), "the session stopped a process it did not start"
        assert not entry.exists()
        others = gimp_env._live_session_mounts(root)
        left = (set(first_mounts) - others) & set(gimp_env._mounts_under(root))
        assert not left, f"still mounted after the last session: {sorted(left)}"
    finally:
        os.kill(person.pid, signal.SIGKILL)
        person.wait(10)


def test_a_bind_left_by_a_killed_session_is_replaced_when_its_source_was_made_anew(gimp3, tmp_path):
    """A session killed before it unmounts leaves its binds; a fresh clone at the same path must not be
    hidden behind the deleted one (the plug-in would then not be found at all)."""
    if gimp3.root is None:
        pytest.skip("GIMP runs natively here: there is no shared chroot")
    source = tmp_path / "clone"
    source.mkdir()
    (source / "old.txt").write_text("old")
    target = gimp3.root / source.resolve().relative_to("/")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)  # what the killed session left
    try:
        (source / "old.txt").unlink()
        source.rmdir()
        source.mkdir()
        (source / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # the stale bind still shows the deleted folder
        with gimp_env.gimp3_session(gimp3, binds=[source]) as session:
            done = subprocess.run(session.command(["/bin/cat", str(source / "new.txt")], {"PATH": "/usr/bin:/bin"}),
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0 and done.stdout == "new", done.stderr
        assert str(target) not in gimp_env._mounts_under(gimp3.root), "the session left its bind mounted"
    finally:
        while str(target) in gimp_env._mounts_under(gimp3.root):
            gimp_env._umount(str(target))
