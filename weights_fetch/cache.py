"""Where weights live on disk: the per-user cache, the bundled folder, and atomic writes into them.

Cache layout (``cache_root()``)::

    weights/<name>.safetensors          converted weights, what ``resolve`` returns
    weights/<name>.safetensors.sha256   SHA-256 of that file, written at conversion, checked by ``verify``
    downloads/<file>.part[.json]        a partial download and its resume validator
    downloads/<file>                    a verified download, until it is converted
    downloads/<file>.lock               the lock serialising processes fetching <file>
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .catalog import WeightsEntry
from .errors import CacheError

HOME_ENV = "TINCT_HOME"
# The bundled weights ship in the engine's folder beside this package; found by location, so that
# weights_fetch imports nothing from the engine (which imports weights_fetch).
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "core" / "weights"


def default_cache_root(
    platform: str = sys.platform, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """The platform's user cache folder for Tinct (``TINCT_HOME`` not considered).

    Linux/BSD: ``$XDG_CACHE_HOME/tinct`` or ``~/.cache/tinct``; macOS: ``~/Library/Caches/tinct``;
    Windows: ``%LOCALAPPDATA%\\tinct\\Cache``.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        local = env.get("LOCALAPPDATA")
        base = Path(local) if local else home / "AppData" / "Local"
        return base / "tinct" / "Cache"
    if platform == "darwin":
        return home / "Library" / "Caches" / "tinct"
    xdg = env.get("XDG_CACHE_HOME")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "tinct"


def cache_root() -> Path:
    """``$TINCT_HOME`` when set, else :func:`default_cache_root`."""
    override = os.environ.get(HOME_ENV)
    return Path(override).expanduser() if override else default_cache_root()


def weights_dir() -> Path:
    """Folder of converted ``.safetensors`` weights."""
    return cache_root() / "weights"


def downloads_dir() -> Path:
    """Folder of partial and verified downloads and their locks."""
    return cache_root() / "downloads"


def converted_path(entry: WeightsEntry) -> Path:
    """Where the converted weights of a downloadable entry live."""
    return weights_dir() / f"{entry.name}.safetensors"


def hash_record_path(entry: WeightsEntry) -> Path:
    """The ``sha256sum``-style record of the converted file."""
    return weights_dir() / f"{entry.name}.safetensors.sha256"


def download_path(entry: WeightsEntry) -> Path:
    """Where the verified original download lives until it is converted."""
    return downloads_dir() / entry.file


def lock_path(entry: WeightsEntry) -> Path:
    """Lock file serialising every process that fetches or imports ``entry``."""
    return downloads_dir() / f"{entry.file}.lock"


def bundled_path(entry: WeightsEntry) -> Path:
    """Where a bundled entry's file ships: :data:`BUNDLED_DIR` (read at call time)."""
    return BUNDLED_DIR / entry.file


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or raise :class:`CacheError` saying why and what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cannot create cache folder {path}: {exc.strerror or exc}; "
            f"set {HOME_ENV} to a writable folder"
        ) from exc
    if not path.is_dir():
        raise CacheError(f"cache path {path} is not a folder; set {HOME_ENV} to a writable folder")
    return path


def temp_path_for(final: Path) -> Path:
    """A unique sibling of ``final`` to write before ``os.replace``-ing it into place."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def move_into_place(tmp: Path, final: Path, *, keep_on_error: bool = False) -> None:
    """Flush the finished file ``tmp`` to disk and rename it over ``final``, so that readers see either
    the old or the whole new file: the one temporary-then-rename step of ``weights_fetch`` (which
    imports nothing from ``core``, whose ``core.fs`` does the same for the engine's files).

    Raises:
        CacheError: the file cannot be flushed or moved; ``tmp`` is removed unless ``keep_on_error``
            (a verified download is kept for the next attempt).
    """
    try:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        if not keep_on_error:
            discard(tmp)
        raise CacheError(f"cannot write {final}: {exc.strerror or exc}") from exc


def atomic_write_text(final: Path, text: str) -> None:
    """Write ``text`` to ``final`` so that readers see either the old or the whole new file."""
    tmp = temp_path_for(final)
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        discard(tmp)
        raise CacheError(f"cannot write {final}: {exc.strerror or exc}") from exc
    move_into_place(tmp, final)


def discard(*paths: Path) -> None:
    """Delete files that may or may not exist (clean-up; never raises for a missing file)."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
