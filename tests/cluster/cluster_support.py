"""Small inputs for the cluster tests (the cluster itself: :class:`core.cluster.processes.DaskProcesses`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def gray_images(folder: Path, n: int, size: tuple[int, int] = (96, 64), seed: int = 0) -> list[Path]:
    """``n`` small 8-bit gray PNGs with structure (gradients, discs, noise); ``size`` is (w, h)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(n):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(h / 6, h / 2)
        base = 40 + 150 * (xs / w) * rng.uniform(0.5, 1.0) + 60 * ((xs - cx) ** 2 + (ys - cy) ** 2 < r * r)
        pixels = np.clip(base + rng.normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
        path = folder / f"scan_{i:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def frame_times(path: Path) -> list:
    """Sorted presentation times (seconds, exact fractions) of a video file's frames."""
    import av

    with av.open(str(path)) as c:
        return sorted(p.pts * p.time_base for p in c.demux(video=0) if p.size and p.pts is not None)


def audio_packets(path: Path) -> list[tuple]:
    """(time in seconds, payload bytes) of every audio packet, in file order."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts * p.time_base, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size and p.pts is not None]


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file as RGB uint8."""
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
