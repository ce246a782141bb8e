"""Tinct's own network: an EfficientNet-Lite0 encoder on L with a light U-Net decoder.

The classification head predicts logits over the model's in-gamut ab bins at 1/4 resolution
(Zhang et al. 2016); the regression head predicts ab directly (the Dahl-style L2 baseline the paper
compares against). The bin table is a persistent buffer, so it travels inside the weights file.

Two optional parts (off in the first-generation files, whose config lacks them):

- ``hints``: user colour hints (Zhang et al. 2017) enter twice, at the encoder's stem (full resolution,
  added to the stem convolution) and at 1/4 resolution (added to the 1/4 skip feature), so a hint reaches
  the output both through the whole network and by a short path. Both branches start at zero, so a
  hint-capable network initialised from a hint-less one computes the same function until trained, and
  neither branch has a bias, so without hints they add exactly nothing.
- ``global_context``: an image-level feature (the mean of the 1/32 feature map through a small MLP) is
  broadcast and added to the decoder at 1/16 (Iizuka et al. 2016), for scene-consistent colour. Its last
  layer also starts at zero.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model
from .efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0Encoder

AB_SCALE = 110.0
HINT_CHANNELS = 3  # ab / AB_SCALE and the mask


def hint_tensor(L: torch.Tensor, hint_ab: torch.Tensor | None, hint_mask: torch.Tensor | None) -> torch.Tensor:
    """The network's hint input: ``[N, 3, H, W]`` = (a, b) / 110 where hinted (0 elsewhere), and the mask.

    ``hint_ab`` ``[N, 2, H, W]`` in ab units and ``hint_mask`` ``[N, 1, H, W]`` in {0, 1}; both None means no
    hints. Raises ValueError when only one is given or the shapes do not match ``L``.
    """
    n, _, h, w = L.shape
    if hint_ab is None and hint_mask is None:
        return L.new_zeros(n, HINT_CHANNELS, h, w)
    if hint_ab is None or hint_mask is None:
        raise ValueError("hint_ab and hint_mask must be given together")
    if hint_ab.shape != (n, 2, h, w) or hint_mask.shape != (n, 1, h, w):
        raise ValueError(
            f"hints must be [N, 2, H, W] and [N, 1, H, W] like L {tuple(L.shape)}, "
            f"got {tuple(hint_ab.shape)} and {tuple(hint_mask.shape)}"
        )
    mask = hint_mask.to(L.dtype)
    return torch.cat([hint_ab.to(L.dtype) * mask / AB_SCALE, mask], dim=1)


def quarter_hints(hints: torch.Tensor) -> torch.Tensor:
    """Hints pooled to 1/4 resolution: the mean hinted ab of each 4×4 cell and the fraction hinted, ``[N, 3, H/4, W/4]``."""
    pooled = F.avg_pool2d(hints, 4)
    cover = pooled[:, 2:]
    return torch.cat([pooled[:, :2] / cover.clamp_min(1e-6) * (cover > 0), cover], dim=1)


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
        hints: bool = False,
        global_context: bool = False,
    ) -> None:
        super().__init__()
        if head not in ("classification", "regression"):
            raise ValueError(f"head must be 'classification' or 'regression', got {head!r}")
        self.head_kind = head
        self.config = {"head": head, "num_bins": num_bins, "widths": list(widths)}
        if hints:
            self.config["hints"] = True
        if global_context:
            self.config["global_context"] = True
        self.output = "logits" if head == "classification" else "ab"
        self.accepts_hints = bool(hints)
        self.encoder = EfficientNetLite0Encoder(in_channels=1)
        c2, c4, c8, c16, c32 = FEATURE_CHANNELS
        w16, w8, w4 = widths
        self.up16 = UpBlock(c32, c16, w16)
        self.up8 = UpBlock(w16, c8, w8)
        self.up4 = UpBlock(w8, c4, w4)
        self.head = nn.Conv2d(w4, num_bins if head == "classification" else 2, 1)
        # The bin table lives in the state dict; it is only meaningful for the classification head.
        self.register_buffer("bin_centers", torch.zeros(num_bins if head == "classification" else 0, 2))
        if hints:
            stem = self.encoder._conv_stem
            self.hint_stem = nn.Conv2d(HINT_CHANNELS, stem.out_channels, stem.kernel_size, stem.stride,
                                       stem.padding, bias=False)
            # No biases: without hints (an all-zero input) both branches add exactly nothing.
            self.hint_quarter = nn.Sequential(
                nn.Conv2d(HINT_CHANNELS, 32, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                nn.Conv2d(32, c4, 3, padding=1, bias=False),
            )
            nn.init.zeros_(self.hint_stem.weight)
            nn.init.zeros_(self.hint_quarter[2].weight)
        if global_context:
            self.context = nn.Sequential(nn.Linear(c32, 256), nn.ReLU(inplace=True), nn.Linear(256, w16))
            nn.init.zeros_(self.context[2].weight)
            nn.init.zeros_(self.context[2].bias)

    def forward(
        self, L: torch.Tensor, hint_ab: torch.Tensor | None = None, hint_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = L / 50.0 - 1.0  # the pretrained encoder saw RGB scaled by mean = std = 0.5
        if self.accepts_hints:
            hints = hint_tensor(L, hint_ab, hint_mask)
            _, f4, f8, f16, f32 = self.encoder(x, stem_residual=self.hint_stem(hints))
            f4 = f4 + self.hint_quarter(quarter_hints(hints))
        else:
            _, f4, f8, f16, f32 = self.encoder(x)
        y = self.up16(f32, f16)
        if hasattr(self, "context"):
            y = y + self.context(f32.mean(dim=(2, 3)))[:, :, None, None]
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
