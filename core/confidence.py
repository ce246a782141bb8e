"""Confidence of a classification model's colour: how far the decoded colour is expected to be from the truth.

Per pixel, with ``p`` the model's trained distribution ``softmax(logits / logit_fold)`` over the bin centres
``c_q`` (after any reference re-weighting: the distribution that is actually decoded) and ``â`` the decoded ab:

    risk = Σ_q p_q · ‖c_q − â‖  +  ‖â‖          (ab units)
    confidence = exp(−risk / RISK_SCALE)         (1 = certain, → 0 for a vivid guess among many colours)

The first term is the decoded colour's expected error under the model's own distribution (it grows when the mass
is spread over distant colours, or lies away from the decoded colour). The second is the decoded colour's chroma:
a model trained with class rebalancing puts extra weight on rare, vivid bins, so its distribution understates how
often a vivid guess is wrong, while a near-gray guess is never far wrong. Measured (``tinct eval-hints``, the
error of the least- over the most-confident third of each image's pixels, 40 images of the v1 split, ``tinct-small``
v2): one minus the normalised entropy 1.28×, the first term alone 1.33×, both 1.54× (chroma weight 0.5: 1.52×,
2: 1.52×; the plain sum is kept).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .decode import log_probs

RISK_SCALE = 25.0  # ab units: a risk of 25 ab (a clearly visible colour error) gives confidence 1/e


def confidence_from_logits(logits: Tensor, ab: Tensor, bin_centers: Tensor, logit_fold: float = 1.0) -> Tensor:
    """``exp(-(E_p‖c − ab‖ + ‖ab‖) / RISK_SCALE)`` per pixel (see the module docstring).

    Args:
        logits: ``[N, Q, h, w]`` network output (Q >= 2).
        ab: ``[N, 2, h, w]`` the decoded colour of those logits, ab units.
        bin_centers: ``[Q, 2]`` ab of each bin.
        logit_fold: the checkpoint's folded logit scale (see ``core.decode.log_probs``).
    Returns:
        ``[N, 1, h, w]`` float32 in (0, 1]; 1 = confident.
    Raises:
        ValueError: shapes that do not fit together.
    """
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"logits must be [N, Q>=2, h, w], got {list(logits.shape)}")
    n, q, h, w = logits.shape
    if tuple(ab.shape) != (n, 2, h, w) or tuple(bin_centers.shape) != (q, 2):
        raise ValueError(f"ab must be [N, 2, h, w] and bin_centers [Q, 2] for logits {list(logits.shape)}, "
                         f"got {list(ab.shape)} and {list(bin_centers.shape)}")
    p = log_probs(logits.float(), logit_fold).exp()
    centers = bin_centers.to(device=logits.device, dtype=torch.float32)
    decoded = ab.to(device=logits.device, dtype=torch.float32)
    # E_p‖c − â‖ one bin at a time: a [N, Q, h, w] distance tensor would be Q times the map's size
    expected = torch.zeros(n, 1, h, w, device=logits.device)
    for index in range(q):
        distance = (decoded - centers[index].view(1, 2, 1, 1)).norm(dim=1, keepdim=True)
        expected.addcmul_(p[:, index:index + 1], distance)
    risk = expected + decoded.norm(dim=1, keepdim=True)
    return torch.exp(-risk / RISK_SCALE)


def confidence_to_gray8(confidence: Tensor | np.ndarray) -> np.ndarray:
    """``[H, W]`` (or ``[1, 1, H, W]``) confidence in [0, 1], tensor or array -> ``[H, W]`` uint8 numpy
    (white = confident)."""
    confidence = torch.as_tensor(confidence)
    c = confidence.reshape(confidence.shape[-2:]).float().clamp(0.0, 1.0)
    return c.mul(255.0).add_(0.5).to(torch.uint8).cpu().numpy()
