"""Video file and frame-folder input/output through the full pipeline (real files, stand-in colorizer)."""

from __future__ import annotations

import hashlib
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from core.color import rgb_to_l
from core.outputs import FOLDER_MARKER
from core.video import synth
from core.video.io import EncodeOptions, SourceFrame, StreamInfo, VideoFileReader, VideoIOError, open_writer
from core.video.pipeline import DamagedFrameError, VideoOptions, colorize_video, run_pipeline
from video_support import FlickerColorizer, decode_rgb, make_clip, packets, video_times

QUIET = VideoOptions(progress=False, batch_size=3)


@pytest.fixture(scope="module")
def clip():
    return make_clip()


@pytest.fixture(scope="module")
def gray_mp4(clip, tmp_path_factory) -> Path:
    """Gray H.264 MP4 with an AAC tone, rotated 90 degrees, time base 1/90000."""
    path = tmp_path_factory.mktemp("src") / "gray.mp4"
    synth.write_video(path, clip.gray, Fraction(25), rotation=90, time_base=Fraction(1, 90000))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_l(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)[0].numpy()


def _unclipped_lightness_error(colored: np.ndarray, gray: np.ndarray) -> float:
    """Mean |L*| difference where no channel of the coloured frame was clipped by the gamut."""
    inside = np.all((colored > 0) & (colored < 255), axis=2)
    assert inside.mean() > 0.5
    return float(np.abs(_lightness(colored) - _lightness(gray))[inside].mean())


def test_mp4_keeps_timestamps_audio_rotation_and_lightness(gray_mp4, clip, tmp_path):
    before = _sha(gray_mp4)
    out = tmp_path / "color.mp4"
    report = colorize_video(gray_mp4, out, FlickerColorizer(), QUIET, EncodeOptions(preset="veryfast"))
    assert _sha(gray_mp4) == before
    assert report.output == out and report.frames_written == clip.spec.n_frames == len(decode_rgb(out))
    assert video_times(out) == video_times(gray_mp4)
    src_audio, out_audio = packets(gray_mp4, "audio"), packets(out, "audio")
    assert len(src_audio) > 10 and out_audio == src_audio  # packet for packet, same times
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        assert next(c.decode(video=0)).rotation == 90
    colored = decode_rgb(out)[5]
    assert float(np.abs(colored[..., 0].astype(int) - colored[..., 2]).mean()) > 5  # really coloured
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lossless_mkv_is_ffv1_and_keeps_exact_lightness(gray_mp4, tmp_path):
    out = tmp_path / "color.mkv"
    report = colorize_video(gray_mp4, out, FlickerColorizer(jitter=3, amplitude=15), QUIET, EncodeOptions(lossless=True))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "ffv1"
        assert len(c.streams.audio) == 1
    src, res = decode_rgb(gray_mp4), decode_rgb(out)
    assert len(res) == report.frames_written == len(src)
    # L* differs only by 8-bit rounding of the merged RGB and gamut clipping.
    assert _unclipped_lightness_error(res[3], src[3]) < 0.3
    # Matroska stores milliseconds and shifts every stream by the AAC priming: compare relative times.
    t_src, t_out = video_times(gray_mp4), video_times(out)
    assert [round(float(t - t_out[0]), 3) for t in t_out] == [round(float(t - t_src[0]), 3) for t in t_src]
    assert [p for _, p in packets(out, "audio")] == [p for _, p in packets(gray_mp4, "audio")]


def test_lossless_needs_a_container_that_holds_ffv1(gray_mp4, tmp_path):
    with pytest.raises(VideoIOError, match="FFV1"):
        colorize_video(gray_mp4, tmp_path / "x.mp4", FlickerColorizer(), QUIET, EncodeOptions(lossless=True))
    assert not list(tmp_path.iterdir())


