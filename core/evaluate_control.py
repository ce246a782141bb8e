"""``tinct eval-hints``: measure user control on the validation images (hints, reference, confidence).

For each colour validation image (the list of ``tinct eval``, ``core.evaluate.evaluation_files``):

- **hints** (models that take hints): 0, 1 and 10 random true-colour 5 x 5 patches (each hinted with
  the patch's mean true ab, Zhang et al. 2017), seeded per image -> AuC and PSNR against no hints;
- **reference** (classification models): the true photo as its own reference -> AuC gain; the
  validation photo whose lightness histogram is nearest (a different photo of a similar scene,
  chosen without looking at colour) as reference -> does the output's mean colour move toward it;
- **confidence** (classification models): pixels ranked by confidence within each image; the mean
  ab error of the least-confident third over that of the most-confident third;
- a figure: input | automatic | hint layer | result with hints | confidence map.

Deterministic for a given ``--seed``. Writes a JSON report and the PNG figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .color import lab_to_rgb, rgb_to_lab
from .errors import InputError, UsageError
from .evaluate import ModelScores, evaluation_files, read_colour_image, save_grid
from .hints import patch_hints
from .fs import write_atomically
from .metrics import auc_ab, colorfulness
from .reference import DEFAULT_STRENGTH, ab_histogram

DEFAULT_PATCHES = (0, 1, 10)
PATCH_SIZE = 5
L_HISTOGRAM_BINS = 32
GRAY_CHROMA = 5.0  # as core.evaluate: images whose |ab| never exceeds this are skipped


def l_histogram(L: torch.Tensor) -> torch.Tensor:
    """Normalised histogram of L* ``[1, 1, H, W]`` in ``L_HISTOGRAM_BINS`` bins over [0, 100]."""
    hist = torch.histc(L.float().flatten(), bins=L_HISTOGRAM_BINS, min=0.0, max=100.0)
    return hist / hist.sum()


def similar_partners(l_hists: list[torch.Tensor]) -> list[int]:
    """For each image, the other image with the nearest lightness histogram (L1); gray information only."""
    stacked = torch.stack(l_hists)
    distance = torch.cdist(stacked[None], stacked[None], p=1)[0]
    distance.fill_diagonal_(float("inf"))
    return distance.argmin(dim=1).tolist()


def mean_ab(ab: torch.Tensor) -> torch.Tensor:
    """``[1, 2, H, W]`` -> its mean ``[2]``."""
    return ab.float().mean(dim=(0, 2, 3))


def confidence_thirds(error: torch.Tensor, confidence: torch.Tensor) -> tuple[float, float]:
    """Mean error of the least- and of the most-confident third of the pixels (``[..., H, W]`` each)."""
    order = confidence.flatten().argsort()
    third = max(1, order.numel() // 3)
    err = error.flatten()
    return float(err[order[:third]].mean()), float(err[order[-third:]].mean())


def hint_layer_preview(L: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor) -> torch.Tensor:
    """What the user would paint, for the figure: the hint colours (at the photo's L) over a faded copy
    of the gray photo; each patch is drawn enlarged (1/30 of the longer side) so it shows in a thumbnail.

    Returns ``[3, H, W]`` sRGB in [0, 1].
    """
    height, width = L.shape[-2:]
    grow = max(1, max(height, width) // 60)
    kernel = 2 * grow + 1
    mask = F.max_pool2d(hint_mask, kernel, stride=1, padding=grow)
    # spread each patch's colour over its enlarged square (patches are uniform, so a masked max-pool
    # of ab + an offset keeps the colour)
    offset = 200.0
    spread = F.max_pool2d((hint_ab + offset) * hint_mask, kernel, stride=1, padding=grow) - offset
    faded = L * 0.35 + 62.0
    lab = torch.cat([torch.where(mask > 0, L.clamp(35.0, 80.0), faded), torch.where(mask > 0, spread, 0.0)], dim=1)
    return lab_to_rgb(lab)[0]


def _gray_rgb(x: torch.Tensor) -> torch.Tensor:
    """``[1, 1, H, W]`` in [0, 1] -> ``[3, H, W]``."""
    return x[0].expand(3, -1, -1).clamp(0.0, 1.0)


def evaluate_control(files: list[Path], model: str, *, patches=DEFAULT_PATCHES, patch_size: int = PATCH_SIZE,
                     seed: int = 0, render_size: int | None = None, reference_strength: float = DEFAULT_STRENGTH,
                     device: str = "cpu", figure: Path | None = None, figure_count: int = 4,
                     progress: bool = True) -> dict:
    """Run the three measurements on ``files`` with ``model``; returns the JSON-ready report."""
    from tqdm import tqdm

    from .pipeline import Colorizer

    colorizer = Colorizer(model, device)
    classification = colorizer.model.output == "logits"
    takes_hints = colorizer.accepts_hints
    opts = {"render_size": render_size}

    images = []
    skipped = []
    for path in files:
        rgb = read_colour_image(path)
        lab = rgb_to_lab(rgb[None]) if rgb is not None else None
        if lab is None or float(lab[:, 1:].abs().max()) <= GRAY_CHROMA:
            skipped.append(path.name)
            continue
        images.append((path, rgb, lab))
    if not images:
        raise InputError("no colour images to evaluate")
    partners = similar_partners([l_histogram(lab[:, :1]) for _, _, lab in images]) if len(images) > 1 else [None]

    hint_scores = {k: ModelScores() for k in patches} if takes_hints else {}
    auto_scores = ModelScores()
    own_auc: list[float] = []
    moved: list[tuple[float, float]] = []
    thirds: list[tuple[float, float]] = []
    rows = []
    for index, (path, rgb, lab) in enumerate(tqdm(images, desc="eval-hints", unit="img", disable=not progress)):
        L, ab = lab[:, :1], lab[:, 1:]
        if classification:
            auto, conf = colorizer.colorize_L(L, confidence=True, **opts)
        else:
            auto, conf = colorizer.colorize_L(L, **opts), None
        auto = auto.cpu()
        auto_scores.add(auto, L, ab, rgb)
        row_hints = None
        for k in hint_scores:
            if k == 0:
                hint_scores[k].add(auto, L, ab, rgb)
                continue
            generator = torch.Generator().manual_seed(seed * 1_000_003 + index * 101 + k)
            h_ab, h_mask = patch_hints(ab, k, patch_size, generator)
            pred = colorizer.colorize_L(L, hint_ab=h_ab, hint_mask=h_mask, **opts).cpu()
            out_rgb = hint_scores[k].add(pred, L, ab, rgb)
            if k == max(patches):
                row_hints = (hint_layer_preview(L, h_ab, h_mask), out_rgb)
        if classification:
            own = colorizer.colorize_L(L, reference=ab_histogram(ab), reference_strength=reference_strength, **opts)
            own_auc.append(auc_ab(own.cpu(), ab))
            partner = partners[index]
            if partner is not None:
                ref_ab = images[partner][2][:, 1:]
                steered = colorizer.colorize_L(L, reference=ab_histogram(ref_ab),
                                               reference_strength=reference_strength, **opts).cpu()
                target = mean_ab(ref_ab)
                moved.append((float((mean_ab(auto) - target).norm()), float((mean_ab(steered) - target).norm())))
            error = (auto - ab).norm(dim=1)
            thirds.append(confidence_thirds(error, conf.cpu()))
        if figure is not None and len(rows) < figure_count:
            gray = lab_to_rgb(torch.cat([L, torch.zeros_like(ab)], dim=1))[0]
            row = [gray, lab_to_rgb(torch.cat([L, auto], dim=1))[0]]
            if row_hints is not None:
                row += list(row_hints)
            if conf is not None:
                row.append(_gray_rgb(conf.cpu()))
            rows.append(row + [rgb])

    truth_cf = float(np.mean([colorfulness(rgb) for _, rgb, _ in images]))
    report: dict = {"model": model, "images": len(images), "skipped_gray": skipped, "seed": seed,
                    "render_size": render_size, "automatic": auto_scores.summary(truth_cf)}
    if takes_hints:
        summary = {str(k): s.summary(truth_cf) for k, s in hint_scores.items()}
        base = summary[str(patches[0])] if patches[0] == 0 else auto_scores.summary(truth_cf)
        for k in patches:
            if k:
                summary[str(k)]["auc_gain"] = summary[str(k)]["auc"] - base["auc"]
                summary[str(k)]["psnr_gain"] = summary[str(k)]["psnr"] - base["psnr"]
        report["hints"] = {"patch_size": patch_size, "by_patches": summary}
    else:
        report["hints"] = {"skipped": f"model {model!r} does not take colour hints"}
    if classification:
        auto_auc = auto_scores.summary(truth_cf)["auc"]
        report["reference"] = {
            "strength": reference_strength,
            "own_reference_auc": 100.0 * float(np.mean(own_auc)),
            "own_reference_auc_gain": 100.0 * float(np.mean(own_auc)) - auto_auc,
        }
        if moved:
            before, after = np.array(moved).T
            report["reference"]["similar_photo"] = {
                "pairing": "nearest lightness histogram among the other validation images",
                "mean_ab_distance_to_reference_automatic": float(before.mean()),
                "mean_ab_distance_to_reference_steered": float(after.mean()),
                "moved_toward_fraction": float((after < before).mean()),
            }
        low, high = np.array(thirds).T
        report["confidence"] = {
            "least_confident_third_ab_error": float(low.mean()),
            "most_confident_third_ab_error": float(high.mean()),
            "ratio": float(low.mean() / max(high.mean(), 1e-9)),
            "median_image_ratio": float(np.median(low / np.maximum(high, 1e-9))),
        }
    else:
        why = f"model {model!r} is a regression model: no distribution to re-weight, no confidence map"
        report["reference"] = {"skipped": why}
        report["confidence"] = {"skipped": why}
    if figure is not None and rows:
        header = ["input", "automatic"]
        if takes_hints:
            header += [f"hints ({max(patches)}, enlarged)", "with hints"]
        if classification:
            header.append("confidence")
        save_grid(rows, figure, header=header + ["ground truth"])
        report["figure"] = str(figure)
    return report


def format_summary(report: dict) -> str:
    """A few readable lines of a report."""
    lines = [f"{report['model']}: {report['images']} images, automatic AuC {report['automatic']['auc']:.2f} %, "
             f"PSNR {report['automatic']['psnr']:.2f} dB"]
    hints = report["hints"]
    if "by_patches" in hints:
        for k, s in hints["by_patches"].items():
            gain = f" (AuC {s['auc_gain']:+.2f}, PSNR {s['psnr_gain']:+.2f} dB)" if "auc_gain" in s else ""
            lines.append(f"  hints {k:>3} patches: AuC {s['auc']:.2f} %, PSNR {s['psnr']:.2f} dB{gain}")
    else:
        lines.append(f"  hints: {hints['skipped']}")
    ref = report["reference"]
    if "skipped" in ref:
        lines.append(f"  reference / confidence: {ref['skipped']}")
        return "\n".join(lines)
    lines.append(f"  own photo as reference: AuC {ref['own_reference_auc']:.2f} % ({ref['own_reference_auc_gain']:+.2f})")
    if "similar_photo" in ref:
        s = ref["similar_photo"]
        lines.append(f"  similar photo as reference: mean-colour distance {s['mean_ab_distance_to_reference_automatic']:.2f}"
                     f" -> {s['mean_ab_distance_to_reference_steered']:.2f} ab, moved toward it in "
                     f"{100 * s['moved_toward_fraction']:.0f} % of images")
    c = report["confidence"]
    lines.append(f"  confidence: error of least-confident third {c['least_confident_third_ab_error']:.2f} / most-confident "
                 f"{c['most_confident_third_ab_error']:.2f} = {c['ratio']:.2f}x")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-hints",
        help="measure user control: colour hints, reference photos, confidence maps",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("inputs", nargs="*", help="image files or folders (default: the validation split of 'tinct eval')")
    p.add_argument("--model", default="default", help="model name (default: default)")
    p.add_argument("--patches", default=",".join(map(str, DEFAULT_PATCHES)), help="hint patch counts (default 0,1,10)")
    p.add_argument("--patch-size", type=int, default=PATCH_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--render-size", type=int, default=None)
    p.add_argument("--reference-strength", type=float, default=DEFAULT_STRENGTH)
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="only the first N files")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    p.add_argument("--figure", type=Path, default=None, help="write the PNG figure here")
    p.add_argument("--figure-count", type=int, default=4, help="rows of the figure (default 4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        patches = tuple(sorted({int(x) for x in args.patches.split(",") if x.strip()}))
    except ValueError:
        patches = ()
    if not patches or min(patches) < 0 or args.patch_size < 1:
        raise UsageError("--patches needs comma-separated counts >= 0 and --patch-size >= 1")
    files = evaluation_files(args.inputs, args.limit)
    report = evaluate_control(files, args.model, patches=patches, patch_size=args.patch_size, seed=args.seed,
                              render_size=args.render_size, reference_strength=args.reference_strength,
                              device=args.device, figure=args.figure, figure_count=args.figure_count)
    print(format_summary(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, indent=1)
        write_atomically(args.json, lambda f: f.write(text.encode("utf-8")))
    return 0
