"""core.color against skimage.color (D65, 2 degrees), plus round trips, shapes and dtypes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from core import color



def _sk_rgb2lab(rgb: torch.Tensor) -> torch.Tensor:
    """skimage reference in float64 for a [..., 3, H, W] tensor."""
    arr = rgb.double().movedim(-3, -1).numpy()
    return torch.from_numpy(skcolor.rgb2lab(arr)).movedim(-1, -3)


def _sk_lab2rgb(lab: torch.Tensor) -> torch.Tensor:
    arr = lab.double().movedim(-3, -1).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns when it clips negative Z
        return torch.from_numpy(skcolor.lab2rgb(arr)).movedim(-1, -3)


def _as_image(values: list[list[float]]) -> torch.Tensor:
    """[K, 3] colour list -> [3, 1, K] image."""
    return torch.tensor(values, dtype=torch.float32).T.reshape(3, 1, -1)


def _edge_colours() -> torch.Tensor:
    # Grey levels either side of both piecewise switches: the sRGB linear segment (0.04045)
    # and the Lab cube-root branch (Y = 0.008856, reached at sRGB ~ 0.0998).
    lab_switch = 1.055 * 0.008856 ** (1 / 2.4) - 0.055
    greys = [0.0, 1e-6, 0.01, 0.04045 - 1e-5, 0.04045, 0.04045 + 1e-5, lab_switch - 1e-4,
             lab_switch, lab_switch + 1e-4, 0.5, 1.0]
    colours = [[g, g, g] for g in greys]
    colours += [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
                [0.02, 0.0, 0.0], [0.0, 0.0, 0.03], [1.0, 0.0, 0.001]]
    return _as_image(colours)


def test_rgb_to_lab_matches_skimage_on_random_and_edge_colours():
    rgb = torch.cat([torch.rand(3, 1, 4000), _edge_colours()], dim=-1)
    diff = (color.rgb_to_lab(rgb).double() - _sk_rgb2lab(rgb)).abs()
    assert diff.max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    n = 4000
    lab = torch.stack([torch.rand(n) * 100, torch.rand(n) * 300 - 150, torch.rand(n) * 300 - 150])
    lab = lab.reshape(3, 40, 100)
    extremes = _as_image([[0, 0, 0], [100, 0, 0], [50, 0, 128], [5, -60, 120], [100, 128, -128],
                          [0.5, 0, 0], [8.0, 0, 0], [8.1, 0, 0], [30, 100, 100]])
    for sample in (lab, extremes):
        ours = color.lab_to_rgb(sample)
        assert ours.min() >= 0 and ours.max() <= 1
        assert (ours.double() - _sk_lab2rgb(sample)).abs().max() < 1e-4


def test_rgb_lab_round_trip_and_xyz_round_trip():
    rgb = torch.rand(2, 3, 17, 23)
    assert torch.allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=1e-4)
    linear = color.srgb_to_linear(rgb)
    assert torch.allclose(color.linear_to_srgb(linear), rgb, atol=1e-5)
    xyz = color.linear_rgb_to_xyz(linear)
    assert torch.allclose(color.xyz_to_linear_rgb(xyz), linear, atol=1e-5)
    lab = color.xyz_to_lab(xyz)
    assert torch.allclose(lab, color.rgb_to_lab(rgb), atol=1e-3)
    assert torch.allclose(color.lab_to_xyz(lab), xyz, atol=1e-5)


def test_white_is_l100_and_d65_white_point():
    # skimage's matrix rows sum to the D65 white only to ~1e-4, so white has |ab| ~ 5e-3.
    white = torch.ones(3, 1, 1)
    xyz = color.linear_rgb_to_xyz(color.srgb_to_linear(white)).flatten()
    assert torch.allclose(xyz, torch.tensor(color.D65_WHITE), atol=1e-4)
    lab = color.rgb_to_lab(white).flatten()
    assert lab[0] == pytest.approx(100.0, abs=1e-3)
    assert lab[1:].abs().max() < 1e-2


def test_linear_to_srgb_is_unclipped_and_lab_to_rgb_clips_after_transfer():
    linear = torch.tensor([-0.1, 0.5, 2.0]).view(3, 1, 1)
    srgb = color.linear_to_srgb(linear).flatten()
    assert srgb[0] == pytest.approx(-0.1 * 12.92, abs=1e-6)
    assert srgb[2] > 1.0
    out_of_gamut = torch.tensor([50.0, 120.0, -120.0]).view(3, 1, 1)
    assert torch.equal(color.lab_to_rgb(out_of_gamut), color.lab_to_rgb(out_of_gamut).clamp(0, 1))


def test_rgb_to_l_and_gray_to_l_agree_with_full_conversion():
    rgb = torch.cat([torch.rand(3, 1, 500), _edge_colours()], dim=-1)
    assert color.rgb_to_l(rgb).shape == (1, 1, 520)
    assert torch.allclose(color.rgb_to_l(rgb), color.rgb_to_lab(rgb)[:1], atol=1e-4)
    grey = torch.cat([torch.rand(1, 1, 500), _edge_colours()[:1]], dim=-1)
    expected = _sk_rgb2lab(grey.expand(3, -1, -1))[:1]
    assert (color.gray_to_l(grey).double() - expected).abs().max() < 1e-3


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 5, 7), (2, 4, 3, 5, 7)])
def test_any_leading_batch_shape_is_converted_per_image(shape):
    rgb = torch.rand(shape, generator=torch.Generator().manual_seed(len(shape)))
    lab = color.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    flat_rgb = rgb.reshape(-1, 3, 5, 7)
    per_image = torch.stack([color.rgb_to_lab(img) for img in flat_rgb]).reshape(shape)
    # Batched and per-image kernels round differently: b = 200 (fy - fz), so one float32 ulp of f
    # (1.2e-7) is 2.4e-5 in b; a few ulps were seen.
    assert torch.allclose(lab, per_image, rtol=0, atol=1e-4)
    assert color.rgb_to_l(rgb).shape == (*shape[:-3], 1, 5, 7)


@pytest.mark.parametrize("shape", [(1, 3, 61, 50), (30, 3, 10, 10)])
def test_banded_cpu_path_equals_whole_image_path(shape, monkeypatch):
    # Large no-grad CPU inputs are processed in bands; a grad-recording call is not. A small
    # band size exercises the row-band (first shape) and image-group (second) branches.
    monkeypatch.setattr(color, "_BAND_PIXELS", 256)
    rgb = torch.rand(shape)
    with torch.no_grad():
        banded = color.rgb_to_lab(rgb), color.lab_to_rgb(color.rgb_to_lab(rgb)), color.rgb_to_l(rgb)
    tracked = rgb.clone().requires_grad_(True)
    whole = color.rgb_to_lab(tracked), color.lab_to_rgb(color.rgb_to_lab(tracked)), color.rgb_to_l(tracked)
    for a, b in zip(banded, whole):
        assert (a - b.detach()).abs().max() < 1e-4  # float32 GEMM rounding differs by blocking


def test_gradients_are_finite_and_correct():
    rgb = (torch.rand(1, 3, 2, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: color.lab_to_rgb(color.rgb_to_lab(t) * 0.9), (rgb,))
    dark = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    color.rgb_to_lab(dark).sum().backward()
    assert torch.isfinite(dark.grad).all()


def test_float64_is_computed_in_float64_and_half_in_float32():
    rgb = torch.rand(3, 8, 8, dtype=torch.float64)
    lab = color.rgb_to_lab(rgb)
    assert lab.dtype == torch.float64
    assert (lab - _sk_rgb2lab(rgb)).abs().max() < 1e-9
    assert color.rgb_to_lab(rgb.half()).dtype == torch.float32
    assert color.lab_to_rgb(lab.half()).dtype == torch.float32


def test_integer_and_malformed_input_is_rejected_clearly():
    with pytest.raises(TypeError, match="floating"):
        color.rgb_to_lab(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        color.rgb_to_lab(np.zeros((3, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, H, W\]"):
        color.rgb_to_lab(torch.zeros(4, 4, 3))
    with pytest.raises(ValueError, match=r"\[\.\.\., 1, H, W\]"):
        color.gray_to_l(torch.zeros(3, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rgb = torch.rand(2, 3, 64, 48)
    lab_cpu = color.rgb_to_lab(rgb)
    lab_gpu = color.rgb_to_lab(rgb.cuda())
    assert lab_gpu.is_cuda
    assert torch.allclose(lab_gpu.cpu(), lab_cpu, atol=1e-3)
    assert torch.allclose(color.lab_to_rgb(lab_gpu).cpu(), color.lab_to_rgb(lab_cpu), atol=1e-4)
    assert torch.allclose(color.rgb_to_l(rgb.cuda()).cpu(), color.rgb_to_l(rgb), atol=1e-3)
    assert torch.allclose(color.gray_to_l(rgb[:, :1].cuda()).cpu(), color.gray_to_l(rgb[:, :1]), atol=1e-3)
