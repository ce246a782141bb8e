"""The worker's socket server: one per user, private endpoint, idle timeout, one request at a time.

Protocol and endpoint files are defined in ``gimp_plugin/tinct_colorize/tinct_wire.py`` and
``tinct_rendezvous.py`` (shared with the plug-in). What a request does is up to the handler
(``core.worker.engine.EngineHandler`` in production).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import signal
import socket
import time
from pathlib import Path
from typing import IO, Callable, Iterator, Protocol, Sequence

from gimp_plugin.tinct_colorize import tinct_rendezvous as rendezvous
from gimp_plugin.tinct_colorize import tinct_wire as wire

ALREADY_RUNNING = 3
Reply = tuple[dict, Sequence[bytes | memoryview]]


class Handler(Protocol):
    """Turns one request into one or more replies (several for a frame sequence)."""

    def handle(self, header: dict, payload: bytearray) -> Iterator[Reply]: ...


class Shutdown(Exception):
    """Raised by a handler to stop the worker after replying."""


def serve(handler: Handler, run_dir: Path, *, idle_timeout: float = 600.0,
          max_payload: int = wire.DEFAULT_MAX_PAYLOAD, io_timeout: float = 120.0,
          log: Callable[[str], None] = print) -> int:
    """Serve until idle for ``idle_timeout`` seconds, a shutdown request or SIGTERM.

    Returns 0, or ``ALREADY_RUNNING`` when another worker of this user holds the lock.
    """
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = _try_lock(run_dir / rendezvous.LOCK_FILE)
    if lock is None:
        log("another Tinct worker is already running for this user")
        return ALREADY_RUNNING
    token = secrets.token_hex(32)
    listener, address, transport = _listen(run_dir)
    endpoint = {"protocol": wire.PROTOCOL_VERSION, "pid": os.getpid(), "transport": transport,
                "address": address, "token": token, "max_payload": max_payload, "started": time.time()}
    previous_term = signal.signal(signal.SIGTERM, _raise_shutdown)
    try:
        rendezvous.write_endpoint(run_dir, endpoint)
        log(f"Tinct worker {os.getpid()} listening on {transport} {address} (idle timeout {idle_timeout:g} s)")
        listener.settimeout(idle_timeout)
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                log("idle timeout: stopping")
                break
            with conn:
                conn.settimeout(io_timeout)
                if not _serve_connection(conn, handler, token, max_payload, log):
                    break
    except Shutdown:
        log("stopping on request")
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        listener.close()
        _clean_up(run_dir, transport, address)
        lock.close()
    return 0


def _raise_shutdown(signum: int, frame: object) -> None:
    raise Shutdown()


def _try_lock(path: Path) -> IO | None:
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


def _listen(run_dir: Path) -> tuple[socket.socket, object, str]:
    if rendezvous.use_unix_socket():
        path = rendezvous.unix_socket_path(run_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # we hold the lock, so a socket file left here is stale
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        listener.listen(8)
        return listener, str(path), "unix"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener, list(listener.getsockname()), "tcp"


def _clean_up(run_dir: Path, transport: str, address: object) -> None:
    current = rendezvous.read_endpoint(run_dir)
    if current and current.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            (run_dir / rendezvous.ENDPOINT_FILE).unlink()
    if transport == "unix":
        with contextlib.suppress(OSError):
            Path(str(address)).unlink()


def _error(message: str) -> dict:
    return {"ok": False, "error": message}


def _serve_connection(conn: socket.socket, handler: Handler, token: str, max_payload: int,
                      log: Callable[[str], None]) -> bool:
    """Answer the requests on one connection; False when the worker should stop."""
    while True:
        try:
            header, payload = wire.recv_message(conn, max_payload)
        except EOFError:
            return True
        except wire.ProtocolError as exc:
            log(f"refused a request: {exc}")
            with contextlib.suppress(OSError):
                wire.send_message(conn, _error(f"request refused: {exc}"))
            return True
        except (ConnectionError, socket.timeout) as exc:
            log(f"dropped a connection: {exc}")
            return True
        if not hmac.compare_digest(str(header.get("token", "")), token):
            with contextlib.suppress(OSError):
                wire.send_message(conn, _error("request refused: wrong or missing token"))
            return True
        try:
            for reply, parts in handler.handle(header, payload):
                wire.send_message(conn, reply, parts)
        except Shutdown:
            with contextlib.suppress(OSError):
                wire.send_message(conn, {"ok": True, "stopping": True})
            return False
        except OSError as exc:
            log(f"lost the client while replying: {exc}")
            return True
        except Exception as exc:  # the worker outlives any one bad request
            log(f"request failed: {exc!r}")
            with contextlib.suppress(OSError):
                wire.send_message(conn, _error(f"the engine failed: {exc}"))
