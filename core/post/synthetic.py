"""Synthetic network outputs with known defects, for tests and for measuring without a trained model.

``degraded_logits`` turns a true ab image into logits that look like a per-pixel classifier's: colour
leaking over edges (halo), low-frequency patches of a wrong colour (blotches) and per-pixel noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def grid_bin_centers(step: float = 10.0, radius: float = 110.0) -> Tensor:
    """ab bin centres of a square grid of ``step`` inside a disc of ``radius``: ``[Q,2]`` float32, sorted by (a, b)."""
    count = int(radius // step)
    values = torch.arange(-count, count + 1, dtype=torch.float32) * step
    a, b = torch.meshgrid(values, values, indexing="ij")
    centers = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
    return centers[centers.norm(dim=1) <= radius]


def logits_from_ab(ab: Tensor, bin_centers: Tensor, sigma: float = 10.0) -> Tensor:
    """Gaussian soft-encoding logits ``-|ab - c_q|^2 / (2 sigma^2)``: ``[N,2,h,w]`` -> ``[N,Q,h,w]``."""
    centers = bin_centers.to(ab)
    d2 = (ab.unsqueeze(2) - centers.t().view(1, 2, -1, 1, 1)).pow(2).sum(dim=1)
    return -d2 / (2.0 * sigma**2)


def smooth_noise(shape: tuple[int, int, int, int], sigma: float, generator: torch.Generator) -> Tensor:
    """Gaussian-blurred white noise normalised to unit std per image: ``[N,C,h,w]`` float32 (CPU)."""
    noise = torch.randn(shape, generator=generator)
    return gaussian_blur(noise, sigma) / gaussian_blur(noise, sigma).std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflect padding, per channel: ``[N,C,h,w]`` -> same."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t * t / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
    y = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect") if pad_h else x
    y = F.conv2d(y, kernel[radius - pad_h : radius + pad_h + 1].view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w else y
    return F.conv2d(y, kernel[radius - pad_w : radius + pad_w + 1].view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)


def degraded_logits(
    ab_true: Tensor,
    bin_centers: Tensor,
    *,
    seed: int = 0,
    halo_sigma: float = 1.5,
    blotch_share: float = 0.3,
    blotch_sigma: float = 4.0,
    noise: float = 1.0,
    sharpness_sigma: float = 12.0,
) -> Tensor:
    """Logits a blotchy, haloing classifier might produce for ``ab_true``.

    Args:
        ab_true: ``[N,2,h,w]`` float, ab units, at network-output resolution.
        bin_centers: ``[Q,2]`` ab units.
        seed: random seed (the result is deterministic).
        halo_sigma: blur (pixels) of the true ab that ignores edges: colour leaks across them.
        blotch_share: about this share of pixels prefers a wrong colour (the true one rotated by
            90 degrees in ab), in patches of size ``blotch_sigma`` pixels.
        noise: std of i.i.d. logit noise.
        sharpness_sigma: ab width of each mode of the distribution.

    Returns:
        ``[N,Q,h,w]`` float32 logits on the CPU.
    """
    generator = torch.Generator().manual_seed(seed)
    ab = gaussian_blur(ab_true.float().cpu(), halo_sigma) if halo_sigma > 0 else ab_true.float().cpu()
    wrong = torch.stack([-ab[:, 1], ab[:, 0]], dim=1)
    n, _, h, w = ab.shape
    field = smooth_noise((n, 1, h, w), blotch_sigma, generator)
    threshold = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - blotch_share))
    wrong_weight = torch.sigmoid(3.0 * (field - threshold))
    centers = bin_centers.float().cpu()
    p_true = torch.softmax(logits_from_ab(ab, centers, sharpness_sigma), dim=1)
    p_wrong = torch.softmax(logits_from_ab(wrong, centers, sharpness_sigma), dim=1)
    mixture = torch.lerp(p_true, p_wrong, wrong_weight)
    return torch.log(mixture.clamp_min(1e-8)) + noise * torch.randn(mixture.shape, generator=generator)
