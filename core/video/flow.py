"""Motion between consecutive frames: optical flow, reliability masks, scene cuts, warping.

Flow is computed with OpenCV's DIS on 8-bit luma (optionally downscaled), on the CPU, so it can
run in the decode thread beside the network. Conventions: a flow ``[H, W, 2]`` float32 (x, y) in
pixels maps each pixel ``p`` of the *current* frame to ``p + flow[p]`` in the *previous* frame, so
``warp(previous, flow)`` aligns the previous frame with the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class MotionOptions:
    """How motion is analysed.

    ``preset``: DIS preset. ``max_side``: flow is computed on luma downscaled so its longer side is
    at most this (``0`` = full size). ``mask``: ``"fb"`` (default: forward-backward flow
    consistency within ``fb_threshold`` px, costs a second flow computation; measured best on
    grainy clips, see ``tinct eval-video``) or ``"photometric"`` (a pixel is reliable where the
    warped previous luma matches the current one within ``photometric_threshold`` 8-bit code values). ``cut_threshold``: 1 - correlation of 64-bin luma histograms above
    which a scene cut is declared; ``min_reliable``: a frame whose reliable share is below this
    is treated as a cut too (a cut between shots with similar histograms).
    """

    preset: str = "fast"
    max_side: int = 1024
    mask: str = "fb"
    photometric_threshold: float = 12.0
    fb_threshold: float = 1.0
    cut_threshold: float = 0.5
    min_reliable: float = 0.2

    def __post_init__(self) -> None:
        if self.preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {self.preset!r}; use one of {', '.join(DIS_PRESETS)}")
        if self.mask not in ("photometric", "fb"):
            raise ValueError(f"unknown reliability mask {self.mask!r}; use 'photometric' or 'fb'")


@dataclass
class Motion:
    """Motion from the previous frame to this one, at full frame size.

    ``flow``: ``[H, W, 2]`` float32 pixels (see module doc); ``reliable``: ``[H, W]`` float32 in
    {0, 1}; ``cut``: a scene cut (the previous frame must not be used); ``cut_score``: the
    histogram score; ``reliable_share``: mean of ``reliable``.
    """

    flow: np.ndarray | None
    reliable: np.ndarray | None
    cut: bool
    cut_score: float
    reliable_share: float


def luma_u8(rgb: np.ndarray) -> np.ndarray:
    """RGB ``[H, W, 3]`` uint8 | uint16 | float32 (0..1) -> 8-bit luma ``[H, W]`` uint8 (Rec. 601, for motion only)."""
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    elif rgb.dtype != np.uint8:
        rgb = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def luma_histogram(gray: np.ndarray) -> np.ndarray:
    """64-bin histogram ``[64, 1]`` float32 of an 8-bit luma image."""
    return cv2.calcHist([gray], [0], None, [64], [0, 256])


def cut_score(hist_prev: np.ndarray, hist_cur: np.ndarray) -> float:
    """1 - correlation of two luma histograms: ~0 within a shot, ~1 across a cut."""
    return float(1.0 - cv2.compareHist(hist_prev, hist_cur, cv2.HISTCMP_CORREL))


def remap(img: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Sample ``img`` ``[H, W]`` or ``[H, W, C]`` at ``p + flow[p]`` (border replicated); same shape and dtype."""
    h, w = flow.shape[:2]
    grid = flow + _pixel_grid(h, w)
    return cv2.remap(img, grid, None, interpolation, borderMode=cv2.BORDER_REPLICATE)


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _pixel_grid(h: int, w: int) -> np.ndarray:
    key = (h, w)
    if key not in _GRIDS:
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        _GRIDS[key] = np.stack([xs, ys], axis=-1)
    return _GRIDS[key]


