"""The worker's socket server: one per user, private endpoint, idle timeout.

Protocol and endpoint files are defined in ``core/worker/wire.py`` and ``core/worker/rendezvous.py``
(shared with the plug-in). What a request does is up to the handler
(``core.worker.engine.EngineHandler`` in production).

Each connection is served in its own thread, so one client cannot hold the others: the prefix
and header of a request must arrive within ``header_timeout`` seconds in all; the token and the
declared arrays are checked before any payload byte is read (so nobody without the token makes
the worker allocate anything); only the engine itself runs one request at a time, behind a lock.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from core.worker import rendezvous
from core.worker import wire

ALREADY_RUNNING = 3
DEFAULT_HEADER_TIMEOUT = 5.0  # seconds for a request's prefix and header, all of it
MAX_CONNECTIONS = 32
_POLL_SECONDS = 0.25  # how often the accept loop looks at the idle clock and the stop flag
Reply = tuple[dict, Sequence[bytes | memoryview]]


class Handler(Protocol):
    """Turns one request into one or more replies (several for a frame sequence)."""

    def handle(self, header: dict, payload: bytearray) -> Iterator[Reply]: ...


class Shutdown(Exception):
    """Raised by a handler to stop the worker after replying."""


def serve(handler: Handler, run_dir: Path, *, idle_timeout: float | None = 600.0,
          max_payload: int = wire.DEFAULT_MAX_PAYLOAD, io_timeout: float = 120.0,
          header_timeout: float = DEFAULT_HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
          log: Callable[[str], None] = print) -> int:
    """Serve until idle for ``idle_timeout`` seconds (None: never), a shutdown request or SIGTERM.

    ``header_timeout``: seconds a connection has to deliver a request's prefix and header;
    ``io_timeout``: seconds any one read or write of a payload may wait. At most
    ``max_connections`` connections are served at once; more wait to be accepted.

    Returns 0, or ``ALREADY_RUNNING`` when another worker of this user holds the lock.
    """
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = rendezvous.try_lock(run_dir / rendezvous.LOCK_FILE)
    if lock is None:
        log("another Tinct worker is already running for this user")
        return ALREADY_RUNNING
    token = secrets.token_hex(32)
    listener, address, transport = _listen(run_dir)
    endpoint = {"protocol": wire.PROTOCOL_VERSION, "pid": os.getpid(), "transport": transport,
                "address": address, "token": token, "max_payload": max_payload, "started": time.time()}
    state = _State(handler, token, max_payload, io_timeout, header_timeout, max_connections, log)
    previous_term = signal.signal(signal.SIGTERM, _raise_shutdown)
    try:
        rendezvous.write_endpoint(run_dir, endpoint)
        idle = f"{idle_timeout:g} s" if idle_timeout else "none"
        log(f"Tinct worker {os.getpid()} listening on {transport} {address} (idle timeout {idle})")
        listener.settimeout(min(idle_timeout or _POLL_SECONDS, _POLL_SECONDS))
        while not state.stopping.is_set():
            # With every slot taken, new clients wait in the listen queue (and retry when it is full).
            if not state.slots.acquire(timeout=_POLL_SECONDS):
                continue
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                state.slots.release()
                if idle_timeout and state.idle_seconds() >= idle_timeout:
                    log("idle timeout: stopping")
                    break
                continue
            state.start(conn)
        else:
            log("stopping on request")
    except Shutdown:
        log("stopping on request")
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        state.stopping.set()
        listener.close()
        _clean_up(run_dir, transport, address)
        lock.close()
    return 0


class _State:
    """What the connection threads share: the engine lock, the activity clock, the stop flag."""

    def __init__(self, handler: Handler, token: str, max_payload: int, io_timeout: float, header_timeout: float,
                 max_connections: int, log: Callable[[str], None]):
        self.handler, self.token, self.max_payload, self.log = handler, token, max_payload, log
        self.io_timeout, self.header_timeout = io_timeout, header_timeout
        self.engine = threading.Lock()
        self.stopping = threading.Event()
        self.slots = threading.BoundedSemaphore(max_connections)
        self._count = threading.Lock()
        self.active = 0
        self.last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        with self._count:
            return 0.0 if self.active else time.monotonic() - self.last_activity

    def start(self, conn: socket.socket) -> None:
        """Serve ``conn`` in a thread of its own; the caller holds one of the ``slots`` for it."""
        with self._count:
            self.active += 1
        threading.Thread(target=self._run, args=(conn,), name="tinct-connection", daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            with conn:
                _serve_connection(conn, self)
        except Exception as exc:  # noqa: BLE001 - one connection's failure never reaches the others
            self.log(f"connection failed: {exc!r}")
        finally:
            with self._count:
                self.active -= 1
                self.last_activity = time.monotonic()
            self.slots.release()


class _Deadline:
    """A socket whose reads share one deadline (a client trickling a byte at a time cannot extend it)."""

    def __init__(self, sock: socket.socket, seconds: float):
        self.sock = sock
        self.deadline = time.monotonic() + seconds

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("the request's header did not arrive in time")
        self.sock.settimeout(left)

    def recv(self, size: int, *flags: int) -> bytes:
        self._arm()
        return self.sock.recv(size, *flags)

    def recv_into(self, buffer, size: int = 0) -> int:
        self._arm()
        return self.sock.recv_into(buffer, size)


def _raise_shutdown(signum: int, frame: object) -> None:
    raise Shutdown()


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
        listener.listen(64)
        return listener, str(path), "unix"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
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


def _serve_connection(conn: socket.socket, state: _State) -> None:
    """Answer the requests on one connection until it closes, misbehaves or the worker stops."""
    log = state.log
    while not state.stopping.is_set():
        try:
            header, payload_len = wire.recv_header(_Deadline(conn, state.header_timeout), state.max_payload)
        except EOFError:
            return
        except wire.ProtocolError as exc:
            log(f"refused a request: {exc}")
            _reply_error(conn, f"request refused: {exc}")
            return
        except (OSError, socket.timeout) as exc:  # ConnectionError, a stalled client
            log(f"dropped a connection: {exc}")
            return
        if not hmac.compare_digest(str(header.get("token", "")), state.token):
            _reply_error(conn, "request refused: wrong or missing token")
            return
        try:
            wire.check_arrays(header.get("arrays", []), payload_len)
        except wire.ProtocolError as exc:
            log(f"refused a request: {exc}")
            _reply_error(conn, f"request refused: {exc}")
            return
        conn.settimeout(state.io_timeout)
        try:
            payload = wire.recv_exact(conn, payload_len)
        except (OSError, socket.timeout) as exc:
            log(f"dropped a connection while reading its payload: {exc}")
            return
        with state.engine:
            try:
                for reply, parts in state.handler.handle(header, payload):
                    wire.send_message(conn, reply, parts)
            except Shutdown:
                state.stopping.set()
                with contextlib.suppress(OSError):
                    wire.send_message(conn, {"ok": True, "stopping": True})
                return
            except OSError as exc:
                log(f"lost the client while replying: {exc}")
                return
            except Exception as exc:  # the worker outlives any one bad request
                log(f"request failed: {exc!r}")
                _reply_error(conn, f"the engine failed: {exc}")
        del payload
        with state._count:
            state.last_activity = time.monotonic()


def _reply_error(conn: socket.socket, message: str) -> None:
    with contextlib.suppress(OSError):
        conn.settimeout(5.0)
        wire.send_message(conn, _error(message))
