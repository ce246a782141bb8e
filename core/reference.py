"""Steering the palette with a reference: a colour photo's (or a named palette's) ab histogram.

A reference is an ab histogram over the step-10 ab grid (``[23, 23]``, cell ``(i, j)`` = ab
``(10 (i - 11), 10 (j - 11))``), so it maps onto any classification model's bins (our 261, ECCV16's
313). Before decoding, every pixel's predicted distribution is re-weighted toward it::

    p'(q) ∝ p(q) · r(q) ^ strength

where ``r`` is the histogram on the model's bins, Gaussian-smoothed (σ = 5 ab, like the training
prior) and mixed with a little of the uniform distribution so that no colour becomes impossible.
This is a per-bin bias on the logits (:func:`reference_logit_bias`), so decoding, temperature and
the post-processing steps work on the re-weighted distribution unchanged. Regression models predict
one ab per pixel and cannot be steered this way.

Named palettes (``parchment``, ``aged-paper``, ``white-paper``) ship as small JSON files in
``core/palettes/`` (made by ``python -m core.palettes.build`` from the training part of the shared
document scans) and are used exactly like a reference photo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .bins import GRID_STEP, nearest_bin, smoothed_prior
from .color import rgb_to_lab
from .errors import InputError
from .options import NO_PALETTE, OPTIONS, REFERENCE_STRENGTH
from .pixels import PEAK

GRID_RADIUS = 11  # cells -110 .. 110 ab on each axis: the whole ab range reached by sRGB
GRID_SIZE = 2 * GRID_RADIUS + 1
DEFAULT_STRENGTH = REFERENCE_STRENGTH
# Share of the uniform distribution mixed into the reference: a colour absent from the reference
# is made at most 1 / UNIFORM_MIX * (its reference mass) times less likely, never impossible.
UNIFORM_MIX = 0.1
SMOOTHING_SIGMA = 5.0
REFERENCE_MAX_SIDE = 256  # the histogram of a downsized reference is the same to within noise
# A reference whose chroma never exceeds this (ab units) is a gray image: nothing to follow.
GRAY_CHROMA_LIMIT = 5.0
PALETTE_DIR = Path(__file__).resolve().parent / "palettes"
PALETTES: tuple[str, ...] = tuple(c.value for c in OPTIONS["palette"].choices if c.value != NO_PALETTE)


class ReferenceError(InputError, ValueError):
    """A reference that cannot steer the colours (gray, unreadable palette); the message is one line."""


def ab_histogram(ab: Tensor, weights: Tensor | None = None) -> Tensor:
    """Histogram of ab values over the step-10 grid.

    Args:
        ab: ``[..., 2, H, W]`` ab units.
        weights: optional ``[..., 1, H, W]`` non-negative per-pixel weights.
    Returns:
        ``[23, 23]`` float64 summing to 1 (index ``[i, j]`` = ab ``(10 (i - 11), 10 (j - 11))``).
    """
    flat = ab.detach().reshape(-1, 2, ab.shape[-2] * ab.shape[-1]).permute(1, 0, 2).reshape(2, -1).double()
    ij = torch.round(flat / GRID_STEP).long().clamp_(-GRID_RADIUS, GRID_RADIUS) + GRID_RADIUS
    index = ij[0] * GRID_SIZE + ij[1]
    w = None if weights is None else weights.detach().reshape(-1).double()
    hist = torch.bincount(index.cpu(), weights=None if w is None else w.cpu(), minlength=GRID_SIZE * GRID_SIZE)
    total = hist.sum()
    if total <= 0:
        raise ReferenceError("the reference has no pixels to take colours from")
    return (hist.double() / total).reshape(GRID_SIZE, GRID_SIZE)


def histogram_from_rgb(rgb: Tensor, max_side: int = REFERENCE_MAX_SIDE) -> Tensor:
    """The ab histogram of a colour image.

    Args:
        rgb: ``[3, H, W]`` float sRGB in [0, 1].
        max_side: the image is area-reduced to this longer side first (speed; same histogram).
    Returns:
        ``[23, 23]`` float64 (see :func:`ab_histogram`).
    Raises:
        ReferenceError: the image is gray (no chroma above ``GRAY_CHROMA_LIMIT``).
    """
    height, width = rgb.shape[-2:]
    scale = max_side / max(height, width)
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        rgb = F.adaptive_avg_pool2d(rgb[None].float(), size)[0]
    ab = rgb_to_lab(rgb.float().clamp(0.0, 1.0))[1:]
    if float(ab.abs().max()) <= GRAY_CHROMA_LIMIT:
        raise ReferenceError("the reference image is gray: it has no colours to follow")
    return ab_histogram(ab)


def histogram_from_pixels(pixels: np.ndarray) -> Tensor:
    """:func:`histogram_from_rgb` of ``[H, W, 3|4]`` RGB(A) pixels (uint8 | uint16 | float32 0..1);
    transparent pixels (alpha 0) do not count. Gray ``[H, W]`` / ``[H, W, 1|2]`` input is refused."""
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ReferenceError("the reference image is gray: it has no colours to follow")
    scale = PEAK.get(pixels.dtype, 1.0)
    unit = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(scale))
    rgb = unit[:, :, :3].permute(2, 0, 1)
    if pixels.shape[2] == 4:
        opaque = unit[:, :, 3] > 0
        if not bool(opaque.any()):
            raise ReferenceError("the reference image is fully transparent")
        if not bool(opaque.all()):
            ab = rgb_to_lab(rgb[:, opaque].reshape(3, 1, -1).clamp(0.0, 1.0))[1:]
            if float(ab.abs().max()) <= GRAY_CHROMA_LIMIT:
                raise ReferenceError("the reference image is gray: it has no colours to follow")
            return ab_histogram(ab)
    return histogram_from_rgb(rgb)


def histogram_on_bins(hist: Tensor, bin_centers: Tensor, *, sigma: float = SMOOTHING_SIGMA,
                      uniform: float | None = None) -> Tensor:
    """A grid histogram on a model's bins.

    Each grid cell's mass goes to the model's nearest bin; the result is Gaussian-smoothed over the
    ab plane (``sigma`` ab units) and mixed with the uniform distribution (share ``uniform``,
    default :data:`UNIFORM_MIX`).

    Args:
        hist: ``[23, 23]`` grid histogram (see :func:`ab_histogram`).
        bin_centers: ``[Q, 2]`` the model's bin centres (ab units).
    Returns:
        ``[Q]`` float32 probabilities summing to 1, on ``bin_centers``' device.
    """
    if tuple(hist.shape) != (GRID_SIZE, GRID_SIZE):
        raise ValueError(f"a reference histogram is [{GRID_SIZE}, {GRID_SIZE}], got {list(hist.shape)}")
    centers = bin_centers.detach().float().cpu()
    axis = (torch.arange(GRID_SIZE, dtype=torch.float32) - GRID_RADIUS) * GRID_STEP
    cells = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=0)[None]  # [1, 2, 23, 23]
    nearest = nearest_bin(cells, centers).reshape(-1)
    counts = torch.zeros(centers.shape[0], dtype=torch.float64).index_add_(0, nearest, hist.double().reshape(-1).cpu())
    smooth = smoothed_prior(counts, centers, sigma=sigma)
    uniform = UNIFORM_MIX if uniform is None else uniform
    mixed = (1.0 - uniform) * smooth + uniform / centers.shape[0]
    return (mixed / mixed.sum()).float().to(bin_centers.device)


def reference_logit_bias(bin_probs: Tensor, strength: float = DEFAULT_STRENGTH, logit_fold: float = 1.0) -> Tensor:
    """Per-bin bias that, added to a model's logits, multiplies its trained distribution
    ``softmax(logits / logit_fold)`` by ``bin_probs ** strength`` (then renormalised).

    Returns ``[Q]`` float32, centred to mean 0 (softmax ignores a constant).
    """
    if not strength >= 0.0:
        raise ValueError(f"reference strength must be >= 0, got {strength}")
    bias = strength * logit_fold * torch.log(bin_probs.float().clamp_min(1e-12))
    return bias - bias.mean()


def reweight_logits(logits: Tensor, bias: Tensor) -> Tensor:
    """``[N, Q, h, w]`` logits + a ``[Q]`` bias (see :func:`reference_logit_bias`) -> ``[N, Q, h, w]`` float32."""
    return logits.float() + bias.to(logits.device, torch.float32)[None, :, None, None]


# --------------------------------------------------------------------------------- palettes


def palette_to_json(hist: Tensor, **meta: Any) -> dict:
    """A grid histogram as a small JSON-ready dict: ``{"grid_step", "grid_radius", "cells": [[a, b, p], ...], **meta}``
    listing the cells with p >= 1e-5 (rounded to 5 decimals, then renormalised on load)."""
    cells = []
    for i in range(GRID_SIZE):
        for j in range(GRID_SIZE):
            p = float(hist[i, j])
            if p >= 1e-5:
                cells.append([int((i - GRID_RADIUS) * GRID_STEP), int((j - GRID_RADIUS) * GRID_STEP), round(p, 5)])
    return {**meta, "grid_step": int(GRID_STEP), "grid_radius": GRID_RADIUS, "cells": cells}


def palette_from_json(data: dict) -> Tensor:
    """Inverse of :func:`palette_to_json` -> ``[23, 23]`` float64 summing to 1."""
    if int(data.get("grid_step", 0)) != int(GRID_STEP) or not data.get("cells"):
        raise ReferenceError("a palette file must hold 'cells' on the step-10 ab grid")
    hist = torch.zeros(GRID_SIZE, GRID_SIZE, dtype=torch.float64)
    for a, b, p in data["cells"]:
        i, j = round(a / GRID_STEP) + GRID_RADIUS, round(b / GRID_STEP) + GRID_RADIUS
        if not (0 <= i < GRID_SIZE and 0 <= j < GRID_SIZE) or p < 0:
            raise ReferenceError(f"palette cell ({a}, {b}, {p}) is outside the ab grid")
        hist[i, j] += p
    return hist / hist.sum()


def load_palette(name: str) -> Tensor:
    """The named palette's ``[23, 23]`` grid histogram (one of :data:`PALETTES`)."""
    if name not in PALETTES:
        raise ReferenceError(f"unknown palette {name!r}; choose one of {', '.join(PALETTES)}")
    return palette_from_json(json.loads((PALETTE_DIR / f"{name}.json").read_text(encoding="utf-8")))


def resolve_reference(value: Any) -> Tensor:
    """Anything the API accepts as a reference -> a ``[23, 23]`` grid histogram.

    ``value``: a palette name (str), a PIL image, an ``[H, W, 3|4]`` pixel array, or a ``[23, 23]``
    histogram tensor (returned normalised).
    """
    if isinstance(value, str):
        return load_palette(value)
    if isinstance(value, Tensor):
        if tuple(value.shape) != (GRID_SIZE, GRID_SIZE) or float(value.sum()) <= 0 or bool((value < 0).any()):
            raise ReferenceError(f"a reference histogram must be a non-negative [{GRID_SIZE}, {GRID_SIZE}] tensor")
        return value.double() / value.sum()
    from PIL import Image

    if isinstance(value, Image.Image):
        from .imageio import pil_to_pixels

        value.load()
        value, _ = pil_to_pixels(value, value.info.get("icc_profile"))
    if isinstance(value, np.ndarray):
        return histogram_from_pixels(value)
    raise TypeError(f"reference must be a palette name, an image, a pixel array or a histogram, got {type(value).__name__}")
