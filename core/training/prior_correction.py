"""Post-hoc prior correction of a class-rebalanced model ("logit adjustment").

Training with rebalancing weights ``w`` (Zhang et al. 2016, eq. 3) tilts the learned distribution
towards rare, saturated bins, roughly ``p̂(q) ∝ w(q)·p(q)``. Subtracting ``α·log w`` from the logits
undoes a fraction ``α`` of that tilt: α = 0 keeps the vivid rebalanced prediction, α = 1 aims at the
plain (accurate but desaturated) posterior. The shift is folded into the classifier's bias, so the
shipped file decodes like any other model.
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


# The α values tried by :func:`choose_alpha`, and how colourful (vs the ground truth) the choice must stay.
ALPHA_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
MIN_COLORFULNESS_RATIO = 0.95


def choose_alpha(
    model: TinctUNet,
    class_weights: torch.Tensor,
    held_back,
    size: int,
    alphas: tuple[float, ...] = ALPHA_GRID,
    min_ratio: float = MIN_COLORFULNESS_RATIO,
) -> tuple[float, list[dict[str, float]]]:
    """The α with the best held-back AuC among those that keep colourfulness ≥ ``min_ratio`` × the truth's.

    Args:
        held_back: a :class:`core.training.data.ImageCache` of held-back *training* files (never validation).
        size: side of the centre squares it is measured on.
    Returns:
        The chosen α (0 when none keeps the colour) and one row per α: alpha, auc, colorfulness ratio,
        wrong-vivid %.
    """
    from .loop import validate

    rows = []
    for alpha in alphas:
        m = correct_prior(model, class_weights, alpha)
        r = validate({"classification": m}, held_back, size)
        rows.append({"alpha": alpha, "auc": r["classification/auc"], "gray_auc": r["gray/auc"],
                     "colorfulness_ratio": r["classification/colorfulness"] / r["gt/colorfulness"],
                     "wrong_vivid": r["classification/wrong_vivid"]})
    keep = [r for r in rows if r["colorfulness_ratio"] >= min_ratio]
    best = max(keep, key=lambda r: r["auc"]) if keep else rows[0]
    return best["alpha"], rows
