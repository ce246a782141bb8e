"""The ``tinct video`` / ``tinct eval-video`` commands, end to end with the real Colorizer."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.errors import INPUT
from core.models import create_model
from core.pipeline import Colorizer
from core.video import synth
from core.video.temporal import colorize_sequence
from video_support import make_clip, packets, synthetic_photos, video_times


@pytest.fixture(scope="module")
def small_clip():
    return make_clip(width=96, height=64, shots=(5, 3), seed=11)


def _run(argv: list[str]) -> int:
    return main(argv)  # the tinct frame: it prints a failure as one line and picks the status


def test_colorize_sequence_with_the_real_colorizer(small_clip):
    colorizer = Colorizer(create_model("eccv16"), device="cpu")
    frames = small_clip.gray[:3]
    out = list(colorize_sequence(frames, colorizer, render_size=64, batch_size=2))
    assert [o.shape for o in out] == [(64, 96, 3)] * 3 and all(o.dtype == np.uint8 for o in out)


def test_tinct_video_command_with_real_model(small_clip, tmp_path, capsys):
    src = tmp_path / "gray.mkv"
    synth.write_video(src, small_clip.gray, Fraction(30000, 1001), codec="ffv1", pix_fmt="gray", options={})
    out = tmp_path / "color.mp4"
    report = tmp_path / "report.json"
    rc = _run(["video", str(src), str(out), "--model", "default", "--device", "cpu", "--render-size", "64",
               "--preset", "ultrafast", "--no-progress", "--report", str(report)])
    assert rc == 0 and out.is_file()
    assert "8 frames" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["frames_written"] == 8 and data["cuts"] == [0, 5]
    t_src, t_out = video_times(src), video_times(out)
    assert [round(float(t - t_src[0]), 3) for t in t_src] == [round(float(t - t_out[0]), 3) for t in t_out]
    assert [p for _, p in packets(out, "audio")] == [p for _, p in packets(src, "audio")]  # FLAC into MP4
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_tinct_video_bad_input_is_one_line_error(tmp_path, capsys):
    rc = _run(["video", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4"), "--model", "default",
               "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == INPUT and err.count("\n") == 0 and "does not exist" in err
    assert not (tmp_path / "o.mp4").exists()


def test_eval_video_simulated_reports_numbers(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "shared" / "data" / "imagenet-samples"  # where eval-video looks for its photos
    photos.mkdir(parents=True)
    for index, photo in enumerate(synthetic_photos(3, seed=4)):
        Image.fromarray(photo).save(photos / f"photo{index}.JPEG", quality=95)
    monkeypatch.setenv("TINCT_SHARED", str(tmp_path / "shared"))
    out = tmp_path / "eval.json"
    rc = _run(["eval-video", "--clips", "1", "--size", "96x64", "--shots", "6,4", "--simulate", "8", "--json", str(out)])
    assert rc == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["warp"]["on"] < summary["warp"]["off"]
    assert "warping error" in capsys.readouterr().out
