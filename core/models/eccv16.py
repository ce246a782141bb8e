"""The ECCV16 colorization network (Zhang, Isola & Efros 2016), official PyTorch layout.

Layer for layer the generator of the official release (``colorizers/eccv16.py``), so that
``colorization_release_v2-9b330a0b.pth`` loads with ``load_state_dict(strict=True)`` after
``normalize_official_state_dict``. 32,236,011 parameters.

State-dict keys: ``model1.0.weight`` ... ``model8.6.bias`` (``nn.Sequential`` indices; ReLUs
take the odd slots, BatchNorm comes after the last ReLU of blocks 1-7) and
``model_out.weight`` ``[2, 313, 1, 1]``, the fixed 1x1 "decoder" whose columns are the 313 ab
bin centres divided by 110. Those centres exist only in the checkpoint: with random
initialisation ``model_out.weight`` (and so ``bin_centers``) is random too.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from . import register_model

__all__ = ["ECCV16Generator", "normalize_official_state_dict", "check_input_L", "conv_block"]

L_CENTER = 50.0
L_NORM = 100.0
AB_NORM = 110.0
NUM_BINS = 313
# Caffe deploy scaled the 313 logits by 2.606 (layer conv8_313_rh) before the softmax; the
# PyTorch port has no scale layer, so the scale is taken as folded into model8.6.
# softmax(logits / (2.606 * T)) then means the same T as for every other model (T=0.38 ~ 1/2.606).
ECCV16_LOGIT_FOLD = 2.606


def check_input_L(L: Tensor, stride: int, model_name: str) -> None:
    """Raise a one-line ``ValueError`` unless ``L`` is ``[N, 1, H, W]`` float with H, W % stride == 0."""
    if not isinstance(L, Tensor) or not L.is_floating_point():
        kind = L.dtype if isinstance(L, Tensor) else type(L).__name__
        raise TypeError(f"{model_name}: L must be a floating tensor, got {kind}")
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"{model_name}: L must be [N, 1, H, W], got {list(L.shape)}")
    h, w = L.shape[-2:]
    if h % stride or w % stride or h == 0 or w == 0:
        raise ValueError(
            f"{model_name}: H and W must be positive multiples of {stride}, got {h}x{w}"
        )


def normalize_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Make an official Zhang et al. state dict loadable with ``strict=True``.

    Strips a ``module.`` prefix (DataParallel checkpoints) and adds a zero
    ``num_batches_tracked`` for every BatchNorm (recognised by ``<prefix>.running_mean``)
    that lacks one; the counter is unused in eval mode. Works for ECCV16 and SIGGRAPH17.
    Returns a new dict; the input is not modified.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        out[key[len("module."):] if key.startswith("module.") else key] = value
    for key in list(out):
        if key.endswith(".running_mean"):
            counter = key[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(counter, torch.zeros((), dtype=torch.long))
    return out


def _conv_relu(
    in_ch: int, out_ch: int, *, kernel: int = 3, stride: int = 1, dilation: int = 1
) -> list[nn.Module]:
    padding = dilation * (kernel // 2)
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation),
        nn.ReLU(inplace=True),
    ]


def conv_block(
    widths: list[int], *, last_stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """Convs ``widths[0] -> widths[1] -> ...`` each with ReLU, then BatchNorm of the last width."""
    layers: list[nn.Module] = []
    n = len(widths) - 1
    for i in range(n):
        stride = last_stride if i == n - 1 else 1
        layers += _conv_relu(widths[i], widths[i + 1], stride=stride, dilation=dilation)
    layers.append(nn.BatchNorm2d(widths[-1]))
    return nn.Sequential(*layers)


@register_model("eccv16")
class ECCV16Generator(nn.Module):
    """ECCV16 generator. ``forward(L)`` -> logits ``[N, 313, H/4, W/4]`` (see team contract).

    Input ``L``: ``[N, 1, H, W]`` float, L* in ``[0, 100]``, H and W multiples of 8.
    """

    output = "logits"
    stride = 8
    out_stride = 4
    accepts_hints = False
    logit_fold = ECCV16_LOGIT_FOLD

    def __init__(self) -> None:
        super().__init__()
        self.model1 = conv_block([1, 64, 64], last_stride=2)
        self.model2 = conv_block([64, 128, 128], last_stride=2)
        self.model3 = conv_block([128, 256, 256, 256], last_stride=2)
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512, 512, 512, 512], dilation=2)
        self.model6 = conv_block([512, 512, 512, 512], dilation=2)
        self.model7 = conv_block([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            *_conv_relu(256, 256),
            *_conv_relu(256, 256),
            nn.Conv2d(256, NUM_BINS, kernel_size=1),
        )
        self.model_out = nn.Conv2d(NUM_BINS, 2, kernel_size=1, bias=False)

    @property
    def bin_centers(self) -> Tensor:
        """``[313, 2]`` float ab bin centres in ab units, read from ``model_out.weight`` (detached)."""
        return self.model_out.weight.detach()[:, :, 0, 0].t() * AB_NORM

    def logits(self, L: Tensor) -> Tensor:
        """Un-normalised class scores ``[N, 313, H/4, W/4]`` for L* ``[N, 1, H, W]`` in [0, 100]."""
        check_input_L(L, self.stride, "eccv16")
        x = (L - L_CENTER) / L_NORM
        for block in (
            self.model1, self.model2, self.model3, self.model4,
            self.model5, self.model6, self.model7, self.model8,
        ):
            x = block(x)
        return x

    def forward(
        self, L: Tensor, hint_ab: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        """Logits ``[N, 313, H/4, W/4]``; ``hint_ab``/``hint_mask`` are accepted and ignored."""
        return self.logits(L)

    def forward_release(self, L: Tensor) -> Tensor:
        """The official forward: ``110 * upsample4(model_out(softmax(logits)))`` -> ab ``[N, 2, H, W]``.

        Plain softmax (T = 1, no logit fold), bilinear x4 with ``align_corners=False``, as in
        the release; kept for reference tests.
        """
        probs = torch.softmax(self.logits(L), dim=1)
        ab = F.interpolate(
            self.model_out(probs), scale_factor=4, mode="bilinear", align_corners=False
        )
        return ab * AB_NORM
