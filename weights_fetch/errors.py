"""Exceptions raised by ``weights_fetch``: every one carries a single-line, human message.

``exit_code`` is the status a command line exits with: the numbers of Tinct's table
(``core/errors.py``, which registers this family; ``weights_fetch`` imports nothing from ``core``, and
``tests/engine/test_engine_errors.py`` checks that the numbers agree).
"""

from __future__ import annotations

INPUT, OUTPUT, MODEL = 3, 4, 5


class WeightsError(Exception):
    """Base class of every weights error; ``str(error)`` is one line meant for the user."""

    exit_code: int = MODEL

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UnknownWeights(WeightsError):
    """The name is not in the catalog."""


class CatalogError(WeightsError):
    """The catalog file is malformed."""


class WeightsMissing(WeightsError):
    """The weights are neither bundled nor cached; the message says how to get them."""


class OfflineError(WeightsMissing):
    """A download was needed while ``TINCT_OFFLINE`` forbids the network."""


class DownloadError(WeightsError):
    """The file could not be downloaded (HTTP error, timeout, connection failure)."""


class VerificationError(WeightsError):
    """A file does not have the expected size or SHA-256."""


class CheckpointError(WeightsError):
    """A file is not a readable checkpoint / safetensors file, or holds no state dict."""


class UnsafeCheckpoint(CheckpointError):
    """A checkpoint holds pickled objects other than tensors and plain containers."""


class CacheError(WeightsError):
    """The cache directory cannot be created or written."""

    exit_code = OUTPUT


class SourceMissing(WeightsError):
    """A file given to import does not exist."""

    exit_code = INPUT


class LockTimeout(WeightsError):
    """Another process kept the download lock for too long."""
