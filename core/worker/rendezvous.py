"""Where the one-per-user Tinct worker listens, and how either side finds it (standard library only).

The worker keeps its files in a directory only the user can enter:

- Linux/BSD: ``$XDG_RUNTIME_DIR/tinct`` when that runtime directory exists and is the user's,
  else ``<tempdir>/tinct-<uid>``; macOS: ``$TMPDIR/tinct-<uid>`` (``$TMPDIR`` is per user there).
  The directory is created 0700 and refused if another user owns it or others can enter it.
- Windows: ``%LOCALAPPDATA%\\Tinct\\run`` (the profile's ACL keeps other users out).
- A Flatpak GIMP: ``~/.var/app/org.gimp.GIMP/cache/tinct`` (see ``flatpak_runtime_dir``), which
  the host and the sandbox both see; the plug-in there cannot start the worker itself.
- ``$TINCT_RUNTIME_DIR`` overrides all of these (tests, several profiles side by side).

Inside it: ``worker.sock`` (a Unix socket, mode 0600), ``worker.json`` (the endpoint: transport,
address, auth token, pid, protocol version; mode 0600, written atomically), ``worker.lock``
(held by the live worker, so there is one per user), ``worker.start.lock`` (held by the one
client that is starting a worker, so concurrent clients start one between them) and ``worker.log``.

Transport: a Unix socket wherever Python offers ``AF_UNIX`` (Linux, macOS). Where it does not
(CPython on Windows), loopback TCP on a random port; the worker then only answers requests
carrying the random token from ``worker.json``, which only the user can read. The token is
checked on every transport.

Standard library only: the worker imports it as ``core.worker.rendezvous``; the GIMP plug-in loads
this same file, which the installer copies beside it as ``tinct_rendezvous.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Callable, Iterator

ENDPOINT_FILE = "worker.json"
SOCKET_FILE = "worker.sock"
LOCK_FILE = "worker.lock"
START_LOCK_FILE = "worker.start.lock"
LOG_FILE = "worker.log"
FLATPAK_APP = "org.gimp.GIMP"
_UNIX_PATH_MAX = 104  # the smallest sun_path among Linux (108) and macOS/BSD (104)


class RendezvousError(Exception):
    """The runtime directory or endpoint cannot be used safely."""


def flatpak_runtime_dir() -> Path:
    """The runtime directory shared with a Flatpak GIMP: inside its app folder, which the sandbox always sees.

    ``~/.var/app/org.gimp.GIMP/cache/tinct`` is the same path on the host and inside the sandbox
    (the Flatpak's ``$XDG_RUNTIME_DIR`` and ``/tmp`` are not reliably shared), so the worker
    started on the host and the plug-in in the sandbox meet there.
    """
    return Path.home() / ".var" / "app" / FLATPAK_APP / "cache" / "tinct"


def in_flatpak() -> bool:
    """Whether this process runs inside a Flatpak sandbox."""
    return bool(os.environ.get("FLATPAK_ID")) or Path("/.flatpak-info").is_file()


def runtime_dir(base: Path | None = None) -> Path:
    """The user's private Tinct runtime directory (``base`` if given), created if needed and checked."""
    override = os.environ.get("TINCT_RUNTIME_DIR") or base
    if override:
        path = Path(override)
    elif os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        path = Path(base) / "Tinct" / "run"
    else:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and sys.platform != "darwin" and _owned_private_dir(Path(xdg)):
            path = Path(xdg) / "tinct"
        else:
            path = Path(tempfile.gettempdir()) / f"tinct-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name != "nt":
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise RendezvousError(f"{path} is not a directory owned by you; remove it or set TINCT_RUNTIME_DIR")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
    return path


def _owned_private_dir(path: Path) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def use_unix_socket() -> bool:
    """Whether this Python can serve the worker on a Unix socket (``TINCT_WORKER_TRANSPORT=tcp`` forces TCP)."""
    return hasattr(socket, "AF_UNIX") and os.environ.get("TINCT_WORKER_TRANSPORT", "").lower() != "tcp"


def unix_socket_path(run_dir: Path) -> Path:
    """The socket path, checked against the platform's length limit."""
    path = run_dir / SOCKET_FILE
    if len(os.fsencode(str(path))) >= _UNIX_PATH_MAX:
        raise RendezvousError(f"socket path too long for a Unix socket ({path}); set TINCT_RUNTIME_DIR to a shorter dir")
    return path


def write_endpoint(run_dir: Path, endpoint: dict) -> None:
    """Write ``worker.json`` atomically, readable by the user only."""
    final = run_dir / ENDPOINT_FILE
    temp = run_dir / f".{ENDPOINT_FILE}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(endpoint, handle)
    os.replace(temp, final)


def read_endpoint(run_dir: Path) -> dict | None:
    """The endpoint the worker published, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((run_dir / ENDPOINT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def connect(endpoint: dict, timeout: float) -> socket.socket:
    """Open a connection to the endpoint; raises ``OSError`` when nobody answers there."""
    if endpoint.get("transport") == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: object = endpoint["address"]
    elif endpoint.get("transport") == "tcp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        address = ("127.0.0.1", int(endpoint["address"][1]))
    else:
        raise OSError(f"unknown worker transport {endpoint.get('transport')!r}")
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def try_lock(path: Path) -> IO | None:
    """An exclusive lock on ``path`` (created if missing) without waiting: the open handle that
    holds it (closing it releases the lock), or None when another process holds it."""
    handle = open(path, "a+")
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def start_lock(run_dir: Path, timeout: float, wait: Callable[[], None] = lambda: None,
               interval: float = 0.05) -> Iterator[None]:
    """Hold ``worker.start.lock`` for the block, waiting up to ``timeout`` seconds for it (calling
    ``wait`` while waiting). Raises ``TimeoutError`` when it cannot be had in time."""
    deadline = time.monotonic() + timeout
    while True:
        handle = try_lock(run_dir / START_LOCK_FILE)
        if handle is not None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"another Tinct client has been starting the worker for over {timeout:.0f} s")
        wait()
        time.sleep(interval)
    try:
        yield
    finally:
        handle.close()
