"""Fixtures for the GIMP tests: a headless GIMP 3 (native or the Debian 13 chroot), mounted per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gimp_env  # noqa: E402


@pytest.fixture(scope="session")
def gimp3() -> gimp_env.Gimp3:
    """GIMP 3, built into the chroot cache on first use; skips only where it cannot be provided."""
    try:
        return gimp_env.ensure_gimp3()
    except gimp_env.Gimp3Unavailable as exc:
        pytest.skip(f"GIMP 3 cannot be provided here: {exc}")


@pytest.fixture(scope="session")
def gimp_session(gimp3):
    """A GIMP 3 ready to run batch code, with the checkout and the venv visible at their own paths."""
    with gimp_env.gimp3_session(gimp3) as session:
        yield session
