"""Hint spread: a hint pulls the distribution of the region it reaches, and stops at edges of lightness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine_stand_ins import BLUE, TinyLogitsModel
from core.color import rgb_to_lab
from core.hint_spread import EDGE_COST, hint_log_bias, hints_on_grid, nearest_hint
from core.pipeline import Colorizer


def _two_regions(h: int = 12, w: int = 16, edge: int = 8) -> torch.Tensor:
    """L* 30 left of column ``edge``, 80 right of it, ``[1, 1, h, w]``."""
    L = torch.full((1, 1, h, w), 30.0)
    L[..., edge:] = 80.0
    return L


def test_hints_on_grid_average_hinted_pixels_of_each_cell():
    ab = torch.zeros(1, 2, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    ab[0, :, 0, 0], mask[0, 0, 0, 0] = torch.tensor([10.0, -20.0]), 1.0
    ab[0, :, 0, 1], mask[0, 0, 0, 1] = torch.tensor([30.0, 0.0]), 1.0
    grid_ab, hinted = hints_on_grid(ab, mask, 4)
    assert grid_ab.shape == (1, 2, 2, 2) and hinted.tolist() == [[[[True, False], [False, False]]]]
    torch.testing.assert_close(grid_ab[0, :, 0, 0], torch.tensor([20.0, -10.0]))
    assert float(grid_ab[0, :, 1:].abs().sum()) == 0


def test_nearest_hint_is_a_path_length_that_pays_for_crossing_an_edge():
    L = _two_regions()
    hinted = torch.zeros(1, 1, 12, 16, dtype=torch.bool)
    hinted[0, 0, 6, 2] = True
    hint_ab = torch.zeros(1, 2, 12, 16)
    hint_ab[0, :, 6, 2] = torch.tensor([5.0, 40.0])
    distance, colour = nearest_hint(L, hint_ab, hinted)
    unit = 1 / 16
    assert float(distance[0, 0, 6, 2]) == 0
    assert math.isclose(float(distance[0, 0, 6, 7]), 5 * unit, rel_tol=1e-5)  # five cells along the row
    assert math.isclose(float(distance[0, 0, 6, 8]), 6 * unit + 50 * EDGE_COST, rel_tol=1e-5)  # one edge of 50 L*
    assert math.isclose(float(distance[0, 0, 0, 2]), 6 * unit, rel_tol=1e-5)  # diagonals cost sqrt(2), straight 1
    torch.testing.assert_close(colour[0, :, 11, 15], torch.tensor([5.0, 40.0]))  # every cell: the only hint's ab
    no_hints, _ = nearest_hint(L, hint_ab, torch.zeros_like(hinted))
    assert bool(torch.isinf(no_hints).all())


def test_hint_log_bias_is_zero_without_hints_and_strongest_at_the_hint():
    L = _two_regions()
    centers = torch.tensor([[0.0, 0.0], [5.0, 40.0], [-30.0, 0.0]])
    hinted = torch.zeros(1, 1, 12, 16, dtype=torch.bool)
    hint_ab = torch.zeros(1, 2, 12, 16)
    assert float(hint_log_bias(L, hint_ab, hinted, centers).abs().max()) == 0
    hinted[0, 0, 6, 2] = True
    hint_ab[0, :, 6, 2] = torch.tensor([5.0, 40.0])
    bias = hint_log_bias(L, hint_ab, hinted, centers, colour_sigma=10.0)
    assert bias.shape == (1, 3, 12, 16) and float(bias.max()) <= 0
    assert float(bias[0, 1].abs().max()) == 0  # the hint's own colour is never pushed down
    assert math.isclose(float(bias[0, 0, 6, 2]), -(25 + 1600) / 200, rel_tol=1e-5)  # gap² / 2σ² at full strength
    assert abs(float(bias[0, 0, 6, 3])) > 3 * abs(float(bias[0, 0, 6, 12]))  # weaker across the edge
    with pytest.raises(ValueError, match="reach"):
        hint_log_bias(L, hint_ab, hinted, centers, reach=0)


class HintIgnoringLogitsModel(TinyLogitsModel):
    """A hint-capable network whose hint input has learnt nothing yet: it ignores the hints."""

    accepts_hints = True


def test_a_network_that_ignores_its_hints_still_follows_them_and_they_stop_at_an_edge():
    gray = np.full((64, 96), 60, np.uint8)
    gray[:, 48:] = 215  # dark left (the stand-in says blue), light right (yellow)
    colorizer = Colorizer(HintIgnoringLogitsModel(), "cpu")
    plain = colorizer.colorize_array(gray, render_size=96)
    hints = np.zeros((64, 96, 4), np.uint8)
    hints[28:36, 10:18] = (128, 128, 128, 255)  # "this is gray", on the dark side
    hinted = colorizer.colorize_array(gray, render_size=96, hints=hints)

    def chroma(rgb: np.ndarray) -> float:
        lab = rgb_to_lab(torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None])
        return float(lab[0, 1:].norm(dim=0).mean())

    assert chroma(plain[:, :40]) > 0.6 * float(np.hypot(*BLUE))  # blue without the hint
    assert chroma(hinted[:, :40]) < 0.3 * chroma(plain[:, :40])  # the hint's region turns gray
    assert abs(chroma(hinted[:, 56:]) - chroma(plain[:, 56:])) < 0.15 * chroma(plain[:, 56:])  # the other side stays
