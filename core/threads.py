"""How many CPU threads the engine's torch operations use: no more than there are idle cores.

torch splits every large operation over its thread pool and waits for all the pool's threads at its
end. When other programs keep cores busy, a pool larger than the idle cores waits at each of those
barriers for a thread the scheduler has set aside, and a 12 MP image runs thousands of them. Linux
desktops make it worse: the scheduler shares the CPU between sessions and applications (autogroups,
cgroups) rather than between threads, so a pool of N threads gets what one busy program gets.
Measured on a 2-core machine with one busy process in another session, 12 MP with ten hint dabs
(``tinct bench --sizes 12 --hints 10``): 1.3 s on one thread, 31 s on two (README, "Speed").

So before each call the engine counts the threads that are running elsewhere (Linux:
``/proc/loadavg`` less this process's own running threads, the least of a few samples so a passing
burst does not count) and uses ``min(pool, cores - busy)`` threads, at least one; a long call counts
again between its bands of rows (:meth:`CallThreads.recount`, at most every ``RECOUNT_S``). Where
the count cannot be had (macOS, Windows) the pool stays as torch set it; ``--threads N`` fixes it
anywhere.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import torch

AUTO = 0  # the ``threads`` option's value for "as many as there are idle cores"
_SAMPLES = 3
_SAMPLE_GAP_S = 0.001
RECOUNT_S = 0.5  # seconds between counts within one call
_PROC = Path("/proc")


def choose_threads(requested: int, pool: int, cores: int, busy: int | None) -> int:
    """The thread count for one call.

    Args:
        requested: the user's ``threads`` option: > 0 is taken as is; ``AUTO`` (0) decides.
        pool: torch's thread pool size (its default, ``OMP_NUM_THREADS`` or ``torch.set_num_threads``).
        cores: the CPU cores this process may run on.
        busy: threads running elsewhere now, or None when that is unknown.
    Returns:
        ``requested`` if given; else ``pool`` when ``busy`` is unknown, else
        ``max(1, min(pool, cores - busy))``.
    """
    if requested < 0:
        raise ValueError(f"threads must be >= 0, got {requested}")
    if requested:
        return requested
    if busy is None:
        return max(1, pool)
    return max(1, min(pool, cores - busy))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _running_everywhere(proc: Path) -> int:
    """Runnable threads of the whole system (the 4th field of ``/proc/loadavg``, ``running/total``)."""
    return int((proc / "loadavg").read_text().split()[3].split("/")[0])


def task_state(stat: str) -> str:
    """The state letter (``R`` running, ``S`` sleeping, ...) of a ``/proc/.../stat`` line; the name
    before it may itself hold spaces and parentheses."""
    return stat.rsplit(")", 1)[-1].split()[0]


def _running_here(proc: Path) -> int:
    """This process's threads in state R (the sampling thread is one of them)."""
    running = 0
    for task in (proc / "self" / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        running += task_state(stat) == "R"
    return running


def busy_elsewhere(proc: Path = _PROC, samples: int = _SAMPLES, gap_s: float = _SAMPLE_GAP_S) -> int | None:
    """Threads running outside this process now: the least of ``samples`` counts ``gap_s`` apart.

    None where the system does not say (no ``/proc/loadavg``: macOS, Windows).
    """
    if not sys.platform.startswith("linux"):
        return None
    counts = []
    try:
        for index in range(samples):
            if index:
                time.sleep(gap_s)
            counts.append(max(0, _running_everywhere(proc) - _running_here(proc)))
    except (OSError, ValueError, IndexError):
        return None
    return min(counts)


class CallThreads:
    """The thread count of one call on the CPU, which :meth:`recount` may change as the load does."""

    def __init__(self, requested: int, pool: int, adapt: bool):
        self.requested, self.pool, self.adapt = requested, pool, adapt
        self.threads = pool
        self._counted = -math.inf

    def recount(self) -> int:
        """Count the busy cores again (unless counted less than ``RECOUNT_S`` ago or the count is
        fixed) and set torch's threads to match; returns the count in use."""
        fixed = bool(self.requested) and self._counted > -math.inf
        if not self.adapt or fixed or time.monotonic() - self._counted < RECOUNT_S:
            return self.threads
        self._counted = time.monotonic()
        threads = choose_threads(self.requested, self.pool, available_cores(),
                                 None if self.requested else busy_elsewhere())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.threads = threads
        return threads


@contextlib.contextmanager
def cpu_threads(device: torch.device, requested: int = AUTO) -> Iterator[CallThreads]:
    """Run the block with :func:`choose_threads` torch threads on the CPU, then restore the pool.

    Yields the call's :class:`CallThreads` (``.threads``: the count in use). On other devices, whose
    work is not on these threads, and for a pool of one thread left to decide, nothing is counted
    or changed.
    """
    pool = torch.get_num_threads()
    adapt = device.type == "cpu" and (bool(requested) or pool > 1)
    call = CallThreads(requested, pool, adapt)
    if not adapt:
        yield call
        return
    try:
        call.recount()
        yield call
    finally:
        if torch.get_num_threads() != pool:
            torch.set_num_threads(pool)
