"""Synthetic test clips with known colour ground truth.

A clip is a list of *shots*; each shot is a camera move (pan and zoom) over one colour photo,
with a sprite cut from another photo sliding across it. Hard cuts sit between shots. Film grain
and sensor noise are added per frame. Rendering is pure (photos in, frames out); writing to a
real video file (with a generated audio tone) or a frame folder happens at the edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import cv2
import numpy as np
from PIL import Image

from core.imageio import read_image
from core.paths import data_dir


@dataclass(frozen=True)
class Shot:
    """One continuous camera move.

    ``start``/``end`` are ``(cx, cy, zoom)``: the photo point (in photo pixels) at the frame
    centre and the scale (frame pixels per photo pixel); the camera moves linearly between them.
    The sprite (a disc of ``sprite_radius`` frame pixels cut from photo ``sprite_photo``) moves
    linearly from ``sprite_from`` to ``sprite_to`` (frame pixels); ``sprite_photo < 0`` means none.
    """

    photo: int
    n_frames: int
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    sprite_photo: int = -1
    sprite_radius: float = 0.0
    sprite_from: tuple[float, float] = (0.0, 0.0)
    sprite_to: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class ClipSpec:
    """Frame size, rate, shots and per-frame degradations (std devs in 8-bit code values)."""

    width: int
    height: int
    shots: tuple[Shot, ...]
    fps: Fraction = Fraction(24)
    grain: float = 4.0
    noise: float = 1.5
    seed: int = 0

    @property
    def n_frames(self) -> int:
        return sum(s.n_frames for s in self.shots)

    @property
    def cut_frames(self) -> list[int]:
        """Indices of the first frame of every shot after the first."""
        starts, acc = [], 0
        for s in self.shots[:-1]:
            acc += s.n_frames
            starts.append(acc)
        return starts


def sample_photo_paths(n: int, seed: int = 0) -> list[Path]:
    """``n`` colour photos from ``shared/data`` (BSDS500 val first, then ImageNet samples), fixed by ``seed``."""
    root = data_dir()
    paths = sorted((root / "bsds500" / "val").glob("*.jpg")) + sorted((root / "imagenet-samples").glob("*.JPEG"))
    if not paths:
        raise FileNotFoundError(f"no photos found under {root}")
    rng = np.random.default_rng(seed)
    picked: list[Path] = []
    for i in rng.permutation(len(paths)):
        if is_colour_photo(paths[i]):
            picked.append(paths[i])
        if len(picked) == n:
            break
    return picked


def is_colour_photo(path: Path) -> bool:
    """True where the photo is RGB with visible chroma (some ImageNet samples are grayscale)."""
    decoded = read_image(path, max_megapixels=None)
    if decoded.is_gray:
        return False
    with Image.fromarray(decoded.rgb8(), "RGB") as im:
        small = np.asarray(im.resize((64, 64)), dtype=np.int16)
    return float(np.abs(small - small.mean(axis=2, keepdims=True)).mean()) > 3.0


def load_photos(paths: Sequence[Path]) -> list[np.ndarray]:
    """Read photos as RGB uint8 ``[H, W, 3]`` arrays (as ``tinct colorize`` reads them: ``core.imageio.read_image``)."""
    return [read_image(p, max_megapixels=None).rgb8() for p in paths]


def random_spec(n_photos: int, width: int, height: int, shot_lengths: Sequence[int], *,
                photo_sizes: Sequence[tuple[int, int]], fps: Fraction = Fraction(24), grain: float = 4.0,
                noise: float = 1.5, seed: int = 0) -> ClipSpec:
    """A clip of pans/zooms with one moving sprite per shot, parameters drawn from ``seed``.

    ``photo_sizes[i]`` is ``(h, w)`` of photo ``i``; shot ``k`` uses photo ``k % n_photos`` and a
    sprite from the next photo. Camera speeds stay below ~2 % of the frame width per frame.
    """
    rng = np.random.default_rng(seed)
    shots = []
    for k, n in enumerate(shot_lengths):
        pi = k % n_photos
        ph, pw = photo_sizes[pi]
        # Zoom so that the frame covers at most ~70 % of the photo, leaving room to pan.
        base = max(width / (0.7 * pw), height / (0.7 * ph))
        z0 = base * rng.uniform(1.0, 1.15)
        z1 = z0 * rng.uniform(0.93, 1.08)
        half_w, half_h = width / (2 * min(z0, z1)), height / (2 * min(z0, z1))
        span = 0.02 * width / min(z0, z1) * n

        def centre() -> tuple[float, float]:
            return rng.uniform(half_w, pw - half_w), rng.uniform(half_h, ph - half_h)

        c0 = centre()
        ang = rng.uniform(0, 2 * math.pi)
        c1 = (float(np.clip(c0[0] + span * math.cos(ang), half_w, pw - half_w)),
              float(np.clip(c0[1] + span * math.sin(ang), half_h, ph - half_h)))
        r = rng.uniform(0.12, 0.2) * height
        s_from = (rng.uniform(r, width - r), rng.uniform(r, height - r))
        s_to = (float(np.clip(s_from[0] + rng.uniform(-0.03, 0.03) * width * n, r, width - r)),
                float(np.clip(s_from[1] + rng.uniform(-0.02, 0.02) * height * n, r, height - r)))
        shots.append(Shot(pi, int(n), (c0[0], c0[1], z0), (c1[0], c1[1], z1),
                          sprite_photo=(pi + 1) % n_photos if n_photos > 1 else -1,
                          sprite_radius=r, sprite_from=s_from, sprite_to=s_to))
    return ClipSpec(width, height, tuple(shots), fps=fps, grain=grain, noise=noise, seed=seed)


def render_clip(photos: Sequence[np.ndarray], spec: ClipSpec) -> Iterator[np.ndarray]:
    """Yield the clip's colour frames, RGB uint8 ``[spec.height, spec.width, 3]``, in order."""
    rng = np.random.default_rng(spec.seed + 1)
    for shot in spec.shots:
        sprite = _sprite(photos[shot.sprite_photo], shot.sprite_radius) if shot.sprite_photo >= 0 else None
        for t in range(shot.n_frames):
            u = t / max(shot.n_frames - 1, 1)
            cx, cy, z = (a + (b - a) * u for a, b in zip(shot.start, shot.end))
            frame = _camera_view(photos[shot.photo], cx, cy, z, spec.width, spec.height)
            if sprite is not None:
                px = shot.sprite_from[0] + (shot.sprite_to[0] - shot.sprite_from[0]) * u
                py = shot.sprite_from[1] + (shot.sprite_to[1] - shot.sprite_from[1]) * u
                _paste(frame, sprite, px, py)
            yield _degrade(frame, spec.grain, spec.noise, rng)


