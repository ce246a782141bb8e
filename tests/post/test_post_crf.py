import pytest
import torch

from core.post import crf_refine_log_probs
from core.post.crf import compat_basis
from core.decode import decode_logits
from core.post.synthetic import gaussian_blur, logits_from_ab
from post_scenes import coarse_bins, edge_contrast, region_std, two_region_scene


def _decode(log_prob, bins):
    return decode_logits(log_prob, bins, logit_fold=1.0, method="annealed", temperature=0.38)


def test_crf_makes_noisy_regions_homogeneous_and_closer_to_truth():
    bins = coarse_bins()
    L, ab = two_region_scene()
    generator = torch.Generator().manual_seed(3)
    logits = logits_from_ab(ab, bins, sigma=15.0)
    logits = logits + 2.5 * torch.randn(logits.shape, generator=generator)
    raw = _decode(torch.log_softmax(logits, 1), bins)
    out = _decode(crf_refine_log_probs(torch.log_softmax(logits, 1), L, bins), bins)
    assert region_std(out) < 0.6 * region_std(raw)
    assert (out - ab).norm(dim=1).mean() < 0.8 * (raw - ab).norm(dim=1).mean()


def test_crf_bilateral_kernel_pulls_a_halo_back_behind_the_luminance_edge():
    bins = coarse_bins()
    L, ab = two_region_scene()
    logits = logits_from_ab(gaussian_blur(ab, 1.5), bins, sigma=15.0)
    raw = _decode(torch.log_softmax(logits, 1), bins)
    out = _decode(crf_refine_log_probs(torch.log_softmax(logits, 1), L, bins), bins)
    true_contrast = edge_contrast(ab)
    assert abs(edge_contrast(out) - true_contrast) < 0.7 * abs(edge_contrast(raw) - true_contrast)


def test_crf_strength_zero_returns_the_unary_and_output_is_normalised():
    bins = coarse_bins()
    L, _ = two_region_scene(16)
    log_prob = torch.log_softmax(torch.randn(1, bins.shape[0], 16, 16), 1)
    assert torch.allclose(crf_refine_log_probs(log_prob, L, bins, strength=0.0), log_prob, atol=1e-6)
    out = crf_refine_log_probs(log_prob, L, bins, iterations=2)
    assert out.shape == log_prob.shape
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(1, 16, 16), atol=1e-4)


def test_compat_basis_approximates_the_gram_matrix():
    bins = coarse_bins()
    basis, eigenvalues = compat_basis(bins, 20.0)
    gram = torch.exp(-torch.cdist(bins, bins).pow(2) / (2 * 20.0**2))
    approx = basis @ torch.diag(eigenvalues) @ basis.t()
    assert basis.shape[1] < bins.shape[0]
    assert float((approx - gram).abs().max()) < 0.05


def test_crf_runs_on_any_device_meta():
    bins = coarse_bins()  # bin tables may live on the CPU while the distribution is elsewhere
    log_prob = torch.empty(1, bins.shape[0], 8, 8, device="meta")
    out = crf_refine_log_probs(log_prob, torch.empty(1, 1, 8, 8, device="meta"), bins, iterations=1)
    assert out.device.type == "meta" and out.shape == log_prob.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_crf_on_cuda_matches_cpu():
    bins = coarse_bins()
    L, _ = two_region_scene(16)
    log_prob = torch.log_softmax(torch.randn(1, bins.shape[0], 16, 16), 1)
    cpu = crf_refine_log_probs(log_prob, L, bins)
    gpu = crf_refine_log_probs(log_prob.cuda(), L.cuda(), bins.cuda())
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strength": 1.5}, "strength"),
        ({"iterations": 0}, "iterations"),
        ({"bilateral_sigma_L": 0.0}, "bilateral_sigma_L"),
        ({"compat_sigma": -1.0}, "compat_sigma"),
    ],
)
def test_crf_bad_arguments(kwargs, message):
    bins = coarse_bins()
    log_prob = torch.zeros(1, bins.shape[0], 8, 8)
    with pytest.raises(ValueError, match=message):
        crf_refine_log_probs(log_prob, torch.zeros(1, 1, 8, 8), bins, **kwargs)


def test_crf_shape_mismatches():
    bins = coarse_bins()
    with pytest.raises(ValueError, match="bin_centers"):
        crf_refine_log_probs(torch.zeros(1, 5, 8, 8), torch.zeros(1, 1, 8, 8), bins)
    with pytest.raises(ValueError, match="L must be"):
        crf_refine_log_probs(torch.zeros(1, bins.shape[0], 8, 8), torch.zeros(1, 1, 4, 8), bins)
