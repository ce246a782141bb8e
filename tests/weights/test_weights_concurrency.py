"""Two processes fetching the same file at once produce one good file from one download."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import weights_fetch

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_fetch_one_file(publish, server, weights_env):
    published = publish()
    # Hold the first request until the other process reports that it waits for the lock,
    # so the two fetches are sure to overlap.
    server.then("gate")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "weights_fetch", "fetch", published.name, "--mirror", published.mirror, "--no-progress"]
    processes = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    stderr_lines: list[str] = []

    def collect(stream) -> None:
        for line in stream:
            stderr_lines.append(line)

    readers = [threading.Thread(target=collect, args=(p.stderr,), daemon=True) for p in processes]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 120  # generous: the shared machine can be very loaded
    while time.monotonic() < deadline and not any("waiting for another process" in line for line in stderr_lines):
        time.sleep(0.05)
    saw_waiting = any("waiting for another process" in line for line in stderr_lines)
    server.gate.set()

    outputs = [p.communicate(timeout=120)[0].strip() for p in processes]
    for reader in readers:
        reader.join(timeout=5)
    assert [p.returncode for p in processes] == [0, 0], stderr_lines
    assert saw_waiting
    assert len(server.requests) == 1
    expected = str(weights_env / "weights" / f"{published.name}.safetensors")
    assert outputs == [expected, expected]
    assert weights_fetch.verify(published.name).ok
    leftovers = sorted(p.name for p in weights_env.rglob("*") if p.is_file())
    assert leftovers == [f"{published.file}.lock", f"{published.name}.safetensors", f"{published.name}.safetensors.sha256"]
