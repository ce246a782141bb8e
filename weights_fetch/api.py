"""The public operations: resolve, fetch, import, verify, remove, state."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import cache
from .catalog import WeightsEntry, get_entry
from .digest import check_file, sha256_of
from .download import download_file
from .errors import (
    CheckpointError, LockTimeout, OfflineError, SourceMissing, VerificationError, WeightsError, WeightsMissing,
)
from .lock import FileLock
from .safeload import read_checkpoint, read_metadata, save_safetensors
from .settings import OFFLINE_ENV, DownloadSettings, is_offline, mirror_base, mirrored_url

State = Literal["bundled", "cached", "missing"]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok`` is False for a missing or damaged file; ``message`` is one line."""

    name: str
    state: State
    ok: bool
    path: Path | None
    message: str


def state(name: str) -> State:
    """``"bundled"`` (shipped file present), ``"cached"`` (converted file present) or ``"missing"``."""
    entry = get_entry(name)
    if entry.bundled:
        return "bundled" if cache.bundled_path(entry).is_file() else "missing"
    return "cached" if cache.converted_path(entry).is_file() else "missing"


def resolve(name: str, fetch: bool = False, mirror: str | None = None, progress: bool = True) -> Path:
    """The ``.safetensors`` file of ``name``: bundled, cached, or (``fetch=True``) downloaded now.

    Raises :class:`WeightsMissing` whose message says how to get the file.
    """
    entry = get_entry(name)
    if entry.bundled:
        return _bundled_or_missing(entry)
    converted = cache.converted_path(entry)
    if converted.is_file():
        return converted
    if fetch:
        return _fetch_entry(entry, mirror, progress)
    if is_offline():
        raise _offline_error(entry)
    raise WeightsMissing(
        f"weights {entry.name!r} ({_megabytes(entry.size)}) are not downloaded yet: run "
        f"`tinct weights fetch {entry.name}` or add --fetch to `tinct colorize`"
    )


def fetch(name: str, mirror: str | None = None, progress: bool = True) -> Path:
    """Download, verify and convert ``name`` unless already cached; return the ``.safetensors`` path.

    ``mirror`` (else ``TINCT_WEIGHTS_MIRROR``) replaces the catalog URLs' host part. Safe to run
    from several processes at once: one downloads, the others wait and reuse its file.
    """
    entry = get_entry(name)
    if entry.bundled:
        return _bundled_or_missing(entry)
    return _fetch_entry(entry, mirror, progress)


def import_file(name: str, file: str | os.PathLike[str]) -> Path:
    """Check a hand-downloaded file against the catalog and convert it into the cache."""
    entry = get_entry(name)
    if entry.bundled:
        raise WeightsError(
            f"{entry.name!r} ships with Tinct and is not imported; its file belongs at {cache.bundled_path(entry)}"
        )
    source = Path(file).expanduser()
    if not source.is_file():
        raise SourceMissing(f"no such file: {source}")
    digest = check_file(source, entry.size, entry.sha256, f"{source.name} is not {entry.file}")
    cache.ensure_dir(cache.weights_dir())
    cache.ensure_dir(cache.downloads_dir())
    with _entry_lock(entry, DownloadSettings.from_env()):
        _convert(source, entry, digest)
    return cache.converted_path(entry)


def verify(name: str) -> VerifyResult:
    """Check the file ``name`` resolves to: readable weights, right architecture, unchanged bytes."""
    entry = get_entry(name)
    current = state(entry.name)
    if current == "missing":
        path = cache.bundled_path(entry) if entry.bundled else None
        how = "it ships with Tinct" if entry.bundled else f"run `tinct weights fetch {entry.name}`"
        return VerifyResult(entry.name, current, False, path, f"missing ({how})")
    path = cache.bundled_path(entry) if entry.bundled else cache.converted_path(entry)
    try:
        _check_weights_file(entry, path)
    except WeightsError as exc:
        return VerifyResult(entry.name, current, False, path, str(exc))
    return VerifyResult(entry.name, current, True, path, "ok")


def remove(name: str) -> list[Path]:
    """Delete the cached files of ``name`` (converted weights, downloads, partial downloads).

    Returns the deleted paths (empty if nothing was cached). Bundled weights cannot be removed.
    """
    entry = get_entry(name)
    if entry.bundled:
        raise WeightsError(f"{entry.name!r} ships with Tinct; it is not in the cache and is not removed")
    download = cache.download_path(entry)
    candidates = [
        cache.converted_path(entry),
        cache.hash_record_path(entry),
        download,
        download.with_name(download.name + ".part"),
        download.with_name(download.name + ".part.json"),
    ]
    if not cache.downloads_dir().is_dir():
        return _delete(entry, candidates)
    try:
        with FileLock(cache.lock_path(entry), timeout=0):
            return _delete(entry, candidates)
    except LockTimeout:
        raise WeightsError(
            f"{entry.name!r} is being fetched by another process; try again when it has finished"
        ) from None


