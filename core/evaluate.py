"""``tinct eval``: colorize the L of colour images and score the result against the real colours.

Metrics per model (and for the all-gray baseline): AuC of the per-pixel ab error CDF over thresholds
0–150 (Zhang et al. 2016), PSNR of the sRGB output, and Hasler–Süsstrunk colorfulness of the output
next to the ground truth's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .color import lab_to_rgb, rgb_to_lab
from .imageio import write_atomically
from .metrics import auc_ab, colorfulness, psnr
from .paths import data_dir
from .training.data import GRAY_CHROMA_LIMIT

GRAY_BASELINE = "gray"


@dataclass
class ModelScores:
    """Running sums of one model's per-image metrics."""

    auc: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    colorfulness: list[float] = field(default_factory=list)

    def add(self, pred_ab: torch.Tensor, L: torch.Tensor, true_ab: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        """Score one image (``[1, *, H, W]`` tensors); returns the output sRGB ``[3, H, W]``."""
        rgb = lab_to_rgb(torch.cat([L, pred_ab], dim=1))[0]
        self.auc.append(auc_ab(pred_ab, true_ab))
        self.psnr.append(psnr(rgb, true_rgb))
        self.colorfulness.append(colorfulness(rgb))
        return rgb

    def summary(self) -> dict[str, float]:
        return {
            "auc": 100.0 * float(np.mean(self.auc)),
            "psnr": float(np.mean(self.psnr)),
            "colorfulness": float(np.mean(self.colorfulness)),
        }


def read_colour_image(path: Path) -> torch.Tensor | None:
    """``[3, H, W]`` float32 sRGB in [0, 1], or None when the file is grayscale (or nearly so)."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "RGBA", "P", "CMYK"):
            return None
        rgb = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    return rgb


def evaluation_files(paths: list[str], limit: int | None) -> list[Path]:
    """Expand files and folders; the default (no paths) is the fixed validation split."""
    from .training.data import IMAGE_SUFFIXES, list_images, validation_split

    if not paths:
        files = [data_dir() / rel for rel in validation_split()]
    else:
        files = []
        for p in map(Path, paths):
            if p.is_dir():
                files.extend(list_images(p))
            elif p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                files.append(p)
            else:
                raise FileNotFoundError(f"not an image file or folder: {p}")
    return files[:limit] if limit else files


def evaluate(
    files: list[Path],
    models: list[str],
    *,
    temperature: float = 0.38,
    render_size: int | None = None,
    device: str = "auto",
    post: tuple[str, ...] = (),
    grid: Path | None = None,
    grid_count: int = 6,
    progress: bool = True,
) -> dict:
    """Score ``models`` (and the gray baseline) on ``files``; optionally save an example grid PNG.

    Returns a JSON-ready dict: ``{"images": n, "skipped_gray": [...], "models": {name: {auc, psnr, colorfulness}},
    "ground_truth": {"colorfulness": ...}}``. AuC is in percent.
    """
    from tqdm import tqdm

    from .pipeline import Colorizer

    colorizers = {m: Colorizer(m, device=device) for m in models}
    scores = {m: ModelScores() for m in [GRAY_BASELINE, *models]}
    gt_colorfulness: list[float] = []
    skipped: list[str] = []
    tiles: list[list[torch.Tensor]] = []
    for path in tqdm(files, desc="eval", unit="img", disable=not progress):
        rgb = read_colour_image(path)
        lab = rgb_to_lab(rgb[None]) if rgb is not None else None
        if lab is None or lab[:, 1:].abs().max() <= GRAY_CHROMA_LIMIT:
            skipped.append(path.name)
            continue
        L, ab = lab[:, :1], lab[:, 1:]
        gt_colorfulness.append(colorfulness(rgb))
        row = [scores[GRAY_BASELINE].add(torch.zeros_like(ab), L, ab, rgb)]
        for name, colorizer in colorizers.items():
            pred = colorizer.colorize_L(L, temperature=temperature, render_size=render_size, post=post)
            row.append(scores[name].add(pred.cpu(), L, ab, rgb))
        if grid is not None and len(tiles) < grid_count:
            tiles.append([*row, rgb])
    if not gt_colorfulness:
        raise ValueError("no colour images to evaluate")
    report = {
        "images": len(gt_colorfulness),
        "skipped_gray": skipped,
        "temperature": temperature,
        "models": {m: s.summary() for m, s in scores.items()},
        "ground_truth": {"colorfulness": float(np.mean(gt_colorfulness))},
    }
    if grid is not None:
        save_grid(tiles, grid, header=[f"{GRAY_BASELINE} (input)", *models, "ground truth"])
        report["grid"] = str(grid)
    return report


def save_grid(rows: list[list[torch.Tensor]], path: Path, header: list[str], tile_height: int = 160) -> None:
    """Tile ``rows`` of ``[3, H, W]`` images (each resized to ``tile_height``) into one PNG, written atomically."""
    from PIL import ImageDraw

    pil_rows = []
    for row in rows:
        ims = []
        for t in row:
            im = Image.fromarray((t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
            ims.append(im.resize((max(1, round(im.width * tile_height / im.height)), tile_height), Image.BICUBIC))
        pil_rows.append(ims)
    col_w = [max(r[i].width for r in pil_rows) for i in range(len(header))]
    label_h = 18
    canvas = Image.new("RGB", (sum(col_w) + 4 * (len(col_w) - 1), label_h + len(pil_rows) * (tile_height + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, title in enumerate(header):
        draw.text((x + 2, 2), title, fill="black")
        for j, row in enumerate(pil_rows):
            canvas.paste(row[i], (x, label_h + j * (tile_height + 4)))
        x += col_w[i] + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: canvas.save(f, format="PNG"))


def format_table(report: dict) -> str:
    """Markdown table of a report from :func:`evaluate`."""
    gt = report["ground_truth"]["colorfulness"]
    lines = [
        f"{report['images']} images, T = {report['temperature']}",
        "",
        "| model | AuC (%) | PSNR (dB) | colorfulness | vs ground truth |",
        "|---|---|---|---|---|",
    ]
    for name, s in report["models"].items():
        lines.append(f"| {name} | {s['auc']:.2f} | {s['psnr']:.2f} | {s['colorfulness']:.2f} | {s['colorfulness'] / gt:.2f}× |")
    lines.append(f"| ground truth | 100 | ∞ | {gt:.2f} | 1.00× |")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score models on colour images (AuC, PSNR, colorfulness) against the gray baseline",
        description="Colorize the Lab-L of every colour image (grayscale files are skipped) and report AuC of the ab "
        "error CDF (0-150, Zhang et al. 2016), PSNR and colorfulness (Hasler & Süsstrunk), for each model and the "
        "all-gray baseline. Without INPUT, uses the fixed validation split of ../shared/data.",
    )
    p.add_argument("inputs", nargs="*", help="image files or folders (default: the validation split)")
    p.add_argument("--model", "--models", dest="models", default="default", help="comma-separated model names")
    p.add_argument("--temperature", type=float, default=0.38)
    p.add_argument("--render-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--post", default="", help="post-processing steps, e.g. segments,crf,tv")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N files")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    p.add_argument("--grid", type=Path, default=None, help="save a PNG grid of examples here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .post import parse_post_steps

    try:
        files = evaluation_files(args.inputs, args.limit)
        post = parse_post_steps(args.post) if args.post else ()
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        report = evaluate(files, models, temperature=args.temperature, render_size=args.render_size,
                          device=args.device, post=post, grid=args.grid)
    except Exception as exc:  # one readable line for the user; the traceback helps nobody here
        from weights_fetch import WeightsError

        if not isinstance(exc, (WeightsError, ValueError, FileNotFoundError, OSError)):
            raise
        print(f"tinct eval: {exc}", file=sys.stderr)
        return 1
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0
