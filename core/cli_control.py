"""The user-control inputs of ``tinct colorize``: hint images, reference photos, palettes, confidence maps.

File handling only (finding the file with an input's stem, reading and checking it, planning where a
confidence map goes); the colour work is in ``core.hints``, ``core.reference`` and ``core.confidence``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .fs import write_atomically
from .imageio import ImageReadError, read_image


class ControlInputError(InputError, ValueError):
    """A hint, reference or confidence file that cannot be used; the message is one line."""


def image_suffixes() -> set[str]:
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def same_stem(folder: Path, stem: str) -> Path | None:
    """The image file in ``folder`` named ``stem.<image suffix>``; None when there is none.

    Raises:
        ControlInputError: more than one file has that stem.
    """
    suffixes = image_suffixes()
    matches = sorted(p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in suffixes and p.is_file())
    if len(matches) > 1:
        raise ControlInputError(f"{folder} has several files named {stem}.*: {', '.join(p.name for p in matches)}")
    return matches[0] if matches else None


def read_hint_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A hint file -> ``[H, W, 4]`` RGBA of its own dtype; gray+alpha hints become gray RGBA.

    Args:
        size: the input's (H, W), which the hint image must match.
    """
    try:
        pixels = read_image(path).pixels
    except ImageReadError as error:
        raise ControlInputError(f"hint image {error}") from None
    if pixels.shape[2] not in (2, 4):
        raise ControlInputError(f"hint image {path} has no alpha channel: paint the hints on a transparent layer "
                                f"(transparent = no hint) and save it as PNG or TIFF with alpha")
    if pixels.shape[:2] != tuple(size):
        raise ControlInputError(f"hint image {path} is {pixels.shape[1]}x{pixels.shape[0]} but the input is "
                                f"{size[1]}x{size[0]}; it must be the same size")
    if pixels.shape[2] == 2:
        pixels = np.concatenate([pixels[:, :, :1]] * 3 + [pixels[:, :, 1:]], axis=2)
    return pixels


def read_reference(path: Path) -> torch.Tensor:
    """A reference photo -> its ``[23, 23]`` ab grid histogram (``core.reference``)."""
    from .reference import ReferenceError, histogram_from_pixels

    try:
        pixels = read_image(path).pixels
        return histogram_from_pixels(pixels)
    except ImageReadError as error:
        raise ControlInputError(f"reference {error}") from None
    except ReferenceError as error:
        raise ControlInputError(f"reference {path}: {error}") from None


def plan_confidence(jobs: list, args: argparse.Namespace) -> tuple[dict[Path, Path], list[str]]:
    """Where each job's confidence map goes (``--confidence`` / ``--confidence-dir``).

    Returns:
        ({job source: map path}, problems); a job with a problem gets no entry (the caller drops it).
    """
    if args.confidence is None and args.confidence_dir is None:
        return {}, []
    taken = {os.path.normcase(os.path.realpath(p)) for job in jobs for p in (job.source, job.target)}
    planned: dict[Path, Path] = {}
    seen: set[str] = set()
    problems = []
    for job in jobs:
        target = args.confidence if args.confidence is not None else args.confidence_dir / f"{job.source.stem}.png"
        key = os.path.normcase(os.path.realpath(target))
        if key in taken:
            problems.append(f"{job.source}: the confidence map {target} would replace an input or an output")
        elif key in seen:
            problems.append(f"{job.source}: confidence map {target} would also be written for another input "
                            f"(same stem); use separate folders")
        elif target.exists() and not args.overwrite:
            problems.append(f"{job.source}: confidence map {target} exists (use --overwrite to replace it)")
        else:
            seen.add(key)
            planned[job.source] = target
    return planned, problems


def model_problem(colorizer, args: argparse.Namespace) -> str | None:
    """One line when the chosen model cannot do what the options ask, else None."""
    return capability_problem(colorizer.accepts_hints, colorizer.model.output, args)


def capability_problem(accepts_hints: bool, output: str, args: argparse.Namespace) -> str | None:
    """One line when a model that takes hints or not (``accepts_hints``) and predicts ``output``
    (``"logits"`` for a classification model) cannot do what the options ask, else None."""
    if (args.hints is not None or args.hints_dir is not None) and not accepts_hints:
        return (f"--hints: model {args.model!r} does not take colour hints; use a model that does "
                f"(such as siggraph17, 'tinct weights list')")
    regression = output != "logits"
    steering = args.reference is not None or args.reference_dir is not None or args.palette is not None
    if regression and steering:
        return (f"model {args.model!r} is a regression model (one colour per pixel, no distribution): a reference "
                f"or palette cannot steer it; use a classification model such as the default")
    if regression and (args.confidence is not None or args.confidence_dir is not None):
        return (f"model {args.model!r} is a regression model (one colour per pixel, no distribution): it has no "
                f"confidence map; use a classification model such as the default")
    return None


def write_confidence(path: Path, confidence: np.ndarray) -> None:
    """Write a ``[H, W]`` float confidence in [0, 1] as an 8-bit grayscale PNG (white = confident), atomically."""
    from PIL import Image

    from .confidence import confidence_to_gray8

    gray = confidence_to_gray8(confidence)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: Image.fromarray(gray, "L").save(handle, format="PNG"))
