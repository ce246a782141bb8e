"""Colour hints: from a painted RGBA hint image to the network's ``hint_ab`` / ``hint_mask``.

A hint image is RGBA, the size of the photo: every pixel with alpha > 0 is a hint whose colour gives
the ab (its lightness is ignored: the photo's own L is kept); transparent pixels are no hint. The
network sees hints at its input resolution (Zhang et al. 2017): a cell is hinted when any hint pixel
falls in it, with the mean ab of the hint pixels inside (:func:`hints_at_resolution`).

Inside the pipeline hints are :class:`SparseHints`: the hinted pixels alone, so a few dabs on a
12 MP photo cost what the dabs cost, not what the photo costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .color import rgb_to_lab
from .hint_regions import check_regions
from .pixels import peak


@dataclass(frozen=True)
class SparseHints:
    """The hinted pixels of ``n`` images of ``height`` x ``width``.

    Attributes:
        batch, y, x: ``[k]`` int64, each hinted pixel's image index and position.
        ab: ``[k, 2]`` float32, its hint in ab units.
    """

    batch: Tensor
    y: Tensor
    x: Tensor
    ab: Tensor
    n: int
    height: int
    width: int

    @property
    def count(self) -> int:
        """Number of hinted pixels."""
        return int(self.ab.shape[0])

    def expand(self, n: int) -> SparseHints:
        """The hints of one image repeated for a batch of ``n`` (``self.n`` must be 1 or ``n``)."""
        if self.n == n:
            return self
        if self.n != 1:
            raise ValueError(f"hints for {self.n} images cannot serve a batch of {n}")
        k = self.count
        batch = torch.arange(n).repeat_interleave(k)
        return SparseHints(batch, self.y.repeat(n), self.x.repeat(n), self.ab.repeat(n, 1), n, self.height, self.width)


def _rgb_to_ab(colours: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``[k, 3]`` sRGB of ``dtype`` (uint8 | uint16 | float32 0..1) -> ``[k, 2]`` float32 ab."""
    if colours.shape[0] == 0:
        return np.zeros((0, 2), np.float32)
    unit = np.clip(colours.astype(np.float32) / np.float32(peak(dtype)), 0.0, 1.0)
    rgb = torch.from_numpy(unit).T.reshape(3, 1, -1)  # [3, 1, k]
    return rgb_to_lab(rgb)[1:].reshape(2, -1).T.numpy()


def _check_rgba_dtype(dtype: np.dtype) -> None:
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"hint pixels must be uint8, uint16 or float32 (0..1), got {dtype}")


