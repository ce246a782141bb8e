"""Starting and stopping a real engine worker process for the worker tests (engine and GIMP side)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.worker import rendezvous

ROOT = Path(__file__).resolve().parents[1]


def start_worker(run_dir: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, dict]:
    """A ``core.worker`` process serving in ``run_dir`` and its published endpoint (waits up to 60 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "core.worker", "--run-dir", str(run_dir), *extra],
                            cwd=ROOT, env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        endpoint = rendezvous.read_endpoint(run_dir)
        if endpoint and endpoint["pid"] == proc.pid:
            return proc, endpoint
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("the worker did not publish its endpoint")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the worker and require a clean exit."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
