"""Quantised ab colour space: the bin table, soft encoding and class-rebalancing weights.

Zhang et al. 2016 quantise the ab plane into cells of a grid of step 10 and keep the cells that are
"in gamut". The official release's 313 cells cannot be re-derived from the sRGB gamut (they come
from its checkpoint), so our own models use a documented rule, :func:`srgb_gamut_bins`, and carry
the resulting table inside their weights file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GRID_STEP = 10.0


def srgb_gamut_bins(step: float = GRID_STEP, chunk: int = 1 << 21) -> torch.Tensor:
    """The ab cells reached by the sRGB gamut.

    Rule: a cell of the ab grid ``step * (i, j)`` is in gamut when the ab of at least one of the
    2^24 8-bit sRGB colours (D65 CIE Lab, as ``skimage.color.rgb2lab``) rounds to its centre.

    Returns:
        ``[Q, 2]`` float32 centres in ab units, sorted by (a, b) like the official table.
    """
    from skimage.color import rgb2lab

    levels = np.arange(256, dtype=np.uint32)
    codes = np.arange(1 << 24, dtype=np.uint32)
    cells: set[tuple[int, int]] = set()
    for start in range(0, codes.size, chunk):
        c = codes[start : start + chunk]
        rgb = np.stack([levels[(c >> 16) & 255], levels[(c >> 8) & 255], levels[c & 255]], axis=-1)
        lab = rgb2lab((rgb / 255.0).reshape(-1, 1, 3)).reshape(-1, 3)
        ij = np.round(lab[:, 1:] / step).astype(np.int32)
        cells.update(map(tuple, np.unique(ij, axis=0).tolist()))
    table = np.array(sorted(cells), dtype=np.float32) * step
    return torch.from_numpy(table)


def nearest_bin(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest bin centre for every pixel.

    Args:
        ab: ``[N, 2, H, W]`` ab values.
        centers: ``[Q, 2]`` bin centres.
    Returns:
        ``[N, H, W]`` int64 indices in ``[0, Q)``.
    """
    d2 = _squared_distances(ab, centers)
    return d2.argmin(dim=1)


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """Soft-encode ab into a distribution over the bins (Zhang et al. 2016, §3.1).

    Each pixel's weight goes to its ``k`` nearest bin centres with a Gaussian kernel of width
    ``sigma`` (ab units) and is normalised to sum to 1.

    Args:
        ab: ``[N, 2, H, W]`` float ab values.
        centers: ``[Q, 2]`` bin centres (same device).
    Returns:
        ``[N, Q, H, W]`` float32 target distribution.
    """
    d2 = _squared_distances(ab, centers)  # [N, Q, H, W]
    near_d2, near_idx = d2.topk(k, dim=1, largest=False)
    w = torch.exp(-near_d2 / (2.0 * sigma * sigma))
    w = w / w.sum(dim=1, keepdim=True)
    target = torch.zeros_like(d2)
    target.scatter_(1, near_idx, w)
    return target


def smoothed_prior(counts: torch.Tensor, centers: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Empirical bin prior, smoothed with a Gaussian over the ab plane and renormalised.

    Args:
        counts: ``[Q]`` how often each bin was the nearest one in the training data.
        centers: ``[Q, 2]`` bin centres.
    Returns:
        ``[Q]`` float64 probabilities summing to 1.
    """
    p = counts.double() / counts.sum().clamp_min(1)
    d2 = torch.cdist(centers.double(), centers.double()) ** 2
    kernel = torch.exp(-d2 / (2.0 * sigma * sigma))
    smooth = kernel @ p
    return smooth / smooth.sum()


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Class-rebalancing weights ``w ∝ ((1 − λ) p̃ + λ / Q)^−1`` normalised so that ``E_p̃[w] = 1``.

    Args:
        prior: ``[Q]`` smoothed empirical prior (sums to 1).
        lam: mixing weight of the uniform distribution (0.5 in the paper).
    Returns:
        ``[Q]`` float32 weights.
    """
    q = prior.numel()
    w = 1.0 / ((1.0 - lam) * prior + lam / q)
    w = w / (prior * w).sum()
    return w.float()


def _squared_distances(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N, 2, H, W]`` x ``[Q, 2]`` -> ``[N, Q, H, W]`` squared ab distances."""
    c = centers.to(ab.dtype)
    return (
        (ab * ab).sum(dim=1, keepdim=True)
        - 2.0 * F.conv2d(ab, c[:, :, None, None])
        + (c * c).sum(dim=1)[None, :, None, None]
    ).clamp_min(0.0)
