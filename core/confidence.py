"""Confidence of a classification model's colour: one minus the normalised entropy of its distribution.

A pixel whose predicted distribution puts all its mass on one bin is certain (1); one spread evenly
over every bin is a pure guess (0). Computed on the model's trained distribution
``softmax(logits / logit_fold)`` (T = 1, independent of the decoding temperature), after any
reference re-weighting, i.e. the distribution that is actually decoded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .decode import log_probs


def confidence_from_logits(logits: Tensor, logit_fold: float = 1.0) -> Tensor:
    """``1 - H(p) / log Q`` per pixel.

    Args:
        logits: ``[N, Q, h, w]`` network output (Q >= 2).
        logit_fold: the checkpoint's folded logit scale (see ``core.decode.log_probs``).
    Returns:
        ``[N, 1, h, w]`` float32 in [0, 1]; 1 = confident.
    """
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [N, Q>=2, h, w], got {list(logits.shape)}")
    logp = log_probs(logits, logit_fold)
    entropy = -(logp.exp() * logp).sum(dim=1, keepdim=True)
    return (1.0 - entropy / math.log(logits.shape[1])).clamp_(0.0, 1.0)


def confidence_to_gray8(confidence: Tensor | np.ndarray) -> np.ndarray:
    """``[H, W]`` (or ``[1, 1, H, W]``) confidence in [0, 1], tensor or array -> ``[H, W]`` uint8 numpy
    (white = confident)."""
    confidence = torch.as_tensor(confidence)
    c = confidence.reshape(confidence.shape[-2:]).float().clamp(0.0, 1.0)
    return c.mul(255.0).add_(0.5).to(torch.uint8).cpu().numpy()
