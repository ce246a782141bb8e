"""A hostile or clumsy client of the worker, and many clients at once: real sockets, real worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from gimp_plugin.tinct_colorize import tinct_client as client_mod
from core.worker import rendezvous
from core.worker import wire
import worker_support
from worker_support import stop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir(monkeypatch):
    path = Path(tempfile.mkdtemp(prefix="tws-", dir="/tmp"))  # short: Unix socket paths are limited
    monkeypatch.setenv("TINCT_RUNTIME_DIR", str(path))
    yield path
    endpoint = rendezvous.read_endpoint(path)
    if endpoint and endpoint["pid"] != os.getpid():
        try:
            os.kill(endpoint["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def start_worker(run_dir: Path, *extra: str) -> tuple[subprocess.Popen, dict]:
    return worker_support.start_worker(run_dir, "--idle-timeout", "120", *extra)


def ping(endpoint: dict, timeout: float = 10.0) -> dict:
    with rendezvous.connect(endpoint, timeout) as sock:
        wire.send_message(sock, {"op": "ping", "token": endpoint["token"]})
        return wire.recv_message(sock)[0]


def exchange(endpoint: dict, data: bytes, timeout: float = 10.0) -> dict:
    """Send raw bytes (and nothing more) and read the worker's answer."""
    with rendezvous.connect(endpoint, timeout) as sock:
        sock.sendall(data)
        return wire.recv_message(sock)[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def message(header_bytes: bytes, payload_len: int = 0) -> bytes:
    return wire.PREFIX.pack(wire.MAGIC, wire.PROTOCOL_VERSION, 0, len(header_bytes), payload_len) + header_bytes


def test_deeply_nested_header_is_refused_and_the_worker_lives(run_dir):
    proc, endpoint = start_worker(run_dir)
    try:
        for nested in (b"[" * 200_000, b'{"op": "ping", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
            reply = exchange(endpoint, message(nested))
            assert not reply["ok"] and "nests deeper" in reply["error"]
        # brackets inside strings are text, not nesting
        assert not exchange(endpoint, message(b'{"op": "ping", "note": "' + b"[" * 5000 + b'"}'))["ok"]
        assert ping(endpoint)["ok"] and proc.poll() is None
    finally:
        stop(proc)


def test_declared_payload_is_not_read_or_allocated_without_the_token(run_dir):
    proc, endpoint = start_worker(run_dir)
    try:
        before = rss_mb(proc.pid)
        huge = (2 << 30) - 1  # just under the default payload limit
        started = time.monotonic()
        reply = exchange(endpoint, message(b'{"op": "colorize", "token": "guess"}', huge))
        assert not reply["ok"] and "token" in reply["error"]
        assert time.monotonic() - started < 8  # answered at once, not after waiting for 2 GB
        # with the token, arrays that do not need the declared payload are refused before reading it
        header = ('{"op": "colorize", "token": "%s", "arrays": [{"name": "pixels", "dtype": "u8", '
                  '"shape": [4, 4, 3]}]}' % endpoint["token"]).encode()
        reply = exchange(endpoint, message(header, huge))
        assert not reply["ok"] and "48 bytes but the payload has" in reply["error"]
        assert rss_mb(proc.pid) - before < 100
        assert ping(endpoint)["ok"]
    finally:
        stop(proc)


def test_a_stalled_client_does_not_block_the_others(run_dir):
    proc, endpoint = start_worker(run_dir, "--header-timeout", "3")
    try:
        staller = rendezvous.connect(endpoint, 30)
        staller.sendall(b"TNCT\x00")  # 5 bytes of a prefix, then nothing
        time.sleep(0.3)
        for _ in range(3):
            assert ping(endpoint, timeout=2.5)["ok"]  # served while the staller still holds its connection
        # the staller is dropped once its header deadline has passed
        staller.settimeout(30)
        assert staller.recv(1) == b""
        staller.close()
        # a client trickling one byte at a time cannot stretch the deadline either
        trickler = rendezvous.connect(endpoint, 30)
        started = time.monotonic()
        try:
            for byte in message(b'{"op": "ping", "token": "%s"}' % endpoint["token"].encode()):
                trickler.sendall(bytes([byte]))
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() - started < 20
        trickler.close()
        assert ping(endpoint)["ok"]
    finally:
        stop(proc)


def test_requests_on_many_connections_at_once_are_all_answered(run_dir):
    proc, endpoint = start_worker(run_dir)
    try:
        pixels = np.full((16, 16, 1), 128, np.uint8)
        spec = wire.array_spec("pixels", "u8", pixels.shape)

        def colorize_once(_: int) -> dict:
            with rendezvous.connect(endpoint, 60) as sock:
                wire.send_message(sock, {"op": "colorize", "token": endpoint["token"],
                                         "options": {"model": "default", "render_size": 32},
                                         "arrays": [spec]}, [pixels.tobytes()])
                return wire.recv_message(sock)[0]

        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(colorize_once, range(8)))
        assert all(r["ok"] for r in replies), [r.get("error") for r in replies if not r["ok"]]
    finally:
        stop(proc)


def test_render_size_is_bounded_in_the_worker(run_dir):
    from core.pipeline import MAX_RENDER_SIZE

    proc, endpoint = start_worker(run_dir)
    try:
        pixels = np.zeros((8, 8, 1), np.uint8)
        with rendezvous.connect(endpoint, 30) as sock:
            wire.send_message(sock, {"op": "colorize", "token": endpoint["token"],
                                     "options": {"model": "default", "render_size": 16384},
                                     "arrays": [wire.array_spec("pixels", "u8", pixels.shape)]}, [pixels.tobytes()])
            reply = wire.recv_message(sock)[0]
        assert not reply["ok"] and str(MAX_RENDER_SIZE) in reply["error"] and "16384" in reply["error"]
    finally:
        stop(proc)


def test_fifty_concurrent_clients_start_exactly_one_worker(run_dir):
    config = client_mod.EngineConfig(python=Path(sys.executable), project_root=ROOT, idle_timeout=120)
    barrier = threading.Barrier(50)

    def call(_: int) -> int:
        client = client_mod.WorkerClient(config, start_timeout=120, wait_interval=0.05)
        barrier.wait()
        return client.request("ping")[0]["pid"]

    with ThreadPoolExecutor(50) as pool:
        pids = set(pool.map(call, range(50)))
    assert len(pids) == 1
    with ThreadPoolExecutor(50) as pool:  # and once it runs, contention never starts another one
        barrier.reset()
        assert set(pool.map(call, range(50))) == pids
    log = (run_dir / rendezvous.LOG_FILE).read_text()
    assert log.count("listening on") == 1 and "already running" not in log, log


def test_a_busy_worker_is_retried_not_replaced(run_dir):
    """A live worker whose listen queue is full (EAGAIN) is waited for, not taken for dead."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = str(run_dir / rendezvous.SOCKET_FILE)
    listener.bind(address)
    listener.listen(0)
    fillers = []
    for _ in range(4):  # fill the backlog of a process that is alive but does not accept yet
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(address)
        except BlockingIOError:
            s.close()
            break
        fillers.append(s)
    rendezvous.write_endpoint(run_dir, {"protocol": wire.PROTOCOL_VERSION, "pid": os.getpid(), "transport": "unix",
                                        "address": address, "token": "t"})
    config = client_mod.EngineConfig(python=Path("/nonexistent/python"), project_root=ROOT)
    client = client_mod.WorkerClient(config)

    def accept_later() -> None:
        time.sleep(1.0)  # the client meets a full queue meanwhile
        listener.settimeout(10)
        for _ in range(len(fillers) + 1):
            accepted.append(listener.accept()[0])

    accepted: list[socket.socket] = []
    thread = threading.Thread(target=accept_later)
    thread.start()
    try:
        sock, endpoint = client.connect()  # would try to start /nonexistent/python if it gave up
        sock.close()
        assert endpoint["pid"] == os.getpid()
    finally:
        thread.join()
        for conn in accepted + fillers:
            conn.close()
        listener.close()
        Path(address).unlink()


def test_array_sizes_are_bounded_per_image_side_and_in_total():
    """An image side above ``MAX_SIDE`` is refused; a long pixel list (the plug-in's ``hint_pixels``,
    ``[k, 4]`` with k in the millions on a large layer) is not, as long as the total stays bounded."""
    assert wire.array_nbytes(wire.array_spec("hint_pixels", "u16", (3_000_000, 4))) == 24_000_000
    assert wire.array_nbytes(wire.array_spec("pixels", "u8", (wire.MAX_SIDE, 2, 3))) == wire.MAX_SIDE * 6
    for shape in ((wire.MAX_SIDE + 1, 2, 3), (2, wire.MAX_SIDE + 1, 1), (wire.MAX_ELEMENTS + 1,),
                  (wire.MAX_SIDE, wire.MAX_SIDE, 2), (0, 4), ()):
        with pytest.raises(wire.ProtocolError):
            wire.array_nbytes(wire.array_spec("x", "u8", shape))
