"""Running ``tinct colorize`` and ``tinct video`` on a Dask cluster (the extra ``tinct[cluster]``).

Imported only when ``--scheduler`` is given; everything that needs Dask sits in the submodules,
so that this package says in one line how to install the extra when Dask is missing.

- :mod:`core.cluster.connect` turns ``--scheduler`` (``tcp://host:port`` or ``local[:N]``) into a client.
- :mod:`core.cluster.worker` is the worker side: one model per worker process, kept between tasks.
- :mod:`core.cluster.images` colorizes files in small batches, one task each.
- :mod:`core.cluster.shots` cuts a film into spans of whole shots as it reads it (no Dask).
- :mod:`core.cluster.film` sends those spans to the workers as they come, colorizes them in parallel, joins them.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..runs import CLUSTER_INSTALL_HINT


class ClusterError(UsageError):
    """The cluster cannot be used: Dask missing, a bad or unreachable address, a worker set-up failure
    (one-line message)."""


def require_dask() -> None:
    """Raise :class:`ClusterError` saying how to install the extra when ``dask.distributed`` is missing."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError(f"--scheduler needs Dask, which is not installed: {CLUSTER_INSTALL_HINT}") from None


def colorize_on_cluster(jobs: list, args: Any, options: dict, report: Any, chosen: dict[str, int], *,
                        reference: Any = None, confidence_paths: dict | None = None,
                        steering: dict | None = None) -> None:
    """Colorize ``jobs`` on the cluster ``args.scheduler`` (see :func:`core.cluster.images.colorize_files`)."""
    require_dask()
    from .images import colorize_files

    colorize_files(jobs, args, options, report, chosen, reference=reference, confidence_paths=confidence_paths,
                   steering=steering)


def video_on_cluster(args: Any, options: Any, encode: Any) -> Any:
    """``tinct video`` on the cluster ``args.scheduler`` (see :func:`core.cluster.film.colorize_film`)."""
    require_dask()
    from .film import video_on_cluster as run

    return run(args, options, encode)
