"""Pixel conversions for the video path: arrays <-> float tensors, L/ab merging.

Pure functions. RGB tensors are ``[N, 3, H, W]`` float32 in ``[0, 1]``; L is ``[N, 1, H, W]`` in
``[0, 100]``; ab is ``[N, 2, H, W]`` in ab units.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from core.color import lab_to_rgb_keep_l, rgb_to_l
from core.pixel_tensors import luminance_from_pixels
from core.pixels import PEAK, gray_to_rgb, join_alpha, split_alpha


def split_pixels(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``[H, W]`` / ``[H, W, 1..4]`` uint8 | uint16 | float32 (0..1) -> (RGB ``[H, W, 3]`` same dtype, alpha ``[H, W]`` or None).

    Gray is repeated on R, G, B; gray+alpha and RGBA give their alpha channel back unchanged.
    """
    if pixels.dtype not in PEAK:
        raise ValueError(f"frames must be uint8, uint16 or float32 (0..1), got {pixels.dtype}")
    color, alpha = split_alpha(pixels)
    return np.ascontiguousarray(gray_to_rgb(color)), alpha


join_pixels = join_alpha


def arrays_to_tensor(frames: Sequence[np.ndarray], device: torch.device | str = "cpu") -> Tensor:
    """RGB frames ``[H, W, 3]`` (all the same shape and dtype) -> ``[N, 3, H, W]`` float32 in ``[0, 1]`` on ``device``.

    Integer frames travel to the device as integers (half or a quarter of the bytes) and are
    scaled there.
    """
    stack = np.stack(frames)
    peak = PEAK.get(stack.dtype, 1.0)
    if stack.dtype == np.uint16:
        stack = stack.astype(np.int32)  # torch has no uint16 arithmetic on every device
    t = torch.from_numpy(stack).to(device, non_blocking=True).permute(0, 3, 1, 2)
    return t.float().div_(peak) if peak != 1.0 else t.float()


def tensor_to_arrays(rgb: Tensor, dtype: np.dtype | type) -> list[np.ndarray]:
    """``[N, 3, H, W]`` float in ``[0, 1]`` -> N arrays ``[H, W, 3]`` of ``dtype`` (uint8/uint16 rounded, float32 as is)."""
    dtype = np.dtype(dtype)
    peak = PEAK.get(dtype, 1.0)
    x = rgb.permute(0, 2, 3, 1)
    if peak != 1.0:
        x = x.mul(peak).round_().clamp_(0, peak)
        x = x.to(torch.uint8) if dtype == np.uint8 else x.to(torch.int32)
    arr = x.cpu().numpy()
    return [np.ascontiguousarray(a.astype(dtype, copy=False)) for a in arr]


def lightness(frames: Sequence[np.ndarray], device: torch.device | str = "cpu") -> Tensor:
    """RGB frames ``[H, W, 3]`` (same shape and dtype) -> L* ``[N, 1, H, W]`` float32 in ``[0, 100]`` on ``device``.

    Gray integer frames (R = G = B, the usual black-and-white film) go through the engine's
    lookup table, about 10x cheaper than the colour conversion.
    """
    if frames[0].dtype != np.float32 and all(_is_gray(f) for f in frames):
        return torch.cat([luminance_from_pixels(f[..., :1], device) for f in frames])
    return rgb_to_l(arrays_to_tensor(frames, device))


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def merge(L: Tensor, ab: Tensor) -> Tensor:
    """Original L ``[N, 1, H, W]`` + ab ``[N, 2, H, W]`` -> sRGB ``[N, 3, H, W]`` in ``[0, 1]``.

    Out-of-gamut colours lose chroma (``core.color.lab_to_rgb_keep_l``), so L* is the input's.
    """
    return lab_to_rgb_keep_l(L.float(), ab.float())
