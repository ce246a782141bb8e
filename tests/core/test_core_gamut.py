"""core.color's gamut-keeping Lab -> RGB against a plain reference of the same rule."""

from __future__ import annotations

import pytest
import torch

from core import color

STEP = 1.0 / 65535  # the slack of the in-gamut test: one step of the 8-bit path's table


def _plain_linear(lab: torch.Tensor) -> torch.Tensor:
    return color.xyz_to_linear_rgb(color.lab_to_xyz(lab))


def _fits(linear: torch.Tensor) -> torch.Tensor:
    return ((linear > -STEP) & (linear < 1.0 + STEP)).all(dim=-3, keepdim=True)


def reference_keep_l(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """The rule written plainly, image-wide, with skimage's formulas: in-gamut colours as they
    are, the others at the largest chroma scale k/32 that fits (bisection), clipped to [0, 1]."""
    linear = _plain_linear(torch.cat([L, ab], dim=-3))
    low, high = torch.zeros_like(L), torch.ones_like(L)
    for _ in range(5):
        mid = (low + high) / 2
        fits = _fits(_plain_linear(torch.cat([L, ab * mid], dim=-3)))
        low, high = torch.where(fits, mid, low), torch.where(fits, high, mid)
    reduced = _plain_linear(torch.cat([L, ab * low], dim=-3))
    return torch.where(_fits(linear), linear, reduced).clamp(0.0, 1.0)


def _vivid_lab(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """L* over the whole range (dark pixels below the cube-root branch included), ab up to ±120:
    about half of the colours fall outside sRGB."""
    g = torch.Generator().manual_seed(seed)
    L = torch.rand(n, 1, h, w, generator=g) * 100
    ab = (torch.rand(n, 2, h, w, generator=g) * 2 - 1) * 120
    return L, ab


def _most_chroma_that_fits(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Per pixel the largest chroma scale in [0, 1] at which (L, scale·ab) lies in sRGB, to 2^-16 (float64)."""
    low, high = torch.zeros_like(L), torch.ones_like(L)
    for _ in range(16):
        mid = (low + high) / 2
        fits = _fits(_plain_linear(torch.cat([L, ab * mid], dim=-3)))
        low, high = torch.where(fits, mid, low), torch.where(fits, high, mid)
    return low


def test_core_gamut_keeps_nearly_the_most_chroma_that_fits():
    L, ab = _vivid_lab(2, 40, 50)
    linear = color.lab_to_linear_rgb_keep_l(L, ab)
    assert linear.shape == (2, 3, 40, 50) and linear.dtype == torch.float32
    assert linear.min() >= 0 and linear.max() <= 1
    most = _most_chroma_that_fits(L.double(), ab.double())
    outside = (most < 0.999)[:, 0]
    assert 0.3 < outside.float().mean() < 0.9  # the chroma really was reduced on many pixels
    chroma = color.rgb_to_lab(color.linear_to_srgb(linear.double()))[:, 1:].norm(dim=1)
    best = (ab.double().norm(dim=1, keepdim=True) * most)[:, 0]
    judged = outside & (best > 5) & (L[:, 0] > 5) & (L[:, 0] < 90)
    ratio = chroma[judged] / best[judged]
    assert ratio.max() <= 1.002  # never more than fits
    assert ratio.median() >= 0.98 and ratio.quantile(0.02) >= 0.85  # and nearly all of it


def test_core_gamut_where_the_table_misses_bisection_takes_over(monkeypatch):
    # a guess far beyond the boundary for every colour: all of them go through the bisection, which is the
    # plain rule "the largest chroma scale k/32 that fits"
    monkeypatch.setattr(color, "_max_chroma", lambda L, a, b: torch.full_like(L, 1e6))
    L, ab = _vivid_lab(2, 40, 50)
    fast = color.lab_to_linear_rgb_keep_l(L, ab)
    plain = reference_keep_l(L.double(), ab.double()).float()
    # a colour within float32 rounding of a bisection step's edge may land on the neighbouring step
    close = (fast - plain).abs().amax(dim=1) <= 2e-5
    assert close.float().mean() >= 0.995
    assert (fast - plain).abs().max() <= 0.05


def test_core_gamut_keeps_l_and_never_adds_chroma():
    L, ab = _vivid_lab(1, 64, 64, seed=1)
    linear = color.lab_to_linear_rgb_keep_l(L, ab)
    assert linear.min() >= 0 and linear.max() <= 1
    lab = color.rgb_to_lab(color.linear_to_srgb(linear).clamp(0, 1))
    torch.testing.assert_close(lab[:, :1], L, atol=5e-3, rtol=0)  # the clipped slack moves L* < 0.005
    chroma_in, chroma_out = ab.norm(dim=1), lab[:, 1:].norm(dim=1)
    assert (chroma_out <= chroma_in + 0.05).all()
    hue_kept = chroma_out > 5  # where colour is left, its hue is the input's
    cos = (lab[:, 1:] * ab).sum(dim=1) / (chroma_in * chroma_out).clamp_min(1e-6)
    assert (cos[hue_kept] > 0.999).all()


def test_core_gamut_in_gamut_colours_are_the_plain_conversion():
    L = torch.linspace(5, 95, 30).view(1, 1, 5, 6)
    ab = torch.full((1, 2, 5, 6), 3.0)
    expected = _plain_linear(torch.cat([L, ab], 1)).clamp(0, 1)
    torch.testing.assert_close(color.lab_to_linear_rgb_keep_l(L, ab), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(color.lab_to_rgb_keep_l(L, ab), color.lab_to_rgb(torch.cat([L, ab], 1)),
                               atol=1e-5, rtol=0)


def test_core_gamut_8bit_within_one_code_of_the_exact_transfer(monkeypatch):
    monkeypatch.setattr(color, "_GAMUT_BAND_PIXELS", 97)  # many bands, the last one partial
    L, ab = _vivid_lab(2, 33, 29, seed=2)
    codes = color.lab_to_rgb8_keep_l(L, ab)
    assert codes.shape == (2, 33, 29, 3) and codes.dtype == torch.uint8
    exact = (color.lab_to_rgb_keep_l(L, ab) * 255 + 0.5).floor().to(torch.int16).permute(0, 2, 3, 1)
    diff = (codes.to(torch.int16) - exact).abs()
    assert diff.max() <= 1
    assert (diff > 0).float().mean() < 0.01


def test_core_gamut_bands_do_not_change_the_result(monkeypatch):
    L, ab = _vivid_lab(1, 31, 37, seed=3)
    whole = color.lab_to_rgb8_keep_l(L, ab)
    monkeypatch.setattr(color, "_GAMUT_BAND_PIXELS", 50)
    torch.testing.assert_close(color.lab_to_rgb8_keep_l(L, ab), whole, atol=0, rtol=0)
    torch.testing.assert_close(color.lab_to_linear_rgb_keep_l(L, ab),
                               color.lab_to_linear_rgb_keep_l(L, ab), atol=0, rtol=0)


def test_core_gamut_any_leading_shape_and_float64():
    L, ab = _vivid_lab(6, 4, 5, seed=4)
    flat = color.lab_to_linear_rgb_keep_l(L, ab)
    nested = color.lab_to_linear_rgb_keep_l(L.view(2, 3, 1, 4, 5), ab.view(2, 3, 2, 4, 5))
    torch.testing.assert_close(nested.view(6, 3, 4, 5), flat, atol=0, rtol=0)
    assert color.lab_to_rgb8_keep_l(L[0], ab[0]).shape == (4, 5, 3)
    double = color.lab_to_linear_rgb_keep_l(L.double(), ab.double())
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), flat, atol=2e-5, rtol=0)


def test_core_gamut_non_finite_ab_counts_as_zero():
    L = torch.full((1, 1, 1, 3), 50.0)
    ab = torch.tensor([[float("nan"), float("inf"), 10.0], [20.0, float("-inf"), -5.0]]).view(1, 2, 1, 3)
    linear = color.lab_to_linear_rgb_keep_l(L, ab)
    gray = color.lab_to_linear_rgb_keep_l(L, torch.zeros_like(ab))
    torch.testing.assert_close(linear[..., 1], gray[..., 1], atol=1e-6, rtol=0)  # both non-finite: gray
    lab = color.rgb_to_lab(color.linear_to_srgb(linear))
    torch.testing.assert_close(lab[:, :1], L, atol=2e-3, rtol=0)
    assert abs(float(lab[0, 1, 0, 0])) < 1 and 15 < float(lab[0, 2, 0, 0]) <= 20.001  # b kept, a taken as 0
    torch.testing.assert_close(lab[0, 1:, 0, 2], torch.tensor([10.0, -5.0]), atol=0.05, rtol=0)


@pytest.mark.parametrize(
    "L, ab, error",
    [
        (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.zeros(1, 2, 4, 4), TypeError),
        (torch.zeros(1, 1, 4, 4), [[0.0]], TypeError),
        (torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), ValueError),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5), ValueError),
        (torch.zeros(2, 1, 4, 4), torch.zeros(1, 2, 4, 4), ValueError),
    ],
)
def test_core_gamut_rejects_bad_input_with_typed_errors(L, ab, error):
    for convert in (color.lab_to_linear_rgb_keep_l, color.lab_to_rgb_keep_l, color.lab_to_rgb8_keep_l):
        with pytest.raises(error):
            convert(L, ab)


def test_core_gamut_8bit_writes_into_a_given_buffer():
    L, ab = _vivid_lab(2, 9, 11, seed=5)
    out = torch.full((2, 9, 11, 3), 7, dtype=torch.uint8)
    assert color.lab_to_rgb8_keep_l(L, ab, out=out) is out
    torch.testing.assert_close(out, color.lab_to_rgb8_keep_l(L, ab), atol=0, rtol=0)
    for bad in (torch.empty(2, 9, 11, 3), torch.empty(2, 9, 12, 3, dtype=torch.uint8),
                torch.empty(2, 9, 3, 11, dtype=torch.uint8).transpose(-1, -2)):
        with pytest.raises(ValueError):
            color.lab_to_rgb8_keep_l(L, ab, out=bad)
