"""``tinct colorize``: colorize image files, folders and globs."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .decode import DECODE_METHODS, DEFAULT_TEMPERATURE
from .device import DEVICE_CHOICES
from .imageio import FORMAT_SUFFIX, OUTPUT_FORMATS, DecodedImage, ImageReadError, ImageWriteError, read_image, write_image

DEFAULT_SUFFIX = "_color"
_GLOB_CHARS = set("*?[")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``colorize`` to the ``tinct`` sub-commands."""
    from .pipeline import DEFAULT_BATCH_SIZE, DEFAULT_RENDER_SIZE

    p = subparsers.add_parser(
        "colorize",
        help="colorize black-and-white photos (files, folders, globs)",
        description=(
            "Colorize images. A colour input is treated as its lightness; the output keeps the input's "
            "lightness, alpha, ICC profile and bit depth (16-bit in -> 16-bit PNG/TIFF out). Outputs go "
            "beside the inputs as NAME<suffix>.<format> unless -o/--out-dir say otherwise. Inputs are "
            "never overwritten; existing outputs only with --overwrite. Exit status 0 only when every "
            "file succeeded."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (their image files, except earlier outputs named *SUFFIX.*) or glob patterns")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT", help="output file (only with a single input)")
    where.add_argument("--out-dir", type=Path, metavar="DIR", help="write every output into DIR (created if missing)")
    p.add_argument("--model", default="default", help="model name (see 'tinct weights list'); default: the embedded model")
    p.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                   help=f"annealed-mean temperature T in (0, 1]: lower is more vivid (default {DEFAULT_TEMPERATURE})")
    p.add_argument("--decode", choices=DECODE_METHODS, default="annealed",
                   help="how to turn the predicted distribution into a colour (default annealed)")
    p.add_argument("--render-size", type=int, default=DEFAULT_RENDER_SIZE, metavar="N",
                   help=f"longer side of the network's input in pixels (default {DEFAULT_RENDER_SIZE})")
    p.add_argument("--device", default="auto",
                   help=f"{', '.join(DEVICE_CHOICES)} or cuda:N (default auto: CUDA, then MPS, then CPU)")
    p.add_argument("--post", default="", metavar="STEPS",
                   help="comma-separated post-processing steps: segments, crf, tv (default none)")
    p.add_argument("--post-strength", type=float, default=1.0, metavar="S", help="post-processing strength in [0, 1]")
    p.add_argument("--mask", type=Path, metavar="FILE",
                   help="grayscale image (white = act, black = leave) limiting where post-processing acts")
    p.add_argument("--mask-colorize", action="store_true",
                   help="limit the colorization itself to the mask; outside it the input keeps its own colours")
    p.add_argument("--fetch", action="store_true", help="download the model's weights if they are not present")
    p.add_argument("--suffix", default=DEFAULT_SUFFIX, help=f"added to output names (default {DEFAULT_SUFFIX})")
    p.add_argument("--format", choices=sorted(FORMAT_SUFFIX), dest="output_format",
                   help="output format (default: the input's if png/jpg/tif, else png)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"images whose renders share a network call (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG quality 1..100 (default 95)")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------- planning


@dataclass
class Job:
    """One input file and where its result goes."""

    source: Path
    target: Path


def expand_inputs(inputs: Sequence[str], suffix: str) -> tuple[list[Path], list[str]]:
    """Files from the command line's files, folders and glob patterns (in order, without duplicates).

    Returns:
        (files, problems): problems are one-line messages for inputs that match nothing.
    """
    from PIL import Image

    Image.init()
    image_suffixes = {ext.lower() for ext in Image.registered_extensions()}
    files: list[Path] = []
    problems: list[str] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            files.append(path)

    def add_folder(folder: Path) -> int:
        found = 0
        for child in sorted(folder.iterdir()):
            if child.is_file() and child.suffix.lower() in image_suffixes and not child.stem.endswith(suffix or "\0"):
                add(child)
                found += 1
        return found

    for text in inputs:
        path = Path(text)
        if path.is_dir():
            if not add_folder(path):
                problems.append(f"{path}: folder has no image files")
        elif path.exists():
            add(path)
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            for match in matches:
                if Path(match).is_file():
                    add(Path(match))
                elif Path(match).is_dir():
                    add_folder(Path(match))
            if not matches:
                problems.append(f"{text}: no file matches this pattern")
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems


def output_format_for(source: Path, requested: str | None) -> str:
    """``requested`` or the input's own format when png/jpg/tif, else png."""
    return requested or OUTPUT_FORMATS.get(source.suffix.lower(), "png")


def plan_jobs(files: list[Path], args: argparse.Namespace) -> tuple[list[Job], list[str]]:
    """Decide each output path; refuse outputs that are inputs, collide, or exist without --overwrite."""
    jobs: list[Job] = []
    problems: list[str] = []
    inputs = {os.path.normcase(os.path.realpath(f)) for f in files}
    planned: set[str] = set()
    for source in files:
        if args.output is not None:
            target = args.output
            if args.output_format and OUTPUT_FORMATS.get(target.suffix.lower()) != args.output_format:
                target = target.with_suffix(FORMAT_SUFFIX[args.output_format])
        else:
            fmt = output_format_for(source, args.output_format)
            folder = args.out_dir if args.out_dir is not None else source.parent
            target = folder / f"{source.stem}{args.suffix}{FORMAT_SUFFIX[fmt]}"
        key = os.path.normcase(os.path.realpath(target))
        if key in inputs:
            problems.append(f"{source}: refusing to overwrite the input {target}; choose another --suffix or --out-dir")
        elif key in planned:
            problems.append(f"{source}: output {target} would also be written for another input; use -o per file or separate folders")
        elif target.exists() and not args.overwrite:
            problems.append(f"{source}: output {target} exists (use --overwrite to replace it)")
        else:
            planned.add(key)
            jobs.append(Job(source, target))
    return jobs, problems


def _check_arguments(args: argparse.Namespace) -> str | None:
    if not 0.0 < args.temperature <= 1.0:
        return f"--temperature must be in (0, 1], got {args.temperature}"
    if args.render_size < 8:
        return f"--render-size must be at least 8, got {args.render_size}"
    if not 0.0 <= args.post_strength <= 1.0:
        return f"--post-strength must be in [0, 1], got {args.post_strength}"
    if args.mask_colorize and args.mask is None:
        return "--mask-colorize needs --mask FILE"
    if args.batch_size < 1:
        return f"--batch-size must be >= 1, got {args.batch_size}"
    if not 1 <= args.jpeg_quality <= 100:
        return f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}"
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS and not args.output_format:
        return f"-o {args.output}: unknown output format; use .png, .jpg or .tif (or --format)"
    return None


# --------------------------------------------------------------------------------- running


def _read_mask(path: Path) -> np.ndarray:
    """A mask file -> ``[H, W]`` float32 in [0, 1] (gray value; colour images by their mean)."""
    decoded = read_image(path)
    pixels = decoded.pixels
    channels = pixels.shape[2]
    values = pixels[:, :, 0] if channels in (1, 2) else pixels[:, :, :3].mean(axis=2)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    return np.clip(values.astype(np.float32) / scale, 0.0, 1.0)


def _to_storable(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.float32:  # floating-point sources are written as 16-bit
        return (np.clip(pixels, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    return pixels


def _batches(jobs: list[Job], size: int, report) -> Iterator[list[tuple[Job, DecodedImage]]]:
    """Read jobs ``size`` at a time; unreadable files are reported and skipped."""
    batch: list[tuple[Job, DecodedImage]] = []
    for job in jobs:
        try:
            batch.append((job, read_image(job.source)))
        except ImageReadError as error:
            report(str(error), ok=False)
            continue
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run(args: argparse.Namespace) -> int:
    """Colorize every input; returns 0 when all succeeded, 1 when any failed, 2 for bad arguments."""
    problem = _check_arguments(args)
    if problem:
        print(f"tinct colorize: error: {problem}", file=sys.stderr)
        return 2
    post: tuple[str, ...] = ()
    if args.post.strip():
        from .post import parse_post_steps

        try:
            post = parse_post_steps(args.post)
        except ValueError as error:
            print(f"tinct colorize: error: --post: {error}", file=sys.stderr)
            return 2

    files, problems = expand_inputs(args.inputs, args.suffix)
    if args.output is not None and len(files) > 1:
        print(f"tinct colorize: error: -o takes a single input, got {len(files)} files; use --out-dir", file=sys.stderr)
        return 2
    if args.out_dir is not None:
        if args.out_dir.exists() and not args.out_dir.is_dir():
            print(f"tinct colorize: error: --out-dir {args.out_dir} is not a folder", file=sys.stderr)
            return 2
    jobs, plan_problems = plan_jobs(files, args)
    problems += plan_problems
    for message in problems:
        print(f"tinct colorize: error: {message}", file=sys.stderr)
    failures = len(problems)
    if not jobs:
        return 1 if failures or not files else 0

    if args.mask is not None and not args.mask_colorize and not post:
        print("tinct colorize: note: --mask only limits --post steps or, with --mask-colorize, the colorization; "
              "it has no effect here", file=sys.stderr)
    mask = None
    if args.mask is not None:
        try:
            mask = _read_mask(args.mask)
        except ImageReadError as error:
            print(f"tinct colorize: error: --mask: {error}", file=sys.stderr)
            return 2

    from .pipeline import Colorizer

    colorizer = Colorizer(args.model, args.device, fetch=args.fetch)  # WeightsMissing -> the frame prints its how-to
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)

    options = dict(temperature=args.temperature, decode=args.decode, render_size=args.render_size, post=post,
                   post_strength=args.post_strength, batch_size=args.batch_size)
    if mask is not None:
        options["mask_colorize"] = args.mask_colorize

    from tqdm import tqdm

    progress = tqdm(total=len(jobs), unit="image", disable=len(jobs) < 2, file=sys.stderr, dynamic_ncols=True)
    counts = {"failed": 0}

    def report(message: str, ok: bool) -> None:
        if not ok:
            counts["failed"] += 1
            tqdm.write(f"tinct colorize: error: {message}", file=sys.stderr)
        progress.update(1)

    try:
        for batch in _batches(jobs, args.batch_size, report):
            ready = []
            for job, decoded in batch:
                if mask is not None and mask.shape != decoded.pixels.shape[:2]:
                    report(f"{job.source}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                           f"{decoded.pixels.shape[1]}x{decoded.pixels.shape[0]}", ok=False)
                else:
                    ready.append((job, decoded))
            if not ready:
                continue
            per_image = {"mask": [mask] * len(ready)} if mask is not None else {}
            results = colorizer.colorize_arrays([d.pixels for _, d in ready], **options, **per_image)
            for (job, decoded), pixels in zip(ready, results):
                try:
                    write_image(job.target, _to_storable(pixels), icc_profile=decoded.icc_profile,
                                exif=decoded.exif, dpi=decoded.dpi, jpeg_quality=args.jpeg_quality)
                except ImageWriteError as error:
                    report(str(error), ok=False)
                else:
                    if len(jobs) == 1:
                        print(job.target)
                    report("", ok=True)
    finally:
        progress.close()
    failures += counts["failed"]
    if len(jobs) > 1:
        done = len(jobs) - counts["failed"]
        print(f"tinct colorize: {done} of {len(jobs) + len(plan_problems)} image(s) colorized"
              + (f", {failures} problem(s)" if failures else ""), file=sys.stderr)
    return 1 if failures else 0
