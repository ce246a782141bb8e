"""The one check every pixel input goes through (Python API, ``tinct colorize``'s reader, GIMP worker).

Pure numpy, no torch: the image reader and the worker import it without the engine.
"""

from __future__ import annotations

import numpy as np

PIXEL_DTYPES = (np.uint8, np.uint16, np.float32)


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """Check pixels and make floating-point ones safe to colorize.

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
