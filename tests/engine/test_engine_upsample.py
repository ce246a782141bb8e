"""Guided upsampling: colour follows the full-resolution L edges instead of bleeding across them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.upsample import bilinear_upsample, box_mean, guided_upsample


def _edge_scene(size: int = 256, edge: int = 133):
    """Full-res L with a sharp vertical edge at column ``edge`` (not on the low-res grid), the true
    ab (blue left, yellow right) and that ab seen at 1/4 resolution (area-averaged)."""
    L = torch.full((1, 1, size, size), 30.0)
    L[..., edge:] = 80.0
    ab_true = torch.empty(1, 2, size, size)
    ab_true[:, 0, :, :edge], ab_true[:, 1, :, :edge] = 10.0, -40.0
    ab_true[:, 0, :, edge:], ab_true[:, 1, :, edge:] = 20.0, 50.0
    ab_low = F.avg_pool2d(ab_true, 4)
    # the low-res prediction is also smooth: a network's output is never a perfect step
    ab_low = F.avg_pool2d(ab_low, 3, stride=1, padding=1, count_include_pad=False)
    return L, ab_true, ab_low, edge


LEFT, RIGHT = torch.tensor([10.0, -40.0]), torch.tensor([20.0, 50.0])


def _contamination(ab: torch.Tensor, edge: int) -> torch.Tensor:
    """Per pixel, how far its ab has moved toward the colour of the OTHER side of the edge:
    0 = its own side's colour, 1 = the other side's (projection on the LEFT-RIGHT axis)."""
    axis = (RIGHT - LEFT).view(1, 2, 1, 1)
    toward_right = ((ab - LEFT.view(1, 2, 1, 1)) * axis).sum(dim=1) / axis.square().sum()
    contamination = toward_right.clone()
    contamination[..., edge:] = 1.0 - toward_right[..., edge:]
    return contamination.clamp(0.0, 1.0)


def test_engine_guided_upsampling_does_not_bleed_across_edge():
    L, ab_true, ab_low, edge = _edge_scene()
    guided = guided_upsample(ab_low, L)
    bilinear = bilinear_upsample(ab_low, L.shape[-2:])
    band = slice(edge - 8, edge + 8)
    bleed_guided = _contamination(guided, edge)[..., band].mean().item()
    bleed_bilinear = _contamination(bilinear, edge)[..., band].mean().item()
    assert bleed_bilinear > 0.15  # bilinear smears each colour over the other side
    assert bleed_guided < 0.5 * bleed_bilinear
    # and the colour jumps where L jumps, across the two pixels at the edge
    jump_guided = (guided[..., edge] - guided[..., edge - 1]).norm(dim=1).mean().item()
    jump_bilinear = (bilinear[..., edge] - bilinear[..., edge - 1]).norm(dim=1).mean().item()
    assert jump_guided > 50.0 and jump_bilinear < 15.0


def test_engine_guided_upsampling_keeps_flat_colour_and_shapes():
    L = torch.rand(2, 1, 40, 56) * 100
    ab_low = torch.empty(2, 2, 10, 14)
    ab_low[:, 0], ab_low[:, 1] = 12.0, -7.0
    out = guided_upsample(ab_low, L)
    assert out.shape == (2, 2, 40, 56) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0], torch.full((2, 40, 56), 12.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[:, 1], torch.full((2, 40, 56), -7.0), atol=1e-3, rtol=0)


def test_engine_guided_upsampling_handles_ab_larger_than_image():
    out = guided_upsample(torch.randn(1, 2, 32, 32), torch.rand(1, 1, 10, 12) * 100)
    assert out.shape == (1, 2, 10, 12) and torch.isfinite(out).all()


def test_engine_box_mean_averages_only_inside_the_image():
    x = torch.ones(1, 1, 5, 5)
    torch.testing.assert_close(box_mean(x, 2), x)



def test_engine_guided_upsampling_keeps_red_rubrics_off_the_paper_of_a_scanned_page():
    """A page scanned at about 150 dpi (1250 x 1750) whose upper half is written in red ink, seen by the network
    as it is at the default render size (a 64-cell grid: each cell holds ~20 x 20 pixels of strokes and paper).
    Even from such a perfect low-resolution colour, the upsampling must put the red on the strokes and keep the
    paper around them paper: no bleed across strokes (``tinct eval-page`` measures 5000 x 7000, README)."""
    import numpy as np

    from core.color import rgb_to_lab
    from core.evaluate_pages import upsampling_bleed, with_red_rubrics
    from core.training.synth_documents import render_page

    rgb = torch.from_numpy(render_page(11, 1750, 1250).astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    lab, red = with_red_rubrics(rgb_to_lab(rgb))
    assert red.mean() > 0.01  # the page has writing in its upper half
    errors = upsampling_bleed(lab, red)
    guided, bilinear = errors["guided"], errors["bilinear"]
    # measured: guided 23.9 / 3.2 / 0.35 ab units, bilinear 44.9 / 6.5 / 0.27
    assert guided["strokes"] < 0.6 * bilinear["strokes"]  # the strokes get their red back; bilinear leaves them pale
    assert guided["ring"] < 0.6 * bilinear["ring"] and guided["ring"] < 5.0  # no red halo on the paper next to them
    assert guided["paper"] < 1.0  # and the paper away from them stays paper
