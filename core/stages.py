"""Seconds per pipeline stage, recorded only when asked (``tinct bench``).

The stages are ``lab``, ``content``, ``network``, ``decode``, ``upsample`` and ``merge``
(``core.pipeline`` describes them). Outside :func:`record_stage_times` a :func:`stage` block
costs nothing: no device synchronisation, no clock.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import torch

_stage_times: dict[str, list[float]] | None = None


@contextlib.contextmanager
def record_stage_times() -> Iterator[dict[str, list[float]]]:
    """Within this block the pipeline records seconds per stage into the yielded dict
    (stage name -> one entry per time the stage ran)."""
    global _stage_times
    previous, _stage_times = _stage_times, {}
    try:
        yield _stage_times
    finally:
        _stage_times = previous


@contextlib.contextmanager
def stage(name: str, device: torch.device) -> Iterator[None]:
    """Time the block as stage ``name`` when :func:`record_stage_times` is on; work queued on
    ``device`` (CUDA, MPS) is waited for before and after, so the seconds are the stage's own."""
    if _stage_times is None:
        yield
        return
    synchronize(device)
    start = time.perf_counter()
    yield
    synchronize(device)
    _stage_times.setdefault(name, []).append(time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
