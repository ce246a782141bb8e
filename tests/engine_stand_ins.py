"""Tiny deterministic models following the ``core.models`` contract, for the engine tests only.

Their colour is a smooth function of the local L* (dark -> blue, light -> yellow), so tests can
check where colour lands without a trained network. They are registered architectures
(``test-tiny-logits``, ``test-tiny-ab``, ``test-fails-on-bright``), so a test can give them a name and a weights file
(``model_support.install_models``) and load them as Tinct loads every model; ``BUILT`` lists every
one built, which tells a test whether a command loaded its model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.models import register_model

BLUE = (10.0, -40.0)
YELLOW = (20.0, 50.0)


class TinyLogitsModel(nn.Module):
    """``output="logits"`` over 3 bins: gray, blue, yellow; stride 8, out_stride 4."""

    output = "logits"
    stride = 8
    out_stride = 4
    accepts_hints = False
    logit_fold = 1.0

    def __init__(self, sharpness: float = 8.0):
        super().__init__()
        self.register_buffer("bin_centers", torch.tensor([[0.0, 0.0], [*BLUE], [*YELLOW]]))
        self.scale = nn.Parameter(torch.tensor(float(sharpness)))

    def forward(self, L, hint_ab=None, hint_mask=None):
        assert L.shape[-2] % self.stride == 0 and L.shape[-1] % self.stride == 0, L.shape
        x = (F.avg_pool2d(L, self.out_stride) - 50.0) / 50.0
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        s = self.scale.to(x.dtype)
        return torch.cat([torch.zeros_like(x), -s * x, s * x], dim=1)


class TinyAbModel(nn.Module):
    """``output="ab"`` at full render resolution (out_stride 1); takes hints: hinted cells get the hint."""

    output = "ab"
    stride = 8
    out_stride = 1
    accepts_hints = True
    logit_fold = 1.0

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.6))

    def forward(self, L, hint_ab=None, hint_mask=None):
        assert L.shape[-2] % self.stride == 0 and L.shape[-1] % self.stride == 0, L.shape
        x = (L - 50.0) * self.gain.to(L.dtype)
        ab = torch.cat([x * 0.3, x], dim=1)
        if hint_ab is not None:
            ab = torch.where(hint_mask > 0.5, hint_ab, ab)
        return ab


BUILT: list[str] = []


@register_model("test-tiny-logits")
def tiny_logits(sharpness: float = 8.0) -> TinyLogitsModel:
    BUILT.append("test-tiny-logits")
    return TinyLogitsModel(sharpness)


@register_model("test-tiny-ab")
def tiny_ab() -> TinyAbModel:
    BUILT.append("test-tiny-ab")
    return TinyAbModel()


class FailsOnBright(TinyLogitsModel):
    """Raises ``error`` for any render holding a nearly white image (a file "too large for the memory")."""

    def __init__(self, error: BaseException):
        super().__init__()
        self.error = error

    def forward(self, L, hint_ab=None, hint_mask=None):
        if bool((L.flatten(1).mean(dim=1) > 90).any()):
            raise self.error
        return super().forward(L)


# What FailsOnBright raises: the engine running out of memory (two ways), or a bug in a network ("bug").
FAILURES = {"memory": MemoryError, "cuda": lambda: RuntimeError("CUDA out of memory. Tried to allocate 6.40 GiB"),
            "bug": lambda: TypeError("unsupported operand type(s) for +: 'Tensor' and 'NoneType'")}


@register_model("test-fails-on-bright")
def fails_on_bright(error: str = "memory") -> FailsOnBright:
    BUILT.append("test-fails-on-bright")
    return FailsOnBright(FAILURES[error]())


def gradient_gray(height: int = 48, width: int = 64, dtype=np.uint8) -> np.ndarray:
    """``[H, W]`` horizontal ramp from black to white (plus a vertical ripple) of ``dtype``."""
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = (0.1 * np.sin(np.linspace(0, 6.0, height, dtype=np.float32)))[:, None]
    unit = np.clip(x * 0.9 + 0.05 + y, 0.0, 1.0)
    if dtype == np.float32:
        return unit.astype(np.float32)
    peak = 255 if dtype == np.uint8 else 65535
    return np.round(unit * peak).astype(dtype)
