"""Project-wide pytest set-up: repeatable runs, and no test reads the shared data folder.

``TINCT_SHARED`` (see ``core.paths.shared_dir``) points at an empty folder for the whole session,
so a test that needs images makes them (or uses what the repository ships) wherever it runs,
with or without ``../shared`` beside the checkout.
"""

import os
import tempfile

import torch

torch.manual_seed(0)

_EMPTY_SHARED = tempfile.TemporaryDirectory(prefix="tinct-no-shared-")
os.environ["TINCT_SHARED"] = _EMPTY_SHARED.name

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exiftool_env  # noqa: E402


@pytest.fixture(scope="session")
def exiftool() -> str:
    """The ``exiftool`` command (installed from Debian's package by the set-up where possible)."""
    try:
        return exiftool_env.ensure_exiftool()
    except exiftool_env.ExiftoolUnavailable as exc:
        pytest.skip(f"exiftool cannot be provided here: {exc}")