def test_frame_folder_in_and_out_keeps_names_and_16_bit(clip, tmp_path):
    src = tmp_path / "scan"
    frames16 = [f.astype(np.uint16) * 257 for f in clip.gray[:8]]
    synth.write_frame_folder(src, frames16, prefix="reel1_", start=99)  # 99..106: natural order matters
    out = tmp_path / "out"
    report = colorize_video(src, out, FlickerColorizer(), QUIET)
    names = sorted(p.name for p in out.iterdir() if p.name != FOLDER_MARKER)
    assert names == sorted(p.name for p in src.iterdir()) and report.frames_written == 8
    first = cv2.imread(str(out / "reel1_000099.png"), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint16 and first.shape == (clip.spec.height, clip.spec.width, 3)


def test_frame_folder_frames_keep_orientation_alpha_and_icc_like_stills(tmp_path):
    """Frame images are read and written as stills are (core.imageio): EXIF orientation applied,
    alpha carried through unchanged, the ICC profile and the description kept; JPEG drops only alpha."""
    from PIL import Image, ImageCms

    from core.imageio import read_image

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "scan"
    src.mkdir()
    rng = np.random.default_rng(1)
    alphas = []
    for i in range(3):
        gray = rng.integers(0, 256, (24, 40), dtype=np.uint8)  # stored 40 wide, shown 24 wide (orientation 6)
        alpha = rng.integers(0, 256, (24, 40), dtype=np.uint8)
        rgba = np.dstack([gray, gray, gray, alpha])
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[0x010E] = f"reel 1 frame {i}"
        Image.fromarray(rgba, "RGBA").save(src / f"f{i}.png", exif=exif.tobytes(), icc_profile=icc)
        alphas.append(np.rot90(alpha, -1))  # orientation 6: rotate 90 degrees clockwise
    out = tmp_path / "out"
    report = colorize_video(src, out, FlickerColorizer(), QUIET)
    assert report.frames_written == 3 and not report.notes
    for i in range(3):
        decoded = read_image(out / f"f{i}.png")
        assert decoded.pixels.shape == (40, 24, 4)  # upright, with alpha
        assert np.array_equal(decoded.pixels[:, :, 3], alphas[i])
        assert decoded.icc_profile == icc
        with Image.open(out / f"f{i}.png") as written:
            assert f"reel 1 frame {i}" in written.info["Description"]
        assert not np.array_equal(decoded.pixels[:, :, 0], decoded.pixels[:, :, 2])  # colorized
    jpg = tmp_path / "jpg"
    report = colorize_video(src, jpg, FlickerColorizer(), QUIET, EncodeOptions(frame_suffix=".jpg"))
    assert any("alpha" in note for note in report.notes)
    decoded = read_image(jpg / "f0.jpg")
    assert decoded.pixels.shape == (40, 24, 3) and decoded.icc_profile == icc


def test_frame_folder_to_mp4_uses_the_given_rate(clip, tmp_path):
    src = tmp_path / "scan"
    synth.write_frame_folder(src, clip.gray[:6])
    out = tmp_path / "scan.mp4"
    colorize_video(src, out, FlickerColorizer(), QUIET, EncodeOptions(fps=Fraction(18), preset="ultrafast"))
    assert [float(t) for t in video_times(out)] == pytest.approx([i / 18 for i in range(6)], abs=1e-3)


def test_video_to_frame_folder_notes_dropped_audio(gray_mp4, clip, tmp_path):
    out = tmp_path / "frames"
    report = colorize_video(gray_mp4, out, FlickerColorizer(), QUIET)
    assert len(list(out.glob("frame_*.png"))) == clip.spec.n_frames
    assert any("audio" in n for n in report.notes)


def test_refuses_to_overwrite_input_or_existing_output(gray_mp4, tmp_path):
    with pytest.raises(VideoIOError, match="input"):
        colorize_video(gray_mp4, gray_mp4, FlickerColorizer(), QUIET)
    existing = tmp_path / "there.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(VideoIOError, match="already exists"):
        colorize_video(gray_mp4, existing, FlickerColorizer(), QUIET)
    assert existing.read_bytes() == b"keep me"


def test_interrupted_run_leaves_no_file(gray_mp4, tmp_path):
    out = tmp_path / "color.mp4"

    def interrupt(index: int) -> None:
        if index == 7:
            raise KeyboardInterrupt

    reader = VideoFileReader(gray_mp4)
    writer = open_writer(out, reader.info, EncodeOptions(preset="ultrafast"), audio_source=gray_mp4)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(reader, writer, FlickerColorizer(), QUIET, on_frame=interrupt)
    reader.close()
    assert list(tmp_path.iterdir()) == []


def _damage_packet(src: Path, dst: Path, packet_index: int) -> None:
    with av.open(str(src)) as c:
        pos, size = [(p.pos, p.size) for p in c.demux(video=0) if p.size][packet_index]
    data = bytearray(src.read_bytes())
    for k in range(pos + size // 3, pos + size // 3 + 40):
        data[k] ^= 0xFF
    dst.write_bytes(bytes(data))


def test_damaged_video_frame_is_reported_and_skipped_or_stops(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(10 * i + rng.integers(0, 50, (64, 96, 3))).astype(np.uint8) for i in range(10)]
    good = tmp_path / "good.mp4"
    synth.write_video(good, frames, audio_hz=None)
    bad = tmp_path / "bad.mp4"
    _damage_packet(good, bad, 5)
    report = colorize_video(bad, tmp_path / "out.mp4", FlickerColorizer(), QUIET)
    assert [i for i, _ in report.damaged] and report.frames_written == 10 - len(report.damaged)
    assert report.frames_written >= 5
    with pytest.raises(DamagedFrameError, match="damaged input frame"):
        colorize_video(bad, tmp_path / "out2.mp4", FlickerColorizer(),
                       VideoOptions(progress=False, on_damaged="stop"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "good.mp4", "out.mp4"]


def test_damaged_image_in_folder(clip, tmp_path):
    src = tmp_path / "scan"
    paths = synth.write_frame_folder(src, clip.gray[:6])
    paths[2].write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    report = colorize_video(src, out, FlickerColorizer(), QUIET)
    assert report.damaged == [(2, "unreadable image frame_000003.png")]
    assert not (out / "frame_000003.png").exists() and len([p for p in out.iterdir() if p.name != FOLDER_MARKER]) == 5
    with pytest.raises(DamagedFrameError, match="frame_000003"):
        colorize_video(src, tmp_path / "out2", FlickerColorizer(), VideoOptions(progress=False, on_damaged="stop"))
    assert not (tmp_path / "out2").exists()


class _SlowWriter:
    """Writer that takes its time, recording nothing but the frames it got."""

    wants_uint16 = False

    def __init__(self):
        self.frames: list[int] = []

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None:
        time.sleep(0.004)
        self.frames.append(source.index)

    def commit(self) -> Path:
        return Path("nowhere")

    def abort(self) -> None:
        raise AssertionError("abort on a successful run")


class _CountingReader:
    """Endless-looking source of 60 synthetic frames; counts how many were pulled."""

    def __init__(self, n: int = 60):
        self.info = StreamInfo(48, 32, Fraction(24), None, n, 0, False, 0)
        self.n = n
        self.pulled = 0

    def frames(self):
        rng = np.random.default_rng(1)
        for i in range(self.n):
            self.pulled += 1
            yield SourceFrame(i, rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))

    def close(self) -> None:
        pass


def test_queues_stay_bounded_with_a_slow_writer():
    reader, writer = _CountingReader(), _SlowWriter()
    opts = VideoOptions(progress=False, batch_size=2, queue_frames=3)
    report = run_pipeline(reader, writer, FlickerColorizer(), opts)
    assert writer.frames == list(range(60))
    # q_in + q_out + one batch + one frame held by each of the two threads
    assert 1 < report.max_in_flight <= 2 * 3 + 2 + 2
    assert threading.active_count() == 1 or all(not t.name.startswith("tinct-video") for t in threading.enumerate())


class _Busy:
    """Records when each stage computes: ``intervals`` of (start, end, stage)."""

    def __init__(self):
        self.intervals: list[tuple[float, float, str]] = []
        self.lock = threading.Lock()

    def work(self, stage: str) -> None:
        start = time.perf_counter()
        time.sleep(0.003)  # stands for computing; a sleep lets another thread run meanwhile unless it waits its turn
        with self.lock:
            self.intervals.append((start, time.perf_counter(), stage))

    def overlaps(self) -> int:
        spans = sorted(self.intervals)
        return sum(1 for (_, end, _), (start, _, _) in zip(spans, spans[1:]) if start < end)


@pytest.mark.parametrize("take_turns", [True, False])
def test_stages_that_take_turns_never_compute_at_the_same_time(take_turns):
    busy = _Busy()

    class Reader(_CountingReader):
        def frames(self):
            for sf in super().frames():
                busy.work("read")
                yield sf

    class Writer(_SlowWriter):
        def write(self, rgb, source):
            busy.work("write")
            self.frames.append(source.index)

    class Colorizer(FlickerColorizer):
        def colorize_L(self, L, **kw):
            busy.work("model")
            return super().colorize_L(L, **kw)

    writer = Writer()
    opts = VideoOptions(progress=False, batch_size=2, queue_frames=3, stages_take_turns=take_turns)
    run_pipeline(Reader(), writer, Colorizer(), opts)
    assert writer.frames == list(range(60))
    assert {stage for _, _, stage in busy.intervals} == {"read", "write", "model"}
    assert (busy.overlaps() == 0) == take_turns


def test_odd_frame_size_is_encoded_as_444_with_a_note(tmp_path):
    rng = np.random.default_rng(2)
    frames = [np.repeat(rng.integers(0, 255, (45, 67, 1), dtype=np.uint8), 3, axis=2) for _ in range(4)]
    src = tmp_path / "odd.mkv"
    synth.write_video(src, frames, codec="ffv1", pix_fmt="gray", options={}, audio_hz=None)
    out = tmp_path / "odd.mp4"
    report = colorize_video(src, out, FlickerColorizer(), QUIET, EncodeOptions(preset="ultrafast"))
    assert any("4:4:4" in n for n in report.notes)
    assert [f.shape for f in decode_rgb(out)] == [(45, 67, 3)] * 4
