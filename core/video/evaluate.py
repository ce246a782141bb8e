"""Measuring flicker and colour: the warping error of Lai et al. (ECCV 2018) and colourfulness.

Warping error of a clip ``V`` (RGB in ``[0, 1]``)::

    E_warp = 1/(T-1) * sum_t  sum_p M_t(p) * ||V_t(p) - warp(V_{t-1}, F_t)(p)||^2 / sum_p M_t(p)

with ``F_t`` and the non-occlusion mask ``M_t`` computed once on the *ground-truth* luma (DIS
medium + forward-backward check, independent of the flow the temporal filter uses), the same
for every output compared; pairs across a scene cut are left out. Reported x 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from core.metrics import colorfulness
from core.options import TEMPERATURE
from core.video import synth
from core.video.flow import DIS_PRESETS, fb_mask, remap
from core.video.frames import arrays_to_tensor
from core.video.temporal import TemporalOptions, colorize_sequence


@dataclass
class ReferenceMotion:
    """Flow ``[H, W, 2]`` (frame t -> t-1) and non-occlusion mask ``[H, W]`` bool per pair, ``None`` across cuts."""

    pairs: list[tuple[np.ndarray, np.ndarray] | None]


def reference_motion(gray: Sequence[np.ndarray], cut_frames: Sequence[int] = ()) -> ReferenceMotion:
    """Ground-truth motion from 8-bit luma frames ``[H, W]`` uint8 (DIS medium, forward-backward mask)."""
    dis = cv2.DISOpticalFlow.create(DIS_PRESETS["medium"])
    cuts = set(cut_frames)
    pairs: list[tuple[np.ndarray, np.ndarray] | None] = [None]
    for t in range(1, len(gray)):
        if t in cuts:
            pairs.append(None)
            continue
        fwd = dis.calc(gray[t], gray[t - 1], None)
        bwd = dis.calc(gray[t - 1], gray[t], None)
        pairs.append((fwd, fb_mask(fwd, bwd, 1.0)))
    return ReferenceMotion(pairs)


def warping_error(frames: Sequence[np.ndarray], motion: ReferenceMotion) -> float:
    """Lai et al.'s warping error (x 1e-3) of RGB frames ``[H, W, 3]`` uint8 (see module doc)."""
    errors = []
    for t, pair in enumerate(motion.pairs):
        if pair is None:
            continue
        flow, mask = pair
        cur = frames[t].astype(np.float32) / 255.0
        prev = remap(frames[t - 1].astype(np.float32) / 255.0, flow)
        m = mask.astype(np.float32)
        if m.sum() == 0:
            continue
        errors.append(float((((cur - prev) ** 2).sum(axis=2) * m).sum() / m.sum()))
    return 1e3 * float(np.mean(errors)) if errors else float("nan")


def warping_error_ab(frames: Sequence[np.ndarray], motion: ReferenceMotion) -> float:
    """The same warping error on the ab channels only (ab units squared, not x 1e-3).

    The temporal filter leaves L alone (it is the source's, grain included), so the RGB error
    cannot fall below the ground truth's; the ab error isolates the colour flicker.
    """
    ab = ab_channels(frames).transpose(0, 2, 3, 1)
    errors = []
    for t, pair in enumerate(motion.pairs):
        if pair is None or not pair[1].any():
            continue
        flow, mask = pair
        diff = ab[t] - remap(np.ascontiguousarray(ab[t - 1]), flow)
        errors.append(float((diff ** 2).sum(axis=2)[mask].mean()))
    return float(np.mean(errors)) if errors else float("nan")


def ab_channels(frames: Sequence[np.ndarray]) -> np.ndarray:
    """RGB uint8 frames -> ab ``[T, 2, H, W]`` float32."""
    from core.color import rgb_to_lab

    return rgb_to_lab(arrays_to_tensor(list(frames)))[:, 1:].numpy()


def mean_colorfulness(frames: Sequence[np.ndarray]) -> float:
    """Mean Hasler & Süsstrunk colourfulness (``core.metrics.colorfulness``) over frames."""
    return float(np.mean([colorfulness(f) for f in frames]))


@dataclass
class ClipResult:
    """Scores of one clip for the ground truth (``truth``), per-frame output (``off``) and the temporal mode (``on``)."""

    name: str
    n_frames: int
    warp: dict[str, float]
    warp_ab: dict[str, float]
    colorfulness: dict[str, float]
    ab_error: dict[str, float]


