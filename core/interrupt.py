"""SIGTERM handled like Ctrl-C, so that a terminated run cleans up what it started.

Writers of Tinct remove their temporary files on ``KeyboardInterrupt`` (``core.fs.write_atomically``, the
video writers' ``abort``); Python's default SIGTERM ends the process without running them, which
left hidden ``.NAME.*.tmp`` files behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from .errors import TERMINATED


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (raised in the main thread)."""

    exit_code = TERMINATED


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main
    thread; outside the main thread, or where SIGTERM does not exist, nothing changes."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
