"""Dask scheduler and worker *processes* on 127.0.0.1, started and stopped by Tinct itself.

For ``tinct bench-cluster`` and the tests: what ``dask scheduler`` / ``dask worker`` on a real
cluster do, on this machine, with the same virtual environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.paths import PROJECT_ROOT

DASK = [sys.executable, "-m", "dask"]
START_TIMEOUT_S = 120


def _env(torch_threads: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(torch_threads), TINCT_TORCH_THREADS=str(torch_threads),
                PYTHONUNBUFFERED="1")


class DaskProcesses:
    """A scheduler process and named worker processes (logs in ``folder``); :meth:`close` ends every one.

    Workers run without a nanny, so a worker killed with SIGKILL stays dead and its tasks must be
    redone by the others; each has one Dask thread and ``torch_threads`` torch threads.
    """

    def __init__(self, folder: Path, torch_threads: int = 1):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.torch_threads = torch_threads
        self.scheduler_file = self.folder / "scheduler.json"
        self.scheduler_file.unlink(missing_ok=True)  # an earlier run's address
        self.logs: list = []
        self.workers: dict[str, subprocess.Popen] = {}
        self.scheduler = self._spawn("scheduler", [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                   "--no-dashboard", "--scheduler-file", str(self.scheduler_file)])
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.scheduler_file.is_file() or not self.scheduler_file.read_text().strip():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {self._log('scheduler')}")
            time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        self.logs.append(log)
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(self.torch_threads), cwd=PROJECT_ROOT)

    def _log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def start_worker(self, name: str, resources: str | None = None) -> None:
        argv = [*DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
                "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "0"]
        if resources:
            argv += ["--resources", resources]
        self.workers[name] = self._spawn(name, argv)

    def wait_for_workers(self, n: int) -> dict[str, str]:
        """Wait until ``n`` workers are connected; returns ``{name: address}``."""
        from distributed import Client

        deadline = time.monotonic() + START_TIMEOUT_S
        with Client(self.address, timeout=60) as client:
            while True:
                info = client.scheduler_info(n_workers=-1)["workers"]
                if len(info) >= n:
                    return {w["name"]: address for address, w in info.items()}
                dead = [name for name, p in self.workers.items() if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"dask workers did not start: {[self._log(d) for d in dead]}")
                time.sleep(0.2)

    def kill_worker(self, name: str) -> None:
        process = self.workers.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def close(self) -> None:
        """Stop every process started here: workers at once (they hold nothing; a graceful close can take
        tens of seconds on a busy machine), then the scheduler."""
        for process in self.workers.values():
            if process.poll() is None:
                process.kill()
        if self.scheduler.poll() is None:
            self.scheduler.terminate()
        for process in [*self.workers.values(), self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.workers.clear()
        for log in self.logs:
            log.close()
