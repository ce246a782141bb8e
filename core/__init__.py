"""Tinct: automatic colorization of black-and-white photos and film (Zhang et al., ECCV 2016).

The Python API: ``Colorizer`` and ``colorize`` (``core.pipeline``), imported lazily so that
``import core`` (and the CLI's start-up) does not load torch until it is needed.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Colorizer", "colorize", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Colorizer", "colorize"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
