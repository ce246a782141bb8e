"""Choosing a classification model's post-hoc logit shifts on held-back *training* images, full pipeline.

Two constant shifts of the logits, both folded into the classifier's bias (the shipped file decodes like any
other model):

- the prior correction ``−α · log w`` (``core.training.prior_correction``): undoes a fraction α of the class
  rebalancing's tilt towards rare, vivid bins; larger α is calmer colour, fewer confident wrong guesses;
- a cast tilt ``t · c_q`` (``t = (t_a, t_b)`` per ab unit, ``c_q`` the bin centres): an exponential tilt of
  every distribution that moves the mean colour against the model's overall cast.

:func:`calibrate` scores each α of a grid with the whole pipeline (render, network, annealed mean at the
default temperature, guided upsampling, merge) on the held-back files scaled to at most
:data:`CALIBRATION_SIDE` px. :func:`choose_setting` then takes the α in order of AuC, finds for each the tilt that
brings its mean cast to zero (a probe and one secant step per axis) and keeps the first whose tilted colourfulness
stays at least :data:`MIN_COLORFULNESS_RATIO` × the truth's. A tilt costs colour (a young model with a +8 b cast
lost 0.15 × of the truth's colourfulness to it), so an α whose colourfulness cannot pay most of the smallest cost
seen so far (:data:`TILT_COST_SHARE`) is skipped, and when no tilted α holds the floor, the best α that holds it
untilted is kept. Validation splits are never used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.tinct_unet import TinctUNet
from .prior_correction import correct_prior

CALIBRATION_SIDE = 512  # px, the longer side the held-back files are scored at
ALPHA_GRID: tuple[float, ...] = tuple(round(0.025 * i, 3) for i in range(13))  # 0 ... 0.3
# The floor is 0.9. A model's colourfulness on a validation split has come out up to 0.05 below
# its held-back figure (session 5: 0.92 held back, 0.87 on the v1 split), so the floor keeps that margin.
MIN_COLORFULNESS_RATIO = 0.95
# α tried with their tilt, best AuC first (each costs two scorings): every α of the grid if need be, since the tilt's
# colour cost can grow as α falls (0.22 × at α 0.3 to 0.24 × at α 0.1 on one model, which held the floor at α 0.075).
MAX_TILTED_CANDIDATES = len(ALPHA_GRID)
# An α is skipped when its colourfulness minus this share of the smallest tilt cost seen so far is below the floor:
# the cost varied by up to an eighth between neighbouring α (0.150 to 0.170 × on one model), so a quarter is margin.
TILT_COST_SHARE = 0.75
TILT_PROBE = 0.003  # per ab unit: moves the mean cast by about 1.4 ab units on tinct-small


@dataclass(frozen=True)
class HeldBackImage:
    """One held-back image: L* ``[1, 1, H, W]``, true ab ``[1, 2, H, W]`` and sRGB ``[3, H, W]`` in [0, 1]."""

    L: Tensor
    ab: Tensor
    rgb: Tensor


def load_held_back(files: list[Path], max_side: int = CALIBRATION_SIDE) -> list[HeldBackImage]:
    """The colour images among ``files``, area-scaled so that the longer side is at most ``max_side``."""
    from ..color import rgb_to_lab
    from ..evaluate import GRAY_CHROMA_LIMIT, read_colour_image

    images = []
    for path in files:
        rgb = read_colour_image(path)
        if rgb is None:
            continue
        h, w = rgb.shape[-2:]
        scale = max_side / max(h, w)
        if scale < 1.0:
            rgb = F.interpolate(rgb[None], size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")[0]
        lab = rgb_to_lab(rgb[None])
        if lab[:, 1:].abs().max() <= GRAY_CHROMA_LIMIT:
            continue
        images.append(HeldBackImage(lab[:, :1], lab[:, 1:], rgb))
    return images


def score(model: TinctUNet, images: list[HeldBackImage]) -> dict[str, float]:
    """``core.evaluate``'s summary (auc, psnr, colorfulness, colorfulness_ratio, wrong_vivid, cast_a, cast_b,
    per_page_cast) of ``model`` through the whole pipeline with the default options."""
    from ..evaluate import ModelScores
    from ..metrics import colorfulness
    from ..pipeline import Colorizer

    if not images:
        raise ValueError("no held-back colour images to calibrate on")
    colorizer = Colorizer(model, device="cpu")
    scores = ModelScores()
    for image in images:
        scores.add(colorizer.colorize_L(image.L).cpu(), image.L, image.ab, image.rgb)
    return scores.summary(float(np.mean([colorfulness(image.rgb) for image in images])))


def tilt_logits(model: TinctUNet, tilt: tuple[float, float]) -> TinctUNet:
    """A copy of ``model`` whose logits are shifted by ``tilt · c_q`` (``tilt`` per ab unit, ``c_q`` ``[Q, 2]``)."""
    if model.output != "logits":
        raise ValueError("a cast tilt applies to classification models only")
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.head.bias += out.bin_centers.to(out.head.bias) @ torch.tensor(tilt, dtype=out.head.bias.dtype)
    return out


def calibrate(
    model: TinctUNet,
    class_weights: Tensor,
    images: list[HeldBackImage],
    alphas: tuple[float, ...] = ALPHA_GRID,
    min_ratio: float = MIN_COLORFULNESS_RATIO,
    probe: float = TILT_PROBE,
) -> tuple[TinctUNet, dict]:
    """The calibrated copy of ``model`` and what was measured (see the module docstring).

    Args:
        class_weights: ``[Q]`` the rebalancing weights the model was trained with (positive).
        images: held-back training images (:func:`load_held_back`), never validation images.
    Returns:
        (model with ``−α log w + t · c`` folded into its bias, ``{"alpha", "tilt": [t_a, t_b], "alphas": rows,
        "tilts": rows}``), each row a :func:`score` summary with the setting it was measured at (the tilt rows:
        each tried α's probe and its tilted result).
    """
    rows = []
    for alpha in alphas:
        rows.append({"alpha": alpha, **score(correct_prior(model, class_weights, alpha), images)})
    tilt_rows: list[dict] = []

    def try_tilt(row: dict) -> tuple[tuple[float, float], dict]:
        corrected = correct_prior(model, class_weights, row["alpha"])
        tilt = _cast_tilt(corrected, row, images, probe, tilt_rows)
        tilt_rows.append({"alpha": row["alpha"], "tilt": list(tilt), **score(tilt_logits(corrected, tilt), images)})
        return tilt, tilt_rows[-1]

    alpha, tilt = choose_setting(rows, try_tilt, min_ratio)
    calibrated = tilt_logits(correct_prior(model, class_weights, alpha), tilt)
    return calibrated, {"alpha": alpha, "tilt": list(tilt), "min_colorfulness_ratio": min_ratio,
                        "side": CALIBRATION_SIDE, "images": len(images), "alphas": rows, "tilts": tilt_rows}


def choose_setting(
    rows: list[dict],
    try_tilt: Callable[[dict], tuple[tuple[float, float], dict]],
    min_ratio: float,
    max_tries: int = MAX_TILTED_CANDIDATES,
) -> tuple[float, tuple[float, float]]:
    """The ``(α, tilt)`` the calibration keeps (the rule of the module docstring).

    Args:
        rows: one :func:`score` summary per α, each with its ``"alpha"``.
        try_tilt: ``row -> (tilt, score of that α with that tilt)``; called at most ``max_tries`` times.
        min_ratio: the colourfulness floor, × the truth's.
    Returns:
        The first α, by AuC, whose tilted colourfulness holds the floor, with its tilt; else the best α that holds
        it untilted, with tilt ``(0, 0)``; else ``(0.0, (0, 0))``.
    """
    candidates = sorted((r for r in rows if r["colorfulness_ratio"] >= min_ratio), key=lambda r: -r["auc"])
    costs: list[float] = []  # the colourfulness each failed tilt cost (every try but a successful one fails)
    for row in candidates:
        if len(costs) >= max_tries:
            break
        if row["colorfulness_ratio"] - TILT_COST_SHARE * min(costs, default=0.0) < min_ratio:
            continue
        tilt, tilted = try_tilt(row)
        if tilted["colorfulness_ratio"] >= min_ratio:
            return row["alpha"], tilt
        costs.append(row["colorfulness_ratio"] - tilted["colorfulness_ratio"])
    if candidates:
        return candidates[0]["alpha"], (0.0, 0.0)
    return 0.0, (0.0, 0.0)


def _cast_tilt(model: TinctUNet, base: dict, images: list[HeldBackImage], probe: float,
               rows: list[dict]) -> tuple[float, float]:
    """The tilt ``(t_a, t_b)`` that zeroes ``model``'s mean cast (``base``: its :func:`score`), from one probe
    tilt against the cast on each axis and a secant step; the probe's score is appended to ``rows``."""
    cast = (base["cast_a"], base["cast_b"])
    probe_tilt = tuple(-probe if c > 0 else probe for c in cast)
    probed = score(tilt_logits(model, probe_tilt), images)
    rows.append({"alpha": base["alpha"], "tilt": list(probe_tilt), **probed})
    tilt = []
    for axis, key in enumerate(("cast_a", "cast_b")):
        slope = (probed[key] - cast[axis]) / probe_tilt[axis]
        # a slope of the wrong sign or near zero (a tiny or odd model): leave that axis alone
        tilt.append(-cast[axis] / slope if slope > 1.0 else 0.0)
    return tilt[0], tilt[1]
