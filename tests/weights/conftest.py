"""Fixtures for the weights tests: a real HTTP server on 127.0.0.1 that misbehaves on demand,
a private cache per test, and small generated checkpoints published through a test catalog."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@dataclass
class Action:
    """What the server does for one request: ``ok``, ``status`` (send ``code``), ``drop`` (close
    after ``after`` body bytes), ``stall`` (send ``after`` bytes then go silent), ``gate`` (wait
    for the test to open ``WeightsServer.gate`` before answering)."""

    kind: str = "ok"
    code: int = 0
    after: int = 0


@dataclass
class RequestRecord:
    """One request as the server saw it, and the status it answered."""

    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class WeightsServer:
    """State shared with the handler threads; tests edit ``files`` and ``plan``."""

    base_url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    plan: list[Action] = field(default_factory=list)
    honour_range: bool = True
    requests: list[RequestRecord] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def then(self, kind: str, *, code: int = 0, after: int = 0, times: int = 1) -> WeightsServer:
        """Queue ``times`` misbehaving answers (see :class:`Action`) before normal service resumes."""
        self.plan.extend(Action(kind, code, after) for _ in range(times))
        return self

    def next_action(self, record: RequestRecord) -> Action:
        with self.lock:
            self.requests.append(record)
            return self.plan.pop(0) if self.plan else Action()

    @staticmethod
    def etag_of(data: bytes) -> str:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    server_state: WeightsServer  # set on the subclass built per server

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        state = self.server_state
        record = RequestRecord(self.path, dict(self.headers.items()))
        action = state.next_action(record)
        if action.kind == "gate":
            state.gate.wait(120)
        if action.kind == "status":
            record.status = action.code
            self.send_error(action.code)
            return
        data = state.files.get(self.path.rsplit("/", 1)[-1])
        if data is None:
            record.status = 404
            self.send_error(404)
            return
        etag = state.etag_of(data)
        start, status = 0, 200
        requested = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if requested and state.honour_range and if_range in (None, etag, LAST_MODIFIED):
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                record.status = 416
                self.send_error(416)
                return
            status = 206
        body = data[start:]
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if action.kind in ("drop", "stall"):
            self.wfile.write(body[: action.after])
            self.wfile.flush()
            if action.kind == "stall":
                state.release.wait(30)
            self.close_connection = True
            return
        for offset in range(0, len(body), 16384):
            self.wfile.write(body[offset : offset + 16384])


@pytest.fixture
def server() -> Iterator[WeightsServer]:
    """A threaded HTTP server on 127.0.0.1 serving ``state.files`` by file name."""
    state = WeightsServer()
    handler = type("Handler", (_Handler,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        state.gate.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def weights_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache (returned), fast retries and no inherited mirror/offline/catalog settings."""
    home = tmp_path / "tinct-home"
    monkeypatch.setenv("TINCT_HOME", str(home))
    monkeypatch.setenv("TINCT_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("TINCT_DOWNLOAD_RETRIES", "2")
    monkeypatch.setenv("TINCT_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("TINCT_READ_TIMEOUT", "5")
    for name in ("TINCT_OFFLINE", "TINCT_WEIGHTS_MIRROR", "TINCT_WEIGHTS_CATALOG", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


def _make_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A small conv-layer state dict (about 80 KB when saved)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "model1.0.weight": torch.randn(64, 32, 3, 3, generator=generator),
        "model1.0.bias": torch.randn(64, generator=generator),
        "model1.4.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    }


def _torch_bytes(obj: object) -> bytes:
    """``obj`` as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@dataclass
class Published:
    """A generated checkpoint listed in the test catalog and served by the test server."""

    name: str
    file: str
    data: bytes
    sha256: str
    tensors: dict[str, torch.Tensor]
    mirror: str


@pytest.fixture
def publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: WeightsServer, weights_env: Path):
    """``publish(name, payload=None, served=None) -> Published``: catalog + serve a checkpoint.

    ``payload`` is what gets torch-saved (a fresh state dict by default); ``served`` overrides the
    bytes the server sends (to serve wrong content). The catalog's own URL points at an
    unreachable host, so every download must go through the mirror.
    """
    catalog_file = tmp_path / "extra-catalog.json"
    entries: list[dict] = []

    def _publish(name: str = "test-tiny", payload: object = None, served: bytes | None = None) -> Published:
        tensors = _make_state_dict(len(entries)) if payload is None else {}
        data = _torch_bytes(tensors if payload is None else payload)
        sha256 = hashlib.sha256(data).hexdigest()
        file = f"{name}-{sha256[:8]}.pth"
        server.files[file] = data if served is None else served
        entries.append(
            {
                "name": name,
                "file": file,
                "urls": [f"https://weights.invalid/releases/{file}"],
                "size": len(data),
                "sha256": sha256,
                "arch": "eccv16",
                "license": "BSD-2-Clause",
                "bundled": False,
            }
        )
        catalog_file.write_text(json.dumps({"format": 1, "entries": entries}), encoding="utf-8")
        monkeypatch.setenv("TINCT_WEIGHTS_CATALOG", str(catalog_file))
        return Published(name, file, data, sha256, tensors, f"{server.base_url}/mirror/weights")

    return _publish


@pytest.fixture
def make_state_dict():
    """``make_state_dict(seed=0)``: a small conv-layer state dict."""
    return _make_state_dict


@pytest.fixture
def torch_bytes():
    """``torch_bytes(obj)``: ``obj`` as ``torch.save`` writes it."""
    return _torch_bytes
