"""Joining encoded pieces of a film by stream copy (``core.video.join``), on real H.264/FFV1 files."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from core.video import synth
from core.video.io import EncodeOptions, SourceFrame, VideoFileReader, VideoIOError, open_writer
from core.video.join import PacketJoinWriter, join_problem, piece_suffix
from video_support import make_clip, packets, video_times

FAST = EncodeOptions(preset="ultrafast")


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """Gray H.264 MP4, 22 frames at 25 fps, an AAC tone, rotated 90 degrees, time base 1/90000."""
    path = tmp_path_factory.mktemp("src") / "gray.mp4"
    synth.write_video(path, make_clip().gray, Fraction(25), rotation=90, time_base=Fraction(1, 90000))
    return path


def _frames(path: Path) -> tuple[object, list[SourceFrame]]:
    reader = VideoFileReader(path)
    try:
        return reader.info, list(reader.frames())
    finally:
        reader.close()


def _piece(path: Path, info, frames: list[SourceFrame], options: EncodeOptions, offset: int) -> Path:
    """Encode ``frames`` as one piece, as a worker does: no audio, no rotation, timestamps from ``offset``."""
    writer = open_writer(path, replace(info, rotation=0, audio_streams=0), replace(options, overwrite=True))
    for frame in frames:
        writer.write(frame.rgb, replace(frame, pts=frame.pts - offset))
    return writer.commit()


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("options, suffix", [(FAST, ".mp4"), (FAST, ".mkv"), (EncodeOptions(lossless=True), ".mkv")])
def test_pieces_joined_by_stream_copy_keep_the_films_timestamps_audio_and_rotation(film, tmp_path, options, suffix):
    info, frames = _frames(film)
    codec = "ffv1" if options.lossless else "libx264"
    cut = 9
    offsets = [0, frames[cut].pts] if codec == "libx264" else [0, 0]
    pieces = [_piece(tmp_path / f"piece{k}{piece_suffix(codec)}", info, part, options, offsets[k])
              for k, part in enumerate((frames[:cut], frames[cut:]))]
    whole = open_writer(tmp_path / f"whole{suffix}", info, options, audio_source=film)  # one continuous encode
    for frame in frames:
        whole.write(frame.rgb, frame)
    whole.commit()

    joined = PacketJoinWriter(tmp_path / f"joined{suffix}", info, options, audio_source=film)
    assert joined.append(pieces[0], [f.pts for f in frames[:cut]], offsets[0]) == cut
    assert joined.append(pieces[1], [f.pts for f in frames[cut:]], offsets[1]) == len(frames) - cut
    out = joined.commit()

    assert video_times(out) == video_times(tmp_path / f"whole{suffix}")
    assert packets(out, "audio") == packets(tmp_path / f"whole{suffix}", "audio")
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert next(c.decode(video=0)).rotation == 90
    decoded = _decoded(out)
    assert len(decoded) == len(frames)
    pieces = _decoded(pieces[0]) + _decoded(pieces[1])  # stream copy: the same pictures, bit for bit
    assert all(np.array_equal(a, b) for a, b in zip(decoded, pieces))
    for a, b in zip(decoded, _decoded(tmp_path / f"whole{suffix}")):  # and one encode's error from a continuous one
        assert float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) < (0.01 if options.lossless else 3.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_piece_that_does_not_fit_fails_the_join_and_leaves_no_output(film, tmp_path):
    info, frames = _frames(film)
    cut = 9
    first = _piece(tmp_path / "a.mov", info, frames[:cut], FAST, 0)
    second = _piece(tmp_path / "b.mov", info, frames[cut:], FAST, frames[cut].pts)
    smaller = _piece(tmp_path / "c.mov", replace(info, width=64, height=40),
                     [replace(f, rgb=f.rgb[:40, :64]) for f in frames[cut:]], FAST, frames[cut].pts)
    cases = [
        ((second, [f.pts for f in frames[cut:]], frames[cut].pts), (first, [f.pts for f in frames[:cut]], 0),
         "does not continue the film's decoding order"),
        ((first, [f.pts for f in frames[:cut]], 0), (smaller, [f.pts for f in frames[cut:]], frames[cut].pts),
         "other codec parameters"),
        ((first, [f.pts for f in frames[:cut + 1]], 0), None, "holds 9 frames at other timestamps than the 10"),
    ]
    lossless = EncodeOptions(lossless=True)
    ffv1 = _piece(tmp_path / "d.mkv", info, frames[:cut], lossless, 0)
    for frame_list, message in (([f.pts for f in frames[:cut - 1]], "holds more frames than the 8"),
                                ([f.pts for f in frames[:cut + 1]], "holds 9 frames at other timestamps than the 10")):
        joined = PacketJoinWriter(tmp_path / "joined.mkv", info, lossless)
        with pytest.raises(VideoIOError, match=message):
            joined.append(ffv1, frame_list, 0)
        joined.abort()
        assert not (tmp_path / "joined.mkv").exists()
    for k, (one, two, message) in enumerate(cases):
        target = tmp_path / f"joined{k}.mp4"
        joined = PacketJoinWriter(target, info, FAST, audio_source=film)
        with pytest.raises(VideoIOError, match=message):
            joined.append(*one)
            joined.append(*two)
        joined.abort()
        assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_join_problem_names_what_stream_copy_cannot_keep(film, tmp_path):
    info, _ = _frames(film)
    assert join_problem(tmp_path / "o.mp4", info, FAST) is None
    assert join_problem(tmp_path / "o.mkv", info, EncodeOptions(lossless=True)) is None
    assert "frame folder" in join_problem(tmp_path / "frames", info, FAST)
    assert ".avi is not one of" in join_problem(tmp_path / "o.avi", info, FAST)
    assert "codec mpeg4" in join_problem(tmp_path / "o.mp4", info, EncodeOptions(codec="mpeg4"))
    assert "time base 1001/30000 is not 1/N" in join_problem(tmp_path / "o.mp4",
                                                           replace(info, time_base=Fraction(1001, 30000)), FAST)


def test_frames_missing_next_to_a_join_keep_every_presentation_time(film, tmp_path):
    """Damaged frames skipped just after a cut: the second piece's decoding delay then reaches back past
    the first piece's last decoding timestamp, which the join moves up; every frame still shows at its time."""
    info, frames = _frames(film)
    cut = 9
    kept = frames[:cut] + [frames[cut]] + frames[cut + 3:]  # two frames after the cut were damaged
    b_frames = EncodeOptions(preset="medium")  # reorders: decoding starts before the first frame's time
    first = _piece(tmp_path / "a.mov", info, kept[:cut], b_frames, 0)
    second = _piece(tmp_path / "b.mov", info, kept[cut:], b_frames, frames[cut].pts)
    with av.open(str(second)) as c:
        assert min(p.dts for p in c.demux(video=0) if p.size) < 0
    joined = PacketJoinWriter(tmp_path / "joined.mp4", info, b_frames)
    joined.append(first, [f.pts for f in kept[:cut]], 0)
    joined.append(second, [f.pts for f in kept[cut:]], frames[cut].pts)
    out = joined.commit()
    assert video_times(out) == sorted(Fraction(f.pts) * info.time_base for f in kept)
    with av.open(str(out)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.size]
        assert all(b > a for a, b in zip(dts, dts[1:]))
    pieces = _decoded(first) + _decoded(second)  # stream copy: the same pictures, bit for bit
    assert len(pieces) == len(kept) and all(np.array_equal(a, b) for a, b in zip(_decoded(out), pieces))
