"""The post-processing chain the pipeline calls: step names, parsing, and ``apply_post``."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .crf import crf_refine_log_probs
from core.decode import decode_logits, log_probs
from core.options import OPTIONS
from .segments import DEFAULT_SEGMENT_MIX, homogenize_ab, homogenize_log_probs, segment_L
from .tv import DEFAULT_TV_WEIGHT, tv_smooth_ab

# Canonical order, which is also the order of application: the CRF works on the network's
# distributions, segments pool the (refined) distributions, decoding gives ab, TV smooths ab.
# The names and their order are the ``post`` option's choices (core.options).
POST_STEPS: tuple[str, ...] = tuple(choice.value for choice in OPTIONS["post"].choices)


def parse_post_steps(text: str) -> tuple[str, ...]:
    """Parse a ``--post`` value such as ``"segments,crf,tv"`` into steps in application order.

    Names are case-insensitive and comma-separated; ``""`` or ``"none"`` means no post-processing.
    Raises ``ValueError`` (one line) for an unknown or repeated name.
    """
    if not isinstance(text, str):
        raise ValueError(f"post-processing steps must be given as text, got {type(text).__name__}")
    return OPTIONS["post"].check(text)


def _canonical(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ValueError(f"steps must be a sequence of names such as ('crf', 'tv'), not the string {names!r}")
    return OPTIONS["post"].check(names)


def apply_post(
    steps: Sequence[str],
    *,
    logits: Tensor | None,
    ab: Tensor | None,
    L: Tensor,
    bin_centers: Tensor | None,
    logit_fold: float,
    temperature: float,
    decode: str,
    strength: float = 1.0,
) -> Tensor:
    """Decode the network output with optional post-processing, at network-output resolution.

    Give exactly one of ``logits`` (classification models) or ``ab`` (models that output ab).
    Steps run in the order crf -> segments -> decode -> tv whatever order they are given in.

    Args:
        steps: names from ``POST_STEPS`` (any order, no repeats); empty = plain decode.
        logits: ``[N,Q,h,w]`` float (any float dtype; computed in float32).
        ab: ``[N,2,h,w]`` float, ab units. ``"crf"`` needs a distribution and raises ``ValueError``
            for ab models (there is no distribution to refine; use ``segments``/``tv``).
        L: ``[N,1,h,w]`` float, L* 0..100 at the same resolution (the network input, resized).
        bin_centers: ``[Q,2]`` ab units; required with ``logits``.
        logit_fold, temperature, decode: as in ``core.decode.decode_logits``
            (``decode`` in ``"annealed" | "mode" | "mean"``).
        strength: in ``[0,1]``, scales every step: segment mixing (``DEFAULT_SEGMENT_MIX`` at 1), CRF
            pairwise weights, TV weight (``DEFAULT_TV_WEIGHT`` at 1); 0 gives the plain decode.

    Returns:
        ``[N,2,h,w]`` float32 ab on the device of the network output.
    """
    chain = _canonical(steps)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"post strength must be in [0, 1], got {strength}")
    if (logits is None) == (ab is None):
        raise ValueError("apply_post needs exactly one of logits (classification model) or ab (ab model)")
    source = logits if logits is not None else ab
    assert source is not None
    if source.dim() != 4:
        raise ValueError(f"network output must be [N,C,h,w], got {list(source.shape)}")
    n, _, h, w = source.shape
    if L.shape != (n, 1, h, w):
        raise ValueError(f"L must be [{n},1,{h},{w}] (the network output's resolution), got {list(L.shape)}")
    L = L.to(device=source.device, dtype=torch.float32)

    if logits is not None:
        if bin_centers is None:
            raise ValueError("bin_centers [Q,2] are required to decode logits")
        if bin_centers.shape != (logits.shape[1], 2):
            raise ValueError(f"bin_centers must be [{logits.shape[1]},2], got {list(bin_centers.shape)}")
        logits = logits.float()
        centers = bin_centers.to(device=logits.device, dtype=torch.float32)
        if "crf" in chain or "segments" in chain:
            refined = log_probs(logits, logit_fold)
            if "crf" in chain:
                refined = crf_refine_log_probs(refined, L, centers, strength=strength)
            if "segments" in chain:
                refined = homogenize_log_probs(refined, segment_L(L), strength=strength * DEFAULT_SEGMENT_MIX)
            out = decode_logits(refined, centers, logit_fold=1.0, method=decode, temperature=temperature)
        else:
            out = decode_logits(logits, centers, logit_fold=logit_fold, method=decode, temperature=temperature)
    else:
        assert ab is not None
        if ab.shape[1] != 2:
            raise ValueError(f"ab must be [N,2,h,w], got {list(ab.shape)}")
        if "crf" in chain:
            raise ValueError("the crf step needs a classification model's distribution; this model outputs ab "
                             "directly: use segments and/or tv")
        out = ab.float()
        if "segments" in chain:
            out = homogenize_ab(out, segment_L(L), strength=strength * DEFAULT_SEGMENT_MIX)
    if "tv" in chain:
        out = tv_smooth_ab(out, weight=strength * DEFAULT_TV_WEIGHT, L=L)
    return out
