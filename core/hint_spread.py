"""Hints that reach their region: each hint pulls the predicted distribution of the pixels it can reach.

A network trained with simulated hints (Zhang et al. 2017) learns to carry a hint's colour over the region it
falls in, but only after long training; a painted hint should work at once, with every classification model.
So, before decoding, every output cell's distribution is multiplied by a Gaussian around the colour of its
nearest hint, as strongly as that hint reaches it:

    log p'_q = log p_q − s · ‖c_q − h‖² / (2 σ_c²),      s = exp(−d² / (2 σ_d²))

where ``h`` is the ab of the nearest hint and ``d`` its *geodesic* distance: the cheapest path over the output
grid whose steps cost their length plus :data:`EDGE_COST` per L* unit crossed, so a hint spreads over its flat
region and stops at edges of lightness (as in Levin et al. 2004, "Colorization using optimization"). Distances
are in units of the grid's longer side, so a render size changes nothing but the detail.

The constants were chosen on 40 *training* photos (never the validation splits) with ``tinct eval-hints``'s
protocol (random true-colour 5 × 5 patches): for 10 patches, σ_d = 0.375 gave +6.0 AuC / +4.8 dB over no hints
(0.19: +3.7 / +2.3; 0.5 with twice the edge cost: +5.3 / +3.8), σ_c = 10 ab (20: +3.7 / +2.5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

REACH = 0.375  # σ_d: how far a hint reaches, as a fraction of the longer side
EDGE_COST = 0.5 / 64  # path length (fractions of the longer side) added per L* unit of lightness change
COLOUR_SIGMA = 10.0  # σ_c in ab units: how narrowly a reached pixel is pulled to the hint's colour
_NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def hints_on_grid(hint_ab: Tensor, hint_mask: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Render-resolution hints pooled to the output grid.

    Args:
        hint_ab: ``[N, 2, H, W]`` ab units; hint_mask: ``[N, 1, H, W]`` in {0, 1}; ``H``, ``W`` multiples of ``stride``.
    Returns:
        ``(ab, hinted)``: ``[N, 2, H/stride, W/stride]`` the mean hinted ab of each cell (0 where none) and
        ``[N, 1, ...]`` bool, whether any pixel of the cell is hinted.
    """
    cover = F.avg_pool2d(hint_mask.float(), stride)
    ab = F.avg_pool2d(hint_ab.float() * hint_mask.float(), stride) / cover.clamp_min(1e-6)
    hinted = cover > 0
    return ab * hinted, hinted


def _shifted(x: Tensor, dy: int, dx: int, fill: float) -> Tensor:
    """``x`` moved by (dy, dx) cells (``out[y, x] = x[y - dy, x - dx]``), ``fill`` where nothing moves in."""
    out = torch.full_like(x, fill)
    h, w = x.shape[-2:]
    src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def nearest_hint(L: Tensor, hint_ab: Tensor, hinted: Tensor, edge_cost: float = EDGE_COST) -> tuple[Tensor, Tensor]:
    """Geodesic distance to the nearest hint and that hint's colour, for every cell.

    Args:
        L: ``[N, 1, h, w]`` L* in [0, 100] on the grid; hint_ab: ``[N, 2, h, w]``; hinted: ``[N, 1, h, w]`` bool.
        edge_cost: path length per L* unit crossed (fractions of the longer side).
    Returns:
        ``(distance, ab)``: ``[N, 1, h, w]`` in fractions of the longer side (``inf`` where an image has no
        hint) and ``[N, 2, h, w]`` the nearest hint's ab.
    """
    h, w = L.shape[-2:]
    unit = 1.0 / max(h, w)
    L = L.float()
    distance = torch.where(hinted, torch.zeros_like(L), torch.full_like(L, math.inf))
    colour = hint_ab.float() * hinted
    steps = [(dy, dx, unit * math.hypot(dy, dx), (L - _shifted(L, dy, dx, 0.0)).abs() * edge_cost)
             for dy, dx in _NEIGHBOURS]
    # Jacobi relaxation of the 8-neighbour path costs: each sweep extends every path by one cell, so a
    # grid's geodesics settle within a few times its longer side; stop as soon as a sweep changes nothing.
    for _ in range(4 * max(h, w)):
        changed = False
        for dy, dx, length, crossing in steps:
            candidate = _shifted(distance, dy, dx, math.inf) + length + crossing
            better = candidate < distance
            if bool(better.any()):
                changed = True
                distance = torch.where(better, candidate, distance)
                colour = torch.where(better, _shifted(colour, dy, dx, 0.0), colour)
        if not changed:
            break
    return distance, colour


def hint_log_bias(L: Tensor, hint_ab: Tensor, hinted: Tensor, bin_centers: Tensor, *, reach: float = REACH,
                  edge_cost: float = EDGE_COST, colour_sigma: float = COLOUR_SIGMA) -> Tensor:
    """What to add to each cell's log-distribution (T = 1) so that hints reach their regions.

    Args:
        L, hint_ab, hinted: on the output grid, as for :func:`nearest_hint`.
        bin_centers: ``[Q, 2]`` ab of the bins.
    Returns:
        ``[N, Q, h, w]`` float32, ≤ 0; all zeros for an image without hints. Add ``logit_fold`` times it to the
        raw logits (``core.decode.log_probs`` divides by the fold).
    """
    if reach <= 0 or colour_sigma <= 0:
        raise ValueError(f"reach and colour_sigma must be > 0, got {reach} and {colour_sigma}")
    distance, colour = nearest_hint(L, hint_ab, hinted, edge_cost)
    strength = torch.exp(-distance.square() / (2.0 * reach * reach))  # 0 where unreachable (inf)
    centers = bin_centers.to(device=colour.device, dtype=torch.float32)
    gap = (colour[:, None] - centers.view(1, -1, 2, 1, 1)).square().sum(dim=2)  # [N, Q, h, w]
    return -strength * gap / (2.0 * colour_sigma * colour_sigma)
