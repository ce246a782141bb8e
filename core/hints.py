"""Colour hints: from a painted RGBA hint image to the network's ``hint_ab`` / ``hint_mask``.

A hint image is RGBA, the size of the photo: every pixel with alpha > 0 is a hint whose colour gives
the ab (its lightness is ignored: the photo's own L is kept); transparent pixels are no hint. The
network sees hints at its input resolution (Zhang et al. 2017): a cell is hinted when any hint pixel
falls in it, with the mean ab of the hint pixels inside (:func:`hints_at_resolution`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .color import rgb_to_lab

_UNIT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def hints_from_rgba(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hint image -> (ab, mask) at full resolution.

    Args:
        rgba: ``[H, W, 4]`` sRGB + alpha, uint8 | uint16 | float32 in [0, 1].
    Returns:
        ``ab`` ``[H, W, 2]`` float32 in ab units (0 where there is no hint) and ``mask`` ``[H, W]``
        bool (alpha > 0). Only the hinted pixels are converted to Lab, so a sparse hint layer on a
        12 MP photo costs little.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a hint image must be RGBA [H, W, 4], got shape {list(rgba.shape)}")
    if rgba.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"hint pixels must be uint8, uint16 or float32 (0..1), got {rgba.dtype}")
    mask = rgba[:, :, 3] > 0
    ab = np.zeros(rgba.shape[:2] + (2,), np.float32)
    if mask.any():
        colours = rgba[mask][:, :3].astype(np.float32) / np.float32(_UNIT_SCALE.get(rgba.dtype, 1.0))
        rgb = torch.from_numpy(np.clip(colours, 0.0, 1.0)).T.reshape(3, 1, -1)  # [3, 1, k]
        ab[mask] = rgb_to_lab(rgb)[1:].reshape(2, -1).T.numpy()
    return ab, mask


def hint_count(mask: np.ndarray | Tensor) -> int:
    """Number of hinted pixels in a ``[H, W]`` (or any-shape) mask."""
    return int((mask > 0).sum())


def hints_at_resolution(hint_ab: Tensor, hint_mask: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Full-resolution hints -> the network's input resolution.

    Shrinking: a cell is hinted when any hint pixel falls in it (area coverage > 0), and its ab is
    the mean ab of the hint pixels inside (area average over hint pixels only). Enlarging: nearest.

    Args:
        hint_ab: ``[N, 2, H, W]`` ab units (values where the mask is 0 are ignored).
        hint_mask: ``[N, 1, H, W]``, > 0.5 = hinted.
        size: the target (h, w).
    Returns:
        ``hint_ab`` ``[N, 2, h, w]`` float32 (0 where not hinted) and ``hint_mask`` ``[N, 1, h, w]``
        float32 in {0, 1}.
    """
    mask = (hint_mask > 0.5).float()
    if mask.shape[-2] >= size[0] and mask.shape[-1] >= size[1]:
        coverage = F.adaptive_avg_pool2d(mask, size)
        ab_sum = F.adaptive_avg_pool2d(hint_ab.float() * mask, size)
    else:
        coverage = F.interpolate(mask, size=size, mode="nearest")
        ab_sum = F.interpolate(hint_ab.float() * mask, size=size, mode="nearest")
    hinted = coverage > 0
    ab = torch.where(hinted, ab_sum / coverage.clamp_min(1e-12), torch.zeros_like(ab_sum))
    return ab, hinted.float()


def patch_hints(true_ab: Tensor, count: int, size: int = 5, generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor]:
    """Simulated user hints (Zhang et al. 2017): ``count`` random ``size`` x ``size`` patches, each
    hinted with the patch's mean true ab.

    Args:
        true_ab: ``[1, 2, H, W]`` the photo's real ab.
        count: number of patches (0 = none).
        generator: seeded ``torch.Generator`` for reproducible positions.
    Returns:
        ``hint_ab`` ``[1, 2, H, W]`` and ``hint_mask`` ``[1, 1, H, W]`` float32 at full resolution.
    """
    _, _, height, width = true_ab.shape
    hint_ab = torch.zeros_like(true_ab, dtype=torch.float32)
    hint_mask = torch.zeros(1, 1, height, width)
    size = min(size, height, width)
    for _ in range(count):
        y = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        x = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        patch = true_ab[:, :, y : y + size, x : x + size].float()
        hint_ab[:, :, y : y + size, x : x + size] = patch.mean(dim=(2, 3), keepdim=True)
        hint_mask[:, :, y : y + size, x : x + size] = 1.0
    return hint_ab, hint_mask