def _camera_view(photo: np.ndarray, cx: float, cy: float, zoom: float, width: int, height: int) -> np.ndarray:
    m = np.array([[zoom, 0.0, width / 2 - zoom * cx], [0.0, zoom, height / 2 - zoom * cy]], dtype=np.float64)
    interp = cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(photo, m, (width, height), flags=interp, borderMode=cv2.BORDER_REFLECT)


def _sprite(photo: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A disc of the photo's centre, scaled to ``radius``: (RGB float32, soft alpha float32)."""
    d = max(int(round(2 * radius)), 4)
    h, w = photo.shape[:2]
    side = min(h, w)
    crop = photo[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
    rgb = cv2.resize(crop, (d, d), interpolation=cv2.INTER_AREA).astype(np.float32)
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float32) - (d - 1) / 2
    alpha = np.clip(d / 2 - np.hypot(xx, yy), 0.0, 1.0)
    return rgb, alpha[..., None]


def _paste(frame: np.ndarray, sprite: tuple[np.ndarray, np.ndarray], x: float, y: float) -> None:
    rgb, alpha = sprite
    d = rgb.shape[0]
    # Sub-pixel placement so the sprite moves smoothly.
    m = np.array([[1.0, 0.0, x - (d - 1) / 2], [0.0, 1.0, y - (d - 1) / 2]])
    h, w = frame.shape[:2]
    big_rgb = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    big_a = cv2.warpAffine(alpha[..., 0], m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    frame[:] = np.clip(frame * (1 - big_a) + big_rgb * big_a + 0.5, 0, 255).astype(np.uint8)


def _degrade(frame: np.ndarray, grain: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    h, w = frame.shape[:2]
    out = frame.astype(np.float32)
    if grain > 0:
        # Film grain: luminance noise with a ~1.5 px correlation length.
        g = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
        out += (grain / max(float(g.std()), 1e-6)) * g[..., None]
    if noise > 0:
        out += noise * rng.standard_normal((h, w, 3)).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` -> gray RGB uint8 ``[H, W, 3]`` (Rec. 709 luma on R = G = B)."""
    y = frame.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.repeat(np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


@dataclass
class WrittenClip:
    """What :func:`write_video` wrote: frame count, pts of every video frame, audio packet count."""

    path: Path
    n_frames: int
    video_pts: list[int] = field(default_factory=list)
    audio_packets: int = 0


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: Fraction = Fraction(24), *,
                codec: str = "libx264", pix_fmt: str = "yuv420p", options: dict[str, str] | None = None,
                audio_hz: float | None = 440.0, rotation: int = 0, time_base: Fraction | None = None) -> WrittenClip:
    """Encode RGB uint8 (or uint16 for 16-bit pixel formats) frames into ``path``.

    With ``audio_hz`` a sine tone of that pitch (48 kHz, AAC in MP4/MOV, FLAC otherwise) of the
    video's duration is added. ``rotation`` (degrees, counter-clockwise) is stored as display
    matrix metadata.
    """
    path = Path(path)
    opts = {"crf": "18", "preset": "veryfast"} if codec == "libx264" and options is None else (options or {})
    written = WrittenClip(path, 0)
    with av.open(str(path), "w") as out:
        frames = iter(frames)
        first = next(frames)
        vs = out.add_stream(codec, rate=fps, options=opts)
        vs.width, vs.height = first.shape[1], first.shape[0]
        vs.pix_fmt = pix_fmt
        if time_base is not None:
            vs.codec_context.time_base = time_base
        if rotation:
            vs.set_display_rotation(rotation)
        audio = _add_tone_stream(out, path.suffix.lower()) if audio_hz else None
        fmt = "rgb48le" if first.dtype == np.uint16 else "rgb24"
        tb = vs.codec_context.time_base or Fraction(1) / fps
        step = int(round(1 / (fps * tb)))
        for i, f in enumerate(_chain(first, frames)):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format=fmt)
            vf.pts, vf.time_base = i * step, tb
            out.mux(vs.encode(vf))
            written.n_frames += 1
        out.mux(vs.encode())
        if audio is not None:
            written.audio_packets = _write_tone(out, audio, audio_hz, written.n_frames / fps)
    with av.open(str(path)) as check:
        written.video_pts = [p.pts for p in check.demux(video=0) if p.pts is not None]
    written.video_pts.sort()
    return written


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _add_tone_stream(out: av.container.OutputContainer, suffix: str) -> av.audio.stream.AudioStream:
    codec = "aac" if suffix in (".mp4", ".mov", ".m4v") else "flac"
    a = out.add_stream(codec, rate=48000)
    a.layout = "mono"
    return a


def _write_tone(out: av.container.OutputContainer, a: av.audio.stream.AudioStream, hz: float,
                seconds: Fraction) -> int:
    """Encode a sine tone into the audio stream ``a``; returns the number of packets muxed."""
    rate = a.codec_context.sample_rate
    fmt = "fltp" if a.codec_context.name == "aac" else "s16"
    n_total = int(seconds * rate)
    chunk = 1024
    n_packets = 0
    for start in range(0, n_total, chunk):
        t = (np.arange(start, min(start + chunk, n_total)) / rate).astype(np.float64)
        wave = 0.2 * np.sin(2 * math.pi * hz * t)
        data = wave.astype(np.float32)[None] if fmt == "fltp" else (wave * 32767).astype(np.int16)[None]
        af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
        pk = a.encode(af)
        n_packets += len(pk)
        out.mux(pk)
    pk = a.encode()
    n_packets += len(pk)
    out.mux(pk)
    return n_packets


def write_frame_folder(folder: str | Path, frames: Iterable[np.ndarray], *, prefix: str = "frame_",
                       ext: str = ".png", start: int = 1) -> list[Path]:
    """Write frames as numbered images (``prefix`` + 6-digit number + ``ext``); uint16 frames as 16-bit PNG/TIFF."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(frames, start):
        p = folder / f"{prefix}{i:06d}{ext}"
        img = f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(p), img):
            raise OSError(f"could not write {p}")
        paths.append(p)
    return paths
