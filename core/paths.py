"""Where Tinct finds its own files and the shared training data."""

from __future__ import annotations

import os
from pathlib import Path

from weights_fetch import cache as _weights_cache

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_WEIGHTS_DIR = _weights_cache.BUNDLED_DIR  # where the bundled weights ship; weights_fetch says where
SAMPLES_DIR = PROJECT_ROOT / "core" / "samples"


def shared_dir() -> Path:
    """The shared data folder: ``$TINCT_SHARED`` or ``../shared`` beside the checkout."""
    env = os.environ.get("TINCT_SHARED")
    return Path(env) if env else PROJECT_ROOT.parent / "shared"


def data_dir() -> Path:
    """Training/evaluation images (``shared/data``)."""
    return shared_dir() / "data"
