"""Tinct's errors, once: one base class, a few kinds, each with the exit status of the ``tinct`` command.

Commands raise; only the command line (``core.cli.main``, and each sub-command module's own ``main``)
prints, one line, and exits with :func:`exit_code_of` the error. So the same mistake gets the same
status in every sub-command. Standard library only (the worker and every command import it).

``weights_fetch`` depends on nothing in ``core``: its ``WeightsError`` family carries the same
``exit_code`` attribute (the numbers of :data:`EXIT_CODES`, checked by ``tests/engine/test_engine_errors.py``) and
is registered here as a known error.
"""

from __future__ import annotations

import os
import sys

OK = 0
FAILED = 1  # the work failed, for none of the reasons below (e.g. the engine ran out of memory on a file)
USAGE = 2  # a bad option, argument or combination of them (argparse's own status for its errors too)
INPUT = 3  # an input is missing, unreadable, or not what the command takes
OUTPUT = 4  # an output cannot be written (folder not creatable or read-only, disk full, would overwrite)
MODEL = 5  # a model is unknown to this installation, or its weights are missing or damaged
INTERNAL = 70  # a bug in Tinct (sysexits' EX_SOFTWARE)
INTERRUPTED = 130  # Ctrl+C (128 + SIGINT)
TERMINATED = 143  # SIGTERM (128 + SIGTERM)

EXIT_CODES: dict[int, str] = {
    OK: "success",
    FAILED: "the work failed (e.g. out of memory on a file), or files of a run failed for different reasons",
    USAGE: "bad options or arguments (a device this machine does not have, a cluster that cannot be used)",
    INPUT: "an input is missing, unreadable or not a usable image, video or file",
    OUTPUT: "an output cannot be written",
    MODEL: "model problem: unknown name or architecture, weights missing or damaged",
    INTERNAL: "internal error (a bug in Tinct: please report it)",
    INTERRUPTED: "interrupted (Ctrl+C)",
    TERMINATED: "terminated (SIGTERM)",
}


class TinctError(Exception):
    """Base of Tinct's errors: ``str(error)`` is one line meant for the user, ``exit_code`` the status."""

    exit_code: int = FAILED


class UsageError(TinctError):
    """A bad option value, argument or combination."""

    exit_code = USAGE


class InputError(TinctError):
    """An input file or folder is missing, unreadable, or not what the command takes."""

    exit_code = INPUT


class OutputError(TinctError):
    """An output cannot be written where it was asked for."""

    exit_code = OUTPUT


class ModelError(TinctError):
    """The model cannot be had: unknown architecture, weights missing or damaged."""

    exit_code = MODEL


class InternalError(TinctError):
    """Something Tinct itself got wrong."""

    exit_code = INTERNAL


class Interrupted(TinctError):
    """The user stopped the run (Ctrl+C or SIGTERM); raised once the command has cleaned up after itself."""

    def __init__(self, message: str = "interrupted", *, terminated: bool = False) -> None:
        super().__init__(message)
        self.exit_code = TERMINATED if terminated else INTERRUPTED


def _foreign() -> tuple[type[BaseException], ...]:
    """Error families that cannot derive from :class:`TinctError` and carry its ``exit_code`` convention:
    ``weights_fetch``'s (it imports nothing from ``core``) and ``core.options.OptionError`` (that file is
    loaded on its own by the GIMP plug-in)."""
    from .options import OptionError

    try:
        from weights_fetch.errors import WeightsError
    except ImportError:  # an installation without the weights package
        return (OptionError,)
    return (OptionError, WeightsError)


def known_errors() -> tuple[type[BaseException], ...]:
    """Every exception class whose message is meant for the user as is."""
    return (TinctError, *_foreign())


def exit_code_of(error: BaseException) -> int:
    """The exit status for ``error``: its kind's for a known error, :data:`INTERRUPTED` or
    :data:`TERMINATED` for an interruption, :data:`INTERNAL` for anything else."""
    if isinstance(error, known_errors()):
        return int(getattr(error, "exit_code", FAILED))
    if isinstance(error, KeyboardInterrupt):  # core.interrupt.Terminated says TERMINATED
        return int(getattr(error, "exit_code", INTERRUPTED))
    return INTERNAL


def batch_exit_code(codes: list[int]) -> int:
    """The status of a run over many inputs whose failures had ``codes`` (the rest went on): 0 with no
    failure, their status when they all share one, else :data:`FAILED`."""
    kinds = set(codes)
    return OK if not kinds else kinds.pop() if len(kinds) == 1 else FAILED


def one_line(error: BaseException) -> str:
    """The first line of the error's message (its type's name if it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def exit_codes_help() -> str:
    """The exit-status table for ``--help`` (one line per status)."""
    return "exit status:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


DEBUG_ENV = "TINCT_DEBUG"  # set (to anything) to see the traceback of an internal error


def report(prog: str, error: BaseException) -> int:
    """Print ``error`` as one line on stderr for the command ``prog``; return its exit status.

    Only command lines call this (``core.cli.main`` and the modules' own ``main``). An unexpected error
    (a bug) is re-raised, traceback and all, when ``TINCT_DEBUG`` is set."""
    code = exit_code_of(error)
    if isinstance(error, KeyboardInterrupt):
        line = "terminated" if code == TERMINATED else "interrupted"
    elif isinstance(error, Interrupted):
        line = one_line(error)
    elif code == INTERNAL and not isinstance(error, InternalError):
        if os.environ.get(DEBUG_ENV):
            raise error
        line = (f"internal error: {type(error).__name__}: {one_line(error)} (a bug in Tinct; "
                f"{DEBUG_ENV}=1 shows where)")
    else:
        line = f"error: {one_line(error)}"
    print(f"{prog}: {line}", file=sys.stderr)
    return code
