"""Fixtures of the engine tests: tiny stand-in models and small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from engine_stand_ins import BUILT, TinyAbModel, TinyLogitsModel, gradient_gray
from model_support import install_models


@pytest.fixture
def tiny_colorizer():
    from core.pipeline import Colorizer

    return Colorizer(TinyLogitsModel(), "cpu")


@pytest.fixture
def ab_colorizer():
    from core.pipeline import Colorizer

    return Colorizer(TinyAbModel(), "cpu")


@pytest.fixture
def install_named(tmp_path_factory, monkeypatch):
    """``install({name: (arch, config)}, missing=())``: named models in this test's own cache and catalog
    (``model_support.install_models``; outside ``tmp_path``, which tests list), loaded by every command
    through the real loader."""
    import core.pipeline as pipeline

    def install(models, missing=()):
        for key, value in install_models(tmp_path_factory.mktemp("tinct-home"), models, missing).items():
            monkeypatch.setenv(key, value)
        pipeline._COLORIZERS.clear()  # the process-wide colorizers of earlier tests' names
        BUILT.clear()

    yield install
    pipeline._COLORIZERS.clear()


@pytest.fixture
def tiny_models(install_named):
    """Model names for the commands: "tiny" -> TinyLogitsModel; "missing" has no weights (WeightsMissing)."""
    install_named({"tiny": ("test-tiny-logits", {})}, missing=("missing",))


@pytest.fixture
def gray8() -> np.ndarray:
    return gradient_gray()
