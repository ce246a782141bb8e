"""Measure post-processing on BSDS500 val against its human segmentations.

Metrics (per image, then averaged; all at full image resolution, ab in ab units):

- ``homogeneity``: area-weighted mean, over ground-truth segments, of the ab standard deviation
  inside the segment (``sqrt(var a + var b)``); averaged over the annotators. Lower = fewer blotches.
- ``leakage``: for pixel pairs ``band`` pixels either side of a ground-truth boundary (horizontal and
  vertical pairs whose labels differ), the colour contrast the prediction lost against the truth,
  ``mean(max(|ab_true(i) - ab_true(j)| - |ab_pred(i) - ab_pred(j)|, 0))``. Lower = fewer halos.
- ``auc``: area under the CDF of per-pixel ab L2 error over thresholds 0..150 (Zhang et al. 2016), in %.
- ``colorfulness``: Hasler & Süsstrunk (2003) on 8-bit sRGB.

AuC and colourfulness come from ``core.metrics``; homogeneity and leakage are defined here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.metrics import auc_ab, colorfulness
from core.options import TEMPERATURE

from .steps import POST_STEPS, apply_post

# The combinations reported: the raw output, each step alone, all together.
DEFAULT_COMBINATIONS: tuple[tuple[str, ...], ...] = ((), ("crf",), ("segments",), ("tv",), POST_STEPS)
LEAKAGE_BAND = 3


def auc_percent(pred_ab: np.ndarray, true_ab: np.ndarray) -> float:
    """``core.metrics.auc_ab`` in % for ``[2,H,W]`` numpy ab (thresholds 0..150)."""
    return 100.0 * auc_ab(torch.from_numpy(pred_ab), torch.from_numpy(true_ab))


def segment_homogeneity(ab: np.ndarray, segmentation: np.ndarray) -> float:
    """Area-weighted mean ab std inside segments: ``ab [2,H,W]``, ``segmentation [H,W]`` int labels."""
    labels = np.unique(segmentation.ravel(), return_inverse=True)[1]
    counts = np.bincount(labels).astype(np.float64)
    variance = np.zeros_like(counts)
    for channel in ab.reshape(2, -1).astype(np.float64):
        mean = np.bincount(labels, channel) / counts
        variance += np.bincount(labels, channel**2) / counts - mean**2
    return float((counts * np.sqrt(np.clip(variance, 0.0, None))).sum() / counts.sum())


def boundary_leakage(pred_ab: np.ndarray, true_ab: np.ndarray, segmentation: np.ndarray,
                     band: int = LEAKAGE_BAND) -> float:
    """Contrast lost across ground-truth boundaries (see module docstring); ab units, >= 0."""
    lost = []
    for axis in (1, 2):
        n = pred_ab.shape[axis] - 2 * band
        if n <= 0:
            continue
        near = [slice(None)] * 3
        far = [slice(None)] * 3
        near[axis], far[axis] = slice(0, n), slice(2 * band, 2 * band + n)
        seg_near = segmentation[tuple(near[1:])]
        seg_far = segmentation[tuple(far[1:])]
        across = seg_near != seg_far
        if not across.any():
            continue
        true_contrast = np.sqrt(((true_ab[tuple(near)] - true_ab[tuple(far)]) ** 2).sum(axis=0))[across]
        pred_contrast = np.sqrt(((pred_ab[tuple(near)] - pred_ab[tuple(far)]) ** 2).sum(axis=0))[across]
        lost.append(np.clip(true_contrast - pred_contrast, 0.0, None))
    return float(np.concatenate(lost).mean()) if lost else 0.0


@dataclass(frozen=True)
class ValImage:
    """One BSDS500 val image: ``L [H,W]`` 0..100, ``ab [2,H,W]`` ab units, human segmentations."""

    name: str
    L: np.ndarray
    ab: np.ndarray
    segmentations: tuple[np.ndarray, ...]


def load_bsds_val(data_dir: Path, limit: int | None = None) -> list[ValImage]:
    """Load BSDS500 val images (sorted by name) with their ground-truth segmentations."""
    from core.imageio import read_image
    from scipy.io import loadmat
    from skimage.color import rgb2lab

    truth_dir = data_dir / "bsds500" / "groundTruth" / "val"
    image_dir = data_dir / "bsds500" / "val"
    mats = sorted(truth_dir.glob("*.mat"))
    if not mats:
        raise FileNotFoundError(f"no BSDS500 ground truth in {truth_dir}")
    images = []
    for mat in mats[:limit]:
        rgb = read_image(image_dir / f"{mat.stem}.jpg", max_megapixels=None).rgb8()
        lab = rgb2lab(rgb).astype(np.float32)
        truth = loadmat(mat)["groundTruth"][0]
        segs = tuple(np.asarray(truth[k]["Segmentation"][0, 0], dtype=np.int64) for k in range(truth.shape[0]))
        images.append(ValImage(mat.stem, lab[..., 0], np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1)), segs))
    return images


@dataclass(frozen=True)
class NetworkOutput:
    """What a model produced for one image, at its output resolution (see ``apply_post``)."""

    logits: Tensor | None
    ab: Tensor | None
    L: Tensor
    bin_centers: Tensor | None
    logit_fold: float


Predictor = Callable[[ValImage], NetworkOutput]


def area_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize ``[N,C,H,W]`` to ``size`` (area when shrinking, bilinear when growing)."""
    if size[0] <= x.shape[2] and size[1] <= x.shape[3]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def synthetic_predictor(bin_centers: Tensor, out_stride: int = 4) -> Predictor:
    """A stand-in for a model: the true ab at 1/``out_stride`` resolution, degraded with halos,
    blotches and noise by ``synthetic.degraded_logits`` (deterministic per image)."""
    from .synthetic import degraded_logits

    def predict(image: ValImage) -> NetworkOutput:
        size = (image.L.shape[0] // out_stride, image.L.shape[1] // out_stride)
        L = area_resize(torch.from_numpy(image.L)[None, None], size)
        ab = area_resize(torch.from_numpy(image.ab)[None], size)
        seed = int(image.name) if image.name.isdigit() else 0
        return NetworkOutput(degraded_logits(ab, bin_centers, seed=seed), None, L, bin_centers, 1.0)

    return predict


def model_predictor(model: torch.nn.Module, render_size: int = 256, device: str = "cpu") -> Predictor:
    """Run ``model`` (the contract of ``core.models``) on L resized to ``render_size`` on its long side."""
    stride = int(getattr(model, "stride", 8))

    def predict(image: ValImage) -> NetworkOutput:
        h, w = image.L.shape
        scale = render_size / max(h, w)
        size = (max(stride, round(h * scale / stride) * stride), max(stride, round(w * scale / stride) * stride))
        L_in = area_resize(torch.from_numpy(image.L)[None, None], size).to(device)
        with torch.no_grad():
            out = model(L_in).float()
        L_out = area_resize(L_in, tuple(out.shape[2:]))
        if model.output == "logits":
            return NetworkOutput(out, None, L_out, model.bin_centers.float(), float(model.logit_fold))
        return NetworkOutput(None, out, L_out, None, 1.0)

    return predict


def lab_to_rgb8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """``L [H,W]`` + ``ab [2,H,W]`` -> ``[H,W,3]`` uint8 sRGB (clipped)."""
    from skimage.color import lab2rgb

    lab = np.concatenate([L[..., None], ab.transpose(1, 2, 0)], axis=-1).astype(np.float64)
    return (np.clip(lab2rgb(lab), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def combination_name(steps: Sequence[str]) -> str:
    return "+".join(steps) if steps else "raw"


def evaluate_post(
    images: Iterable[ValImage],
    predict: Predictor,
    *,
    combinations: Sequence[Sequence[str]] = DEFAULT_COMBINATIONS,
    strength: float = 1.0,
    temperature: float = TEMPERATURE,
    decode: str = "annealed",
    keep_rgb: int = 0,
) -> tuple[dict[str, dict[str, float]], list[tuple[str, list[np.ndarray]]]]:
    """Score every combination of steps on every image.

    Returns ``(table, grid_rows)``: ``table[combination][metric]`` = mean over images (metrics:
    homogeneity, leakage, auc, colorfulness, seconds = post-processing time per image), and for the
    first ``keep_rgb`` images the RGB renderings ``[gray, each combination..., truth]``.
    """
    sums: dict[str, dict[str, float]] = {combination_name(c): {} for c in combinations}
    count = 0
    grid_rows: list[tuple[str, list[np.ndarray]]] = []
    truth_sums = {"homogeneity": 0.0, "colorfulness": 0.0}
    for image in images:
        net = predict(image)
        size = image.L.shape
        renders = []
        for steps in combinations:
            start = time.perf_counter()
            ab_net = apply_post(steps, logits=net.logits, ab=net.ab, L=net.L, bin_centers=net.bin_centers,
                                logit_fold=net.logit_fold, temperature=temperature, decode=decode,
                                strength=strength)
            seconds = time.perf_counter() - start
            ab = F.interpolate(ab_net.float().cpu(), size=size, mode="bilinear", align_corners=False)[0].numpy()
            rgb = lab_to_rgb8(image.L, ab)
            scores = {
                "homogeneity": float(np.mean([segment_homogeneity(ab, s) for s in image.segmentations])),
                "leakage": float(np.mean([boundary_leakage(ab, image.ab, s) for s in image.segmentations])),
                "auc": auc_percent(ab, image.ab),
                "colorfulness": colorfulness(rgb),
                "seconds": seconds,
            }
            row = sums[combination_name(steps)]
            for key, value in scores.items():
                row[key] = row.get(key, 0.0) + value
            renders.append(rgb)
        truth_sums["homogeneity"] += float(np.mean([segment_homogeneity(image.ab, s) for s in image.segmentations]))
        truth_rgb = lab_to_rgb8(image.L, image.ab)
        truth_sums["colorfulness"] += colorfulness(truth_rgb)
        if len(grid_rows) < keep_rgb:
            gray = lab_to_rgb8(image.L, np.zeros_like(image.ab))
            grid_rows.append((image.name, [gray, *renders, truth_rgb]))
        count += 1
    if count == 0:
        raise ValueError("no images to evaluate")
    table = {name: {k: v / count for k, v in row.items()} for name, row in sums.items()}
    table["ground truth"] = {"homogeneity": truth_sums["homogeneity"] / count,
                             "leakage": 0.0, "colorfulness": truth_sums["colorfulness"] / count}
    raw = table.get("raw")
    if raw is not None:
        for name, row in table.items():
            if name in ("raw", "ground truth"):
                continue
            row["auc_drop"] = raw["auc"] - row["auc"]
            row["colorfulness_change_pct"] = 100.0 * (row["colorfulness"] / max(raw["colorfulness"], 1e-9) - 1.0)
            row["within_limits"] = float(row["auc_drop"] <= 1.0 and row["colorfulness_change_pct"] >= -10.0)
    table["_meta"] = {"images": float(count), "strength": strength, "temperature": temperature}
    return table, grid_rows


def table_markdown(table: dict[str, dict[str, float]], title: str) -> str:
    """The table as markdown (one row per combination)."""
    columns = [("homogeneity", "homogeneity ↓"), ("leakage", "leakage ↓"), ("auc", "AuC % ↑"),
               ("colorfulness", "colourfulness"), ("auc_drop", "AuC drop"),
               ("colorfulness_change_pct", "colourf. Δ%"), ("within_limits", "within limits"),
               ("seconds", "post s/img")]
    lines = [f"# {title}", "", f"images: {int(table['_meta']['images'])}, strength {table['_meta']['strength']}, "
             f"T {table['_meta']['temperature']}", "",
             "| steps | " + " | ".join(label for _, label in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    names = [name for name in table if name not in ("_meta", "ground truth")]
    for name, row in table.items():
        if name == "_meta":
            continue
        cells = []
        for key, _ in columns:
            if key not in row:
                cells.append("")
            elif key == "within_limits":
                cells.append("yes" if row[key] else "NO")
            else:
                cells.append(f"{row[key]:.3f}" if key == "seconds" else f"{row[key]:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Grid columns (post_grid.png): gray input, {', '.join(names)}, ground truth."]
    return "\n".join(lines) + "\n"


def image_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], cell_width: int = 200) -> np.ndarray:
    """Tile RGB renderings: one row per image, columns resized to ``cell_width``; ``[H,W,3]`` uint8."""
    from PIL import Image

    tiles = []
    for _, images in rows:
        row = []
        for rgb in images:
            h, w = rgb.shape[:2]
            size = (cell_width, max(1, round(h * cell_width / w)))
            row.append(np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR)))
        height = max(t.shape[0] for t in row)
        row = [np.pad(t, ((0, height - t.shape[0]), (0, 2), (0, 0)), constant_values=255) for t in row]
        tiles.append(np.pad(np.concatenate(row, axis=1), ((0, 2), (0, 0), (0, 0)), constant_values=255))
    width = max(t.shape[1] for t in tiles)
    return np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255)
                           for t in tiles], axis=0)


