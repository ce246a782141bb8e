"""Fixtures of the engine tests: tiny stand-in models and small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from engine_stand_ins import TinyAbModel, TinyLogitsModel, gradient_gray


@pytest.fixture
def tiny_colorizer():
    from core.pipeline import Colorizer

    return Colorizer(TinyLogitsModel(), "cpu")


@pytest.fixture
def ab_colorizer():
    from core.pipeline import Colorizer

    return Colorizer(TinyAbModel(), "cpu")


@pytest.fixture
def tiny_models(monkeypatch):
    """Make model names resolve to stand-ins: "tiny" -> TinyLogitsModel; "missing" -> WeightsMissing."""
    import core.pipeline as pipeline

    def load(name, device, dtype, fetch, mirror):
        if name == "missing":
            from weights_fetch import WeightsMissing

            raise WeightsMissing("weights for 'missing' are not installed; run: tinct weights fetch missing")
        if name in ("tiny", "default"):
            return TinyLogitsModel().to(device=device, dtype=dtype).eval()
        raise KeyError(name)

    monkeypatch.setattr(pipeline, "_load_named_model", load)
    pipeline._COLORIZERS.clear()
    yield load
    pipeline._COLORIZERS.clear()


@pytest.fixture
def gray8() -> np.ndarray:
    return gradient_gray()
