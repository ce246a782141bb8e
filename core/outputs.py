"""Where outputs may go: the rules that keep every input, and every folder Tinct did not make, intact.

Shared by ``tinct colorize`` and ``tinct video`` (files and frame folders):

- an output may not be an input, contain an input (a folder above it), or lie inside an input
  folder; paths are compared after resolving symbolic links, and hard links count as the same file;
- ``--overwrite`` replaces an earlier output; a folder is replaced only when Tinct created it:
  Tinct writes :data:`FOLDER_MARKER` (the names of the files it put there) into every folder it
  creates, and a folder holding anything not listed there is never removed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable

FOLDER_MARKER = ".tinct-output.json"


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def output_conflict(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> str | None:
    """Why ``output`` may not be written given ``inputs``, or None when it may.

    Returns a one-line reason when the output is an input (same path, symbolic or hard link),
    contains an input (the output is a folder above it) or lies inside an input folder.
    """
    out = _resolved(Path(output))
    for given in inputs:
        source = Path(given)
        src = _resolved(source)
        if out == src or _same_file(out, src):
            return f"output {output} is the input {source}: an input is never overwritten"
        if src.is_relative_to(out):
            return f"output {output} contains the input {source}: an input is never overwritten or removed"
        if out.is_relative_to(src):
            return f"output {output} lies inside the input folder {source}"
    return None


def folder_listing(folder: Path) -> set[str] | None:
    """The names Tinct recorded in ``folder``'s marker, or None when Tinct did not create it."""
    try:
        data = json.loads((folder / FOLDER_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = data.get("files") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return set(names)


def foreign_entries(folder: Path) -> list[str]:
    """Entries of an existing folder that Tinct did not write there (all of them without a marker)."""
    entries = sorted(p.name for p in folder.iterdir())
    listed = folder_listing(folder)
    if listed is None:
        return entries
    return [name for name in entries if name != FOLDER_MARKER and name not in listed]


def replace_folder_problem(folder: Path, overwrite: bool) -> str | None:
    """Why the existing ``folder`` may not be replaced by a new output folder, or None.

    An empty folder may always be replaced; a Tinct-made one (every entry listed in its marker)
    only with ``overwrite``; any other folder never.
    """
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"output {folder} exists and is a file, not a folder"
    foreign = foreign_entries(folder)
    if not foreign and not any(folder.iterdir()):
        return None
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return (f"output folder {folder} holds files Tinct did not write ({shown}); "
                "it is never replaced: choose another output")
    if not overwrite:
        return f"output {folder} already exists (use --overwrite to replace it)"
    return None


def mark_folder(folder: Path, names: Iterable[str]) -> None:
    """Record in ``folder`` that Tinct created it and wrote ``names`` there."""
    (folder / FOLDER_MARKER).write_text(json.dumps({"created_by": "tinct", "files": sorted(names)}), encoding="utf-8")


def replace_folder(new: Path, final: Path, overwrite: bool) -> None:
    """Move the finished folder ``new`` to ``final``; an old ``final`` is replaced only when
    :func:`replace_folder_problem` allows it (checked again here, just before the move).

    Raises:
        FileExistsError: the old folder may not be replaced (the message says why).
    """
    problem = replace_folder_problem(final, overwrite)
    if problem:
        raise FileExistsError(problem)
    if not final.exists():
        os.replace(new, final)
        return
    if not any(final.iterdir()):
        final.rmdir()
        os.replace(new, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(final, old)
    os.replace(new, final)
    if not foreign_entries(old):  # still only files Tinct wrote (something added meanwhile is kept)
        shutil.rmtree(old, ignore_errors=True)
