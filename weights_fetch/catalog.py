"""The weights catalog: which weights exist, where they come from and how to check them.

The packaged ``catalog.json`` lists the official Zhang et al. releases and Tinct's bundled models.
``TINCT_WEIGHTS_CATALOG`` may name one more JSON file of the same shape whose entries are added
(e.g. an in-house model on a private server); it may not redefine a packaged name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CatalogError, UnknownWeights

PACKAGED_CATALOG = Path(__file__).with_name("catalog.json")
EXTRA_CATALOG_ENV = "TINCT_WEIGHTS_CATALOG"

_HEX = re.compile(r"[0-9a-f]+")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class WeightsEntry:
    """One catalog entry.

    ``file`` is a bare file name: under ``cache.BUNDLED_DIR`` for bundled entries, the
    download's name otherwise. ``arch`` names an architecture of the engine's model registry,
    which checks it when the weights are loaded. ``sha256`` is the full digest or, where only that is known,
    a prefix of it (at least 8 hex digits); ``None`` for bundled entries, which are checked by
    loading them instead. ``size`` is in bytes, ``None`` when unknown.
    """

    name: str
    file: str
    arch: str
    license: str
    bundled: bool
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    description: str = ""


def entries() -> list[WeightsEntry]:
    """All catalog entries, packaged first, in catalog order."""
    return list(_load_all()[0].values())


def aliases() -> dict[str, str]:
    """Alias name -> entry name (e.g. ``default`` -> ``tinct-small``)."""
    return dict(_load_all()[1])


def names() -> list[str]:
    """Entry names (aliases excluded)."""
    return [entry.name for entry in entries()]


def get_entry(name: str) -> WeightsEntry:
    """The entry called ``name`` (aliases resolved); :class:`UnknownWeights` if there is none."""
    by_name, alias_map = _load_all()
    key = alias_map.get(name, name)
    if key not in by_name:
        known = ", ".join(sorted([*by_name, *alias_map]))
        raise UnknownWeights(f"unknown weights {name!r}; known names: {known}")
    return by_name[key]


def _load_all() -> tuple[dict[str, WeightsEntry], dict[str, str]]:
    by_name, alias_map = _read_catalog(PACKAGED_CATALOG)
    extra = os.environ.get(EXTRA_CATALOG_ENV)
    if extra:
        extra_entries, extra_aliases = _read_catalog(Path(extra))
        for key in [*extra_entries, *extra_aliases]:
            if key in by_name or key in alias_map:
                raise CatalogError(f"{extra}: name {key!r} is already in the packaged catalog")
        by_name.update(extra_entries)
        alias_map.update(extra_aliases)
    for alias, target in alias_map.items():
        if target not in by_name:
            raise CatalogError(f"alias {alias!r} points to unknown weights {target!r}")
        if alias in by_name:
            raise CatalogError(f"alias {alias!r} is also an entry name")
    return by_name, alias_map


def _read_catalog(path: Path) -> tuple[dict[str, WeightsEntry], dict[str, str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read weights catalog {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"weights catalog {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != 1:
        raise CatalogError(f"weights catalog {path}: expected an object with \"format\": 1")
    raw_aliases = document.get("aliases", {})
    if not isinstance(raw_aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_aliases.items()
    ):
        raise CatalogError(f"weights catalog {path}: \"aliases\" must map names to names")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        raise CatalogError(f"weights catalog {path}: \"entries\" must be a list")
    by_name: dict[str, WeightsEntry] = {}
    for index, raw in enumerate(raw_entries):
        entry = _parse_entry(raw, f"{path} entry {index}")
        if entry.name in by_name:
            raise CatalogError(f"weights catalog {path}: name {entry.name!r} appears twice")
        by_name[entry.name] = entry
    return by_name, dict(raw_aliases)


def _parse_entry(raw: Any, where: str) -> WeightsEntry:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected an object")

    def field(key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in raw or raw[key] is None:
            if default is ...:
                raise CatalogError(f"{where}: missing field {key!r}")
            return default
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CatalogError(f"{where}: field {key!r} has the wrong type")
        return value

    name = field("name", str)
    if not _NAME.fullmatch(name):
        raise CatalogError(f"{where}: bad name {name!r} (lower-case letters, digits, '.', '_', '-')")
    where = f"{where} ({name})"
    file = field("file", str)
    if not file or file != Path(file).name or "/" in file or "\\" in file:
        raise CatalogError(f"{where}: \"file\" must be a bare file name, got {file!r}")
    arch = field("arch", str)
    if not _NAME.fullmatch(arch):
        raise CatalogError(f"{where}: bad architecture name {arch!r}")
    bundled = field("bundled", bool)
    urls = field("urls", list, [])
    if not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        raise CatalogError(f"{where}: \"urls\" must be http(s) URLs")
    size = field("size", int, None)
    if size is not None and size <= 0:
        raise CatalogError(f"{where}: \"size\" must be positive")
    sha256 = field("sha256", str, None)
    if sha256 is not None:
        sha256 = sha256.lower()
        if not (8 <= len(sha256) <= 64 and _HEX.fullmatch(sha256)):
            raise CatalogError(f"{where}: \"sha256\" must be 8 to 64 hex digits")
    if not bundled and (not urls or sha256 is None):
        raise CatalogError(f"{where}: a downloadable entry needs \"urls\" and \"sha256\"")
    return WeightsEntry(
        name=name,
        file=file,
        arch=arch,
        license=field("license", str),
        bundled=bundled,
        urls=tuple(urls),
        size=size,
        sha256=sha256,
        description=field("description", str, ""),
    )
