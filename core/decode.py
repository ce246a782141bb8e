"""Turning per-pixel bin distributions into ab: annealed mean, mode and mean (Zhang et al. 2016, §3.3)."""

from __future__ import annotations

from typing import Literal

import torch

from .options import OPTIONS, TEMPERATURE

DecodeMethod = Literal["annealed", "mode", "mean"]
DEFAULT_TEMPERATURE = TEMPERATURE
DECODE_METHODS: tuple[str, ...] = tuple(choice.value for choice in OPTIONS["decode"].choices)


def log_probs(logits: torch.Tensor, logit_fold: float = 1.0) -> torch.Tensor:
    """The model's trained log-distribution ``log softmax(logits / logit_fold)``.

    Args:
        logits: ``[N, Q, h, w]`` raw network output.
        logit_fold: scale folded into the logits by the checkpoint (2.606 for the ECCV16 port, else 1).
    Returns:
        ``[N, Q, h, w]`` float32 log-probabilities (T = 1).
    """
    return torch.log_softmax(logits.float() / logit_fold, dim=1)


def annealed_distribution(logits: torch.Tensor, temperature: float, logit_fold: float = 1.0) -> torch.Tensor:
    """``f_T(p) ∝ exp(log p / T)``, i.e. ``softmax(logits / (logit_fold · T))``; ``[N, Q, h, w]``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for a distribution, got {temperature}")
    return torch.softmax(logits.float() / (logit_fold * temperature), dim=1)


def expectation(probs: torch.Tensor, bin_centers: torch.Tensor) -> torch.Tensor:
    """Mean ab of a distribution: ``[N, Q, h, w]`` x ``[Q, 2]`` -> ``[N, 2, h, w]``."""
    return torch.einsum("nqhw,qc->nchw", probs, bin_centers.to(probs.dtype))


def decode_logits(
    logits: torch.Tensor,
    bin_centers: torch.Tensor,
    *,
    logit_fold: float = 1.0,
    method: DecodeMethod = "annealed",
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """Decode class logits into ab.

    Args:
        logits: ``[N, Q, h, w]`` network output.
        bin_centers: ``[Q, 2]`` ab centres of the bins (ab units).
        logit_fold: the checkpoint's folded logit scale (see :func:`log_probs`).
        method: ``"annealed"`` (annealed mean at ``temperature``; T → 0 is the mode, T = 1 the mean),
            ``"mode"`` (centre of the most probable bin) or ``"mean"`` (T = 1).
        temperature: T for ``"annealed"``, in ``(0, ∞)``; 0 is accepted and means the mode.
    Returns:
        ``[N, 2, h, w]`` float32 ab in ab units.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; choose one of {', '.join(DECODE_METHODS)}")
    if method == "mode" or (method == "annealed" and temperature == 0):
        idx = logits.argmax(dim=1)  # [N, h, w]
        return bin_centers.float()[idx].permute(0, 3, 1, 2).contiguous()
    t = 1.0 if method == "mean" else temperature
    if t < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    return expectation(annealed_distribution(logits, t, logit_fold), bin_centers)
