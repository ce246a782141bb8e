"""Project-wide pytest set-up: keep torch to the machine's cores and make runs repeatable."""

import torch

torch.manual_seed(0)


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
