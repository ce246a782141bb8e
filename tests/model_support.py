"""Named models for the tests, found the way users' models are: a weights file in the cache, listed in a catalog.

``install_models(home, {"name": ("arch", {config})})`` builds each registered architecture with seeded
random weights, saves it as ``home/weights/<name>.safetensors`` (the metadata a trained export carries)
and lists it in ``home/catalog.json``; the returned environment (``TINCT_HOME``,
``TINCT_WEIGHTS_CATALOG``) makes ``Colorizer(name)``, ``tinct ... --model name`` and the worker load it
through the real registry and loader (strict load included). Names in ``missing`` are listed without a
file, so loading them raises the real ``WeightsMissing``. Architectures that only tests need are
registered with ``core.models.register_model`` by the test module that defines them (in-process only);
a subprocess (the worker, GIMP) can load only the architectures Tinct ships.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from weights_fetch.digest import sha256_of
from weights_fetch.safeload import save_safetensors

LICENSE = "test weights (seeded random), not for use"


def write_weights(path: Path, arch: str, config: Mapping | None = None, *, name: str, seed: int = 0) -> Path:
    """Save architecture ``arch`` built with ``config`` and seeded random weights to ``path``."""
    from core.models import create_model

    config = dict(config or {})
    torch.manual_seed(seed)
    model = create_model(arch, **config)
    metadata = {"arch": arch, "config": json.dumps(config), "logit_fold": str(float(getattr(model, "logit_fold", 1.0))),
                "name": name, "license": LICENSE, "trained": json.dumps({"seed": seed, "steps": 0})}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(model.state_dict(), path, metadata)
    return path


def install_models(home: Path, models: Mapping[str, tuple[str, Mapping]], missing: Iterable[str] = (),
                   seed: int = 0) -> dict[str, str]:
    """Weights files and a catalog for ``models`` (name -> (arch, config)) under ``home``; returns the
    environment variables that make Tinct find them."""
    entries = []
    for name, (arch, config) in models.items():
        path = write_weights(home / "weights" / f"{name}.safetensors", arch, config, name=name, seed=seed)
        entries.append(_entry(name, arch, sha256_of(path), path.stat().st_size))
    for name in missing:
        entries.append(_entry(name, "eccv16", "0" * 64, 1))
    catalog = home / "catalog.json"
    catalog.write_text(json.dumps({"format": 1, "entries": entries}, indent=1))
    return {"TINCT_HOME": str(home), "TINCT_WEIGHTS_CATALOG": str(catalog)}


def _entry(name: str, arch: str, sha256: str, size: int) -> dict:
    # Not bundled, so resolve() finds the file in the cache; the URL's host can never resolve (.invalid).
    return {"name": name, "file": f"{name}.safetensors", "arch": arch, "license": LICENSE, "bundled": False,
            "urls": [f"https://weights.invalid/{name}.safetensors"], "sha256": sha256, "size": size,
            "description": "seeded random weights for the tests"}
