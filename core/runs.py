"""Archive-scale runs of ``tinct colorize`` / ``tinct video``: resumable, recorded, optionally on a cluster.

This module holds what the local and the cluster run share and what must not need Dask:
the command-line options (``--skip-existing``, ``--manifest``, ``--scheduler``, ``--resources``,
``--task-size``), the manifest writer and the parsing of ``--resources``. The Dask side lives
in :mod:`core.cluster`, which is imported only when ``--scheduler`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

CLUSTER_INSTALL_HINT = "pip install 'tinct[cluster]' (or: python3 install.py --cluster)"


def add_resume_arguments(p: argparse.ArgumentParser) -> None:
    """``--skip-existing`` and ``--manifest FILE`` (local and cluster runs alike)."""
    p.add_argument("--skip-existing", action="store_true",
                   help="skip inputs whose output already exists (outputs are written atomically, so an existing "
                        "one is complete): rerun an interrupted archive run with the same command")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="append one JSON line per file as it goes: input, output, status (ok, error, skipped), "
                        "seconds, model, worker (and error)")


def add_cluster_arguments(p: argparse.ArgumentParser, *, task_size: bool) -> None:
    """``--scheduler`` and ``--resources`` (and ``--task-size`` for file runs)."""
    g = p.add_argument_group("cluster (needs the extra tinct[cluster])")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: a running scheduler (tcp://host:8786), its scheduler file, or "
                        "local[:N] (a local cluster of N one-thread worker processes; default N = CPU cores)")
    g.add_argument("--resources", metavar="NAME=N[,NAME=N]",
                   help="each task needs these worker resources, e.g. GPU=1: it then only goes to workers "
                        "started with 'dask worker ... --resources GPU=1', one task per GPU at a time")
    if task_size:
        g.add_argument("--task-size", type=int, default=4, metavar="N",
                       help="files per cluster task (default 4); a task lost with its worker is redone elsewhere")


def parse_resources(text: str | None) -> dict[str, float]:
    """``"GPU=1,MEM=2e9"`` -> ``{"GPU": 1.0, "MEM": 2e9}``; ``None``/empty -> ``{}``.

    Raises:
        ValueError: a malformed entry (one-line message).
    """
    resources: dict[str, float] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or amount <= 0:
            raise ValueError(f"--resources: expected NAME=N with N > 0 (e.g. GPU=1), got {item!r}")
        resources[name.strip()] = amount
    return resources


class Manifest:
    """Appends one JSON object per line to a file; safe to call from several threads.

    Each line is written with a single ``write`` on a file opened in append mode and flushed at
    once, so an interrupted run leaves only whole lines and a rerun appends after them.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._handle = open(self.path, "a", encoding="utf-8")
        except OSError as error:
            raise OSError(f"--manifest {self.path}: cannot open for appending ({error.strerror or error})") from None

    def record(self, *, input: str | os.PathLike, output: str | os.PathLike | None, status: str,
               seconds: float | None, model: str | None, worker: str | None, error: str | None = None) -> None:
        """Append one line ``{"input", "output", "status", "seconds", "model", "worker"[, "error"]}``."""
        entry: dict[str, Any] = {"input": str(input), "output": None if output is None else str(output),
                                 "status": status, "seconds": None if seconds is None else round(float(seconds), 4),
                                 "model": model, "worker": worker}
        if error:
            entry["error"] = error
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries of a manifest file, in order (tests and the benchmark read it back)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