def _delete(entry: WeightsEntry, candidates: list[Path]) -> list[Path]:
    removed = [path for path in candidates if path.is_file()]
    try:
        cache.discard(*removed)
    except OSError as exc:
        raise WeightsError(f"cannot remove cached {entry.name!r}: {exc.strerror or exc}") from exc
    return removed


def _bundled_or_missing(entry: WeightsEntry) -> Path:
    path = cache.bundled_path(entry)
    if path.is_file():
        return path
    raise WeightsMissing(
        f"bundled weights {entry.name!r} are missing: expected {path}; they ship with Tinct "
        "(reinstall Tinct, or place the trained file there)"
    )


def _offline_error(entry: WeightsEntry) -> OfflineError:
    return OfflineError(
        f"weights {entry.name!r} are not cached and {OFFLINE_ENV}=1 forbids downloading: get "
        f"{entry.urls[0]} by other means, then run `tinct weights import {entry.name} FILE`"
    )


def _fetch_entry(entry: WeightsEntry, mirror: str | None, progress: bool) -> Path:
    converted = cache.converted_path(entry)
    if converted.is_file():
        return converted
    if is_offline():
        raise _offline_error(entry)
    base = mirror_base(mirror)
    urls = [mirrored_url(base, entry.file)] if base else list(entry.urls)
    settings = DownloadSettings.from_env()
    cache.ensure_dir(cache.weights_dir())
    cache.ensure_dir(cache.downloads_dir())
    with _entry_lock(entry, settings):
        if converted.is_file():  # another process finished while we waited
            return converted
        download = cache.download_path(entry)
        digest = None
        if download.is_file():  # verified earlier, conversion interrupted: re-check, reuse
            try:
                digest = check_file(download, entry.size, entry.sha256, f"cached {download.name}")
            except VerificationError:
                cache.discard(download)
        if digest is None:
            digest = download_file(
                urls,
                download,
                expected_size=entry.size,
                expected_sha256=entry.sha256,
                settings=settings,
                progress=progress,
            )
        try:
            _convert(download, entry, digest)
        finally:
            # The converted file replaces the download; a download that cannot be converted
            # is useless too, and is not kept under its final name.
            cache.discard(download)
    return converted


def _entry_lock(entry: WeightsEntry, settings: DownloadSettings) -> FileLock:
    def tell_waiting() -> None:
        print(f"waiting for another process fetching {entry.file} ...", file=sys.stderr)

    return FileLock(cache.lock_path(entry), timeout=settings.lock_timeout, on_wait=tell_waiting)


def _convert(source: Path, entry: WeightsEntry, source_sha256: str) -> None:
    """Convert a verified checkpoint to ``<name>.safetensors`` and record that file's hash."""
    tensors = read_checkpoint(source)
    converted = cache.converted_path(entry)
    metadata = {
        "arch": entry.arch,
        "name": entry.name,
        "license": entry.license,
        "source_sha256": source_sha256,
    }
    tmp = converted.with_name(f".{converted.name}.{os.getpid()}.new")
    save_safetensors(tensors, tmp, metadata)
    try:
        cache.atomic_write_text(cache.hash_record_path(entry), f"{sha256_of(tmp)}  {converted.name}\n")
        cache.move_into_place(tmp, converted)
    except OSError as exc:
        raise WeightsError(f"cannot write {converted}: {exc.strerror or exc}") from exc
    finally:
        cache.discard(tmp)


def _check_weights_file(entry: WeightsEntry, path: Path) -> None:
    """Raise a :class:`WeightsError` if ``path`` is not sound weights for ``entry``."""
    from .safeload import load_state_dict

    metadata = read_metadata(path)
    arch = metadata.get("arch")
    if arch is None:
        raise CheckpointError(f"{path.name} has no \"arch\" metadata")
    if arch != entry.arch:
        raise CheckpointError(f"{path.name}: expected architecture {entry.arch!r}, file says {arch!r}")
    if not entry.bundled:
        source = metadata.get("source_sha256", "")
        if entry.sha256 is not None and not source.startswith(entry.sha256):
            raise VerificationError(
                f"{path.name} was converted from a file with SHA-256 {source or '(none)'}, "
                f"expected {entry.sha256}"
            )
        record = cache.hash_record_path(entry)
        if not record.is_file():
            raise VerificationError(f"{path.name} has no recorded hash ({record.name} is missing)")
        fields = record.read_text(encoding="utf-8").split()
        expected = fields[0] if fields else "(empty record)"
        got = sha256_of(path)
        if got != expected:
            raise VerificationError(f"{path.name} changed since conversion: expected SHA-256 {expected}, got {got}")
    tensors, _ = load_state_dict(path)
    if not tensors:
        raise CheckpointError(f"{path.name} holds no tensors")


def _megabytes(size: int | None) -> str:
    return f"{size / 1e6:.0f} MB" if size else "size unknown"
