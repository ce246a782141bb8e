"""Training losses: rebalanced soft-encoded cross-entropy (classification) and L2 on ab (regression baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..bins import soft_encode

AB_SCALE = 110.0


def rebalanced_cross_entropy(
    logits: torch.Tensor, ab: torch.Tensor, centers: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Zhang et al. 2016, eq. 2: ``−Σ_h,w v(Z_h,w) Σ_q Z_h,w,q log Ẑ_h,w,q``, averaged over pixels.

    Args:
        logits: ``[N, Q, h, w]`` network output.
        ab: ``[N, 2, h, w]`` ground-truth ab at the logits' resolution.
        centers: ``[Q, 2]`` bin centres.
        weights: ``[Q]`` rebalancing weights; each pixel is weighted by the bin of its highest target.
    """
    target = soft_encode(ab, centers)
    pixel_w = weights[target.argmax(dim=1)]  # [N, h, w]
    ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    return (pixel_w * ce).sum() / pixel_w.numel()


def ab_l2(pred_ab: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Euclidean (Dahl-style) regression loss on ab scaled to ~[-1, 1]: ``mean ‖(ŷ − y)/110‖²``."""
    return ((pred_ab - ab) / AB_SCALE).pow(2).sum(dim=1).mean()