def sparse_hints_from_rgba(rgba: np.ndarray) -> SparseHints:
    """Hint image ``[H, W, 4]`` sRGB + alpha (uint8 | uint16 | float32 0..1) -> its hinted pixels
    (alpha > 0); only those are converted to Lab."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a hint image must be RGBA [H, W, 4], got shape {list(rgba.shape)}")
    _check_rgba_dtype(rgba.dtype)
    ys, xs = np.nonzero(rgba[:, :, 3] > 0)
    ab = _rgb_to_ab(rgba[ys, xs, :3], rgba.dtype)
    return SparseHints(torch.zeros(len(ys), dtype=torch.int64), torch.from_numpy(ys.astype(np.int64)),
                       torch.from_numpy(xs.astype(np.int64)), torch.from_numpy(ab), 1, *rgba.shape[:2])


def sparse_hints_from_regions(regions: Sequence[Sequence[int]], pixels: np.ndarray,
                              size: tuple[int, int]) -> SparseHints:
    """Hints sent as painted regions (``core.hint_regions``) -> the hinted pixels.

    Args:
        regions: ``(x, y, w, h)`` rectangles inside an image of ``size`` (H, W).
        pixels: ``[sum(w * h), 4]`` RGBA (uint8 | uint16 | float32 0..1): each region's pixels, row
            by row, one region after the other; alpha > 0 = a hint.
    Raises:
        ValueError: regions outside the image, or pixels that do not match them.
    """
    height, width = size
    check_regions(regions, width, height)
    _check_rgba_dtype(pixels.dtype)
    total = sum(w * h for _, _, w, h in regions)
    if pixels.ndim != 2 or pixels.shape != (total, 4):
        raise ValueError(f"hint pixels must be [{total}, 4] for these regions, got {list(pixels.shape)}")
    ys, xs, colours = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros((0, 3), pixels.dtype)]
    start = 0
    for x0, y0, w, h in regions:
        block = pixels[start : start + w * h].reshape(h, w, 4)
        start += w * h
        yy, xx = np.nonzero(block[:, :, 3] > 0)
        ys.append(yy + y0)
        xs.append(xx + x0)
        colours.append(block[yy, xx, :3])
    y, x = np.concatenate(ys).astype(np.int64), np.concatenate(xs).astype(np.int64)
    ab = _rgb_to_ab(np.concatenate(colours), pixels.dtype)
    return SparseHints(torch.zeros(len(y), dtype=torch.int64), torch.from_numpy(y), torch.from_numpy(x),
                       torch.from_numpy(ab), 1, height, width)


def sparse_hints(hint_ab: Tensor, hint_mask: Tensor) -> SparseHints:
    """Dense hint maps ``[N, 2, H, W]`` (ab units) and ``[N, 1, H, W]`` (> 0.5 = hinted) -> sparse."""
    n, _, height, width = hint_mask.shape
    b, y, x = (hint_mask[:, 0] > 0.5).nonzero(as_tuple=True)
    ab = hint_ab.expand(n, -1, -1, -1)[b, :, y, x].float().cpu()
    return SparseHints(b.cpu(), y.cpu(), x.cpu(), ab, n, height, width)


def hint_maps_from_images(hints: list[Any], sizes: list[tuple[int, int]]) -> list[SparseHints | None] | None:
    """One optional hint image per photo -> its :class:`SparseHints` for the pipeline.

    Args:
        hints: per photo an RGBA hint image, ``[H, W, 4]`` array (uint8 | uint16 | float32 0..1) or
            PIL image (converted to RGBA), :class:`SparseHints` already, or None for no hints.
        sizes: per photo its (H, W), which its hints must match.
    Returns:
        Per photo its hints (None for photos without), or None when no photo has any.
    Raises:
        ValueError: a hint image of another shape.
    """
    from PIL import Image

    found: list[SparseHints | None] = []
    for h, size in zip(hints, sizes):
        if h is None:
            found.append(None)
            continue
        if isinstance(h, SparseHints):
            if (h.height, h.width) != tuple(size) or h.n != 1:
                raise ValueError(f"the hints must be for one {size[1]}x{size[0]} image like the image, "
                                 f"got {h.n} of {h.width}x{h.height}")
            found.append(h)
            continue
        if isinstance(h, Image.Image):
            h = np.asarray(h.convert("RGBA"))
        h = np.asarray(h)
        if h.ndim != 3 or h.shape[2] != 4 or h.shape[:2] != tuple(size):
            raise ValueError(f"the hint image must be RGBA {size[1]}x{size[0]} like the image, "
                             f"got shape {list(h.shape)}")
        found.append(sparse_hints_from_rgba(h))
    if all(h is None for h in found):
        return None
    return found


def sparse_at_resolution(hints: SparseHints, size: tuple[int, int], device: torch.device | str = "cpu"
                         ) -> tuple[Tensor, Tensor]:
    """Hinted pixels at full resolution -> dense hint maps at the network's input resolution.

    Shrinking: pixel ``(y, x)`` falls in cell ``(y * h // H, x * w // W)``; a cell is hinted when any
    hint pixel falls in it, and its ab is the mean ab of the hint pixels inside. Enlarging: nearest
    (cell ``(i, j)`` takes pixel ``(i * H // h, j * W // w)``, as ``F.interpolate``'s nearest).

    Args:
        hints: the hinted pixels of ``hints.n`` images.
        size: the target (h, w).
    Returns:
        ``hint_ab`` ``[N, 2, h, w]`` float32 (0 where not hinted) and ``hint_mask`` ``[N, 1, h, w]``
        float32 in {0, 1}, on ``device``.
    """
    n, height, width = hints.n, hints.height, hints.width
    h, w = size
    if height < h or width < w:
        dense_ab = torch.zeros(n, 2, height, width)
        dense_mask = torch.zeros(n, 1, height, width)
        dense_ab[hints.batch, :, hints.y, hints.x] = hints.ab
        dense_mask[hints.batch, 0, hints.y, hints.x] = 1.0
        mask = F.interpolate(dense_mask, size=size, mode="nearest")
        ab = F.interpolate(dense_ab, size=size, mode="nearest")
        return ab.to(device), mask.to(device)
    cell = (hints.batch * h + hints.y * h // height) * w + hints.x * w // width
    values = hints.ab.float()
    sums = torch.zeros(n * h * w, 2).index_add_(0, cell, values)
    counts = torch.zeros(n * h * w).index_add_(0, cell, torch.ones_like(values[:, 0]))
    hinted = counts > 0
    ab = torch.where(hinted[:, None], sums / counts.clamp_min(1.0)[:, None], torch.zeros_like(sums))
    return (ab.view(n, h, w, 2).permute(0, 3, 1, 2).contiguous().to(device),
            hinted.float().view(n, 1, h, w).to(device))


def hints_at_resolution(hint_ab: Tensor, hint_mask: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Dense full-resolution hints ``[N, 2, H, W]`` / ``[N, 1, H, W]`` (> 0.5 = hinted) -> the
    network's input resolution, as :func:`sparse_at_resolution`; on ``hint_ab``'s device."""
    return sparse_at_resolution(sparse_hints(hint_ab, hint_mask), size, hint_ab.device)


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
