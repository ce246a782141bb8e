"""Loading a named model: weights file (bundled or cached) -> registered architecture -> eval-mode module."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import torch
import torch.nn as nn

import weights_fetch
from weights_fetch.digest import sha256_of

from .models import create_model, list_architectures

_CACHE: dict[tuple[str, str, int, int, str, str], nn.Module] = {}
_LOCK = threading.Lock()


def canonical_name(name: str) -> str:
    """The catalog name behind ``name`` (aliases such as ``default`` resolved)."""
    return weights_fetch.catalog.get_entry(name).name


def list_models(available_only: bool = False) -> list[str]:
    """Catalog model names; with ``available_only``, only those whose weights are bundled or cached."""
    names = [e.name for e in weights_fetch.catalog.entries()]
    if available_only:
        names = [n for n in names if weights_fetch.state(n) != "missing"]
    return names


def build_from_state(tensors: dict[str, torch.Tensor], metadata: dict[str, str], name: str) -> nn.Module:
    """Instantiate ``metadata["arch"]`` and load ``tensors`` into it (strict, BatchNorm counters optional)."""
    arch = metadata.get("arch")
    if not arch:
        raise weights_fetch.CheckpointError(f"weights of {name!r} do not say which architecture they are for")
    try:
        config = json.loads(metadata.get("config") or "{}")
    except ValueError:
        raise weights_fetch.CheckpointError(f"weights of {name!r} carry a damaged \"config\" (not JSON)") from None
    if arch not in list_architectures():
        raise weights_fetch.CheckpointError(
            f"weights of {name!r} are for architecture {arch!r}, which this Tinct does not have "
            f"(it has {', '.join(list_architectures())})"
        )
    model = create_model(arch, **config)
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k for k in tensors if not k.endswith("num_batches_tracked")}
    if expected != given:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise weights_fetch.CheckpointError(
            f"weights of {name!r} do not fit architecture {arch!r}: "
            f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})"
        )
    model.load_state_dict({k: v for k, v in tensors.items() if k in given}, strict=False)
    if "logit_fold" in metadata:
        model.logit_fold = float(metadata["logit_fold"])
    model.name = name
    model.metadata = dict(metadata)
    return model


_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGEST_LOCK = threading.Lock()


def weights_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a weights file, computed once per (path, size, mtime) in this process."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _DIGEST_LOCK:
        if key not in _DIGESTS:
            _DIGESTS[key] = sha256_of(path)
        return _DIGESTS[key]


def load_model(
    name: str = "default",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    fetch: bool = False,
    mirror: str | None = None,
) -> nn.Module:
    """The model ``name`` in eval mode on ``device`` (optionally cast to ``dtype``), loaded once per process.

    Raises :class:`weights_fetch.WeightsMissing` (with how-to instructions) when the weights are absent
    and ``fetch`` is False.
    """
    canonical = canonical_name(name)
    with _LOCK:
        path = Path(weights_fetch.resolve(canonical, fetch=fetch, mirror=mirror))
        # Keyed by the file itself: a name that now resolves elsewhere (another TINCT_HOME or catalog)
        # or a file replaced since (a new fetch, a new export) is loaded afresh.
        stat = path.stat()
        key = (canonical, str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(torch.device(device)), str(dtype))
        if key in _CACHE:
            return _CACHE[key]
        tensors, metadata = weights_fetch.load_state_dict(path)
        model = build_from_state(tensors, metadata, canonical).float()
        if dtype is not None:
            model = model.to(dtype)
        model = model.to(device).eval()
        model.weights_path = path  # the provenance record names the file's SHA-256
        for p in model.parameters():
            p.requires_grad_(False)
        _CACHE[key] = model
        return model
