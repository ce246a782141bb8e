"""The SIGGRAPH17 user-guided colorization network (Zhang et al. 2017), official PyTorch layout.

Layer for layer the generator of the official release (``colorizers/siggraph17.py``), so that
``siggraph17-df00044c.pth`` loads with ``load_state_dict(strict=True)`` after
``normalize_official_state_dict``. 34,187,027 parameters, including the 529-class head
``model_class`` that the released forward never uses (kept so the checkpoint loads strictly).

Downsampling is by slicing ``x[:, :, ::2, ::2]`` between blocks (no strided convs); three
transposed-conv + skip stages bring the features back to full resolution. The official forward
evaluates the model9/model10 branch twice with identical results; it is computed once here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from . import register_model
from .eccv16 import AB_NORM, L_CENTER, L_NORM, conv_block, check_input_L

__all__ = ["SIGGRAPH17Generator"]

FULL_GRID_CLASSES = 529  # 23 x 23 ab grid, for the unused classification head


def _check_hints(L: Tensor, hint_ab: Tensor | None, hint_mask: Tensor | None) -> None:
    if (hint_ab is None) != (hint_mask is None):
        raise ValueError("siggraph17: give hint_ab and hint_mask together (or neither)")
    if hint_ab is None or hint_mask is None:
        return
    n, _, h, w = L.shape
    if tuple(hint_ab.shape) != (n, 2, h, w):
        raise ValueError(f"siggraph17: hint_ab must be [{n}, 2, {h}, {w}], got {list(hint_ab.shape)}")
    if tuple(hint_mask.shape) != (n, 1, h, w):
        raise ValueError(
            f"siggraph17: hint_mask must be [{n}, 1, {h}, {w}], got {list(hint_mask.shape)}"
        )


@register_model("siggraph17")
class SIGGRAPH17Generator(nn.Module):
    """SIGGRAPH17 generator: ``forward(L, hint_ab, hint_mask)`` -> ab ``[N, 2, H, W]`` in ab units.

    ``L``: ``[N, 1, H, W]`` L* in ``[0, 100]``, H and W multiples of 8. ``hint_ab``:
    ``[N, 2, H, W]`` ab units, 0 where there is no hint (not enforced, as in the release);
    ``hint_mask``: ``[N, 1, H, W]`` in {0, 1} (not centred, matching the released weights).
    Without hints both are zeros (automatic mode). Output is ``110 * tanh(...)``.
    """

    output = "ab"
    stride = 8
    out_stride = 1
    accepts_hints = True
    logit_fold = 1.0

    def __init__(self, classes: int = FULL_GRID_CLASSES) -> None:
        super().__init__()
        self.model1 = conv_block([4, 64, 64])
        self.model2 = conv_block([64, 128, 128])
        self.model3 = conv_block([128, 256, 256, 256])
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512, 512, 512, 512], dilation=2)
        self.model6 = conv_block([512, 512, 512, 512], dilation=2)
        self.model7 = conv_block([512, 512, 512, 512])

        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, kernel_size=3, padding=1))
        self.model8 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(256),
        )

        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, kernel_size=3, padding=1))
        self.model9 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 128, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(128),
        )

        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, kernel_size=4, stride=2, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, kernel_size=3, padding=1))
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 128, kernel_size=3, padding=1),
            nn.LeakyReLU(negative_slope=0.2),
        )

        self.model_class = nn.Sequential(nn.Conv2d(256, classes, kernel_size=1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, kernel_size=1), nn.Tanh())

    def forward(
        self, L: Tensor, hint_ab: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        """ab ``[N, 2, H, W]`` in ab units (within ±110)."""
        check_input_L(L, self.stride, "siggraph17")
        _check_hints(L, hint_ab, hint_mask)
        n, _, h, w = L.shape
        l_in = (L - L_CENTER) / L_NORM
        if hint_ab is None or hint_mask is None:
            x = torch.cat([l_in, l_in.new_zeros((n, 3, h, w))], dim=1)
        else:
            x = torch.cat([l_in, hint_ab.to(l_in.dtype) / AB_NORM, hint_mask.to(l_in.dtype)], dim=1)

        conv1_2 = self.model1(x)
        conv2_2 = self.model2(conv1_2[:, :, ::2, ::2])
        conv3_3 = self.model3(conv2_2[:, :, ::2, ::2])
        conv4_3 = self.model4(conv3_3[:, :, ::2, ::2])
        conv7_3 = self.model7(self.model6(self.model5(conv4_3)))

        conv8_3 = self.model8(self.model8up(conv7_3) + self.model3short8(conv3_3))
        conv9_3 = self.model9(self.model9up(conv8_3) + self.model2short9(conv2_2))
        conv10_2 = self.model10(self.model10up(conv9_3) + self.model1short10(conv1_2))
        return self.model_out(conv10_2) * AB_NORM
