"""Render geometry: where an image goes through the network, and the network's input built from it.

The longer side of the image is scaled to the render size (a multiple of the model's ``out_stride``),
the shorter one keeps the aspect ratio, and the result is reflect-padded to the model's ``stride``.
Full-resolution stages run over bands of rows (:func:`band_rows`) so that their temporaries stay
bounded whatever the image size. Tensors: L* ``[N, 1, H, W]`` float32 in [0, 100].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .hints import SparseHints, sparse_at_resolution
from .options import OPTIONS, RENDER_SIZE
from .pixel_tensors import luminance_from_pixels

# Chosen by measuring eccv16's network time against render size (2 CPU cores, 4:3 photo):
# 192 -> 0.18 s, 256 -> 0.31 s, 320 -> 0.47 s, 384 -> 0.68 s, 512 -> 1.28 s. The cost grows with
# the square of the size while 256 is the scale the reference models were trained and run at;
# at 256 the network is about a third of the 12 MP end-to-end time.
DEFAULT_RENDER_SIZE = RENDER_SIZE
# The network's memory grows with the square of the render size (16384 tried to allocate 6.4 GB);
# the bounds are the render_size option's (core.options), which the CLI, the worker and the API share.
MIN_RENDER_SIZE = int(OPTIONS["render_size"].minimum)
MAX_RENDER_SIZE = int(OPTIONS["render_size"].maximum)
# Full-resolution stages (L, guided upsampling, merge) run over bands of about this many pixels,
# so their float32 temporaries stay bounded whatever the image size (measured, 24 MP 8-bit gray:
# 80 MB beyond the 69 MB output array, against 340 MB unbanded).
_FULL_RES_BAND_PIXELS = 1 << 21


@dataclass(frozen=True)
class RenderGeometry:
    """Where an image goes through the network.

    Attributes:
        height, width: the image resized for the network (multiples of ``out_stride``).
        padded_height, padded_width: after reflect padding to multiples of ``stride``.
        out_height, out_width: the network-output cells that cover the image (padding cropped).
    """

    height: int
    width: int
    padded_height: int
    padded_width: int
    out_height: int
    out_width: int


def render_size_problem(render_size: int) -> str | None:
    """Why ``render_size`` is refused (outside ``MIN_RENDER_SIZE..MAX_RENDER_SIZE``), or None."""
    if not MIN_RENDER_SIZE <= render_size <= MAX_RENDER_SIZE:
        return f"render size must be in {MIN_RENDER_SIZE}..{MAX_RENDER_SIZE}, got {render_size}"
    return None


def render_geometry(height: int, width: int, render_size: int, stride: int, out_stride: int) -> RenderGeometry:
    """Render size for an ``height`` x ``width`` image: the longer side becomes ``render_size``
    (rounded to a multiple of ``out_stride``), the shorter one keeps the aspect ratio.

    Args:
        height, width: the image in pixels, >= 1.
        render_size: the longer side of the network's input, ``MIN_RENDER_SIZE..MAX_RENDER_SIZE``.
        stride: the model's input stride (the padded size is a multiple of it).
        out_stride: input pixels per output cell of the model.
    Returns:
        The :class:`RenderGeometry`.
    Raises:
        ValueError: an empty image, a render size out of bounds or below the model's stride.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    problem = render_size_problem(render_size)
    if problem:
        raise ValueError(problem)
    if render_size < stride or render_size < out_stride:
        raise ValueError(f"render size must be at least the model's stride {max(stride, out_stride)}, got {render_size}")

    def snap(value: float) -> int:
        return max(out_stride, int(round(value / out_stride)) * out_stride)

    scale = render_size / max(height, width)
    rh, rw = snap(height * scale), snap(width * scale)
    ph, pw = math.ceil(rh / stride) * stride, math.ceil(rw / stride) * stride
    return RenderGeometry(rh, rw, ph, pw, rh // out_stride, rw // out_stride)


def _pad(x: Tensor, bottom: int, right: int) -> Tensor:
    if bottom == 0 and right == 0:
        return x
    mode = "reflect" if bottom < x.shape[-2] and right < x.shape[-1] else "replicate"
    return F.pad(x, (0, right, 0, bottom), mode=mode)


def band_rows(width: int) -> int:
    """Rows per band of the full-resolution stages for an image ``width`` pixels wide."""
    return max(1, _FULL_RES_BAND_PIXELS // max(1, width))


def _shrinks_to(size: tuple[int, int], geometry: RenderGeometry) -> bool:
    return size[0] >= geometry.height and size[1] >= geometry.width


def _pool_columns(L: Tensor, width: int) -> Tensor:
    """Area average along the width only: ``[N, 1, h, W]`` -> ``[N, 1, h, width]`` (rows independent)."""
    return F.adaptive_avg_pool2d(L, (L.shape[-2], width))


def _render_from_columns(columns: Tensor, geometry: RenderGeometry) -> Tensor:
    resized = F.adaptive_avg_pool2d(columns, (geometry.height, geometry.width))
    return _pad(resized, geometry.padded_height - geometry.height, geometry.padded_width - geometry.width)


def render_input(L: Tensor, geometry: RenderGeometry) -> Tensor:
    """Full-resolution L ``[N, 1, H, W]`` -> the network's input ``[N, 1, padded_h, padded_w]``
    (area-averaged when shrinking, bilinear when enlarging, then reflect-padded).

    Shrinking averages the columns first, then the rows, so that the same render can be built
    from bands of rows (:func:`render_from_pixels`)."""
    if _shrinks_to(tuple(L.shape[-2:]), geometry):
        return _render_from_columns(_pool_columns(L, geometry.width), geometry)
    resized = F.interpolate(L, size=(geometry.height, geometry.width), mode="bilinear", align_corners=False)
    return _pad(resized, geometry.padded_height - geometry.height, geometry.padded_width - geometry.width)


def render_from_pixels(color: np.ndarray, geometry: RenderGeometry, device: torch.device) -> Tensor:
    """:func:`render_input` of the pixels' L*, computed a band of rows at a time (the full-resolution
    L never exists at once). ``color``: ``[H, W, 1|3]`` as :func:`luminance_from_pixels` takes."""
    height, width = color.shape[:2]
    if not _shrinks_to((height, width), geometry):
        return render_input(luminance_from_pixels(color, device), geometry)
    rows = band_rows(width)
    columns = [_pool_columns(luminance_from_pixels(color[top:top + rows], device), geometry.width)
               for top in range(0, height, rows)]
    return _render_from_columns(torch.cat(columns, dim=2), geometry)


def hints_for_render(hints: SparseHints, geometry: RenderGeometry, device: torch.device | str = "cpu"
                     ) -> tuple[Tensor, Tensor]:
    """Hinted pixels at full resolution -> hint maps at render size ``[N, 2|1, ph, pw]`` on ``device``
    (``core.hints.sparse_at_resolution``); padding carries no hints."""
    ab, mask = sparse_at_resolution(hints, (geometry.height, geometry.width), device)
    pad = (0, geometry.padded_width - geometry.width, 0, geometry.padded_height - geometry.height)
    return F.pad(ab, pad), F.pad(mask, pad)
