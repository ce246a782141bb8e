"""``tinct eval``: colorize the L of colour images and score the result against the real colours.

Metrics per model (and for the all-gray baseline), per evaluation set: AuC of the per-pixel ab error CDF over
thresholds 0–150 (Zhang et al. 2016), PSNR of the sRGB output, Hasler–Süsstrunk colorfulness of the output
and its ratio to the ground truth's, wrong-vivid pixels (output chroma > 20 while the ab error > 30), the mean
cast (Δa, Δb of output minus truth over all pixels) and the per-page cast (mean over images of the length of
each image's mean ab error vector).

Evaluation sets (:data:`EVAL_SETS`, files under ``shared/data``): ``v1`` the fixed validation split of the first
model (``core/training/val_split.txt``), ``photos`` (``photos/VALIDATION.txt``), and the validation pages of
``documents/VALIDATION.txt`` split into ``documents-illuminated`` (listed in ``core/documents_illuminated.txt``)
and ``documents-written`` (the rest).
"""

from __future__ import annotations

import argparse
import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .color import lab_to_rgb, rgb_to_lab
from .errors import InputError, OutputError, UsageError
from .fs import write_atomically
from .imageio import read_image
from .metrics import auc_ab, colorfulness, mean_cast, psnr, wrong_vivid_mask
from .options import TEMPERATURE
from .options import add_argument as add_option
from .options import check_arguments
from .paths import data_dir
from .training.data import GRAY_CHROMA_LIMIT

GRAY_BASELINE = "gray"
EVAL_SETS = ("v1", "photos", "documents-written", "documents-illuminated")
ILLUMINATED_LIST = Path(__file__).with_name("documents_illuminated.txt")
WORST_COUNT = 12
TILE_HEIGHT = 160


@dataclass
class ModelScores:
    """Running sums of one model's per-image metrics over one set."""

    auc: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    colorfulness: list[float] = field(default_factory=list)
    wrong_vivid: list[float] = field(default_factory=list)  # per image, fraction
    page_cast: list[float] = field(default_factory=list)  # per image, |mean ab error vector|
    vivid_pixels: int = 0
    pixels: int = 0
    cast_sum: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def add(self, pred_ab: torch.Tensor, L: torch.Tensor, true_ab: torch.Tensor, true_rgb: torch.Tensor) -> torch.Tensor:
        """Score one image (``[1, *, H, W]`` tensors); returns the output sRGB ``[3, H, W]``."""
        rgb = lab_to_rgb(torch.cat([L, pred_ab], dim=1))[0]
        self.auc.append(auc_ab(pred_ab, true_ab))
        self.psnr.append(psnr(rgb, true_rgb))
        self.colorfulness.append(colorfulness(rgb))
        vivid = int(wrong_vivid_mask(pred_ab, true_ab).sum())
        n = pred_ab.shape[-1] * pred_ab.shape[-2]
        self.vivid_pixels += vivid
        self.pixels += n
        self.wrong_vivid.append(vivid / n)
        cast = np.array(mean_cast(pred_ab, true_ab))
        self.cast_sum += cast * n
        self.page_cast.append(float(np.hypot(*cast)))
        return rgb

    def summary(self, truth_colorfulness: float) -> dict[str, float]:
        """Means over the set; wrong-vivid and the mean cast are pooled over pixels, the rest over images."""
        cast = self.cast_sum / max(self.pixels, 1)
        cf = float(np.mean(self.colorfulness))
        return {
            "auc": 100.0 * float(np.mean(self.auc)),
            "psnr": float(np.mean(self.psnr)),
            "colorfulness": cf,
            "colorfulness_ratio": cf / truth_colorfulness if truth_colorfulness > 0 else float("nan"),
            "wrong_vivid": 100.0 * self.vivid_pixels / max(self.pixels, 1),
            "cast_a": float(cast[0]),
            "cast_b": float(cast[1]),
            "per_page_cast": float(np.mean(self.page_cast)),
        }


