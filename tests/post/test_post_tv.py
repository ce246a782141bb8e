import pytest
import torch

from core.post import tv_smooth_ab
from core.post.tv import luminance_edge_weights

from post_scenes import edge_contrast, region_std, two_region_scene


def _noisy():
    L, ab = two_region_scene()
    noisy = ab + 12.0 * torch.randn(ab.shape, generator=torch.Generator().manual_seed(1))
    return L, ab, noisy


def test_tv_removes_noise_inside_regions():
    L, ab, noisy = _noisy()
    out = tv_smooth_ab(noisy, weight=8.0, L=L)
    assert region_std(out) < 0.5 * region_std(noisy)
    assert (out - ab).norm(dim=1).mean() < 0.6 * (noisy - ab).norm(dim=1).mean()


def test_edge_weighting_keeps_the_colour_edge_that_plain_tv_blurs():
    L, ab, noisy = _noisy()
    weight = 30.0
    plain = tv_smooth_ab(noisy, weight=weight, edge_sigma=None)
    aware = tv_smooth_ab(noisy, weight=weight, L=L)
    true_contrast = edge_contrast(ab)
    assert abs(edge_contrast(aware) - true_contrast) < 0.5 * abs(edge_contrast(plain) - true_contrast)


def test_tv_weight_zero_is_identity_and_shape_dtype_kept():
    _, _, noisy = _noisy()
    assert torch.equal(tv_smooth_ab(noisy, weight=0.0), noisy)
    out = tv_smooth_ab(noisy.double(), weight=3.0, iterations=5)
    assert out.shape == noisy.shape and out.dtype == torch.float64


def test_tv_runs_on_any_device_meta():
    ab = torch.empty(1, 2, 8, 8, device="meta")
    L = torch.empty(1, 1, 8, 8, device="meta")
    out = tv_smooth_ab(ab, weight=2.0, L=L, iterations=2)
    assert out.device.type == "meta" and out.shape == ab.shape


def test_edge_weights_fall_at_luminance_edges():
    L, _ = two_region_scene()
    weights = luminance_edge_weights(L, edge_sigma=4.0)
    assert weights.shape == L.shape
    assert float(weights[..., 15].max()) < 1e-6 and float(weights[..., 5].min()) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight": -1.0}, "weight"),
        ({"iterations": 0}, "iterations"),
        ({"L": torch.zeros(1, 1, 4, 4)}, "L must be"),
    ],
)
def test_tv_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tv_smooth_ab(torch.zeros(1, 2, 8, 8), **kwargs)
    with pytest.raises(ValueError, match=r"\[N,2,H,W\]"):
        tv_smooth_ab(torch.zeros(2, 8, 8))