def inside_mask(flow: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: where ``p + flow[p]`` lands inside the frame."""
    h, w = flow.shape[:2]
    grid = flow + _pixel_grid(h, w)
    return (grid[..., 0] >= 0) & (grid[..., 0] <= w - 1) & (grid[..., 1] >= 0) & (grid[..., 1] <= h - 1)


def photometric_mask(gray_cur: np.ndarray, gray_prev: np.ndarray, flow: np.ndarray, threshold: float) -> np.ndarray:
    """``[H, W]`` bool: the flow is in the frame and the warped previous luma is within ``threshold``."""
    warped = remap(gray_prev, flow)
    diff = cv2.absdiff(gray_cur, warped)
    return (diff < threshold) & inside_mask(flow)


def fb_mask(flow_cur_to_prev: np.ndarray, flow_prev_to_cur: np.ndarray, threshold: float) -> np.ndarray:
    """``[H, W]`` bool: forward-backward consistent (going there and back returns within ``threshold`` px
    plus 5 % of the motion, Sundaram et al. 2010) and inside the frame."""
    back = remap(flow_prev_to_cur, flow_cur_to_prev)
    err = np.sum((flow_cur_to_prev + back) ** 2, axis=-1)
    mag = np.sum(flow_cur_to_prev ** 2, axis=-1) + np.sum(back ** 2, axis=-1)
    return (err < threshold ** 2 + 0.05 * mag) & inside_mask(flow_cur_to_prev)


def motion_luma(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The 8-bit luma motion is analysed on: ``rgb`` ``[H, W, 3]`` -> ``[h, w]`` uint8, the longer side
    at most ``max_side`` (``0`` = full size)."""
    gray = luma_u8(rgb)
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale == 1.0:
        return gray
    return cv2.resize(gray, (max(int(round(w * scale)), 8), max(int(round(h * scale)), 8)), interpolation=cv2.INTER_AREA)


class MotionAnalyser:
    """Stateful: feed frames in order, get the :class:`Motion` from each one's predecessor.

    Not thread-safe (one DIS instance); use one per stream. Call :meth:`reset` after a gap.
    """

    def __init__(self, options: MotionOptions = MotionOptions()):
        self.options = options
        self._dis = cv2.DISOpticalFlow.create(DIS_PRESETS[options.preset])
        self.reset()

    def reset(self) -> None:
        self._prev_small: np.ndarray | None = None
        self._prev_hist: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> Motion:
        """Motion for the frame ``rgb`` ``[H, W, 3]`` uint8/uint16 relative to the previous call's frame."""
        o = self.options
        h, w = rgb.shape[:2]
        small = motion_luma(rgb, o.max_side)
        resized = small.shape != (h, w)
        hist = luma_histogram(small)
        prev_small, prev_hist = self._prev_small, self._prev_hist
        self._prev_small, self._prev_hist = small, hist
        if prev_small is None or prev_small.shape != small.shape:
            return Motion(None, None, True, 1.0, 0.0)
        score = cut_score(prev_hist, hist)
        if score > o.cut_threshold:
            return Motion(None, None, True, score, 0.0)
        flow = self._dis.calc(small, prev_small, None)
        if o.mask == "photometric":
            reliable = photometric_mask(small, prev_small, flow, o.photometric_threshold)
        else:
            back = self._dis.calc(prev_small, small, None)
            reliable = fb_mask(flow, back, o.fb_threshold)
        share = float(reliable.mean())
        if share < o.min_reliable:
            return Motion(None, None, True, score, share)
        reliable_f = reliable.astype(np.float32)
        if resized:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(
                [w / small.shape[1], h / small.shape[0]])
            reliable_f = cv2.resize(reliable_f, (w, h), interpolation=cv2.INTER_LINEAR)
        return Motion(flow, reliable_f, False, score, share)


def warp_tensor(x: Tensor, flow: np.ndarray) -> Tensor:
    """Warp ``x`` ``[C, H, W]`` float (any device) by ``flow`` ``[H, W, 2]``; same shape, dtype, device.

    CPU tensors go through ``cv2.remap`` (about 3x faster than ``grid_sample`` there); other
    devices use ``grid_sample`` with the flow moved to that device.
    """
    c, h, w = x.shape
    if x.device.type == "cpu":
        img = np.ascontiguousarray(x.permute(1, 2, 0).numpy(), dtype=np.float32)
        out = remap(img, flow)
        if out.ndim == 2:
            out = out[..., None]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(x.dtype)
    f = torch.from_numpy(flow).to(x.device, torch.float32)
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32),
                            torch.arange(w, device=x.device, dtype=torch.float32), indexing="ij")
    gx = (xs + f[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + f[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None]
    out = F.grid_sample(x[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].to(x.dtype)
