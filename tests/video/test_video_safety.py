"""``tinct video`` never destroys what the user owns: outputs over inputs, foreign folders, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core import cli
from core.errors import INTERRUPTED, OUTPUT, TERMINATED
from core.outputs import FOLDER_MARKER
from core.video import synth
from core.video.io import EncodeOptions, VideoIOError
from core.video.pipeline import VideoOptions, colorize_video
from video_support import FlickerColorizer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUIET = VideoOptions(progress=False, batch_size=3)


def _frames(n: int = 6, width: int = 64, height: int = 48) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.repeat((20 * i + rng.integers(0, 60, (height, width, 1))).astype(np.uint8), 3, axis=2) for i in range(n)]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path) -> Path:
    """work/a.mp4, work/notes.txt, work/sub/b.mp4 and work/p/frames/ (numbered frames)."""
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    synth.write_video(root / "a.mp4", _frames(), audio_hz=None)
    synth.write_video(root / "sub" / "b.mp4", _frames(), audio_hz=None)
    (root / "notes.txt").write_text("my notes")
    synth.write_frame_folder(root / "p" / "frames", _frames(4))
    return root


def test_an_output_that_is_or_contains_the_input_is_refused_before_anything_is_done(work, capsys):
    before = _tree(work)
    cases = [(work / "a.mp4", work), (work / "sub" / "b.mp4", work), (work / "p" / "frames", work / "p"),
             (work / "p" / "frames", work / "p" / "frames"), (work / "p" / "frames", work / "p" / "frames" / "out"),
             (work / "a.mp4", work / "a.mp4")]
    for source, output in cases:
        code = cli.main(["video", str(source), str(output), "--overwrite", "--no-progress", "--model", "default"])
        err = capsys.readouterr().err
        assert code == OUTPUT, (source, output, err)
        assert len(err.strip().splitlines()) == 1 and "input" in err, err
        assert _tree(work) == before  # nothing deleted, nothing added
        assert not [p for p in work.rglob(".*")]


def test_overwrite_replaces_only_a_frame_folder_tinct_made(work):
    source, out = work / "p" / "frames", work / "colored"
    colorize_video(source, out, FlickerColorizer(), QUIET)
    assert (out / FOLDER_MARKER).is_file()
    with pytest.raises(VideoIOError, match="already exists"):
        colorize_video(source, out, FlickerColorizer(), QUIET)
    report = colorize_video(source, out, FlickerColorizer(), QUIET, EncodeOptions(overwrite=True))
    assert report.frames_written == 4 and (out / FOLDER_MARKER).is_file()

    (out / "my_edit.txt").write_text("mine")  # the user adds a file of their own: no longer replaceable
    with pytest.raises(VideoIOError, match="Tinct did not write.*my_edit.txt"):
        colorize_video(source, out, FlickerColorizer(), QUIET, EncodeOptions(overwrite=True))
    assert (out / "my_edit.txt").read_text() == "mine" and len(list(out.glob("frame_*.png"))) == 4

    foreign = work / "holiday"
    foreign.mkdir()
    (foreign / "frame_000001.png").write_bytes(b"someone else's picture")
    with pytest.raises(VideoIOError, match="Tinct did not write"):
        colorize_video(source, foreign, FlickerColorizer(), QUIET, EncodeOptions(overwrite=True))
    assert (foreign / "frame_000001.png").read_bytes() == b"someone else's picture"
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_damaged_frame_warnings_go_to_stderr(tmp_path, capsys):
    source = tmp_path / "scan"
    paths = synth.write_frame_folder(source, _frames(5))
    paths[2].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    report = colorize_video(source, tmp_path / "out.mp4", FlickerColorizer(), QUIET)
    captured = capsys.readouterr()
    assert report.damaged and "skipped damaged input" in captured.err and "damaged" not in captured.out


@pytest.mark.parametrize(("signum", "status", "word"), [(signal.SIGTERM, TERMINATED, "terminated"),
                                                       (signal.SIGINT, INTERRUPTED, "interrupted")])
def test_sigterm_removes_the_hidden_partial_output(tmp_path, signum, status, word):
    """SIGTERM (a service stopping) and SIGINT (Ctrl+C) alike: nothing half-written left, one line, the status."""
    source = tmp_path / "long.mp4"
    synth.write_video(source, _frames(400, 160, 96), Fraction(24), audio_hz=None)
    out = tmp_path / "color.mp4"
    # as in a terminal, SIGINT at its default in the child: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then leaves it ignored
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "video", str(source), str(out), "--no-progress",
                             "--preset", "ultrafast", "--threads", "1"], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".color.mp4.*.tmp*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err
    assert err.strip().splitlines() == [f"tinct video: {word}; no output written"], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]
