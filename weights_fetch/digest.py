"""File digests and the size/SHA-256 check every download and import goes through."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import VerificationError

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, expected_size: int | None, expected_sha256: str | None, label: str) -> str:
    """Check ``path`` against the catalog; return its full SHA-256.

    ``expected_sha256`` may be a prefix (torch.hub file-name convention). Raises
    :class:`VerificationError` naming what was expected and what was found.
    """
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise VerificationError(
            f"{label}: expected {expected_size:,} bytes, got {size:,} bytes"
        )
    digest = sha256_of(path)
    if expected_sha256 is not None and not digest.startswith(expected_sha256.lower()):
        what = "SHA-256" if len(expected_sha256) == 64 else "SHA-256 starting with"
        raise VerificationError(f"{label}: expected {what} {expected_sha256}, got {digest}")
    return digest