def evaluate_clip(name: str, color: Sequence[np.ndarray], cut_frames: Sequence[int], colorizer: Any, *,
                  temperature: float = TEMPERATURE, temporal: TemporalOptions = TemporalOptions(),
                  **opts: Any) -> ClipResult:
    """Turn a colour clip gray, colorize it with and without the temporal filter, and score all three."""
    gray = [synth.to_gray(f) for f in color]
    outputs = {"truth": list(color)}
    for mode, on in (("off", False), ("on", True)):
        if hasattr(colorizer, "reset"):  # SimulatedColorizer replays the same flicker for both modes
            colorizer.reset()
        outputs[mode] = list(colorize_sequence(gray, colorizer, temperature=temperature, temporal=on,
                                               alpha=temporal.alpha, motion=temporal.motion, **opts))
    motion = reference_motion([g[..., 0] for g in gray], cut_frames)
    true_ab = ab_channels(color)
    return ClipResult(
        name, len(color),
        warp={k: warping_error(v, motion) for k, v in outputs.items()},
        warp_ab={k: warping_error_ab(v, motion) for k, v in outputs.items()},
        colorfulness={k: mean_colorfulness(v) for k, v in outputs.items()},
        ab_error={k: float(np.abs(ab_channels(v) - true_ab).mean()) for k, v in outputs.items()},
    )


class SimulatedColorizer:
    """Known colour + flicker: returns the true ab of the clip's next frames plus, per frame, a
    random offset and a smooth random field (``jitter`` ab units), mimicking a per-frame network
    whose guesses wander. Frames must be fed in order (a counter picks the true frame)."""

    def __init__(self, true_ab: np.ndarray, jitter: float = 8.0, seed: int = 0):
        self.true_ab = torch.from_numpy(true_ab)
        self.jitter = jitter
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.gen = torch.Generator().manual_seed(self.seed)
        self.next = 0

    def colorize_L(self, L: torch.Tensor, *, temperature: float = TEMPERATURE, **opts: Any) -> torch.Tensor:
        n, _, h, w = L.shape
        ab = self.true_ab[self.next:self.next + n].clone()
        self.next += n
        noise = torch.randn(n, 2, 4, 6, generator=self.gen) * self.jitter
        noise = torch.nn.functional.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)
        return ab + noise + torch.randn(n, 2, 1, 1, generator=self.gen) * self.jitter


def synthetic_clips(n_clips: int, width: int, height: int, shot_lengths: Sequence[int], seed: int = 0
                    ) -> list[tuple[str, list[np.ndarray], list[int]]]:
    """``n_clips`` rendered clips (name, colour frames, cut frame indices) from the shared photos."""
    clips = []
    for k in range(n_clips):
        paths = synth.sample_photo_paths(len(shot_lengths) + 1, seed=seed + k)
        photos = synth.load_photos(paths)
        spec = synth.random_spec(len(photos), width, height, shot_lengths,
                                 photo_sizes=[p.shape[:2] for p in photos], seed=seed + k)
        clips.append((f"synth{k}", list(synth.render_clip(photos, spec)), spec.cut_frames))
    return clips


def video_clip(path: Path, max_frames: int) -> tuple[str, list[np.ndarray], list[int]]:
    """A colour video file as (name, RGB frames, cut indices from the luma histogram test)."""
    from core.video.flow import MotionAnalyser, MotionOptions
    from core.video.io import VideoFileReader

    reader = VideoFileReader(path)
    frames, cuts = [], []
    analyser = MotionAnalyser(MotionOptions())
    try:
        for sf in reader.frames():
            if sf.rgb is None:
                continue
            rgb = sf.rgb if sf.rgb.dtype == np.uint8 else (sf.rgb >> 8).astype(np.uint8)
            if frames and analyser(rgb).cut:
                cuts.append(len(frames))
            elif not frames:
                analyser(rgb)
            frames.append(rgb)
            if len(frames) >= max_frames:
                break
    finally:
        reader.close()
    return path.stem, frames, cuts


def summarise(results: Sequence[ClipResult]) -> dict[str, dict[str, float]]:
    """Means over clips, plus the warping-error cut and colourfulness drop of ``on`` vs ``off`` (in %)."""
    keys = ("truth", "off", "on")
    mean = {metric: {k: float(np.mean([getattr(r, metric)[k] for r in results])) for k in keys}
            for metric in ("warp", "warp_ab", "colorfulness", "ab_error")}
    mean["change_percent"] = {
        "warp_error": 100.0 * (mean["warp"]["on"] / mean["warp"]["off"] - 1.0),
        "warp_error_ab": 100.0 * (mean["warp_ab"]["on"] / mean["warp_ab"]["off"] - 1.0),
        "colorfulness": 100.0 * (mean["colorfulness"]["on"] / mean["colorfulness"]["off"] - 1.0),
    }
    return mean


def write_speed_clip(path: Path, width: int, height: int, n_frames: int, fps: Fraction = Fraction(24)) -> Path:
    """A gray H.264 test clip with an audio tone for speed runs (pans/zooms over the shared photos)."""
    paths = synth.sample_photo_paths(4, seed=7)
    photos = synth.load_photos(paths)
    lengths = [n_frames // 3, n_frames // 3, n_frames - 2 * (n_frames // 3)]
    spec = synth.random_spec(len(photos), width, height, lengths, photo_sizes=[p.shape[:2] for p in photos], seed=7)
    gray = (synth.to_gray(f) for f in synth.render_clip(photos, spec))
    if width % 2 or height % 2:
        synth.write_video(path, gray, fps, pix_fmt="yuv444p")
    else:
        synth.write_video(path, gray, fps)
    return path
