"""Files that appear whole or not at all: the one temporary-then-rename writer of ``core``.

Every file Tinct writes (images, reports, checkpoints, caches, videos) is first written to a hidden
temporary sibling (:func:`temp_sibling`, ``.NAME.<random>.tmp`` in the same folder, so the final
rename never crosses file systems) and then moved over the final name with ``os.replace``. A reader
therefore sees the old file or the whole new one; an error or Ctrl-C removes the temporary.

Standard library only. ``weights_fetch`` (which depends on nothing in ``core``:
``weights_fetch.cache.move_into_place``) and the worker's rendezvous file (loaded alone by the GIMP
plug-in: ``core.worker.rendezvous.write_endpoint``) keep one writer each of their own.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from .errors import OutputError

TEMP_SUFFIX = ".tmp"


class FileWriteError(OutputError):
    """A file cannot be written (no such folder, no permission, disk full...); one line naming the file."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def temp_sibling(final: str | os.PathLike, *, suffix: str = "", directory: bool = False,
                 error: type[Exception] = FileWriteError) -> Path:
    """Create and return a unique hidden temporary file (or, with ``directory``, folder) beside ``final``.

    Args:
        final: the name the finished file or folder will have.
        suffix: appended after ``.tmp`` for writers that choose a format by the name (PyAV).
        directory: make a folder (mode 0777 less the umask) instead of a file (mode 0600 until
            :func:`move_into_place`).
    Returns:
        ``.NAME.<random>.tmp[suffix]`` in the folder of ``final``.
    Raises:
        error: the folder of ``final`` cannot hold a new entry (the message names it).
    """
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    try:
        if directory:
            path = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX + suffix, dir=folder))
            os.chmod(path, 0o777 & ~_current_umask())
            return path
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX + suffix, dir=folder)
        os.close(fd)
        return Path(name)
    except OSError as exc:
        raise error(f"{final}: cannot create a file in {folder} ({one_line(exc)})") from None


_TEMP_NAME = re.compile(r"^\.(?P<owner>.+)\.[A-Za-z0-9_]+\.tmp(?:\.[A-Za-z0-9]+)?$")


def temp_owner(entry: str) -> str | None:
    """The final name a :func:`temp_sibling` name belongs to (``.a.png.x1y2z3.tmp`` -> ``a.png``), else None."""
    match = _TEMP_NAME.match(entry)
    return match.group("owner") if match else None


def move_into_place(temp: str | os.PathLike, final: str | os.PathLike, *,
                    error: type[Exception] = FileWriteError) -> None:
    """Give the finished file ``temp`` the usual mode (0666 less the umask) and rename it over ``final``.

    On failure ``temp`` is removed and ``error`` raised (one line naming ``final``).
    """
    try:
        os.chmod(temp, 0o666 & ~_current_umask())  # mkstemp makes 0600
        os.replace(temp, final)
    except OSError as exc:
        discard(temp)
        raise error(f"{final}: cannot write ({one_line(exc)})") from None


def discard(path: str | os.PathLike) -> None:
    """Remove a temporary file if it is still there (never raises)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def write_atomically(path: str | os.PathLike, writer: Callable[[IO[bytes]], Any], *,
                     error: type[Exception] = FileWriteError) -> None:
    """Call ``writer(binary_file)`` on a :func:`temp_sibling` of ``path``, then :func:`move_into_place`.

    Args:
        path: the final file; its folder must exist.
        writer: writes the whole content to the open binary file it is given.
        error: the exception class raised for OS errors (``core.imageio`` passes ``ImageWriteError``).
    Raises:
        error: the file cannot be created, written or moved (one line naming ``path``); nothing is
            left behind. Any other exception of ``writer`` (and KeyboardInterrupt) propagates after the
            temporary file is removed.
    """
    path = Path(path)
    temp = temp_sibling(path, error=error)
    try:
        with open(temp, "wb") as handle:
            writer(handle)
        move_into_place(temp, path, error=error)
    except BaseException as exc:
        discard(temp)
        if isinstance(exc, OSError):
            raise error(f"{path}: cannot write ({one_line(exc)})") from None
        raise


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
