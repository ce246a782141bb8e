"""``tinct colorize``: colorize image files, folders and globs."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .device import DEVICE_CHOICES
from .errors import FAILED, INPUT, OUTPUT, InputError, Interrupted, OutputError, UsageError, batch_exit_code
from .imageio import (DEFAULT_MAX_MEGAPIXELS, FORMAT_SUFFIX, OUTPUT_FORMATS, DecodedImage, ImageReadError,
                      ImageWriteError, read_image, write_image)
from .interrupt import Terminated, sigterm_as_interrupt
from .options import add_argument as add_option
from .options import NO_PALETTE, check_arguments
from .pixels import PEAK, convert_depth
from .provenance import utc_now
from .runs import add_cluster_arguments, add_resume_arguments

DEFAULT_SUFFIX = "_color"
_GLOB_CHARS = set("*?[")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``colorize`` to the ``tinct`` sub-commands."""
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
    for name in ("model", "temperature", "decode", "render_size"):
        add_option(p, name)
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS, metavar="MP",
                   help=f"refuse images larger than this many megapixels, a guard against decompression bombs "
                        f"(default {DEFAULT_MAX_MEGAPIXELS:g}); above it memory stays bounded, the full-resolution "
                        f"stages run in bands")
    p.add_argument("--device", default="auto",
                   help=f"{', '.join(DEVICE_CHOICES)} or cuda:N (default auto: CUDA, then MPS, then CPU)")
    add_option(p, "post")
    add_option(p, "post_strength")
    p.add_argument("--mask", type=Path, metavar="FILE",
                   help="grayscale image (white = act, black = leave) limiting where post-processing acts")
    p.add_argument("--mask-colorize", action="store_true",
                   help="limit the colorization itself to the mask; outside it the input keeps its own colours")
    add_option(p, "content")
    control = p.add_argument_group("user control (see the README's 'User control')")
    hints = control.add_mutually_exclusive_group()
    hints.add_argument("--hints", type=Path, metavar="FILE",
                       help="RGBA image the size of the input: pixels with alpha > 0 are colour hints (their colour "
                            "gives the hue and saturation, the lightness is the photo's); models that take hints only")
    hints.add_argument("--hints-dir", type=Path, metavar="DIR",
                       help="a hint image per input in DIR with the input's stem; inputs without one run automatically")
    reference = control.add_mutually_exclusive_group()
    reference.add_argument("--reference", type=Path, metavar="FILE",
                           help="colour photo whose palette steers the colours (classification models only)")
    reference.add_argument("--reference-dir", type=Path, metavar="DIR",
                           help="a reference photo per input in DIR with the input's stem; inputs without one run as usual")
    add_option(reference, "palette")
    add_option(control, "reference_strength", metavar="S")
    confidence = control.add_mutually_exclusive_group()
    confidence.add_argument("--confidence", type=Path, metavar="FILE",
                            help="also write the confidence map (grayscale PNG, white = confident) here; one input only")
    confidence.add_argument("--confidence-dir", type=Path, metavar="DIR",
                            help="write a confidence map per input into DIR as STEM.png")
    p.add_argument("--fetch", action="store_true", help="download the model's weights if they are not present")
    p.add_argument("--suffix", default=DEFAULT_SUFFIX, help=f"added to output names (default {DEFAULT_SUFFIX})")
    p.add_argument("--format", choices=sorted(FORMAT_SUFFIX), dest="output_format",
                   help="output format (default: the input's if png/jpg/tif/webp, else png)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    add_option(p, "batch_size")
    add_option(p, "threads")
    p.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG and WebP quality 1..100 (default 95)")
    add_provenance_argument(p)
    add_resume_arguments(p)
    add_cluster_arguments(p, task_size=True)
    p.set_defaults(func=run)


def add_provenance_argument(p: argparse.ArgumentParser) -> None:
    """``--no-provenance`` (shared by ``colorize`` and ``video``)."""
    p.add_argument("--no-provenance", dest="provenance", action="store_false",
                   help="do not embed the record of how the output was made (XMP, Software/Description "
                        "fields; see 'tinct info'); by default every output says it was colorized by Tinct")


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
    """``requested`` or the input's own format when png/jpg/tif/webp, else png."""
    return requested or OUTPUT_FORMATS.get(source.suffix.lower(), "png")


def plan_jobs(files: list[Path], args: argparse.Namespace,
              skipped: list[Job] | None = None) -> tuple[list[Job], list[str]]:
    """Decide each output path; refuse outputs that are inputs, collide, or exist without --overwrite.

    With ``args.skip_existing`` an existing output is not a problem: its job goes to ``skipped``.
    """
    jobs: list[Job] = []
    problems: list[str] = []
    inputs = {os.path.normcase(os.path.realpath(f)) for f in files}
    input_inodes = {_inode(f) for f in files} - {None}  # hard links are the same file too
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
        if key in inputs or _inode(target) in input_inodes:
            problems.append(f"{source}: refusing to overwrite the input {target}; choose another --suffix or --out-dir")
        elif target.is_dir():
            problems.append(f"{source}: output {target} is a folder; choose another output")
        elif key in planned:
            problems.append(f"{source}: output {target} would also be written for another input; use -o per file or separate folders")
        elif target.exists() and getattr(args, "skip_existing", False) and skipped is not None:
            planned.add(key)
            skipped.append(Job(source, target))
        elif target.exists() and not args.overwrite:
            problems.append(f"{source}: output {target} exists (use --overwrite to replace it)")
        else:
            planned.add(key)
            jobs.append(Job(source, target))
    return jobs, problems


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_arguments(args: argparse.Namespace) -> str | None:
    problem = check_arguments(args, ("temperature", "decode", "render_size", "post", "post_strength", "batch_size",
                                     "content", "palette", "reference_strength", "threads"))
    if problem:
        return problem
    if args.palette == NO_PALETTE:
        args.palette = None
    if not args.max_megapixels > 0:
        return f"--max-megapixels must be > 0, got {args.max_megapixels}"
    if args.mask_colorize and args.mask is None:
        return "--mask-colorize needs --mask FILE"
    for name in ("hints_dir", "reference_dir"):
        folder = getattr(args, name)
        if folder is not None and not folder.is_dir():
            return f"--{name.replace('_', '-')} {folder} is not a folder"
    if args.confidence_dir is not None and args.confidence_dir.exists() and not args.confidence_dir.is_dir():
        return f"--confidence-dir {args.confidence_dir} is not a folder"
    if args.confidence is not None and args.confidence.suffix.lower() != ".png":
        return f"--confidence {args.confidence}: the confidence map is written as PNG; name it *.png"
    if not 1 <= args.jpeg_quality <= 100:
        return f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}"
    if args.skip_existing and args.overwrite:
        return "--skip-existing and --overwrite exclude each other"
    if args.task_size < 1:
        return f"--task-size must be >= 1, got {args.task_size}"
    if args.output is not None and args.output.suffix.lower() not in OUTPUT_FORMATS and not args.output_format:
        return f"-o {args.output}: unknown output format; use .png, .jpg, .tif or .webp (or --format)"
    return None


