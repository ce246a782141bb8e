"""``--scheduler ADDRESS`` -> a Dask client.

ADDRESS is ``local`` or ``local:N`` (a cluster of N one-thread worker *processes* on this
machine, started for the run and stopped after it; N defaults to the number of CPU cores), a
running scheduler's address (``tcp://host:8786``, ``tls://...``, ``host:8786``), or the path of a
scheduler file (``dask scheduler --scheduler-file FILE``, the usual way on SLURM).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

from distributed import Client, LocalCluster

from . import ClusterError

CONNECT_TIMEOUT_S = 30


def parse_local(address: str) -> int | None:
    """``"local"`` -> CPU cores, ``"local:3"`` -> 3; ``None`` for anything that is not a local address.

    Raises:
        ClusterError: ``local:`` followed by something other than a positive integer.
    """
    if address != "local" and not address.startswith("local:"):
        return None
    if address == "local":
        return max(1, os.cpu_count() or 1)
    text = address.partition(":")[2]
    if not text.isdigit() or int(text) < 1:
        raise ClusterError(f"--scheduler {address}: use local or local:N with N >= 1 worker processes")
    return int(text)


@contextlib.contextmanager
def open_client(address: str) -> Iterator[Client]:
    """A connected client for ``address`` (see the module doc); a local cluster is closed on exit.

    Raises:
        ClusterError: the scheduler cannot be reached or the local cluster cannot start (one line).
    """
    workers = parse_local(address)
    # The scheduler of a local cluster lives in this process: keep its routine warnings (a worker
    # lost and its tasks rescheduled, for example) off the user's terminal.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if workers is not None:
        try:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                                   silence_logs=logging.ERROR)
        except Exception as error:  # noqa: BLE001 - any start-up failure becomes one line
            raise ClusterError(f"--scheduler {address}: the local cluster did not start: {_one_line(error)}") from None
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        if Path(address).is_file():
            client = Client(scheduler_file=address, timeout=CONNECT_TIMEOUT_S)
        else:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"--scheduler {address}: cannot reach the scheduler ({_one_line(error)})") from None
    with client:
        if not client.scheduler_info().get("workers"):
            print(f"tinct: note: the scheduler at {address} has no workers yet; waiting for one", file=sys.stderr)
        yield client


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
