"""Segment-wise colour homogeneity: regions computed on L, colour evidence pooled inside each region.

Segmentation (scikit-image SLIC or Felzenszwalb on the L channel) runs on the CPU in numpy; the
pooling is pure torch on the inputs' device. Inside each region the network's distributions are
averaged, weighted by each pixel's confidence (how peaked its distribution is), so a confident part
of an object lends its colour to the unsure parts; the result is mixed back with ``strength``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

SEGMENT_METHODS = ("slic", "felzenszwalb")
DEFAULT_SEGMENT_METHOD = "slic"
DEFAULT_SEGMENT_SIZE = 24.0
DEFAULT_SLIC_COMPACTNESS = 5.0
DEFAULT_FELZENSZWALB_SCALE = 40.0
# Mixing weight of the region distribution at post strength 1: full pooling (1.0) measured a 15 %
# colourfulness loss on BSDS500 val (synthetic logits), 0.5 about 7 %, within the 10 % budget.
DEFAULT_SEGMENT_MIX = 0.5


def segment_L(
    L: Tensor,
    *,
    method: str = DEFAULT_SEGMENT_METHOD,
    segment_size: float = DEFAULT_SEGMENT_SIZE,
    compactness: float = DEFAULT_SLIC_COMPACTNESS,
    scale: float = DEFAULT_FELZENSZWALB_SCALE,
) -> Tensor:
    """Over-segment each image's L* channel into regions.

    Args:
        L: ``[N,1,h,w]`` float, L* in 0..100 (any device; segmented on the CPU).
        method: ``"slic"`` (compact superpixels, about ``h*w/segment_size`` of them) or
            ``"felzenszwalb"`` (graph-based regions of any shape, at least ``segment_size/2`` pixels).
        segment_size: target pixels per region (> 1) on this grid.
        compactness: SLIC's colour/space trade-off in L* units (higher = squarer regions).
        scale: Felzenszwalb's scale (higher = larger regions).

    Returns:
        ``[N,h,w]`` int64 labels on ``L``'s device, ``0..S_n-1`` per image.
    """
    from skimage.segmentation import felzenszwalb, slic

    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"L must be [N,1,h,w], got {list(L.shape)}")
    if method not in SEGMENT_METHODS:
        raise ValueError(f"unknown segment method {method!r}; use one of {', '.join(SEGMENT_METHODS)}")
    if not segment_size > 1:
        raise ValueError(f"segment_size must be > 1 pixel, got {segment_size}")
    planes = L[:, 0].detach().to("cpu", torch.float64).numpy()
    labels = []
    for plane in planes:
        if method == "slic":
            n_segments = max(1, round(plane.size / segment_size))
            # slic rescales the image to [0, 1]; rescale compactness with it so it stays in L* units
            span = max(float(plane.max() - plane.min()), 1e-6)
            lab = slic(plane, n_segments=n_segments, compactness=compactness / span, channel_axis=None,
                       start_label=0, enforce_connectivity=True)
        else:
            lab = felzenszwalb(plane, scale=scale, sigma=0.5, min_size=max(1, int(segment_size / 2)),
                               channel_axis=None)
        labels.append(np.unique(lab, return_inverse=True)[1].reshape(lab.shape))
    return torch.from_numpy(np.stack(labels).astype(np.int64)).to(L.device)


def pool_in_segments(values: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
    """Replace every pixel's value by the weighted mean over its region.

    Args:
        values: ``[N,C,h,w]`` float.
        labels: ``[N,h,w]`` int64 region ids ``>= 0`` (per image).
        weights: ``[N,1,h,w]`` float ``>= 0`` or ``None`` (uniform). A region whose weights sum to 0
            falls back to its plain mean.

    Returns:
        ``[N,C,h,w]`` float, constant inside each region.
    """
    n, c, h, w = values.shape
    if labels.shape != (n, h, w):
        raise ValueError(f"labels must be [{n},{h},{w}], got {list(labels.shape)}")
    if weights is None:
        weights = values.new_ones(n, 1, h, w)
    elif weights.shape != (n, 1, h, w):
        raise ValueError(f"weights must be [{n},1,{h},{w}], got {list(weights.shape)}")
    labels = labels.to(values.device)
    per_image = int(labels.max()) + 1
    flat = (labels + per_image * torch.arange(n, device=values.device).view(n, 1, 1)).reshape(-1)
    x = values.permute(0, 2, 3, 1).reshape(-1, c)
    wt = weights.reshape(-1, 1).to(values.dtype)
    sums = values.new_zeros(n * per_image, c).index_add_(0, flat, x * wt)
    totals = values.new_zeros(n * per_image, 1).index_add_(0, flat, wt)
    plain = values.new_zeros(n * per_image, c).index_add_(0, flat, x)
    counts = values.new_zeros(n * per_image, 1).index_add_(0, flat, torch.ones_like(wt))
    means = torch.where(totals > 0, sums / totals.clamp_min(1e-12), plain / counts.clamp_min(1.0))
    return means[flat].reshape(n, h, w, c).permute(0, 3, 1, 2)


def distribution_confidence(probs: Tensor) -> Tensor:
    """Peakedness of a distribution: ``1 - entropy / log(Q)``; ``[N,Q,h,w]`` -> ``[N,1,h,w]`` in [0,1]."""
    q = probs.shape[1]
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1, keepdim=True)
    return (1.0 - entropy / math.log(q)).clamp(0.0, 1.0)


def homogenize_log_probs(log_prob: Tensor, labels: Tensor, *, strength: float = 1.0) -> Tensor:
    """Mix each pixel's distribution with its region's confidence-weighted mean distribution.

    Args:
        log_prob: ``[N,Q,h,w]`` float log-probabilities (T = 1).
        labels: ``[N,h,w]`` int64 regions (see ``segment_L``).
        strength: in ``[0,1]``: 0 keeps the pixel's distribution, 1 uses the region's.

    Returns:
        ``[N,Q,h,w]`` float log-probabilities of ``(1-strength) p + strength p_region``.
    """
    _check_strength(strength)
    if strength == 0.0:
        return torch.log_softmax(log_prob, dim=1)
    probs = torch.softmax(log_prob, dim=1)
    pooled = pool_in_segments(probs, labels, distribution_confidence(probs))
    return torch.log(torch.lerp(probs, pooled, strength).clamp_min(1e-30))


def homogenize_ab(ab: Tensor, labels: Tensor, *, strength: float = 1.0) -> Tensor:
    """Mix each pixel's ab with its region's mean ab (for models that output ab, with no confidence).

    Args:
        ab: ``[N,2,h,w]`` float, ab units.
        labels: ``[N,h,w]`` int64 regions.
        strength: in ``[0,1]``.

    Returns:
        ``[N,2,h,w]`` float.
    """
    _check_strength(strength)
    if strength == 0.0:
        return ab.clone()
    return torch.lerp(ab, pool_in_segments(ab, labels), strength)


def _check_strength(strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
