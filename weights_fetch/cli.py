"""The ``weights`` command: list, fetch, verify, import, path, remove.

``add_parser(subparsers)`` adds ``weights`` to a parent CLI (``tinct weights ...``);
``add_commands(subparsers)`` adds the sub-commands directly (``python -m weights_fetch ...``).
Every parser sets ``func(args) -> int``; a failure raises :class:`WeightsError`, which the command line
(``tinct``'s frame, or :func:`main` here) prints as one line, exiting with the error's ``exit_code``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import api, cache, catalog
from .errors import MODEL, WeightsError

Handler = Callable[[argparse.Namespace], int]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` command and its sub-commands to a parent parser's sub-parsers."""
    parser = subparsers.add_parser("weights", help="list, download, verify and manage model weights")
    add_commands(parser.add_subparsers(dest="weights_command", metavar="COMMAND", required=True))


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``list``, ``fetch``, ``verify``, ``import``, ``path`` and ``remove``."""
    p = subparsers.add_parser("list", help="show every known model with its size, licence and state")
    p.set_defaults(func=_list)

    p = subparsers.add_parser("fetch", help="download, verify and convert a model")
    p.add_argument("name")
    p.add_argument("--mirror", metavar="URL", help="base URL replacing the download host (keeps the file name)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=_fetch)

    p = subparsers.add_parser("verify", help="check installed weights (all of them without NAME)")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=_verify)

    p = subparsers.add_parser("import", help="add a hand-downloaded file (checked against the catalog)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_import)

    p = subparsers.add_parser("path", help="print the weights file a model resolves to")
    p.add_argument("name")
    p.set_defaults(func=_path)

    p = subparsers.add_parser("remove", help="delete a downloaded model from the cache")
    p.add_argument("name")
    p.set_defaults(func=_remove)


def _list(args: argparse.Namespace) -> int:
    """Print a table of the catalog."""
    rows = [("NAME", "ARCH", "SIZE", "LICENCE", "STATE")]
    for entry in catalog.entries():
        size = entry.size
        if entry.bundled and cache.bundled_path(entry).is_file():
            size = cache.bundled_path(entry).stat().st_size
        rows.append((entry.name, entry.arch, _human_size(size), entry.license, api.state(entry.name)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for alias, target in catalog.aliases().items():
        print(f"{alias} = {target}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    """Fetch one model and print its path."""
    print(api.fetch(args.name, mirror=args.mirror, progress=not args.no_progress))
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Verify one model, or every installed one; exit with ``MODEL`` (5) if any checked file is bad."""
    if args.name is not None:
        results = [api.verify(args.name)]
    else:
        results = [api.verify(entry.name) for entry in catalog.entries()]
    failed = False
    for result in results:
        skipped = args.name is None and result.state == "missing"
        failed = failed or not (result.ok or skipped)
        text = result.message if result.ok or result.state == "missing" else f"BAD: {result.message}"
        print(f"{result.name}: {text}", file=sys.stdout if result.ok or skipped else sys.stderr)
    return MODEL if failed else 0


def _import(args: argparse.Namespace) -> int:
    """Import a file and print where it went."""
    print(api.import_file(args.name, args.file))
    return 0


def _path(args: argparse.Namespace) -> int:
    """Print the resolved weights path."""
    print(api.resolve(args.name))
    return 0


def _remove(args: argparse.Namespace) -> int:
    """Remove a cached model."""
    removed = api.remove(args.name)
    entry = catalog.get_entry(args.name)
    print(f"removed {entry.name} ({len(removed)} files)" if removed else f"{entry.name} was not cached")
    return 0


def _human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def build_parser(prog: str = "python -m weights_fetch") -> argparse.ArgumentParser:
    """A stand-alone parser with the weights sub-commands at the top level."""
    parser = argparse.ArgumentParser(prog=prog, description="Manage Tinct model weights.")
    add_commands(parser.add_subparsers(dest="weights_command", metavar="COMMAND", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m weights_fetch``: a weights error is one line and its ``exit_code``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
