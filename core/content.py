"""What an image shows (a photo or a document page) and the decode profile each kind gets.

:func:`document_score` is a cheap detector on L*: a few image statistics (bright flat background, density of
thin dark strokes, periodicity of text lines along rows and columns, brightness and spread of L) combined by a
logistic regression whose coefficients are data (``content_detector.json``, fitted by
``python -m core.content_fit fit`` on training files of ``photos/``, ``documents/`` and synthetic pages).

The decode profiles (:data:`PROFILES`) are what ``Colorizer.colorize_L(content=...)`` applies per image;
``auto`` picks ``document`` when the score is at least :data:`DOCUMENT_THRESHOLD`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .options import OPTIONS

CONTENT_CHOICES: tuple[str, ...] = tuple(c.value for c in OPTIONS["content"].choices)  # auto, photo, document
DETECTOR_FILE = Path(__file__).with_name("content_detector.json")
DOCUMENT_THRESHOLD = 0.5
FEATURE_SIZE = 256  # the longer side the features are computed at (px)
FEATURE_NAMES = ("paper_fraction", "stroke_fraction", "ink_on_paper", "stroke_density_on_paper", "stroke_coverage",
                 "dark_detail_polarity", "histogram_peak", "row_periodicity", "column_periodicity", "bright_level",
                 "spread")


@dataclass(frozen=True)
class DecodeProfile:
    """How the decoder treats one kind of content.

    Attributes:
        temperature_scale: multiplies the annealed-mean temperature (``< 1`` sharper, more colourful).
        chroma_scale: multiplies the decoded ab before upsampling (``< 1`` calmer colour).
    """

    temperature_scale: float = 1.0
    chroma_scale: float = 1.0


PHOTO_PROFILE = DecodeProfile()
# Equal to the photo profile, by measurement: with the model trained on pages, written and illuminated pages meet
# their targets at the photo temperature and chroma (README, "Photos and documents"; `tinct eval --sets documents-*`).
DOCUMENT_PROFILE = DecodeProfile()
PROFILES: dict[str, DecodeProfile] = {"photo": PHOTO_PROFILE, "document": DOCUMENT_PROFILE}


def content_features(L: Tensor) -> Tensor:
    """The detector's features of one image.

    Args:
        L: ``[1, 1, H, W]`` L* in [0, 100] (any device, any float dtype).
    Returns:
        ``[len(FEATURE_NAMES)]`` float32 on the CPU, in the order of :data:`FEATURE_NAMES`.
    """
    if L.dim() != 4 or L.shape[:2] != (1, 1):
        raise ValueError(f"L must be [1,1,H,W], got {list(L.shape)}")
    x = L.float()
    h, w = x.shape[-2:]
    scale = FEATURE_SIZE / max(h, w)
    if scale < 1.0:
        x = F.interpolate(x, size=(max(8, round(h * scale)), max(8, round(w * scale))), mode="area")
    # The central 80 %: scans of books and pages often show the table or the binding around the page.
    h, w = x.shape[-2:]
    x = x[..., h // 10: h - h // 10, w // 10: w - w // 10]
    mean5 = F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    sd5 = (F.avg_pool2d(x * x, 5, 1, 2, count_include_pad=False) - mean5 * mean5).clamp_min(0.0).sqrt()
    paper = (x > 55.0) & (sd5 < 3.0)  # bright and flat
    detail = x - mean5  # the high-pass of a 5 x 5 box
    stroke = detail < -6.0  # thin dark detail
    bright_detail = (detail > 6.0).float().sum()
    near_paper = F.max_pool2d(paper.float(), 7, 1, 3) > 0
    stroke_f = stroke.float()
    n_stroke = stroke_f.sum().clamp_min(1.0)
    ink_near_paper = (stroke & near_paper).float()
    ink_on_paper = ink_near_paper.sum() / n_stroke
    density_on_paper = ink_near_paper.sum() / near_paper.float().sum().clamp_min(1.0)
    # Writing covers the page; a photo's fine dark detail gathers on its subject: the share of the cells of a
    # 6 x 6 grid with at least a little stroke.
    cells = F.adaptive_avg_pool2d(stroke_f, 6)
    coverage = (cells > 0.03).float().mean()
    flat = x.flatten()
    q = torch.quantile(flat, torch.tensor([0.1, 0.9], device=flat.device))
    # Ink on paper is dark detail on a bright ground; a photo's fine detail is as often bright as dark.
    polarity = (stroke_f.sum() - bright_detail) / (stroke_f.sum() + bright_detail).clamp_min(1.0)
    # Paper makes one narrow histogram peak: the largest share of pixels within a 10 L* window.
    hist = torch.histc(flat.clamp(0.0, 100.0), bins=50, min=0.0, max=100.0)
    peak = F.avg_pool1d(hist[None, None], 5, 1, 2, count_include_pad=True).max() * 5 / flat.numel()
    feats = torch.stack([
        paper.float().mean(),
        stroke_f.mean(),
        ink_on_paper,
        density_on_paper,
        coverage,
        polarity,
        peak,
        _periodicity(stroke_f[0, 0].mean(dim=1)),
        _periodicity(stroke_f[0, 0].mean(dim=0)),
        q[1] / 100.0,
        (q[1] - q[0]) / 100.0,
    ])
    return feats.float().cpu()


def _periodicity(profile: Tensor) -> Tensor:
    """Largest normalised autocorrelation of a 1-D profile at lags 2 .. n/4 (text lines repeat), in [-1, 1]."""
    n = profile.numel()
    p = profile - profile.mean()
    energy = (p * p).sum()
    if n < 12 or float(energy) <= 1e-12:
        return profile.new_zeros(())
    spec = torch.fft.rfft(p, n=2 * n)
    ac = torch.fft.irfft(spec * spec.conj(), n=2 * n)[: n // 4 + 1]
    return (ac[2:] / energy).max().clamp(-1.0, 1.0)


@lru_cache(maxsize=1)
def _detector() -> tuple[Tensor, Tensor, Tensor, float]:
    data = json.loads(DETECTOR_FILE.read_text())
    if tuple(data["features"]) != FEATURE_NAMES:
        raise ValueError(f"{DETECTOR_FILE.name} was fitted on other features: {data['features']}")
    return (torch.tensor(data["mean"]), torch.tensor(data["scale"]), torch.tensor(data["weights"]), float(data["bias"]))


def score_features(features: Tensor) -> Tensor:
    """Document probability for ``[..., F]`` feature rows (:func:`content_features`), ``[...]`` in [0, 1]."""
    mean, scale, weights, bias = _detector()
    return torch.sigmoid(((features - mean) / scale) @ weights + bias)


def document_score(L: Tensor) -> float:
    """How much ``L`` (``[1, 1, H, W]`` L* in [0, 100]) looks like a document page, in [0, 1]."""
    return float(score_features(content_features(L)))


def resolve_content(content: str, L: Tensor) -> str:
    """``"photo"`` or ``"document"``: ``content`` itself, or for ``"auto"`` decided by the detector.

    Args:
        content: one of :data:`CONTENT_CHOICES`.
        L: ``[N, 1, H, W]`` L* in [0, 100]; a batch gets one choice, by its mean score.
    """
    if content not in CONTENT_CHOICES:
        raise ValueError(f"unknown content {content!r}; choose one of {', '.join(CONTENT_CHOICES)}")
    if content != "auto":
        return content
    score = sum(document_score(L[i: i + 1]) for i in range(L.shape[0])) / L.shape[0]
    return "document" if score >= DOCUMENT_THRESHOLD else "photo"
