"""An inter-process file lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows).

The operating system drops the lock when its holder exits or crashes, so a lock can never go
stale; the lock file itself stays behind, harmless, and is reused by the next process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from .errors import CacheError, LockTimeout

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """Exclusive lock on ``path``, held inside a ``with`` block.

    ``on_wait`` is called once if the lock is busy (e.g. to tell the user another process is
    downloading); :class:`LockTimeout` is raised after ``timeout`` seconds of waiting.
    """

    def __init__(
        self,
        path: Path,
        timeout: float,
        on_wait: Callable[[], None] | None = None,
        poll_interval: float = 0.1,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.on_wait = on_wait
        self.poll_interval = poll_interval
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CacheError(f"cannot create lock file {self.path}: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + self.timeout
        waited = False
        while not _try_lock(fd):
            if not waited and self.on_wait is not None:
                self.on_wait()
            waited = True
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(
                    f"another process has held {self.path} for over {self.timeout:g}s; "
                    "try again when it has finished"
                )
            time.sleep(self.poll_interval)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
