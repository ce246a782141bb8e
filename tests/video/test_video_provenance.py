"""Video outputs say what they are: the record in MP4/MKV container tags and in every frame of a
frame folder, read back with exiftool and ``tinct info``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from fractions import Fraction

import cv2
import numpy as np
import pytest

from core import provenance
from core.cli import main
from core.errors import USAGE
from core.paths import BUNDLED_WEIGHTS_DIR
from core.video import synth
from exiftool_env import read_tags
from video_support import make_clip

TINCT_SHA256 = hashlib.sha256((BUNDLED_WEIGHTS_DIR / "tinct-small.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def gray_mkv(tmp_path_factory):
    clip = make_clip(width=64, height=48, shots=(3, 2), seed=5)
    path = tmp_path_factory.mktemp("src") / "gray.mkv"
    synth.write_video(path, clip.gray, Fraction(25), codec="ffv1", pix_fmt="gray", options={})
    return path


def _run(argv: list[str]) -> int:
    return main(argv)  # the tinct frame: it prints a failure as one line and picks the status


VIDEO_ARGS = ["--model", "default", "--device", "cpu", "--render-size", "64", "--no-progress"]


@pytest.mark.parametrize("name, extra, temporal", [("color.mp4", ["--preset", "ultrafast"], True),
                                                    ("color.mkv", ["--lossless", "--temporal", "off"], False)])
def test_video_container_carries_the_record(gray_mkv, tmp_path, exiftool, capsys, name, extra, temporal):
    out = tmp_path / name
    assert _run(["video", str(gray_mkv), str(out), *VIDEO_ARGS, *extra]) == 0
    tags = read_tags(exiftool, out, "-Comment", "-Description")
    comment = next(v for k, v in tags.items() if k.endswith(":Comment"))
    assert comment.startswith(provenance.PARASITE + " ")
    record = provenance.Record.from_dict(json.loads(comment.split(" ", 1)[1]))
    assert record.model == "tinct-small" and record.weights_sha256 == TINCT_SHA256
    assert record.render_size == 64 and record.temporal is temporal
    assert next(v for k, v in tags.items() if k.endswith(":Description")) == provenance.DESCRIPTION
    capsys.readouterr()
    assert _run(["info", str(out)]) == 0
    assert TINCT_SHA256 in capsys.readouterr().out


@pytest.mark.parametrize("frame_format", ["png", "tif", "jpg"])
def test_video_every_frame_of_a_folder_carries_the_record(tmp_path, exiftool, capsys, frame_format):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):  # 16-bit scanned film
        gray = (np.add.outer(np.arange(48), np.arange(64)) * 300 + index * 1000).astype(np.uint16)
        cv2.imwrite(str(frames / f"scan_{index:03d}.png"), gray)
    out = tmp_path / f"colored_{frame_format}"
    assert _run(["video", str(frames), str(out), *VIDEO_ARGS, "--frame-format", frame_format]) == 0
    written = sorted(p for p in out.iterdir() if not p.name.startswith("."))  # beside Tinct's folder marker
    assert [p.name for p in written] == [f"scan_{i:03d}.{frame_format}" for i in range(3)]
    done = subprocess.run([exiftool, "-j", "-G1", "-s", "-XMP:all", "-BitDepth", "-ext", frame_format, str(out)],
                          capture_output=True, text=True, timeout=120)
    views = json.loads(done.stdout)
    assert len(views) == 3
    for view in views:
        assert view["XMP-tinct:Model"] == "tinct-small" and view["XMP-tinct:WeightsSHA256"] == TINCT_SHA256
        assert view["XMP-tinct:Temporal"] is True and provenance.DESCRIPTION in view["XMP-dc:Description"]
        if frame_format == "png":
            assert view["PNG:BitDepth"] == 16  # 16-bit kept, through the OpenCV path
    capsys.readouterr()
    assert _run(["info", str(out)]) == 0
    assert capsys.readouterr().out.count("tinct-small") == 3


def test_video_no_provenance(gray_mkv, tmp_path, exiftool):
    out = tmp_path / "plain.mp4"
    assert _run(["video", str(gray_mkv), str(out), *VIDEO_ARGS, "--preset", "ultrafast", "--no-provenance"]) == 0
    tags = read_tags(exiftool, out, "-Comment", "-Description")
    assert not [k for k in tags if k.endswith((":Comment", ":Description"))]
    frames = tmp_path / "plain_frames"
    assert _run(["video", str(gray_mkv), str(frames), *VIDEO_ARGS, "--no-provenance"]) == 0
    assert all(provenance.from_xmp(str(p)) is None for p in frames.glob("*.png"))


def test_video_bmp_frames_are_refused_in_one_line(gray_mkv, tmp_path, capsys):
    assert _run(["video", str(gray_mkv), str(tmp_path / "bmp"), *VIDEO_ARGS, "--frame-format", "bmp"]) == USAGE
    err = capsys.readouterr().err
    assert "bmp" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bmp").exists()
