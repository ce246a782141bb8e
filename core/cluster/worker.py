"""The worker side: one :class:`~core.pipeline.Colorizer` per model and worker process, kept between tasks.

:class:`TinctWorkerPlugin` is registered by the client for each run: on every worker, present and
joining later (a replacement for a lost one, say), it sets torch's thread count and loads the model,
so a missing model fails the run at once with one line instead of once per file. Tasks then take the
loaded model from :func:`colorizer_for`; a worker started without the plugin loads it on its first task.
Devices follow the engine's own choice (``--device auto``: CUDA, then MPS, then CPU).
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from distributed import WorkerPlugin

# Torch intra-op threads per task: a worker runs one task per worker thread, so one torch thread
# each keeps the machine's cores busy without oversubscribing them.
TORCH_THREADS_ENV = "TINCT_TORCH_THREADS"

_LOCK = threading.Lock()
_COLORIZERS: dict["ModelSpec", Any] = {}
_LOADS: Counter = Counter()


@dataclass(frozen=True)
class ModelSpec:
    """Which model a worker loads: a ``Colorizer(model, device, half, fetch=fetch)``."""

    model: str = "default"
    device: str = "auto"
    half: bool | None = None
    fetch: bool = False

    def label(self) -> str:
        return f"{self.model}@{self.device}"


def set_torch_threads() -> int:
    """Set torch's intra-op threads from ``TINCT_TORCH_THREADS`` (default 1); returns the count."""
    import torch

    threads = max(1, int(os.environ.get(TORCH_THREADS_ENV, "1") or 1))
    torch.set_num_threads(threads)
    return threads


def colorizer_for(spec: ModelSpec) -> Any:
    """This process's Colorizer for ``spec``, created (the model loaded) on first use only."""
    with _LOCK:
        colorizer = _COLORIZERS.get(spec)
        if colorizer is None:
            from core.pipeline import Colorizer

            colorizer = Colorizer(spec.model, spec.device, spec.half, fetch=spec.fetch)
            _COLORIZERS[spec] = colorizer
            _LOADS[spec.label()] += 1
        return colorizer


def model_loads() -> dict[str, int]:
    """How many times this process loaded each model (``"name@device" -> count``): 1 each when kept."""
    with _LOCK:
        return dict(_LOADS)


def worker_name() -> str:
    """The address of the Dask worker running the current task (``host:pid`` outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:
        return f"{socket.gethostname()}:{os.getpid()}"


class TinctWorkerPlugin(WorkerPlugin):
    """Loads ``spec``'s model on each worker when registered or when the worker starts."""

    idempotent = True  # registering it again (a second run with the same model) changes nothing

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.name = f"tinct-model-{spec.label()}-half{spec.half}-fetch{spec.fetch}"

    def setup(self, worker: Any) -> None:
        set_torch_threads()
        colorizer_for(self.spec)
