"""The ``tinct`` command: a frame that collects sub-commands from the project's areas.

Every area contributes through a module exposing ``add_parser(subparsers) -> None`` whose parsers
set ``func=callable(args) -> int``. :data:`COMMANDS` names each command's module and its line in
``tinct --help``; a module is imported only when one of its commands runs (or asks for its
``--help``), so ``tinct --help`` and each command load only what they use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Sequence

# command -> (module defining it, its one-line help). tests/engine/test_engine_cli.py checks that
# each module registers exactly its commands here, with these help lines.
COMMANDS: dict[str, tuple[str, str]] = {
    "colorize": ("core.cli_colorize", "colorize black-and-white photos (files, folders, globs)"),
    "video": ("core.video.cli", "colorize a black-and-white video or a folder of numbered frames"),
    "weights": ("weights_fetch.cli", "list, download, verify and manage model weights"),
    "eval": ("core.evaluate",
             "score models on colour images (AuC, PSNR, colorfulness, wrong-vivid, cast) against the gray baseline"),
    "eval-post": ("core.post.cli",
                  "measure post-processing (crf, segments, tv) on BSDS500 val against human segmentations"),
    "eval-video": ("core.video.cli", "measure flicker (warping error) and colourfulness, and end-to-end speed"),
    "eval-hints": ("core.evaluate_control", "measure user control: colour hints, reference photos, confidence maps"),
    "eval-page": ("core.evaluate_pages", "measure colour bleed across the strokes of a large synthetic scanned page"),
    "bench": ("core.bench", "time the pipeline's stages against the reference pipeline"),
    "bench-network": ("core.bench_network", "time the network alone (median ms per image)"),
    "bench-post": ("core.post.cli", "time each post-processing step at network resolution"),
    "train": ("core.training.cli", "train the embedded classification model and/or the regression baseline"),
    "info": ("core.info", "show how a Tinct output was made (its provenance record)"),
    "bench-provenance": ("core.bench_provenance", "time what embedding the provenance record costs per file"),
    "worker": ("core.worker.cli", "start, stop or check the engine worker (e.g. for a Flatpak GIMP)"),
    "bench-cluster": ("core.bench_cluster",
                      "throughput on a Dask cluster of 1 and 2 workers vs the plain local run (JSON report)"),
}

DESCRIPTION = (
    "Tinct: automatic colorization of black-and-white photos and film "
    "(Zhang, Isola & Efros, 'Colorful Image Colorization', ECCV 2016). "
    "Run 'tinct COMMAND --help' for the options of a command."
)


def _is_missing(error: ModuleNotFoundError, module: str) -> bool:
    """True when ``error`` says ``module`` itself (or a package above it) does not exist, as opposed
    to that module failing on one of its own imports."""
    return error.name is not None and (module == error.name or module.startswith(error.name + "."))


def _import_if_present(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if not _is_missing(error, name):
            raise
        return None


def contributing_modules() -> list[ModuleType]:
    """The sub-command modules that exist in this installation, in menu order (imports them all)."""
    names = dict.fromkeys(module for module, _ in COMMANDS.values())
    return [module for module in map(_import_if_present, names) if module is not None]


def _command_named_in(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` asks for: its first word that is not an option (the top level has
    no option that takes a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _not_installed(name: str):
    def run(args: argparse.Namespace) -> int:
        from .errors import UsageError

        raise UsageError(f"this installation does not include the '{name}' command")

    return run


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but text that has its own line breaks (the exit-status table) keeps them."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``tinct`` parser. Without ``argv`` every sub-command is complete (all modules imported);
    with it, only the module of the command ``argv`` names is imported, the others are listed."""
    from .errors import exit_codes_help

    parser = argparse.ArgumentParser(prog="tinct", description=DESCRIPTION, epilog=exit_codes_help(),
                                     formatter_class=_HelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    if argv is None:
        for module in contributing_modules():
            module.add_parser(subparsers)
    else:
        wanted = COMMANDS.get(_command_named_in(argv) or "")
        module = _import_if_present(wanted[0]) if wanted else None
        if module is not None:
            module.add_parser(subparsers)
    for name, (_, help_line) in COMMANDS.items():
        if name not in subparsers.choices:  # listed only (or absent from this installation)
            subparsers.add_parser(name, help=help_line).set_defaults(func=_not_installed(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinct`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status (``core.errors``).

    The one place that prints a command's failure: one line, and the status of its kind."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    from .errors import USAGE, report

    if func is None:
        parser.print_help()
        return USAGE
    try:
        return int(func(args) or 0)
    except (Exception, KeyboardInterrupt) as error:
        return report(f"tinct {args.command}", error)


if __name__ == "__main__":
    sys.exit(main())
