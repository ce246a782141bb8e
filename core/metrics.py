"""Colorization metrics: AuC of ab error (Zhang et al. 2016), PSNR, colorfulness (Hasler & Süsstrunk 2003),
wrong-vivid pixels and colour cast."""

from __future__ import annotations

import numpy as np
import torch

AUC_MAX_THRESHOLD = 150
# A wrong-vivid pixel is a confident wrong guess: its output chroma is above the first limit while its ab error
# is above the second (both in ab units).
WRONG_VIVID_CHROMA = 20.0
WRONG_VIVID_ERROR = 30.0


def ab_error_cdf(pred_ab: torch.Tensor, true_ab: torch.Tensor, max_threshold: int = AUC_MAX_THRESHOLD) -> torch.Tensor:
    """Fraction of pixels whose ab L2 error is ≤ t, for t = 0, 1, …, ``max_threshold``.

    Args:
        pred_ab, true_ab: ``[..., 2, H, W]`` ab in ab units.
    Returns:
        ``[max_threshold + 1]`` float64 cumulative fractions.
    """
    err = torch.linalg.vector_norm((pred_ab - true_ab).double(), dim=-3).flatten()
    thresholds = torch.arange(max_threshold + 1, dtype=torch.float64, device=err.device)
    counts = torch.bucketize(err, thresholds, right=False)  # first threshold >= err
    hist = torch.bincount(counts, minlength=max_threshold + 2)[: max_threshold + 1]
    return (hist.cumsum(0).double() / err.numel()).cpu()


def auc_ab(pred_ab: torch.Tensor, true_ab: torch.Tensor, max_threshold: int = AUC_MAX_THRESHOLD) -> float:
    """Area under the CDF of per-pixel ab error over thresholds 0..``max_threshold``, in [0, 1]."""
    return float(ab_error_cdf(pred_ab, true_ab, max_threshold).mean())


def psnr(pred: torch.Tensor | np.ndarray, true: torch.Tensor | np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two images on the same scale (``peak`` = 1 for [0, 1] sRGB)."""
    p = torch.as_tensor(pred, dtype=torch.float64)
    t = torch.as_tensor(true, dtype=torch.float64)
    mse = torch.mean((p - t) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def colorfulness(rgb: torch.Tensor | np.ndarray) -> float:
    """Hasler & Süsstrunk colorfulness M3 of an sRGB image.

    Args:
        rgb: ``[H, W, 3]`` (numpy) or ``[3, H, W]`` (torch) sRGB, either uint8 or float in [0, 1];
            computed on the 0..255 scale as in the original paper.
    """
    if isinstance(rgb, np.ndarray):
        arr = rgb.astype(np.float64)
        if rgb.dtype != np.uint8:
            arr = arr * 255.0
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    else:
        t = rgb.double()
        if rgb.dtype != torch.uint8:
            t = t * 255.0
        r, g, b = t[0].cpu().numpy(), t[1].cpu().numpy(), t[2].cpu().numpy()
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def wrong_vivid_mask(pred_ab: torch.Tensor, true_ab: torch.Tensor, chroma: float = WRONG_VIVID_CHROMA,
                     error: float = WRONG_VIVID_ERROR) -> torch.Tensor:
    """Pixels whose output chroma is > ``chroma`` while their ab error is > ``error``.

    Args:
        pred_ab, true_ab: ``[..., 2, H, W]`` ab in ab units.
    Returns:
        ``[..., H, W]`` bool.
    """
    pred = pred_ab.double()
    err = torch.linalg.vector_norm(pred - true_ab.double(), dim=-3)
    return (torch.linalg.vector_norm(pred, dim=-3) > chroma) & (err > error)


def wrong_vivid_fraction(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> float:
    """Fraction in [0, 1] of the pixels that are wrong-vivid (see :func:`wrong_vivid_mask`)."""
    return float(wrong_vivid_mask(pred_ab, true_ab).double().mean())


def mean_cast(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> tuple[float, float]:
    """Mean (Δa, Δb) of output minus truth over all pixels of ``[..., 2, H, W]`` ab, in ab units."""
    diff = (pred_ab.double() - true_ab.double()).movedim(-3, 0).reshape(2, -1).mean(1)
    return float(diff[0]), float(diff[1])


def per_page_cast(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean over images of the length of each image's mean ab error vector (:func:`mean_cast`).

    White paper that comes out bluish where the truth is cream scores high even when no pixel is vivid.

    Args:
        pairs: ``(pred_ab, true_ab)`` per image, each ``[..., 2, H, W]``.
    """
    if not pairs:
        raise ValueError("per_page_cast needs at least one image")
    return float(np.mean([np.hypot(*mean_cast(p, t)) for p, t in pairs]))
