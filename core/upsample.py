"""Edge-aware upsampling of low-resolution ab guided by full-resolution L (fast guided filter).

He & Sun, "Fast Guided Filter" (arXiv 1505.00996, 2015): the guided filter's local linear model
``ab ≈ a · L + b`` is fitted on the low-resolution grid, the coefficients ``a`` and ``b`` are
upsampled bilinearly and applied to the full-resolution L. Colour edges therefore follow the
luminance edges of the original photo instead of being smeared over a low-resolution cell as with
plain bilinear upsampling. Pure torch; runs on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def guided_coefficients(
    ab: Tensor,
    guide_low: Tensor,
    *,
    radius: int = DEFAULT_RADIUS,
    eps: float = DEFAULT_EPS,
) -> tuple[Tensor, Tensor]:
    """The fast guided filter's local linear model ``ab ≈ A · L + B``, fitted on the low-resolution grid.

    Args:
        ab: ``[N, 2, h, w]`` ab in ab units (any float dtype).
        guide_low: ``[N, 1, h, w]`` L* in ``[0, 100]`` matching ``ab``.
    Returns:
        ``(A, B)``, each ``[N, 2, h, w]`` float32 on ``guide_low``'s device; ``A`` applies to L* in
        ``[0, 100]`` directly (see :func:`apply_coefficients`).
    """
    p = ab.to(device=guide_low.device, dtype=torch.float32)
    I = guide_low.to(dtype=torch.float32) / 100.0
    mean_I = box_mean(I, radius)
    mean_p = box_mean(p, radius)
    cov_Ip = box_mean(I * p, radius) - mean_I * mean_p
    var_I = box_mean(I * I, radius) - mean_I * mean_I
    a = cov_Ip / (var_I.clamp_min(0) + eps)
    b = mean_p - a * mean_I
    return box_mean(a, radius) / 100.0, box_mean(b, radius)


@dataclass(frozen=True)
class RowUpsampler:
    """Bilinear upsampling (``align_corners=False``) of low-resolution maps to ``(H, W)``, one band
    of output rows at a time: a band's rows do not depend on which band they are computed in, so
    a banded result equals the one computed in a single band.

    Build it with :meth:`for_maps`. ``columns`` holds the maps already resized along the width
    (``[N, C, h, W]``, small: h is the low-resolution height) and ``steps`` the difference of each
    row to the next (0 after the last), so an output row between low rows k and k+1 at weight t
    is ``columns[k] + t * steps[k]``: one fused pass over the output, reading only two small rows.
    """

    columns: Tensor
    steps: Tensor
    height: int

    @classmethod
    def for_maps(cls, maps: Tensor, size: tuple[int, int]) -> "RowUpsampler":
        """``maps`` ``[N, C, h, w]`` with ``h <= H`` and ``w <= W`` (enlarging only)."""
        h = maps.shape[-2]
        columns = F.interpolate(maps.float(), size=(h, size[1]), mode="bilinear", align_corners=False).contiguous()
        steps = torch.zeros_like(columns)
        steps[:, :, :-1] = columns[:, :, 1:] - columns[:, :, :-1]
        return cls(columns, steps, size[0])

    def rows(self, top: int, bottom: int) -> Tensor:
        """Output rows ``top:bottom`` ``[N, C, bottom - top, W]`` float32."""
        n, c, h, width = self.columns.shape
        dst = torch.arange(top, bottom, dtype=torch.float64)
        src = ((dst + 0.5) * (h / self.height) - 0.5).clamp_(min=0.0)  # as torch's bilinear, align_corners=False
        low = src.floor().long().clamp_(max=h - 1)
        weight = (src - low).to(torch.float32)
        out = torch.empty(n, c, bottom - top, width, device=self.columns.device)
        # rows with the same low row k form runs (low is non-decreasing): one broadcast op per run
        starts = torch.nonzero(torch.diff(low, prepend=low[:1] - 1)).flatten().tolist() + [bottom - top]
        weight = weight.to(self.columns.device).view(1, 1, -1, 1)
        for first, end in zip(starts[:-1], starts[1:]):
            k = int(low[first])
            torch.addcmul(self.columns[:, :, k:k + 1], weight[:, :, first:end], self.steps[:, :, k:k + 1],
                          out=out[:, :, first:end])
        return out


def enlarges(low: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether ``(H, W)`` = ``size`` is at least the low-resolution ``(h, w)`` on both sides."""
    return size[0] >= low[0] and size[1] >= low[1]


def apply_coefficients(A: Tensor | RowUpsampler, B: Tensor | RowUpsampler, L: Tensor, top: int = 0) -> Tensor:
    """ab for full-resolution L rows: ``upsample(A) · L + upsample(B)``.

    Args:
        A, B: from :func:`guided_coefficients`, or their :class:`RowUpsampler` (banded use).
        L: ``[N, 1, rows, W]`` L* in ``[0, 100]``: the image's rows ``top : top + rows`` (with
            plain tensors ``A``, ``B``: the whole image, ``top`` = 0).
    Returns:
        ``[N, 2, rows, W]`` float32 ab.
    """
    rows = L.shape[-2]
    if isinstance(A, RowUpsampler):
        out = A.rows(top, top + rows)
        out.mul_(L)
        return out.add_(B.rows(top, top + rows))
    size = tuple(L.shape[-2:])
    out = _resize(A, size).contiguous()
    out.mul_(L)
    return out.add_(_resize(B, size))


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
        ab: ``[N, 2, h, w]`` ab in ab units (any float dtype), the network's decoded output; any
            other per-pixel quantity ``[N, C, h, w]`` (e.g. a confidence map) is upsampled alike.
        L: ``[N, 1, H, W]`` float32 L* in ``[0, 100]`` at full resolution (the guide).
        radius: window radius on the low-resolution grid (2 = 5x5 cells).
        eps: regularisation of the linear model, guide normalised to ``[0, 1]``.
        guide_low: ``[N, 1, h, w]`` L* matching ``ab`` (e.g. the L the network saw, pooled to the
            output grid); by default ``L`` area-averaged to ``(h, w)``.
    Returns:
        ``[N, C, H, W]`` float32 on ``L``'s device.
    """
    if ab.dim() != 4 or ab.shape[1] < 1:
        raise ValueError(f"ab must be [N,2,h,w] (or [N,C,h,w]), got {list(ab.shape)}")
    if L.dim() != 4 or L.shape[1] != 1 or L.shape[0] != ab.shape[0]:
        raise ValueError(f"L must be [N,1,H,W] with N={ab.shape[0]}, got {list(L.shape)}")
    h, w = ab.shape[-2:]
    H, W = L.shape[-2:]
    if guide_low is None:
        guide_low = F.adaptive_avg_pool2d(L, (h, w)) if (H >= h and W >= w) else _resize(L, (h, w))
    A, B = guided_coefficients(ab.to(L.device), guide_low.to(L.device), radius=radius, eps=eps)
    if enlarges((h, w), (H, W)):
        A, B = RowUpsampler.for_maps(A, (H, W)), RowUpsampler.for_maps(B, (H, W))
    return apply_coefficients(A, B, L)
