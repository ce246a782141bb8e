"""Temporal consistency: blend each frame's ab with the flow-warped previous output.

Recursive filter (per pixel, per frame)::

    out_t = ab_t + alpha * reliable_t * (warp(out_{t-1}, flow_t) - ab_t)

where ``flow_t`` maps frame t onto frame t-1 (DIS on luma) and ``reliable_t`` is 1 where that
mapping is trustworthy (photometric check by default, or forward-backward consistency) and 0 in
occlusions, dis-occlusions and outside the frame. At a scene cut (luma histogram jump, or too few
reliable pixels) the state is reset and the frame's own prediction is used. ``alpha`` = 0.8
means a time constant of ~5 frames for static content; moving content follows the flow.
The L channel is never touched: only ab is filtered, so detail and grain stay the source's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from core.options import TEMPERATURE
from core.video.flow import Motion, MotionAnalyser, MotionOptions, warp_tensor
from core.video.frames import join_pixels, lightness, merge, split_pixels, tensor_to_arrays


@dataclass(frozen=True)
class TemporalOptions:
    """``alpha`` in ``[0, 1)``: weight of the warped history where reliable; ``motion``: flow, mask
    and cut settings."""

    alpha: float = 0.8
    motion: MotionOptions = field(default_factory=MotionOptions)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha}")


class TemporalSmoother:
    """Holds the previous output ab; :meth:`step` filters one frame (see module doc)."""

    def __init__(self, alpha: float = 0.8):
        self.alpha = float(alpha)
        self.reset()

    def reset(self) -> None:
        self._prev: Tensor | None = None

    def step(self, ab: Tensor, motion: Motion | None) -> Tensor:
        """``ab`` ``[2, H, W]`` float (any device) + motion from the previous frame -> filtered ab, same shape/device.

        ``motion`` None, a cut, or a frame size change resets the state.
        """
        prev = self._prev
        if (motion is None or motion.cut or motion.flow is None or prev is None
                or prev.shape != ab.shape or motion.flow.shape[:2] != tuple(ab.shape[1:])):
            out = ab
        else:
            warped = warp_tensor(prev, motion.flow)
            weight = torch.from_numpy(motion.reliable).to(ab.device, ab.dtype).mul_(self.alpha)
            out = ab + weight * (warped - ab)
        self._prev = out
        return out


def colorize_sequence(frames: Iterable[np.ndarray], colorizer: Any, *, temperature: float = TEMPERATURE,
                      temporal: bool = True, alpha: float = 0.8, motion: MotionOptions | None = None,
                      batch_size: int = 1, **opts: Any) -> Iterator[np.ndarray]:
    """Colorize frames of one shot sequence (e.g. GIMP layers as animation frames), in order.

    Args:
        frames: arrays ``[H, W]`` or ``[H, W, 1..4]``, uint8 | uint16 | float32 (0..1), gray,
            gray+alpha, RGB or RGBA (sizes may differ between frames: the temporal state is
            reset where the size changes).
        colorizer: anything with ``colorize_L(L [N,1,H,W] float32 0..100, *, temperature, **opts)
            -> ab [N,2,H,W]`` (``core.pipeline.Colorizer``); its ``device`` attribute, when
            present, is where the maths runs.
        temperature: annealed-mean temperature passed to ``colorize_L``.
        temporal: ``False`` gives plain per-frame output.
        alpha, motion: temporal filter settings (see :class:`TemporalOptions`).
        batch_size: consecutive same-size frames colorized per ``colorize_L`` call.
        **opts: passed through to ``colorize_L`` (``render_size``, ``decode``, ``post``, ...).

    Yields:
        ``[H, W, 3|4]`` arrays of each input's dtype (alpha kept), L* of each frame unchanged
        (up to rounding and gamut clipping).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(getattr(colorizer, "device", "cpu"))
    analyser = MotionAnalyser(motion or MotionOptions()) if temporal else None
    smoother = TemporalSmoother(alpha)
    batch: list[tuple[np.ndarray, np.ndarray | None, Motion | None]] = []
    for pixels in frames:
        rgb, a = split_pixels(np.asarray(pixels))
        m = analyser(rgb) if analyser is not None else None
        if batch and (batch[0][0].shape != rgb.shape or batch[0][0].dtype != rgb.dtype or len(batch) == batch_size):
            yield from _colorize_batch(batch, colorizer, smoother, device, temperature, opts)
            batch = []
        batch.append((rgb, a, m))
    if batch:
        yield from _colorize_batch(batch, colorizer, smoother, device, temperature, opts)


def _colorize_batch(batch: list[tuple[np.ndarray, np.ndarray | None, Motion | None]], colorizer: Any,
                    smoother: TemporalSmoother, device: torch.device, temperature: float,
                    opts: dict[str, Any]) -> Iterator[np.ndarray]:
    dtype = batch[0][0].dtype
    with torch.inference_mode():
        L = lightness([b[0] for b in batch], device)
        ab = colorizer.colorize_L(L, temperature=temperature, **opts)
        ab = torch.stack([smoother.step(ab[i], m) for i, (_, _, m) in enumerate(batch)])
        rgb = tensor_to_arrays(merge(L, ab), dtype)
    for out, (_, a, _) in zip(rgb, batch):
        yield join_pixels(out, a)