def write_report(table: dict[str, dict[str, float]], grid_rows, out_dir: Path, title: str) -> list[Path]:
    """Write ``post_eval.md``, ``post_eval.json`` and (if there are rows) ``post_grid.png`` into ``out_dir``."""
    import io

    from PIL import Image

    from ..fs import write_atomically

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "post_eval.md", out_dir / "post_eval.json"]
    write_atomically(written[0], lambda f: f.write(table_markdown(table, title).encode()))
    write_atomically(written[1], lambda f: f.write((json.dumps(table, indent=2) + "\n").encode()))
    if grid_rows:
        buffer = io.BytesIO()
        Image.fromarray(image_grid(grid_rows)).save(buffer, format="PNG")
        written.append(out_dir / "post_grid.png")
        write_atomically(written[-1], lambda f: f.write(buffer.getvalue()))
    return written


def bench_post(
    size: tuple[int, int] = (128, 128),
    num_bins: int = 313,
    repeats: int = 3,
    device: str = "cpu",
    combinations: Sequence[Sequence[str]] = DEFAULT_COMBINATIONS,
) -> dict[str, float]:
    """Median seconds of ``apply_post`` per combination on random logits of ``[1,num_bins,*size]``.

    ``size`` is the network-output grid (a 12 MP photo rendered at 512 px gives about 128x96).
    """
    from .synthetic import grid_bin_centers

    bins = grid_bin_centers()
    if num_bins > bins.shape[0]:
        raise ValueError(f"num_bins must be <= {bins.shape[0]}, got {num_bins}")
    order = torch.argsort(bins.norm(dim=1))
    bins = bins[order[:num_bins]].to(device)
    generator = torch.Generator().manual_seed(0)
    logits = (3.0 * torch.randn((1, num_bins) + tuple(size), generator=generator)).to(device)
    L = (100.0 * torch.rand((1, 1) + tuple(size), generator=generator)).to(device)
    results = {}
    for steps in combinations:
        times = []
        for _ in range(repeats + 1):  # the first run warms caches
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            apply_post(steps, logits=logits, ab=None, L=L, bin_centers=bins, logit_fold=1.0,
                       temperature=TEMPERATURE, decode="annealed")
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        results[combination_name(steps)] = float(np.median(times[1:]))
    return results
