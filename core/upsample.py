"""Edge-aware upsampling of low-resolution ab guided by full-resolution L (fast guided filter).

He & Sun, "Fast Guided Filter" (arXiv 1505.00996, 2015): the guided filter's local linear model
``ab ≈ a · L + b`` is fitted on the low-resolution grid, the coefficients ``a`` and ``b`` are
upsampled bilinearly and applied to the full-resolution L. Colour edges therefore follow the
luminance edges of the original photo instead of being smeared over a low-resolution cell as with
plain bilinear upsampling. Pure torch; runs on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_RADIUS = 2
# eps is in units of the guide normalised to [0, 1] (L / 100): a local L standard deviation well
# above sqrt(eps) (here 1 L* unit) counts as an edge the colour should follow.
DEFAULT_EPS = 1e-4


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over a ``(2r+1)²`` window, averaging only the pixels inside the image at borders.

    ``x``: ``[N, C, h, w]`` float. Returns the same shape.
    """
    if radius <= 0:
        return x
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def bilinear_upsample(ab: Tensor, size: tuple[int, int]) -> Tensor:
    """Plain bilinear resize of ``ab`` ``[N, 2, h, w]`` to ``size`` = (H, W) (the reference method)."""
    return _resize(ab.float(), size)


def guided_upsample(
    ab: Tensor,
    L: Tensor,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
    guide_low: Tensor | None = None,
) -> Tensor:
    """Upsample ``ab`` to the resolution of ``L`` with the fast guided filter.

    Args:
        ab: ``[N, 2, h, w]`` ab in ab units (any float dtype), the network's decoded output.
        L: ``[N, 1, H, W]`` float32 L* in ``[0, 100]`` at full resolution (the guide).
        radius: window radius on the low-resolution grid (2 = 5x5 cells).
        eps: regularisation of the linear model, guide normalised to ``[0, 1]``.
        guide_low: ``[N, 1, h, w]`` L* matching ``ab`` (e.g. the L the network saw, pooled to the
            output grid); by default ``L`` area-averaged to ``(h, w)``.
    Returns:
        ``[N, 2, H, W]`` float32 ab on ``L``'s device.
    """
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must be [N,2,h,w], got {list(ab.shape)}")
    if L.dim() != 4 or L.shape[1] != 1 or L.shape[0] != ab.shape[0]:
        raise ValueError(f"L must be [N,1,H,W] with N={ab.shape[0]}, got {list(L.shape)}")
    h, w = ab.shape[-2:]
    H, W = L.shape[-2:]
    p = ab.to(device=L.device, dtype=torch.float32)
    if guide_low is None:
        guide_low = F.adaptive_avg_pool2d(L, (h, w)) if (H >= h and W >= w) else _resize(L, (h, w))
    I = guide_low.to(device=L.device, dtype=torch.float32) / 100.0

    mean_I = box_mean(I, radius)
    mean_p = box_mean(p, radius)
    cov_Ip = box_mean(I * p, radius) - mean_I * mean_p
    var_I = box_mean(I * I, radius) - mean_I * mean_I
    a = cov_Ip / (var_I.clamp_min(0) + eps)
    b = mean_p - a * mean_I
    mean_a = box_mean(a, radius) / 100.0  # so that it applies to L in [0, 100] directly
    mean_b = box_mean(b, radius)

    out = _resize(mean_a, (H, W)).contiguous()
    out.mul_(L)
    out.add_(_resize(mean_b, (H, W)))
    return out