# --------------------------------------------------------------------------------- running


def _read_mask(path: Path, max_megapixels: float) -> np.ndarray:
    """A mask file -> ``[H, W]`` float32 in [0, 1] (gray value; colour images by their mean)."""
    decoded = read_image(path, max_megapixels=max_megapixels)
    pixels = decoded.pixels
    channels = pixels.shape[2]
    values = pixels[:, :, 0] if channels in (1, 2) else pixels[:, :, :3].mean(axis=2)
    scale = PEAK.get(pixels.dtype, 1.0)
    return np.clip(values.astype(np.float32) / scale, 0.0, 1.0)


def _to_storable(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.float32:  # floating-point sources are written as 16-bit
        return convert_depth(pixels, np.uint16)
    return pixels


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# report(job, error, seconds[, code=...]): called once per job; error (one line) is None on success, code the
# failure's exit status (core.errors; FAILED when not given).
Report = Callable[..., None]


def _batches(jobs: list[Job], size: int, report: Report,
             max_megapixels: float) -> Iterator[list[tuple[Job, DecodedImage, float]]]:
    """Read jobs ``size`` at a time (with each read's seconds); a file that cannot be read is reported
    and skipped."""
    batch: list[tuple[Job, DecodedImage, float]] = []
    for job in jobs:
        start = time.perf_counter()
        try:
            decoded = read_image(job.source, max_megapixels=max_megapixels)
        except ImageReadError as error:
            report(job, str(error), time.perf_counter() - start, code=INPUT)
            continue
        except MemoryError:
            report(job, f"{job.source}: not enough memory to read it", time.perf_counter() - start)
            continue
        if decoded.frames > 1:
            tqdm_write(f"tinct colorize: warning: {job.source} holds {decoded.frames} frames (pages); only the "
                       f"first is colorized (tinct video colorizes every frame of an animation)")
        batch.append((job, decoded, time.perf_counter() - start))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def tqdm_write(message: str) -> None:
    """One line on stderr that does not break the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _colorize_each(colorizer, ready: list[tuple[Job, DecodedImage, float]], options: dict, mask, chosen: dict,
                   controls: dict | None = None, applied: dict | None = None) -> list:
    """The colorized pixels of each image (with ``options["confidence"]``, (pixels, confidence)), or a
    one-line reason why the engine failed on it.

    A batch that fails is retried image by image, so one image too large for the memory does
    not take the others with it. ``chosen`` counts the content (photo / document) of each image done;
    ``applied`` (when given) gets each done job's content, by source.
    ``controls`` maps a job's source to its (hint RGBA or None, reference or None).
    """
    controls = controls or {}

    def attempt(group):
        per_image = {"mask": [mask] * len(group)} if mask is not None else {}
        pairs = [controls.get(job.source, (None, None)) for job, _, _ in group]
        if any(h is not None for h, _ in pairs):
            per_image["hints"] = [h for h, _ in pairs]
        if any(r is not None for _, r in pairs):
            per_image["reference"] = [r for _, r in pairs]
        results = colorizer.colorize_arrays([d.pixels for _, d, _ in group], **options, **per_image)
        for (job, _, _), kind in zip(group, colorizer.last_content):
            chosen[kind] += 1
            if applied is not None:
                applied[job.source] = kind
        return results

    try:
        return attempt(ready)
    except (MemoryError, RuntimeError, ValueError) as error:
        if len(ready) == 1:
            reason = "out of memory" if isinstance(error, MemoryError) else _one_line(error)
            return [f"the engine failed ({reason})"]
    return [_colorize_each(colorizer, [item], options, mask, chosen, controls, applied)[0] for item in ready]


def _prepare_out_dir(folder: Path) -> str | None:
    """Create ``--out-dir`` (and parents) and check it can take files; a one-line problem, or None."""
    if folder.exists() and not folder.is_dir():
        return f"--out-dir {folder} is not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"--out-dir {folder} cannot be created ({error.strerror or _one_line(error)})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"--out-dir {folder} is not writable (permission denied)"
    return None


def _unwritable(jobs: list[Job]) -> tuple[list[Job], list[str]]:
    """Split off the jobs whose output folder does not exist or cannot take files."""
    kept, problems = [], []
    checked: dict[Path, str | None] = {}
    for job in jobs:
        folder = job.target.parent if str(job.target.parent) else Path(".")
        if folder not in checked:
            if not folder.is_dir():
                checked[folder] = f"output folder {folder} does not exist"
            elif not os.access(folder, os.W_OK | os.X_OK):
                checked[folder] = f"output folder {folder} is not writable (permission denied)"
            else:
                checked[folder] = None
        if checked[folder]:
            problems.append(f"{job.source}: {checked[folder]}")
        else:
            kept.append(job)
    return kept, problems


def control_inputs(job: Job, decoded: DecodedImage, args: argparse.Namespace, reference):
    """(hint RGBA or None, reference or None) for one input, from --hints/--hints-dir and
    --reference/--reference-dir/--palette; raises ``ControlInputError`` with one line."""
    from .cli_control import read_hint_image, read_reference, same_stem

    size = decoded.pixels.shape[:2]
    hint_path = args.hints if args.hints is not None else (
        same_stem(args.hints_dir, job.source.stem) if args.hints_dir is not None else None)
    hint = read_hint_image(hint_path, size) if hint_path is not None else None
    if args.reference_dir is not None:
        path = same_stem(args.reference_dir, job.source.stem)
        reference = read_reference(path) if path is not None else None
    return hint, reference


def colorize_jobs(colorizer, jobs: list[Job], *, options: dict, mask: np.ndarray | None, batch_size: int,
                  jpeg_quality: int, max_megapixels: float, provenance: bool, report: Report,
                  chosen: dict[str, int], controls: Callable | None = None,
                  confidence_paths: dict | None = None, steering: dict | None = None) -> None:
    """Read, colorize and write every job, ``batch_size`` renders per network call; the local run and
    every cluster worker go through here. Each job is reported exactly once, with its seconds (its read
    and write plus its share of the batch's network time); a per-file failure (read, engine, write) is
    reported and the others go on. With ``provenance`` every output carries the run's record;
    ``chosen`` counts the content (photo / document) of each image done. ``controls(job, decoded)``
    gives a job's (hints, reference) or raises ``ControlInputError``; ``confidence_paths`` maps a
    source to where its confidence map goes; ``steering`` (``reference``/``hints`` used) is recorded."""
    record = None
    if provenance:
        from .provenance import record_from_settings

        record = record_from_settings(colorizer.settings(**options, mask=mask, **(steering or {})))
    for batch in _batches(jobs, batch_size, report, max_megapixels):
        ready, per_job = [], {}
        for job, decoded, seconds in batch:
            if mask is not None and mask.shape != decoded.pixels.shape[:2]:
                report(job, f"{job.source}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                            f"{decoded.pixels.shape[1]}x{decoded.pixels.shape[0]}", seconds, code=INPUT)
                continue
            if controls is not None:
                from .cli_control import ControlInputError

                try:
                    per_job[job.source] = controls(job, decoded)
                except ControlInputError as error:
                    report(job, f"{job.source}: {error}", seconds, code=INPUT)
                    continue
            ready.append((job, decoded, seconds))
        if not ready:
            continue
        start = time.perf_counter()
        applied: dict[Path, str] = {}
        results = _colorize_each(colorizer, ready, options, mask, chosen, per_job, applied)
        share = (time.perf_counter() - start) / len(ready)
        del batch
        for (job, decoded, seconds), result in zip(ready, results):
            start = time.perf_counter()
            if isinstance(result, str):
                report(job, f"{job.source}: {result}", seconds + share)
                continue
            pixels, confidence = result if confidence_paths else (result, None)
            try:
                write_image(job.target, _to_storable(pixels), icc_profile=decoded.icc_profile,
                            exif=decoded.exif, dpi=decoded.dpi, jpeg_quality=jpeg_quality,
                            provenance=None if record is None else replace(record, time=utc_now(),
                                                                           content=applied.get(job.source)))
                if confidence is not None:
                    from .cli_control import write_confidence

                    write_confidence(confidence_paths[job.source], confidence)
            except ImageWriteError as error:
                report(job, str(error), seconds + share + time.perf_counter() - start, code=OUTPUT)
                continue
            except MemoryError:
                report(job, f"{job.target}: not enough memory to write it", seconds + share + time.perf_counter() - start)
                continue
            report(job, None, seconds + share + time.perf_counter() - start)
        del ready, results


def _open_manifest(args: argparse.Namespace, skipped: list[Job]):
    """The ``--manifest`` file, opened for appending, with a ``skipped`` line for each skipped job."""
    from .runs import Manifest

    manifest = Manifest(args.manifest)
    for job in skipped:
        manifest.record(input=job.source, output=job.target, status="skipped", seconds=0.0, model=args.model,
                        worker=None)
    return manifest


def run(args: argparse.Namespace) -> int:
    """Colorize every input; returns 0 when all succeeded, else the status of the failures (``core.errors``:
    theirs when they share one, else 1). Raises a ``TinctError`` for what stops the whole run."""
    problem = _check_arguments(args)
    if problem:
        raise UsageError(problem)
    post: tuple[str, ...] = args.post  # converted to steps by check_arguments (core.options)
    files, problems = expand_inputs(args.inputs, args.suffix)
    if args.output is not None and len(files) > 1:
        raise UsageError(f"-o takes a single input, got {len(files)} files; use --out-dir")
    if args.out_dir is not None and files:
        problem = _prepare_out_dir(args.out_dir)  # before the model loads: a bad location fails at once
        if problem:
            raise OutputError(problem)
    skipped: list[Job] = []
    jobs, plan_problems = plan_jobs(files, args, skipped)
    jobs, folder_problems = _unwritable(jobs)
    plan_problems += folder_problems
    for flag, value in (("--hints", args.hints), ("--confidence", args.confidence)):
        if value is not None and len(jobs) + len(plan_problems) > 1:
            raise UsageError(f"{flag} FILE takes a single input, got {len(jobs) + len(plan_problems)}; "
                             f"use {flag}-dir DIR")
    from .cli_control import model_problem, plan_confidence, read_reference

    confidence_paths, confidence_problems = plan_confidence(jobs, args)
    if confidence_problems:
        jobs = [job for job in jobs if job.source in confidence_paths]
    plan_problems += confidence_problems
    # the status of each failure: inputs that are not there, outputs that cannot be written
    codes = [INPUT] * len(problems) + [OUTPUT] * len(plan_problems)
    problems += plan_problems
    for message in problems:
        print(f"tinct colorize: error: {message}", file=sys.stderr)
    if skipped:
        print(f"tinct colorize: {len(skipped)} image(s) skipped: their output exists (--skip-existing)", file=sys.stderr)
    if not jobs:
        if skipped and args.manifest is not None:
            try:
                _open_manifest(args, skipped).close()
            except OSError as error:
                raise OutputError(f"--manifest: {error}") from None
        if not (problems or files or skipped):
            raise InputError("no image files in the given inputs")
        return batch_exit_code(codes)

    if args.mask is not None and not args.mask_colorize and not post:
        print("tinct colorize: note: --mask only limits --post steps or, with --mask-colorize, the colorization; "
              "it has no effect here", file=sys.stderr)
    mask = None
    if args.mask is not None:
        try:
            mask = _read_mask(args.mask, args.max_megapixels)
        except ImageReadError as error:
            raise InputError(f"--mask: {error}") from None
    reference = None
    if args.reference is not None:
        reference = read_reference(args.reference)  # ControlInputError: an input error
    elif args.palette is not None:
        reference = args.palette

    options = dict(temperature=args.temperature, decode=args.decode, render_size=args.render_size, post=post,
                   post_strength=args.post_strength, batch_size=args.batch_size, content=args.content)
    if mask is not None:
        options["mask_colorize"] = args.mask_colorize
    if reference is not None or args.reference_dir is not None:
        options["reference_strength"] = args.reference_strength
    if confidence_paths:
        options["confidence"] = True
    steering = {"reference": True if reference is not None or args.reference_dir is not None else None,
                "hints": True if args.hints is not None or args.hints_dir is not None else None}
    try:
        manifest = _open_manifest(args, skipped) if args.manifest is not None else None
    except OSError as error:
        raise OutputError(f"--manifest: {error}") from None

    from tqdm import tqdm

    progress = tqdm(total=len(jobs), unit="image", disable=len(jobs) < 2, file=sys.stderr, dynamic_ncols=True)
    failed: list[Job] = []
    chosen = {"photo": 0, "document": 0}

    def report(job: Job, error: str | None, seconds: float, worker: str | None = "local", code: int = FAILED) -> None:
        if error is not None:
            failed.append(job)
            codes.append(code)
            tqdm_write(f"tinct colorize: error: {error}")
        elif len(jobs) == 1:
            print(job.target)
        if manifest is not None:
            manifest.record(input=job.source, output=job.target, status="ok" if error is None else "error",
                            seconds=seconds, model=args.model, worker=worker, error=error)
        progress.update(1)

    try:
        with sigterm_as_interrupt():
            if args.scheduler:
                from .cluster import colorize_on_cluster

                colorize_on_cluster(jobs, args, options, report, chosen, reference=reference,
                                    confidence_paths=confidence_paths, steering=steering)  # ClusterError: one line
            else:
                from .pipeline import Colorizer

                colorizer = Colorizer(args.model, args.device, fetch=args.fetch, threads=args.threads)  # WeightsMissing -> the frame prints its how-to
                problem = model_problem(colorizer, args)
                if problem:
                    raise UsageError(problem)
                colorize_jobs(colorizer, jobs, options=options, mask=mask, batch_size=args.batch_size,
                              jpeg_quality=args.jpeg_quality, max_megapixels=args.max_megapixels,
                              provenance=args.provenance, report=report, chosen=chosen,
                              controls=lambda job, decoded: control_inputs(job, decoded, args, reference),
                              confidence_paths=confidence_paths, steering=steering)
    except Terminated:
        progress.close()
        raise Interrupted("terminated; nothing half-written is left", terminated=True) from None
    finally:
        progress.close()
        if manifest is not None:
            manifest.close()
    if args.content == "auto" and any(chosen.values()):
        print(f"tinct colorize: content (auto): {chosen['photo']} photo(s), {chosen['document']} document(s)",
              file=sys.stderr)
    failures = len(problems) + len(failed)
    if len(jobs) + len(problems) > 1:  # one input: its one line says it all
        done = len(jobs) - len(failed)
        summary = f"tinct colorize: {done} of {len(jobs) + len(plan_problems)} image(s) colorized"
        if failures:
            names = ", ".join(str(job.source) for job in failed[:5]) + (", ..." if len(failed) > 5 else "")
            summary += f", {failures} failed" + (f" ({names})" if failed else "")
        print(summary, file=sys.stderr)
    return batch_exit_code(codes)
