"""Pixel arrays as the engine takes them: the one check, sample depths, alpha.

Pixels are ``[H, W]`` or ``[H, W, C]`` numpy arrays, ``C`` = 1 (gray), 2 (gray + alpha), 3 (RGB)
or 4 (RGBA), dtype ``uint8`` (0..255), ``uint16`` (0..65535) or ``float32`` (0..1). Pure numpy, no
torch: the image reader and the worker import it without the engine (``core.pixel_tensors`` turns
pixels into tensors and back).
"""

from __future__ import annotations

import numpy as np

PIXEL_DTYPES = (np.uint8, np.uint16, np.float32)
# The value of full intensity per sample type; float32 samples are 0..1.
PEAK: dict[np.dtype, float] = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def peak(dtype: np.dtype | type) -> float:
    """Full intensity of ``dtype``: 255 (uint8), 65535 (uint16), 1 (float32).

    Raises:
        ValueError: another dtype.
    """
    try:
        return PEAK[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"pixels must be uint8, uint16 or float32 (0..1), got {np.dtype(dtype)}") from None


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """Check pixels and make floating-point ones safe to colorize (every pixel input goes through it:
    Python API, ``tinct colorize``'s reader, GIMP worker).

    Args:
        pixels: ``[H, W]`` or ``[H, W, 1..4]`` (gray, gray+alpha, RGB, RGBA), ``uint8``, ``uint16``
            or ``float32`` meant as 0..1.
    Returns:
        The same array when nothing needed fixing; for ``float32`` with values that are not finite
        or outside [0, 1], a copy with NaN -> 0, -inf -> 0, +inf -> 1 and everything clipped to
        [0, 1] (one NaN pixel would otherwise turn the whole output NaN through the filters).
    Raises:
        ValueError: another dtype, another shape, or no pixels (one-line message).
    """
    pixels = np.asarray(pixels)
    if pixels.dtype not in PIXEL_DTYPES:
        raise ValueError(f"pixels must be uint8, uint16 or float32 (0..1), got {pixels.dtype}")
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"pixels must be [H,W] or [H,W,1..4], got shape {pixels.shape}")
    if pixels.size == 0:
        raise ValueError(f"pixels are empty (shape {pixels.shape})")
    if pixels.dtype == np.float32:
        low, high = float(np.min(pixels)), float(np.max(pixels))  # NaN propagates into both
        if not (0.0 <= low and high <= 1.0):
            fixed = np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)
            return np.clip(fixed, 0.0, 1.0, out=fixed)
    return pixels


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round 16-bit samples to 8 bits (``round(v / 257)``)."""
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def convert_depth(pixels: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Samples of any :data:`PIXEL_DTYPES` as ``dtype`` (the same array when it already is).

    uint8 -> uint16 is exact (``v * 257``); to fewer bits rounds; float32 in [0, 1] -> integers rounds
    and clips; integers -> float32 divides by the peak.
    """
    source, target = np.dtype(pixels.dtype), np.dtype(dtype)
    peak(source), peak(target)  # both must be pixel dtypes
    if source == target:
        return pixels
    if source == np.uint8 and target == np.uint16:
        return pixels.astype(np.uint16) * np.uint16(257)
    if source == np.uint16 and target == np.uint8:
        return to_uint8(pixels)
    if target == np.float32:
        return (pixels.astype(np.float32) / np.float32(PEAK[source])).astype(np.float32)
    return (np.clip(pixels, 0.0, 1.0) * PEAK[target] + 0.5).astype(target)


def split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``[H, W]`` / ``[H, W, 1..4]`` -> (colour ``[H, W, 1|3]``, alpha ``[H, W]`` or None); views, no copies.

    Raises:
        ValueError: another shape.
    """
    if pixels.ndim == 2:
        return pixels[:, :, None], None
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"pixels must be [H,W] or [H,W,1..4], got shape {pixels.shape}")
    channels = pixels.shape[2]
    if channels in (2, 4):
        return pixels[:, :, : channels - 1], pixels[:, :, channels - 1]
    return pixels, None


def join_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``[H, W, 3]`` + optional ``[H, W]`` alpha (any pixel dtype, converted to ``rgb``'s) -> ``[H, W, 3|4]``."""
    if alpha is None:
        return rgb
    return np.concatenate([rgb, convert_depth(alpha, rgb.dtype)[:, :, None]], axis=2)


def gray_to_rgb(color: np.ndarray) -> np.ndarray:
    """``[H, W, 1|3]`` -> ``[H, W, 3]`` (gray repeated on R, G and B; RGB as it is)."""
    return np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color


def as_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Any pixels -> ``[H, W, 3]`` uint8 sRGB: gray repeated, alpha dropped, depth rounded to 8 bits."""
    color, _ = split_alpha(pixels)
    return np.ascontiguousarray(convert_depth(gray_to_rgb(color), np.uint8))
