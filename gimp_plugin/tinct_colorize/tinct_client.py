"""The plug-in's side of the worker: find it, start it, restart it when stale, send requests.

Standard library only (runs in GIMP's Python). Where the engine lives comes from, in order:
``$TINCT_PYTHON`` / ``$TINCT_PROJECT_ROOT``; ``tinct.json`` beside the plug-in (written by
``gimp_plugin/installer.py``: the venv's Python, the project root, the installed model names,
the idle timeout); else the checkout the plug-in sits in (``<root>/.venv``).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

try:
    from . import tinct_shared
except ImportError:  # run by GIMP as a script beside these modules
    import tinct_shared  # type: ignore[no-redef]

rendezvous = tinct_shared.load("tinct_rendezvous")  # core/worker/rendezvous.py
wire = tinct_shared.load("tinct_wire")  # core/worker/wire.py

CONFIG_FILE = "tinct.json"
DEFAULT_IDLE_TIMEOUT = 600.0


class EngineError(Exception):
    """The engine could not do what was asked; the message is meant for the user."""


@dataclass
class EngineConfig:
    """How to reach the engine's virtual environment.

    ``models``: installed models (the menu); ``more_models``: catalog models not installed yet;
    ``command``: the ``tinct`` command, as the user would type it; ``runtime_dir``: where the
    worker listens (None: the per-user default); ``start_worker``: False where the plug-in
    cannot start the engine itself (a Flatpak GIMP), so it only connects to a running one.
    """

    python: Path
    project_root: Path
    models: list[str] = field(default_factory=lambda: ["default"])
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    more_models: list[str] = field(default_factory=list)
    command: str = "tinct"
    runtime_dir: Path | None = None
    start_worker: bool = True


def _venv_python(root: Path) -> Path:
    return root / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def load_config(plugin_dir: Path) -> EngineConfig:
    """The engine configuration for the plug-in in ``plugin_dir`` (see the module docstring)."""
    data: dict = {}
    try:
        data = json.loads((plugin_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise EngineError(f"{plugin_dir / CONFIG_FILE} is unreadable ({exc}); reinstall the plug-in") from None
    checkout = plugin_dir.resolve().parent.parent
    root = Path(os.environ.get("TINCT_PROJECT_ROOT") or data.get("project_root") or checkout)
    python = Path(os.environ.get("TINCT_PYTHON") or data.get("python") or _venv_python(root))
    models = [m for m in os.environ.get("TINCT_MODELS", "").split(",") if m] or list(data.get("models") or [])
    if "default" not in models:
        models.insert(0, "default")
    flatpak = bool(data.get("flatpak")) or rendezvous.in_flatpak()
    runtime = data.get("runtime_dir") or (str(rendezvous.flatpak_runtime_dir()) if flatpak else None)
    command = str(data.get("command") or Path(python).with_name("tinct"))
    return EngineConfig(python, root, models, float(data.get("idle_timeout", DEFAULT_IDLE_TIMEOUT)),
                        [str(m) for m in data.get("more_models") or []], command,
                        Path(runtime) if runtime else None, not flatpak)


class WorkerClient:
    """Talks to the user's worker, starting it (again) when needed.

    ``wait`` is called about every ``wait_interval`` seconds while waiting for the engine (the
    plug-in pulses GIMP's progress bar with it). A live worker that refuses connections because
    it is busy is retried for ``busy_retry_seconds``.
    """

    def __init__(self, config: EngineConfig, *, start_timeout: float = 120.0, request_timeout: float = 1800.0,
                 wait: Callable[[], None] | None = None, wait_interval: float = 0.25, busy_retry_seconds: float = 10.0):
        self.config = config
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.wait = wait or (lambda: None)
        self.wait_interval = wait_interval
        self.busy_retry_seconds = busy_retry_seconds
        self.run_dir = rendezvous.runtime_dir(config.runtime_dir)

    # -- requests ---------------------------------------------------------------------------

    def request(self, op: str, options: dict | None = None, arrays: Sequence[tuple[dict, bytes | memoryview]] = ()
                ) -> tuple[dict, bytearray]:
        """Send one request and return its one reply (header, payload); raises ``EngineError``."""
        for header, payload in self.stream(op, options, arrays):
            return header, payload
        raise EngineError("the engine closed the connection without answering")

    def stream(self, op: str, options: dict | None = None, arrays: Sequence[tuple[dict, bytes | memoryview]] = (),
               replies: int = 1) -> Iterator[tuple[dict, bytearray]]:
        """Send one request and yield ``replies`` successful replies; raises ``EngineError``."""
        sock, endpoint = self.connect()
        with sock:
            size = sum(wire.array_nbytes(spec) for spec, _ in arrays)
            limit = int(endpoint.get("max_payload", wire.DEFAULT_MAX_PAYLOAD))
            if size > limit:
                raise EngineError(f"the image is too large for the engine ({size >> 20} MiB, limit {limit >> 20} MiB)")
            header = {"op": op, "token": endpoint.get("token", ""), "options": options or {},
                      "arrays": [spec for spec, _ in arrays]}
            try:
                sock.settimeout(self.request_timeout)
                try:
                    wire.send_message(sock, header, [data for _, data in arrays])
                except BrokenPipeError:
                    pass  # refused on its header: the worker's reason is waiting to be read
                for _ in range(replies):
                    reply, payload = self._receive(sock)
                    if not reply.get("ok"):
                        raise EngineError(str(reply.get("error") or "the engine refused the request"))
                    yield reply, payload
            except wire.ProtocolError as exc:
                raise EngineError(f"the engine sent a reply this plug-in cannot read: {exc}") from None
            except (EOFError, ConnectionError, socket.timeout) as exc:
                raise EngineError(f"the engine stopped answering ({exc}); see {self.run_dir / rendezvous.LOG_FILE}"
                                  ) from None

    def _receive(self, sock: socket.socket) -> tuple[dict, bytearray]:
        """Wait for a reply, calling ``wait`` while the engine works."""
        deadline = time.monotonic() + self.request_timeout
        sock.settimeout(self.wait_interval)
        while True:
            try:
                head = sock.recv(1, socket.MSG_PEEK)
                break
            except socket.timeout:
                if time.monotonic() > deadline:
                    raise
                self.wait()
        if not head:
            raise EOFError("connection closed")
        sock.settimeout(self.request_timeout)
        return wire.recv_message(sock, max_payload=1 << 62)

    # -- finding and starting the worker ----------------------------------------------------

    def connect(self) -> tuple[socket.socket, dict]:
        """A connection to a live worker of the current protocol, starting one if needed.

        A worker that is alive but busy (its listen queue full: EAGAIN, or ECONNREFUSED over TCP)
        is retried with backoff, not taken for dead; a worker is only started while holding the
        start lock, after looking once more whether another client started one meanwhile.
        Where the plug-in cannot start one (a Flatpak GIMP), it only connects.
        """
        if not self.config.start_worker:
            return self._connect_only(rendezvous.read_endpoint(self.run_dir))
        found = self._connect_existing()
        if found is not None:
            return found
        try:
            with rendezvous.start_lock(self.run_dir, self.start_timeout, self.wait):
                found = self._connect_existing()
                if found is not None:
                    return found
                return self._start()
        except TimeoutError as exc:
            raise EngineError(f"{exc}; see {self.run_dir / rendezvous.LOG_FILE}") from None

    def _connect_existing(self) -> tuple[socket.socket, dict] | None:
        """A connection to the published worker, or None when there is none that answers."""
        endpoint = rendezvous.read_endpoint(self.run_dir)
        if endpoint and endpoint.get("protocol") != wire.PROTOCOL_VERSION:
            self._stop(endpoint)
            return None
        if not endpoint:
            return None
        delay = 0.02
        deadline = time.monotonic() + self.busy_retry_seconds
        while True:
            try:
                return rendezvous.connect(endpoint, timeout=5.0), endpoint
            except OSError as exc:
                busy = isinstance(exc, socket.timeout) or exc.errno in _BUSY_ERRNOS
                if not busy or not _alive(endpoint.get("pid")) or time.monotonic() > deadline:
                    return None  # a crashed worker's leftovers: a fresh one clears them
            self.wait()
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _connect_only(self, endpoint: dict | None) -> tuple[socket.socket, dict]:
        """A connection to a worker started outside GIMP (``tinct worker start``); one line when there is none."""
        start = f"{self.config.command} worker start --flatpak"
        if endpoint and endpoint.get("protocol") != wire.PROTOCOL_VERSION:
            raise EngineError(f"the running engine is another version; in a terminal run: "
                              f"{self.config.command} worker stop; {start}")
        if endpoint:
            try:
                return rendezvous.connect(endpoint, timeout=5.0), endpoint
            except OSError:
                pass
        raise EngineError(f"the engine is not running; in a terminal (outside GIMP) run: {start}")

    def _stop(self, endpoint: dict) -> None:
        pid = endpoint.get("pid")
        if isinstance(pid, int) and pid > 0:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def _start(self) -> tuple[socket.socket, dict]:
        python = self.config.python
        if not Path(python).exists():
            raise EngineError(f"the Tinct engine's Python was not found at {python}; run Tinct's install.py again")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(self.config.project_root)
        env["TINCT_RUNTIME_DIR"] = str(self.run_dir)
        cmd = [str(python), "-m", "core.worker", "--run-dir", str(self.run_dir),
               "--idle-timeout", str(self.config.idle_timeout)]
        log_path = self.run_dir / rendezvous.LOG_FILE
        detach: dict = {"start_new_session": True}
        if os.name == "nt":
            detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
                      | getattr(subprocess, "DETACHED_PROCESS", 0)}
        try:
            with open(log_path, "ab") as log:
                process = subprocess.Popen(cmd, cwd=str(self.config.project_root), env=env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=log, **detach)
        except OSError as exc:
            raise EngineError(f"could not start the Tinct engine ({python}): {exc}") from None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            endpoint = rendezvous.read_endpoint(self.run_dir)
            if endpoint and endpoint.get("protocol") == wire.PROTOCOL_VERSION:
                try:
                    return rendezvous.connect(endpoint, timeout=5.0), endpoint
                except OSError:
                    pass
            code = process.poll()
            if code is not None and code != 3:  # 3: another worker holds the lock, keep waiting for it
                raise EngineError(f"the Tinct engine could not start (exit code {code}):\n{_tail(log_path)}")
            self.wait()
            time.sleep(self.wait_interval)
        raise EngineError(f"the Tinct engine did not start within {self.start_timeout:.0f} s; see {log_path}")


_BUSY_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNREFUSED, errno.ETIMEDOUT}


def _alive(pid: object) -> bool:
    """Whether process ``pid`` exists (on Windows, where probing a pid is not harmless, assumed)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet still has a pid (Linux: state Z)
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


if __name__ == "__main__":
    client = WorkerClient(load_config(Path(__file__).resolve().parent))
    print(client.request("ping")[0], file=sys.stdout)
