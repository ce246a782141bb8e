"""Post-hoc prior correction of a class-rebalanced model ("logit adjustment").

Training with rebalancing weights ``w`` (Zhang et al. 2016, eq. 3) tilts the learned distribution
towards rare, saturated bins, roughly ``p̂(q) ∝ w(q)·p(q)``. Subtracting ``α·log w`` from the logits
undoes a fraction ``α`` of that tilt: α = 0 keeps the vivid rebalanced prediction, α = 1 aims at the
plain (accurate but desaturated) posterior. The shift is folded into the classifier's bias, so the
shipped file decodes like any other model. ``core.training.calibration`` chooses α.
"""

from __future__ import annotations

import copy

import torch

from ..models.tinct_unet import TinctUNet


def correct_prior(model: TinctUNet, class_weights: torch.Tensor, alpha: float) -> TinctUNet:
    """A copy of ``model`` whose logits are shifted by ``−alpha · log(class_weights)``.

    Args:
        model: a classification :class:`TinctUNet`.
        class_weights: ``[Q]`` the rebalancing weights it was trained with (positive).
        alpha: fraction of the rebalancing tilt to undo, in [0, 1].
    """
    if model.output != "logits":
        raise ValueError("prior correction applies to classification models only")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if class_weights.shape != (model.head.out_channels,) or (class_weights <= 0).any():
        raise ValueError("class_weights must be positive, one per bin")
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.head.bias -= alpha * class_weights.to(out.head.bias).log()
    return out
