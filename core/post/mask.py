"""Limit post-processing to a region: blend the post-processed ab into the raw ab through a soft mask."""

from __future__ import annotations

import torch
from torch import Tensor


def blend_with_mask(ab_raw: Tensor, ab_post: Tensor, mask: Tensor | None) -> Tensor:
    """Keep ``ab_post`` where ``mask`` is 1, ``ab_raw`` where it is 0, and mix linearly in between.

    Args:
        ab_raw: ``[N,2,H,W]`` float, ab units: the result without post-processing.
        ab_post: ``[N,2,H,W]`` float, ab units, same shape/device as ``ab_raw``.
        mask: ``[N,1,H,W]`` or ``[1,1,H,W]`` (shared by the batch), float in ``[0,1]`` or bool;
            ``None`` means "everywhere" and returns ``ab_post``.

    Returns:
        ``[N,2,H,W]`` float: ``ab_raw + mask * (ab_post - ab_raw)``.
    """
    if ab_raw.dim() != 4 or ab_raw.shape[1] != 2:
        raise ValueError(f"ab_raw must be [N,2,H,W], got {list(ab_raw.shape)}")
    if ab_post.shape != ab_raw.shape:
        raise ValueError(f"ab_post shape {list(ab_post.shape)} differs from ab_raw shape {list(ab_raw.shape)}")
    if mask is None:
        return ab_post
    n, _, h, w = ab_raw.shape
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2:] != (h, w) or mask.shape[0] not in (1, n):
        raise ValueError(f"mask must be [{n},1,{h},{w}] or [1,1,{h},{w}], got {list(mask.shape)}")
    weight = mask.to(device=ab_raw.device, dtype=ab_raw.dtype)
    if not mask.dtype == torch.bool:
        lo, hi = float(weight.min()), float(weight.max())
        if lo < 0.0 or hi > 1.0 or weight.isnan().any():
            raise ValueError(f"mask values must lie in [0, 1], got range [{lo:g}, {hi:g}]")
    return torch.lerp(ab_raw, ab_post.to(ab_raw.dtype), weight)
