"""Synthetic scenes shared by the post-processing tests (kept tiny: 32x32, ~150 bins)."""

from __future__ import annotations

import torch
from torch import Tensor

from core.post.synthetic import grid_bin_centers

BLUE = (-10.0, -40.0)
ORANGE = (30.0, 50.0)


def coarse_bins() -> Tensor:
    """A step-15 ab grid (fewer bins keep the tests fast)."""
    return grid_bin_centers(step=15.0, radius=110.0)


def two_region_scene(size: int = 32) -> tuple[Tensor, Tensor]:
    """Left half blue (L 40), right half orange (L 70): ``(L [1,1,s,s], ab [1,2,s,s])``."""
    L = torch.full((1, 1, size, size), 40.0)
    L[..., size // 2 :] = 70.0
    ab = torch.empty(1, 2, size, size)
    ab[:, 0, :, : size // 2], ab[:, 1, :, : size // 2] = BLUE
    ab[:, 0, :, size // 2 :], ab[:, 1, :, size // 2 :] = ORANGE
    return L, ab


def region_std(ab: Tensor, size: int = 32) -> float:
    """Mean over the two halves of the ab standard deviation (norm over a, b)."""
    half = size // 2
    return 0.5 * float(ab[..., :half].std(dim=(2, 3)).norm() + ab[..., half:].std(dim=(2, 3)).norm())


def edge_contrast(ab: Tensor, size: int = 32, band: int = 2) -> float:
    """ab distance between the mean colours of the bands just left and right of the edge."""
    half = size // 2
    left = ab[..., half - band : half].mean(dim=(2, 3))
    right = ab[..., half : half + band].mean(dim=(2, 3))
    return float((left - right).norm())
