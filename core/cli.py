"""The ``tinct`` command: a frame that collects sub-commands from the project's areas.

Every area contributes through a module exposing ``add_parser(subparsers) -> None`` whose parsers
set ``func=callable(args) -> int`` (see docs/CONTRACTS.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Sequence

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "core.cli_colorize",
    "core.bench",
    "weights_fetch.cli",
    "core.training.cli",
    "core.evaluate",
    "core.video.cli",
    "core.post.cli",
    "core.info",
    "core.bench_provenance",
    "core.worker.cli",
)

DESCRIPTION = (
    "Tinct: automatic colorization of black-and-white photos and film "
    "(Zhang, Isola & Efros, 'Colorful Image Colorization', ECCV 2016). "
    "Run 'tinct COMMAND --help' for the options of a command."
)


def _is_missing(error: ModuleNotFoundError, module: str) -> bool:
    """True when ``error`` says ``module`` itself (or a package above it) does not exist, as opposed
    to that module failing on one of its own imports."""
    return error.name is not None and (module == error.name or module.startswith(error.name + "."))


def contributing_modules() -> list[ModuleType]:
    """The sub-command modules that exist in this installation, in menu order."""
    modules = []
    for name in SUBCOMMAND_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if not _is_missing(error, name):
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The ``tinct`` parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="tinct", description=DESCRIPTION)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"tinct {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in contributing_modules():
        module.add_parser(subparsers)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    from .device import DeviceError
    from .imageio import ImageReadError, ImageWriteError

    errors: list[type[BaseException]] = [DeviceError, ImageReadError, ImageWriteError]
    try:
        from weights_fetch import WeightsError

        errors.append(WeightsError)
    except ModuleNotFoundError as error:
        if not _is_missing(error, "weights_fetch"):
            raise
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinct`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("tinct: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as error:
        print(f"tinct {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
