"""``tinct eval-page``: does colour stay on the strokes of a large scanned page (no bleed onto the paper)?

A synthetic page (:func:`core.training.synth_documents.render_page`, deterministic per seed) is given red rubric
ink in its upper half. Two measurements:

- **Upsampling** (:func:`upsampling_bleed`): the page's true ab, area-averaged to the grid the network predicts at
  the default render size (:data:`GRID` = 64 cells on the longer side: a 256 render at 1/4), is upsampled back
  to full size with the guided filter and with plain bilinear resizing. Reported: the mean ab error on the
  red strokes, on the paper 2-4 px from them (a halo would show here) and on the paper far from any writing.
- **Pipeline** (:func:`pipeline_halo`): the gray page through the full pipeline with a model; reported: how much
  the paper next to strokes differs in colour from the paper far from them (0 = no halo).

Measuring only: nothing at runtime imports this module.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

RUBRIC_AB = (45.0, 30.0)  # red rubric ink, a*/b*
GRID = 64  # ab cells along the longer side at the default render size (256 / 4)
STROKE_DEPTH = 25.0  # L* below the page's median that counts as a stroke


def page_masks(L: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strokes, the paper 2-4 px from strokes, and the paper over 20 px from any stroke, of ``L`` ``[1, 1, H, W]``.

    The pixel right next to a stroke is left out of the ring: scanned and rendered strokes are anti-aliased,
    so it is part ink. Returns three ``[H, W]`` bool arrays.
    """
    from scipy import ndimage

    stroke = (L[0, 0] < L.median() - STROKE_DEPTH).numpy()
    ring = ndimage.binary_dilation(stroke, iterations=4) & ~ndimage.binary_dilation(stroke, iterations=1)
    far = ~ndimage.binary_dilation(stroke, iterations=20)
    return stroke, ring, far


def with_red_rubrics(lab: Tensor) -> tuple[Tensor, np.ndarray]:
    """``lab`` ``[1, 3, H, W]`` with the strokes of its upper half recoloured to :data:`RUBRIC_AB` (L kept).

    Returns the new Lab and the ``[H, W]`` bool mask of the red strokes.
    """
    stroke, _, _ = page_masks(lab[:, :1])
    red = stroke.copy()
    red[lab.shape[-2] // 2:] = False
    out = lab.clone()
    where = torch.from_numpy(red)
    out[0, 1][where], out[0, 2][where] = RUBRIC_AB
    return out, red


def _region_errors(ab: Tensor, truth: Tensor, regions: dict[str, np.ndarray]) -> dict[str, float]:
    err = (ab.float() - truth).norm(dim=1)[0].numpy()
    return {name: round(float(err[mask].mean()), 2) for name, mask in regions.items()}


def upsampling_bleed(lab: Tensor, red: np.ndarray, grid: int = GRID) -> dict[str, dict[str, float]]:
    """Mean ab error (ab units) on ``red`` strokes, the paper ring around them and the far paper of the upper
    half, after the true ab is seen at ``grid`` cells on the longer side and upsampled back.

    Args:
        lab: ``[1, 3, H, W]`` the page's Lab (L* 0-100, ab in ab units), e.g. from :func:`with_red_rubrics`.
        red: ``[H, W]`` bool, the red strokes.
    Returns:
        ``{"guided": {...}, "bilinear": {...}}``, each ``{"strokes", "ring", "paper"}``.
    """
    from scipy import ndimage

    from .upsample import bilinear_upsample, guided_upsample

    L, ab = lab[:, :1], lab[:, 1:]
    height, width = L.shape[-2:]
    scale = grid / max(height, width)
    ab_low = F.interpolate(ab, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")
    stroke, _, far = page_masks(L)
    ring = ndimage.binary_dilation(red, iterations=4) & ~ndimage.binary_dilation(red, iterations=1)
    far = far.copy()
    far[height // 2:] = False
    regions = {"strokes": red, "ring": ring & ~stroke, "paper": far}
    return {"guided": _region_errors(guided_upsample(ab_low, L), ab, regions),
            "bilinear": _region_errors(bilinear_upsample(ab_low, (height, width)), ab, regions)}


def pipeline_halo(rgb_out: np.ndarray, L: Tensor) -> dict[str, float]:
    """How the output's paper next to strokes differs from its paper far from them.

    Args:
        rgb_out: ``[H, W, 3]`` uint8, the colorized page.
        L: ``[1, 1, H, W]`` the input's L* (where the strokes are).
    Returns:
        ``{"halo": |mean ab of the ring - mean ab of the far paper|, "paper_a", "paper_b", "stroke_a", "stroke_b"}``.
    """
    from .color import rgb_to_lab

    stroke, ring, far = page_masks(L)
    ab = rgb_to_lab(torch.from_numpy(rgb_out.astype(np.float32) / 255.0).permute(2, 0, 1)[None])[0, 1:].numpy()
    ring_ab = ab[:, ring].mean(axis=1)
    far_ab = ab[:, far].mean(axis=1)
    stroke_ab = ab[:, stroke].mean(axis=1)
    return {"halo": round(float(np.linalg.norm(ring_ab - far_ab)), 2), "paper_a": round(float(far_ab[0]), 2),
            "paper_b": round(float(far_ab[1]), 2), "stroke_a": round(float(stroke_ab[0]), 2),
            "stroke_b": round(float(stroke_ab[1]), 2)}


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT, got {text!r}") from None
    if width < 64 or height < 64:
        raise argparse.ArgumentTypeError(f"--size must be at least 64x64, got {text!r}")
    return width, height


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from .color import rgb_to_lab
    from .pipeline import Colorizer
    from .training.synth_documents import render_page

    width, height = args.size
    start = time.perf_counter()
    with warnings.catch_warnings():  # the generator draws a large page on a supersampled canvas, on purpose
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        rgb = render_page(args.seed, height, width)
    lab = rgb_to_lab(torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None])
    report: dict = {"size": f"{width}x{height}", "seed": args.seed, "render_s": round(time.perf_counter() - start, 1)}
    red_lab, red = with_red_rubrics(lab)
    report["upsampling"] = upsampling_bleed(red_lab, red)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    if args.save_gray is not None:
        Image.fromarray(gray).save(args.save_gray)
    colorizer = Colorizer(args.model, args.device)
    start = time.perf_counter()
    out = colorizer.colorize_array(gray)
    report["pipeline"] = {"model": args.model, "content": (colorizer.last_content or [None])[0],
                          "seconds": round(time.perf_counter() - start, 2), **pipeline_halo(out, lab[:, :1])}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-page", help="measure colour bleed across the strokes of a large synthetic scanned page",
        description="Render a synthetic page (red rubrics in its upper half), then report the ab error on the strokes, "
        "on the paper 2-4 px from them and on the far paper after guided vs bilinear upsampling from the default "
        "render grid, and the halo of the full pipeline's output (ring vs far paper).")
    p.add_argument("--size", type=_size, default=(5000, 7000), help="page WIDTHxHEIGHT in pixels (default 5000x7000)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--model", default="default")
    p.add_argument("--device", default="auto")
    p.add_argument("--save-gray", type=Path, default=None, help="also save the gray page here (e.g. for a memory run)")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=run)