def read_colour_image(path: Path) -> torch.Tensor | None:
    """``[3, H, W]`` float32 sRGB in [0, 1] of an image file (read as ``tinct colorize`` reads it,
    ``core.imageio.read_image``, at 8 bits), or None when the file holds gray pixels."""
    decoded = read_image(path, max_megapixels=None)
    if decoded.is_gray:
        return None
    return torch.from_numpy(decoded.rgb8().astype(np.float32) / 255.0).permute(2, 0, 1)


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"evaluation list not found: {path}")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def set_files(name: str, root: Path | None = None) -> list[Path]:
    """The files of evaluation set ``name`` (one of :data:`EVAL_SETS`) under ``root`` (default ``shared/data``)."""
    from .training.data import VAL_SPLIT_FILE

    root = root or data_dir()
    if name == "v1":
        return [root / rel for rel in _read_list(VAL_SPLIT_FILE)]
    if name == "photos":
        return [root / "photos" / rel for rel in _read_list(root / "photos" / "VALIDATION.txt")]
    if name in ("documents-written", "documents-illuminated"):
        pages = _read_list(root / "documents" / "VALIDATION.txt")
        illuminated = set(_read_list(ILLUMINATED_LIST))
        keep = [p for p in pages if (p in illuminated) == (name == "documents-illuminated")]
        return [root / "documents" / rel for rel in keep]
    raise UsageError(f"unknown evaluation set {name!r} (choose from {', '.join(EVAL_SETS)})")


def parse_sets(text: str) -> list[str]:
    """``"all"`` or a comma-separated list of :data:`EVAL_SETS` names -> the names, in the order given."""
    names = list(EVAL_SETS) if text.strip() == "all" else [s.strip() for s in text.split(",") if s.strip()]
    for n in names:
        if n not in EVAL_SETS:
            raise UsageError(f"unknown evaluation set {n!r} (choose from {', '.join(EVAL_SETS)} or all)")
    if not names:
        raise UsageError("--sets is empty")
    return names


def evaluation_files(paths: list[str], limit: int | None) -> list[Path]:
    """Expand files and folders; the default (no paths) is the fixed validation split ``v1``."""
    from .training.data import IMAGE_SUFFIXES, list_images

    if not paths:
        files = set_files("v1")
    else:
        files = []
        for p in map(Path, paths):
            if p.is_dir():
                files.extend(list_images(p))
            elif p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                files.append(p)
            else:
                raise InputError(f"not an image file or folder: {p}")
    return files[:limit] if limit else files


class WorstImages:
    """The :data:`WORST_COUNT` images where one model had the most wrong-vivid pixels, kept as grid tiles."""

    def __init__(self, model: str, count: int = WORST_COUNT):
        self.model = model
        self.count = count
        self._heap: list[tuple[float, int, str, list[Image.Image]]] = []
        self._n = 0

    def wants(self, score: float) -> bool:
        return len(self._heap) < self.count or score > self._heap[0][0]

    def offer(self, score: float, label: str, row: list[torch.Tensor]) -> None:
        """``row``: ``[3, H, W]`` images (input, models…, truth) of one image that scored ``score``."""
        if not self.wants(score):
            return
        entry = (score, self._n, label, [_tile(t) for t in row])
        self._n += 1
        if len(self._heap) < self.count:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heapreplace(self._heap, entry)

    def rows(self) -> list[tuple[float, str, list[Image.Image]]]:
        """Worst first."""
        return [(s, label, tiles) for s, _, label, tiles in sorted(self._heap, key=lambda e: (-e[0], e[1]))]


