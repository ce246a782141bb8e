"""Pixel arrays to the pipeline's tensors and back: L* from pixels, masks and hint arrays as tensors,
the merge of L* and ab into pixels of the input's sample type.

Pixels are numpy ``[H, W, C]`` (``core.pixels``: uint8 | uint16 | float32 in [0, 1]); tensors are
float32 ``[N, C, H, W]``: L* in [0, 100], ab in ab units (about +-110), masks in [0, 1].
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .color import gray_to_l, lab_to_rgb8_keep_l, lab_to_rgb_keep_l, rgb_to_l, rgb_to_lab
from .pixels import PEAK


@functools.lru_cache(maxsize=2)
def _gray_lut(levels: int) -> np.ndarray:
    codes = torch.arange(levels, dtype=torch.float64).div_(levels - 1).view(1, 1, levels)
    return gray_to_l(codes).view(levels).to(torch.float32).numpy()


def unit_tensor(color: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """``[H, W, C]`` pixels -> float32 ``[1, C, H, W]`` in [0, 1] on ``device`` (float input is clipped)."""
    if not color.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        color = color.copy()
    t = torch.from_numpy(np.ascontiguousarray(color)).to(device)
    scale = PEAK.get(color.dtype, 1.0)
    t = t.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    return t.div_(scale) if scale != 1.0 else t.clamp(0.0, 1.0)


def luminance_from_pixels(color: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """L* of gray or RGB pixels.

    Args:
        color: ``[H, W, 1]`` gray or ``[H, W, 3]`` sRGB, uint8 | uint16 | float32 in [0, 1].
        device: where the result lives.
    Returns:
        ``[1, 1, H, W]`` float32 L* in [0, 100]. Integer gray, and integer RGB whose three channels are
        equal (a black-and-white photo in an RGB layer or file), goes through a lookup table.
    """
    device = torch.device(device)
    if color.dtype in (np.uint8, np.uint16) and (color.shape[2] == 1 or is_gray_rgb(color)):
        lut = _gray_lut(256 if color.dtype == np.uint8 else 65536)
        return torch.from_numpy(lut[color[:, :, 0]]).to(device)[None, None]
    unit = unit_tensor(color, device)
    return gray_to_l(unit) if color.shape[2] == 1 else rgb_to_l(unit)


def is_gray_rgb(color: np.ndarray) -> bool:
    """Whether ``[H, W, 3]`` pixels have R = G = B everywhere (a sparse sample first, so colour fails fast)."""
    if color.ndim != 3 or color.shape[2] != 3:
        return False
    for pixels in (color[::61, ::67], color):
        if not (np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])):
            return False
    return True


def ab_from_pixels(color: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """The pixels' own ab: ``[H, W, 3]`` sRGB -> ``[1, 2, H, W]`` float32 ab units (gray ``[H, W, 1]`` -> zeros)."""
    if color.shape[2] != 3:
        return torch.zeros(1, 2, *color.shape[:2], device=device)
    return rgb_to_lab(unit_tensor(color, device))[:, 1:]


def merge_to_pixels(L: Tensor, ab: Tensor, dtype: np.dtype | type, out: np.ndarray | None = None) -> np.ndarray:
    """The ORIGINAL L and the predicted ab -> ``[H, W, 3]`` sRGB pixels of ``dtype``, L* kept
    (``core.color.lab_to_rgb8_keep_l`` for 8-bit output, ``lab_to_rgb_keep_l`` otherwise).

    Args:
        L: ``[1, 1, H, W]`` float32 L* in [0, 100].
        ab: ``[1, 2, H, W]`` float32 ab units.
        dtype: ``uint8``, ``uint16`` or ``float32``.
        out: an ``[H, W, 3]`` array of ``dtype`` to write the pixels into (8-bit pixels of a C-contiguous
            ``out`` on the CPU are written in place, without a full-size copy).
    Returns:
        ``[H, W, 3]`` numpy array (``out`` when given); its L* is the input's up to the output's rounding.
    """
    dtype = np.dtype(dtype)
    ab = ab.to(device=L.device, dtype=torch.float32)
    if out is not None and (out.dtype != dtype or out.shape != (*L.shape[-2:], 3)):
        raise ValueError(f"out must be {dtype} [{L.shape[-2]}, {L.shape[-1]}, 3], got {out.dtype} {list(out.shape)}")
    if dtype == np.uint8:
        if out is not None and out.flags.c_contiguous and out.flags.writeable and L.device.type == "cpu":
            lab_to_rgb8_keep_l(L, ab, out=torch.from_numpy(out)[None])
            return out
        pixels = lab_to_rgb8_keep_l(L, ab)[0].cpu().numpy()
    else:
        pixels = quantize_rgb(lab_to_rgb_keep_l(L, ab)[0], dtype)
    if out is None:
        return pixels
    out[...] = pixels
    return out


def quantize_rgb(rgb: Tensor, dtype: np.dtype | type) -> np.ndarray:
    """``[3, H, W]`` float sRGB in [0, 1] -> ``[H, W, 3]`` numpy of ``dtype`` (uint8, uint16 rounded; float32 as is)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return rgb.permute(1, 2, 0).contiguous().cpu().numpy()
    peak = PEAK[dtype]
    torch_dtype = torch.uint8 if dtype == np.uint8 else torch.int32
    scaled = rgb.mul(peak).add_(0.5).clamp_(0.0, peak).to(torch_dtype)  # truncation after +0.5 rounds
    out = scaled.permute(1, 2, 0).contiguous().cpu().numpy()
    return out if dtype == np.uint8 else out.astype(np.uint16)


def mask_tensor(mask: Any, size: tuple[int, int], device: torch.device | str = "cpu") -> Tensor:
    """A user mask -> ``[1, 1, H, W]`` float32 in [0, 1] (or ``[N, 1, H, W]`` as given).

    Args:
        mask: float array ``[H, W]`` in [0, 1], bool array, uint8 array (0..255), a PIL image (mode
            "L", 0..255; other modes are converted to "L"), or a tensor ``[H, W]`` / ``[N|1, 1, H, W]``.
        size: the image's (H, W), which the mask must match.
    Raises:
        ValueError: another type, another size, or values outside [0, 1].
    """
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    if isinstance(mask, np.ndarray):
        if mask.dtype == np.bool_:
            mask = mask.astype(np.float32)
        elif mask.dtype == np.uint8:
            mask = mask.astype(np.float32) / 255.0
        mask = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    if not isinstance(mask, Tensor):
        raise ValueError(f"mask must be an array, tensor or PIL image, got {type(mask).__name__}")
    mask = mask.to(device=device, dtype=torch.float32)
    if mask.dim() == 2:
        mask = mask[None, None]
    if mask.dim() != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"mask must be {size[0]}x{size[1]} like the image, got shape {list(mask.shape)}")
    lo, hi = float(mask.min()), float(mask.max())
    if lo < 0.0 or hi > 1.0 or math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"mask values must lie in [0, 1], got [{lo:g}, {hi:g}]")
    return mask


def hint_tensor(value: Any, channels: int) -> Tensor | None:
    """A hint array ``[H, W]`` / ``[H, W, C]`` (or an already ``[N, C, H, W]`` tensor, or None) ->
    ``[1, C, H, W]`` float32 (``C`` = 2 for ``hint_ab`` in ab units, 1 for ``hint_mask``).

    Raises:
        ValueError: an array of another shape.
    """
    if value is None or isinstance(value, Tensor):
        return value
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != channels:
        raise ValueError(f"expected an [H,W{',' + str(channels) if channels > 1 else ''}] hint array, got {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
