"""Tinct's own network: an EfficientNet-Lite0 encoder on L with a light U-Net decoder.

The classification head predicts logits over the model's in-gamut ab bins at 1/4 resolution
(Zhang et al. 2016); the regression head predicts ab directly (the Dahl-style L2 baseline the paper
compares against). The bin table is a persistent buffer, so it travels inside the weights file.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from .efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0Encoder

AB_SCALE = 110.0


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """x2 bilinear upsampling, concatenation with the skip feature, two 3x3 conv-BN-ReLU."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(c_in + c_skip, c_out), _conv_bn_relu(c_out, c_out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], dim=1))


class TinctUNet(nn.Module):
    """EfficientNet-Lite0 U-Net colorizer; follows the model contract of :mod:`core.models`.

    ``forward(L [N, 1, H, W] in 0..100)`` with H, W multiples of 32 returns
    logits ``[N, Q, H/4, W/4]`` (``head="classification"``) or ab ``[N, 2, H/4, W/4]`` in ab units
    (``head="regression"``).
    """

    stride = 32
    out_stride = 4
    accepts_hints = False
    logit_fold = 1.0

    def __init__(
        self,
        head: Literal["classification", "regression"] = "classification",
        num_bins: int = 261,
        widths: Sequence[int] = (128, 96, 64),
    ) -> None:
        super().__init__()
        if head not in ("classification", "regression"):
            raise ValueError(f"head must be 'classification' or 'regression', got {head!r}")
        self.head_kind = head
        self.config = {"head": head, "num_bins": num_bins, "widths": list(widths)}
        self.output = "logits" if head == "classification" else "ab"
        self.encoder = EfficientNetLite0Encoder(in_channels=1)
        c2, c4, c8, c16, c32 = FEATURE_CHANNELS
        w16, w8, w4 = widths
        self.up16 = UpBlock(c32, c16, w16)
        self.up8 = UpBlock(w16, c8, w8)
        self.up4 = UpBlock(w8, c4, w4)
        self.head = nn.Conv2d(w4, num_bins if head == "classification" else 2, 1)
        # The bin table lives in the state dict; it is only meaningful for the classification head.
        self.register_buffer("bin_centers", torch.zeros(num_bins if head == "classification" else 0, 2))

    def forward(
        self, L: torch.Tensor, hint_ab: torch.Tensor | None = None, hint_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = L / 50.0 - 1.0  # the pretrained encoder saw RGB scaled by mean = std = 0.5
        _, f4, f8, f16, f32 = self.encoder(x)
        y = self.up16(f32, f16)
        y = self.up8(y, f8)
        y = self.up4(y, f4)
        out = self.head(y)
        if self.output == "ab":
            return torch.tanh(out) * AB_SCALE
        return out


@register_model("tinct_unet")
def tinct_unet(**config) -> TinctUNet:
    """Registry constructor; ``config`` as stored in the weights file's metadata."""
    return TinctUNet(**config)