def evaluate(
    files: list[Path],
    models: list[str],
    *,
    temperature: float = TEMPERATURE,
    render_size: int | None = None,
    device: str = "auto",
    post: tuple[str, ...] = (),
    grid: Path | None = None,
    grid_count: int = 6,
    progress: bool = True,
    colorizers: dict | None = None,
    worst: WorstImages | None = None,
    label: str = "eval",
) -> dict:
    """Score ``models`` (and the gray baseline) on ``files``; optionally save an example grid PNG.

    Args:
        colorizers: already built ``{name: Colorizer}`` to reuse across sets (built here when None).
        worst: collects the images where its model was most wrong-vivid (its model must be in ``models``).
        label: the set's name, for the progress bar and the worst-images grid.
    Returns:
        A JSON-ready dict: ``{"images": n, "skipped_gray": [...], "temperature": T, "models": {name: {auc, psnr,
        colorfulness, colorfulness_ratio, wrong_vivid, cast_a, cast_b, per_page_cast}}, "ground_truth":
        {"colorfulness": ...}}``. AuC and wrong-vivid are in percent, casts in ab units.
    """
    from tqdm import tqdm

    from .pipeline import Colorizer

    if colorizers is None:
        colorizers = {m: Colorizer(m, device=device) for m in models}
    if worst is not None and worst.model not in models:
        raise UsageError(f"--grid-worst {worst.model}: that model is not among the evaluated models ({', '.join(models)})")
    scores = {m: ModelScores() for m in [GRAY_BASELINE, *models]}
    gt_colorfulness: list[float] = []
    skipped: list[str] = []
    tiles: list[list[torch.Tensor]] = []
    for path in tqdm(files, desc=label, unit="img", disable=not progress):
        rgb = read_colour_image(path)
        lab = rgb_to_lab(rgb[None]) if rgb is not None else None
        if lab is None or lab[:, 1:].abs().max() <= GRAY_CHROMA_LIMIT:
            skipped.append(path.name)
            continue
        L, ab = lab[:, :1], lab[:, 1:]
        gt_colorfulness.append(colorfulness(rgb))
        row = [scores[GRAY_BASELINE].add(torch.zeros_like(ab), L, ab, rgb)]
        for name in models:
            pred = colorizers[name].colorize_L(L, temperature=temperature, render_size=render_size, post=post)
            row.append(scores[name].add(pred.cpu(), L, ab, rgb))
        if grid is not None and len(tiles) < grid_count:
            tiles.append([*row, rgb])
        if worst is not None:
            worst.offer(scores[worst.model].wrong_vivid[-1], f"{label}/{path.name}", [*row, rgb])
    if not gt_colorfulness:
        raise InputError("no colour images to evaluate")
    gt = float(np.mean(gt_colorfulness))
    report = {
        "images": len(gt_colorfulness),
        "skipped_gray": skipped,
        "temperature": temperature,
        "models": {m: s.summary(gt) for m, s in scores.items()},
        "ground_truth": {"colorfulness": gt},
    }
    if grid is not None:
        save_grid(tiles, grid, header=[f"{GRAY_BASELINE} (input)", *models, "ground truth"])
        report["grid"] = str(grid)
    return report


