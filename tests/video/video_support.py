"""Shared pieces of the video tests: a flickering stand-in colorizer and small real clips."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from core.video import synth


class FlickerColorizer:
    """Stand-in for ``core.pipeline.Colorizer``: ab is a fixed function of L at 1/8 resolution
    (smooth, like a real model's output) plus a random per-frame offset and a per-frame
    low-frequency field, so consecutive frames disagree (flicker).

    ``calls`` counts colorize_L calls; ``batch_sizes`` records N of each call.
    """

    device = torch.device("cpu")

    def __init__(self, jitter: float = 10.0, seed: int = 0, amplitude: float = 40.0):
        self.jitter = jitter
        self.amplitude = amplitude
        self.gen = torch.Generator().manual_seed(seed)
        self.batch_sizes: list[int] = []

    def colorize_L(self, L: torch.Tensor, *, temperature: float = 0.38, **opts) -> torch.Tensor:
        assert L.ndim == 4 and L.shape[1] == 1 and L.dtype == torch.float32
        assert float(L.min()) >= -1e-3 and float(L.max()) <= 100.001
        n, _, h, w = L.shape
        self.batch_sizes.append(n)
        coarse = torch.nn.functional.avg_pool2d(L, 8, ceil_mode=True)
        coarse = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        base = self.amplitude * torch.cat([torch.sin(coarse / 12), torch.cos(coarse / 17)], dim=1)
        offset = torch.randn(n, 2, 1, 1, generator=self.gen) * self.jitter
        field = torch.randn(n, 2, 3, 4, generator=self.gen) * self.jitter
        field = torch.nn.functional.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
        return base + offset + field


@dataclass
class Clip:
    """A synthetic clip: colour ground truth, gray input, the spec, and written files."""

    spec: synth.ClipSpec
    color: list[np.ndarray]
    gray: list[np.ndarray]


def synthetic_photos(n: int, seed: int = 0, height: int = 240, width: int = 320) -> list[np.ndarray]:
    """``n`` colour "photos" ``[H, W, 3]`` uint8 made here, so the tests need no data set: a smooth
    two-colour gradient under textured discs and bars of random colours, each photo with its own
    brightness (consecutive shots differ in their luma histograms, as real cuts do)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    photos = []
    for index in range(n):
        level = 0.25 + 0.5 * ((index * 0.618 + rng.uniform(0, 0.2)) % 1.0)
        top, bottom = rng.uniform(0.2, 1.0, 3), rng.uniform(0.2, 1.0, 3)
        image = (top * (1 - y) + bottom * y) * (0.8 + 0.4 * x) * level
        for _ in range(14):
            cy, cx, radius = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(8, 50)
            yy, xx = np.ogrid[:height, :width]
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
            if rng.random() < 0.4:  # a bar instead of a disc
                inside = (np.abs(yy - cy) < radius / 3) & (np.abs(xx - cx) < radius * 1.5)
            image[inside] = rng.uniform(0.05, 1.0, 3) * (0.6 + 0.8 * level)
        image = image + rng.normal(0.0, 0.04, (height, width, 1)).astype(np.float32)  # texture for the flow
        photos.append((np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8))
    return photos


def make_clip(width: int = 128, height: int = 80, shots: tuple[int, ...] = (12, 10), seed: int = 3,
              grain: float = 3.0) -> Clip:
    photos = synthetic_photos(max(len(shots), 2), seed=seed)
    spec = synth.random_spec(len(photos), width, height, shots, photo_sizes=[p.shape[:2] for p in photos],
                             grain=grain, noise=1.0, seed=seed)
    color = list(synth.render_clip(photos, spec))
    return Clip(spec, color, [synth.to_gray(f) for f in color])


def packets(path: Path, kind: str) -> list[tuple[Fraction, bytes]]:
    """(time in seconds, payload) of every non-empty packet of the first ``kind`` stream, in file order."""
    with av.open(str(path)) as c:
        streams = getattr(c.streams, kind)
        if not streams:
            return []
        return [(Fraction(p.pts) * p.time_base, bytes(p)) for p in c.demux(streams[0]) if p.size and p.pts is not None]


def video_times(path: Path) -> list[Fraction]:
    """Sorted presentation times (seconds) of the video packets."""
    return sorted(t for t, _ in packets(path, "video"))


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
