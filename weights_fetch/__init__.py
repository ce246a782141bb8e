"""Getting, verifying and caching model weights for Tinct.

Public API::

    resolve(name, fetch=False, mirror=None, progress=True) -> Path   # a .safetensors file
    fetch(name, mirror=None, progress=True) -> Path
    import_file(name, file) -> Path
    verify(name) -> VerifyResult
    remove(name) -> list[Path]
    state(name) -> "bundled" | "cached" | "missing"
    load_state_dict(path) -> (dict[str, Tensor], dict[str, str])
    catalog.entries() / catalog.get_entry(name)

Every error is a :class:`WeightsError` with a one-line message.
"""

from . import catalog
from .api import VerifyResult, fetch, import_file, remove, resolve, state, verify
from .errors import (
    CacheError,
    CatalogError,
    CheckpointError,
    DownloadError,
    LockTimeout,
    OfflineError,
    SourceMissing,
    UnknownWeights,
    UnsafeCheckpoint,
    VerificationError,
    WeightsError,
    WeightsMissing,
)
from .safeload import load_state_dict

__all__ = [
    "CacheError",
    "CatalogError",
    "CheckpointError",
    "DownloadError",
    "LockTimeout",
    "OfflineError",
    "SourceMissing",
    "UnknownWeights",
    "UnsafeCheckpoint",
    "VerificationError",
    "VerifyResult",
    "WeightsError",
    "WeightsMissing",
    "catalog",
    "fetch",
    "import_file",
    "load_state_dict",
    "remove",
    "resolve",
    "state",
    "verify",
]
