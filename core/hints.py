"""Colour hints: from a painted RGBA hint image to the network's ``hint_ab`` / ``hint_mask``.

A hint image is RGBA, the size of the photo: every pixel with alpha > 0 is a hint whose colour gives
the ab (its lightness is ignored: the photo's own L is kept); transparent pixels are no hint. The
network sees hints at its input resolution (Zhang et al. 2017): a cell is hinted when any hint pixel
falls in it, with the mean ab of the hint pixels inside (:func:`hints_at_resolution`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .color import rgb_to_lab
from .pixels import peak


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
        colours = rgba[mask][:, :3].astype(np.float32) / np.float32(peak(rgba.dtype))
        rgb = torch.from_numpy(np.clip(colours, 0.0, 1.0)).T.reshape(3, 1, -1)  # [3, 1, k]
        ab[mask] = rgb_to_lab(rgb)[1:].reshape(2, -1).T.numpy()
    return ab, mask


def hint_maps_from_images(hints: list[Any], sizes: list[tuple[int, int]]) -> tuple[list, list] | None:
    """One optional RGBA hint image per photo -> (``hint_ab``, ``hint_mask``) lists for the pipeline.

    Args:
        hints: per photo an RGBA hint image, ``[H, W, 4]`` array (uint8 | uint16 | float32 0..1) or
            PIL image (converted to RGBA), or None for no hints.
        sizes: per photo its (H, W), which its hint image must match.
    Returns:
        ``hint_ab`` ``[H, W, 2]`` float32 and ``hint_mask`` ``[H, W]`` float32 in {0, 1} per photo (an
        empty map, which means automatic colorization, for photos without hints), or None when no
        photo has hints.
    Raises:
        ValueError: a hint image of another shape.
    """
    from PIL import Image

    hint_ab: list[np.ndarray | None] = []
    hint_mask: list[np.ndarray | None] = []
    for h, size in zip(hints, sizes):
        if h is None:
            hint_ab.append(None)
            hint_mask.append(None)
            continue
        if isinstance(h, Image.Image):
            h = np.asarray(h.convert("RGBA"))
        h = np.asarray(h)
        if h.ndim != 3 or h.shape[2] != 4 or h.shape[:2] != tuple(size):
            raise ValueError(f"the hint image must be RGBA {size[1]}x{size[0]} like the image, "
                             f"got shape {list(h.shape)}")
        ab, mask = hints_from_rgba(h)
        hint_ab.append(ab)
        hint_mask.append(mask.astype(np.float32))
    if all(a is None for a in hint_ab):
        return None
    return ([a if a is not None else np.zeros(s + (2,), np.float32) for a, s in zip(hint_ab, sizes)],
            [m if m is not None else np.zeros(s, np.float32) for m, s in zip(hint_mask, sizes)])


def hint_count(mask: np.ndarray | Tensor) -> int:
    """Number of hinted pixels in a ``[H, W]`` (or any-shape) mask."""
    return int((mask > 0).sum())


def hints_at_resolution(hint_ab: Tensor, hint_mask: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Full-resolution hints -> the network's input resolution.

    Shrinking: pixel ``(y, x)`` falls in cell ``(y * h // H, x * w // W)``; a cell is hinted when any
    hint pixel falls in it, and its ab is the mean ab of the hint pixels inside (an average over hint
    pixels only). Computed from the hinted pixels alone, so a sparse hint layer on a 12 MP photo
    costs little. Enlarging: nearest.

    Args:
        hint_ab: ``[N, 2, H, W]`` ab units (values where the mask is 0 are ignored).
        hint_mask: ``[N, 1, H, W]``, > 0.5 = hinted.
        size: the target (h, w).
    Returns:
        ``hint_ab`` ``[N, 2, h, w]`` float32 (0 where not hinted) and ``hint_mask`` ``[N, 1, h, w]``
        float32 in {0, 1}.
    """
    n, _, height, width = hint_mask.shape
    h, w = size
    hinted_px = hint_mask[:, 0] > 0.5  # [N, H, W]
    if height < h or width < w:
        mask = F.interpolate(hinted_px[:, None].float(), size=size, mode="nearest")
        ab = F.interpolate(hint_ab.float() * hinted_px[:, None], size=size, mode="nearest")
        return ab, mask
    b, y, x = hinted_px.nonzero(as_tuple=True)
    cell = (b * h + y * h // height) * w + x * w // width
    values = hint_ab[b, :, y, x].float()  # [k, 2]
    sums = torch.zeros(n * h * w, 2, device=hint_ab.device).index_add_(0, cell, values)
    counts = torch.zeros(n * h * w, device=hint_ab.device).index_add_(0, cell, torch.ones_like(values[:, 0]))
    hinted = counts > 0
    ab = torch.where(hinted[:, None], sums / counts.clamp_min(1.0)[:, None], torch.zeros_like(sums))
    return ab.view(n, h, w, 2).permute(0, 3, 1, 2).contiguous(), hinted.float().view(n, 1, h, w)


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
