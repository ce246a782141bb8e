"""Settings read from the environment: offline switch, mirror, network timeouts and retries.

``TINCT_OFFLINE``            1/true/yes/on: never touch the network.
``TINCT_WEIGHTS_MIRROR``     base URL replacing the host part of every download URL.
``TINCT_CONNECT_TIMEOUT``    seconds to establish a connection (default 15).
``TINCT_READ_TIMEOUT``       seconds without receiving data before giving up (default 60).
``TINCT_DOWNLOAD_RETRIES``   extra attempts per URL on connection errors and HTTP 5xx (default 4).
``TINCT_RETRY_BACKOFF``      first retry delay in seconds, doubled each time (default 1).
``TINCT_LOCK_TIMEOUT``       seconds to wait for another process fetching the same file (default 3600).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import WeightsError

OFFLINE_ENV = "TINCT_OFFLINE"
MIRROR_ENV = "TINCT_WEIGHTS_MIRROR"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class DownloadSettings:
    """Network behaviour of one download."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 4
    backoff: float = 1.0
    lock_timeout: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DownloadSettings:
        """Defaults overridden by the ``TINCT_*`` variables listed in the module docstring."""
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            connect_timeout=_positive(env, "TINCT_CONNECT_TIMEOUT", defaults.connect_timeout),
            read_timeout=_positive(env, "TINCT_READ_TIMEOUT", defaults.read_timeout),
            retries=int(_non_negative(env, "TINCT_DOWNLOAD_RETRIES", defaults.retries, integer=True)),
            backoff=_non_negative(env, "TINCT_RETRY_BACKOFF", defaults.backoff),
            lock_timeout=_positive(env, "TINCT_LOCK_TIMEOUT", defaults.lock_timeout),
        )


def is_offline(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``TINCT_OFFLINE`` forbids network access."""
    env = os.environ if env is None else env
    value = env.get(OFFLINE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise WeightsError(f"{OFFLINE_ENV} must be 0 or 1, got {env[OFFLINE_ENV]!r}")


def mirror_base(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The mirror base URL: ``explicit`` if given, else ``TINCT_WEIGHTS_MIRROR``, else ``None``."""
    env = os.environ if env is None else env
    base = explicit if explicit is not None else env.get(MIRROR_ENV) or None
    if base is None:
        return None
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise WeightsError(f"invalid mirror URL {base!r}: expected http(s)://host[/path]")
    return base


def mirrored_url(base: str, file_name: str) -> str:
    """``base`` with the catalog file name appended: the mirror keeps the file name."""
    return f"{base.rstrip('/')}/{file_name}"


def _positive(env: Mapping[str, str], key: str, default: float) -> float:
    value = _non_negative(env, key, default)
    if value == 0:
        raise WeightsError(f"{key} must be a positive number, got {env[key]!r}")
    return value


def _non_negative(env: Mapping[str, str], key: str, default: float, integer: bool = False) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = -1
    if value < 0 or value != value:
        kind = "a whole number" if integer else "a number"
        raise WeightsError(f"{key} must be {kind} >= 0, got {raw!r}")
    return value
