"""``tinct info``: print the provenance record of Tinct outputs (images, videos, frame folders)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import FAILED, INPUT, InputError, batch_exit_code, one_line
from .provenance import DESCRIPTION, Record, from_container_tags, from_xmp

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".nut")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``info`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser(
        "info", help="show how a Tinct output was made (its provenance record)",
        description=(
            "Print the provenance record Tinct embeds in what it writes (XMP in PNG/JPEG/TIFF/WebP, "
            "container tags in MP4/MKV): model and weights SHA-256, settings, time. One block per file, "
            "or 'no Tinct record'. A folder shows each of its image files (a frame folder). Exit status "
            "0 when every file has a record, 1 when one has none or cannot be read."))
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="images, videos or frame folders")
    p.add_argument("--json", action="store_true", help="one JSON list: {file, record (or null), error}")
    p.set_defaults(func=run)


def read_record(path: Path) -> Record | None:
    """The record in an image or video file, or None when it has none.

    Raises:
        ValueError: the file cannot be read (one line).
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        import av

        try:
            with av.open(str(path)) as container:
                return from_container_tags(dict(container.metadata))
        except (av.error.FFmpegError, OSError) as exc:
            raise ValueError(f"{path}: cannot be read as a video ({exc})") from None
    try:
        return from_xmp(str(path))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _expand(paths: list[Path]) -> list[Path]:
    from .imageio import OUTPUT_FORMATS

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in OUTPUT_FORMATS))
        else:
            files.append(path)
    return files


def format_record(record: Record) -> list[str]:
    """The lines of one record's block (after the file name)."""
    values: dict[str, Any] = record.to_dict()
    lines = [f"  {DESCRIPTION}",
             f"  tool:          {record.creator_tool}",
             f"  model:         {values['model']}",
             f"  weights:       sha256 {values['weights_sha256'] or '(a network given in memory: no file)'}",
             f"  temperature:   {values['temperature']:g} ({values['decode']})",
             f"  render size:   {values['render_size']}",
             f"  post:          {', '.join(values['post']) or 'none'}"
             + (f" (strength {values['post_strength']:g})" if values["post"] else "")]
    used = [name for name, key in (("hints", "hints"), ("reference photo", "reference"), ("mask", "mask"))
            if values[key]]
    lines.append(f"  used:          {', '.join(used) or 'no hints, no reference photo, no mask'}"
                 + (" (the mask limited the colorization)" if values["mask_colorize"] else ""))
    if values["content"] is not None:
        lines.append(f"  content:       {values['content']}"
                     + (" (detected)" if values["content_choice"] == "auto" else " (as asked)"))
    if values["temporal"] is not None:
        lines.append(f"  temporal:      {'on' if values['temporal'] else 'off'}")
    lines.append(f"  time:          {values['time']}")
    return lines


def run(args: argparse.Namespace) -> int:
    results = []
    for path in _expand(args.files):
        try:
            record = read_record(path)
            results.append({"file": str(path), "record": None if record is None else record.to_dict(), "error": None})
        except (ValueError, OSError) as exc:  # not a readable image, or not there
            record = None
            results.append({"file": str(path), "record": None, "error": one_line(exc)})
        if args.json:
            continue
        if results[-1]["error"]:
            print(f"tinct info: error: {results[-1]['error']}", file=sys.stderr)
            continue
        print(path)
        print("\n".join(format_record(record)) if record is not None else "  no Tinct record")
    if args.json:
        print(json.dumps(results, indent=2))
    if not results:
        raise InputError("no image files in the given folder(s)")
    # an unreadable file is an input error; a readable one without a Tinct record is a plain failure
    return batch_exit_code([INPUT if r["error"] else FAILED for r in results if r["record"] is None])