def _tile(t: torch.Tensor, tile_height: int = TILE_HEIGHT) -> Image.Image:
    """``[3, H, W]`` sRGB in [0, 1] -> a PIL image ``tile_height`` tall."""
    im = Image.fromarray((t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    return im.resize((max(1, round(im.width * tile_height / im.height)), tile_height), Image.BICUBIC)


def _save_tiles(pil_rows: list[list[Image.Image]], path: Path, header: list[str], row_labels: list[str] | None = None,
                tile_height: int = TILE_HEIGHT) -> None:
    from PIL import ImageDraw

    col_w = [max(r[i].width for r in pil_rows) for i in range(len(header))]
    label_h = 18
    row_h = tile_height + 4 + (14 if row_labels else 0)
    canvas = Image.new("RGB", (sum(col_w) + 4 * (len(col_w) - 1), label_h + len(pil_rows) * row_h), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for i, title in enumerate(header):
        draw.text((x + 2, 2), title, fill="black")
        for j, row in enumerate(pil_rows):
            y = label_h + j * row_h
            if row_labels and i == 0:
                draw.text((2, y), row_labels[j], fill="black")
            canvas.paste(row[i], (x, y + (14 if row_labels else 0)))
        x += col_w[i] + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: canvas.save(f, format="PNG"))


def save_grid(rows: list[list[torch.Tensor]], path: Path, header: list[str], tile_height: int = TILE_HEIGHT) -> None:
    """Tile ``rows`` of ``[3, H, W]`` images (each resized to ``tile_height``) into one PNG, written atomically."""
    _save_tiles([[_tile(t, tile_height) for t in row] for row in rows], path, header, tile_height=tile_height)


def save_worst_grid(worst: WorstImages, models: list[str], path: Path) -> None:
    """input | the worst model | the other models | truth, one row per image, the most wrong-vivid first."""
    rows = worst.rows()
    if not rows:
        raise InputError("no images for the worst-images grid")
    order = [0, 1 + models.index(worst.model)] + [1 + i for i, m in enumerate(models) if m != worst.model] + [len(models) + 1]
    header = ["input (L)", worst.model, *[m for m in models if m != worst.model], "ground truth"]
    pil_rows = [[tiles[i] for i in order] for _, _, tiles in rows]
    labels = [f"{label}: {100 * score:.1f} % wrong-vivid" for score, label, _ in rows]
    _save_tiles(pil_rows, path, header, row_labels=labels)


def format_table(report: dict, title: str | None = None) -> str:
    """Markdown table of a report from :func:`evaluate`."""
    gt = report["ground_truth"]["colorfulness"]
    head = f"{report['images']} images, T = {report['temperature']}"
    lines = [
        f"{title}: {head}" if title else head,
        "",
        "| model | AuC (%) | PSNR (dB) | colorfulness | vs ground truth | wrong-vivid (%) | cast Δa, Δb | per-page cast |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["models"].items():
        lines.append(f"| {name} | {s['auc']:.2f} | {s['psnr']:.2f} | {s['colorfulness']:.2f} | {s['colorfulness_ratio']:.2f}× "
                     f"| {s['wrong_vivid']:.1f} | {s['cast_a']:+.1f}, {s['cast_b']:+.1f} | {s['per_page_cast']:.1f} |")
    lines.append(f"| ground truth | 100 | ∞ | {gt:.2f} | 1.00× | 0 | 0, 0 | 0 |")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score models on colour images (AuC, PSNR, colorfulness, wrong-vivid, cast) against the gray baseline",
        description="Colorize the Lab-L of every colour image (grayscale files are skipped) and report, for each model "
        "and the all-gray baseline: AuC of the ab error CDF (0-150, Zhang et al. 2016), PSNR, colorfulness (Hasler & "
        "Süsstrunk) and its ratio to the truth, wrong-vivid pixels (chroma > 20 while the ab error > 30), the mean cast "
        "(output minus truth, Δa, Δb) and the per-page cast. Without INPUT, scores each validation set of ../shared/data "
        f"({', '.join(EVAL_SETS)}).",
    )
    p.add_argument("inputs", nargs="*", help="image files or folders (default: the validation sets of --sets)")
    p.add_argument("--sets", default=None,
                   help=f"comma-separated validation sets or 'all' (default all when no INPUT): {', '.join(EVAL_SETS)}")
    p.add_argument("--model", "--models", dest="models", default="default", help="comma-separated model names")
    add_option(p, "temperature")
    p.add_argument("--render-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--post", default="", help="post-processing steps, e.g. segments,crf,tv")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N files of each set")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    p.add_argument("--grid", type=Path, default=None,
                   help="save a PNG grid of examples here (with several sets, one file per set: NAME_SET.png)")
    p.add_argument("--grid-worst", metavar="MODEL", default=None,
                   help=f"also save a grid of the {WORST_COUNT} images (over all sets) where MODEL was most wrong-vivid: "
                   "input | MODEL | the other models | truth")
    p.add_argument("--grid-worst-out", type=Path, default=None, help="where the --grid-worst PNG goes (default worst_MODEL.png, which must not exist yet)")
    p.set_defaults(func=run)


def _grid_path(grid: Path | None, set_name: str, several: bool) -> Path | None:
    if grid is None or not several:
        return grid
    return grid.with_name(f"{grid.stem}_{set_name}{grid.suffix or '.png'}")


def run(args: argparse.Namespace) -> int:
    from .pipeline import Colorizer
    from .post import parse_post_steps

    problem = check_arguments(args, ("temperature",))
    if problem:
        raise UsageError(problem)
    try:
        post = parse_post_steps(args.post) if args.post else ()
    except ValueError as error:
        raise UsageError(f"--post: {error}") from None
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.inputs and args.sets:
        raise UsageError("give either INPUT files/folders or --sets, not both")
    worst_out = None
    if args.grid_worst is not None:
        if args.grid_worst not in models:
            raise UsageError(f"--grid-worst {args.grid_worst}: not among --models ({', '.join(models)})")
        worst_out = args.grid_worst_out or Path(f"worst_{args.grid_worst}.png")
        if args.grid_worst_out is None and worst_out.exists():  # only a path the user named is replaced
            raise OutputError(f"{worst_out} exists; name the grid with --grid-worst-out")
    if args.inputs:
        sets = {"inputs": evaluation_files(args.inputs, args.limit)}
    else:
        names = parse_sets(args.sets or "all")
        sets = {n: set_files(n)[: args.limit] if args.limit else set_files(n) for n in names}
        for n, files in sets.items():
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise InputError(f"set {n}: {len(missing)} listed files missing, e.g. {missing[0]}")
    colorizers = {m: Colorizer(m, device=args.device) for m in models}
    worst = WorstImages(args.grid_worst) if args.grid_worst else None
    reports = {}
    for name, files in sets.items():
        reports[name] = evaluate(files, models, temperature=args.temperature, render_size=args.render_size,
                                 post=post, grid=_grid_path(args.grid, name, len(sets) > 1),
                                 colorizers=colorizers, worst=worst, label=name)
        print(format_table(reports[name], title=name if len(sets) > 1 or name != "inputs" else None))
        print()
    result: dict = {"sets": reports}
    if worst is not None:
        save_worst_grid(worst, models, worst_out)
        result["grid_worst"] = str(worst_out)
        print(f"worst-images grid: {worst_out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(args.json, lambda f: f.write(json.dumps(result, indent=1).encode()))
    return 0
