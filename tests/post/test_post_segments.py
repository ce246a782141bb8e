import pytest
import torch

from core.post import homogenize_ab, homogenize_log_probs, pool_in_segments, segment_L
from core.decode import decode_logits
from core.post.segments import distribution_confidence
from core.post.synthetic import logits_from_ab
from post_scenes import ORANGE, coarse_bins, region_std, two_region_scene


@pytest.mark.parametrize("method", ["slic", "felzenszwalb"])
def test_regions_follow_the_luminance_edge(method):
    L, _ = two_region_scene()
    labels = segment_L(L, method=method)
    assert labels.shape == (1, 32, 32) and labels.dtype == torch.int64
    left, right = set(labels[0, :, :16].unique().tolist()), set(labels[0, :, 16:].unique().tolist())
    assert not left & right


def test_pool_in_segments_is_the_weighted_mean_per_region():
    values = torch.tensor([[[[1.0, 3.0], [10.0, 20.0]]]])
    labels = torch.tensor([[[0, 0], [1, 1]]])
    weights = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]]])
    out = pool_in_segments(values, labels, weights)
    # region 0: (1*1 + 3*3) / 4 = 2.5; region 1 has zero weight: plain mean 15
    assert torch.allclose(out, torch.tensor([[[[2.5, 2.5], [15.0, 15.0]]]]))


def _blotchy_object():
    """The left object is blue, but a third of it is predicted orange with low confidence."""
    bins = coarse_bins()
    L, ab = two_region_scene()
    blotched = ab.clone()
    blotched[:, 0, 4:14, 2:10], blotched[:, 1, 4:14, 2:10] = ORANGE
    sharpness = torch.full((1, 1, 32, 32), 8.0)
    sharpness[..., 4:14, 2:10] = 30.0  # the wrong patch is the unsure part
    logits = logits_from_ab(blotched, bins, sigma=1.0) / sharpness.pow(2) * 1.0
    return bins, L, ab, torch.log_softmax(logits, 1)


def test_segments_recolour_a_blotchy_object_with_its_confident_colour():
    bins, L, ab, log_prob = _blotchy_object()

    def decode(lp):
        return decode_logits(lp, bins, logit_fold=1.0, method="annealed", temperature=0.38)

    raw = decode(log_prob)
    out = decode(homogenize_log_probs(log_prob, segment_L(L, method="felzenszwalb"), strength=1.0))
    assert region_std(out) < 0.3 * region_std(raw)

    def patch_error(x):
        return float((x[..., 4:14, 2:10] - ab[..., 4:14, 2:10]).norm(dim=1).mean())

    assert patch_error(out) < 0.3 * patch_error(raw)


def test_confidence_prefers_peaked_distributions():
    peaked = torch.softmax(torch.tensor([10.0, 0.0, 0.0, 0.0]), 0).view(1, 4, 1, 1)
    flat = torch.full((1, 4, 1, 1), 0.25)
    assert float(distribution_confidence(peaked)) > 0.9 > 0.01 > float(distribution_confidence(flat))


def test_strength_zero_is_identity_and_strength_mixes():
    bins, L, ab, log_prob = _blotchy_object()
    labels = segment_L(L)
    assert torch.allclose(homogenize_log_probs(log_prob, labels, strength=0.0), log_prob, atol=1e-6)
    noisy = ab + torch.randn(ab.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(homogenize_ab(noisy, labels, strength=0.0), noisy)
    half = homogenize_ab(noisy, labels, strength=0.5)
    full = homogenize_ab(noisy, labels, strength=1.0)
    assert torch.allclose(half, 0.5 * (noisy + full), atol=1e-5)
    assert region_std(full) < region_std(half) < region_std(noisy)


def test_segment_errors():
    L, _ = two_region_scene()
    with pytest.raises(ValueError, match="unknown segment method"):
        segment_L(L, method="watershed")
    with pytest.raises(ValueError, match="segment_size"):
        segment_L(L, segment_size=0.5)
    with pytest.raises(ValueError, match=r"\[N,1,h,w\]"):
        segment_L(L[:, 0])
    with pytest.raises(ValueError, match="strength"):
        homogenize_ab(torch.zeros(1, 2, 32, 32), segment_L(L), strength=2.0)
    with pytest.raises(ValueError, match="labels must be"):
        pool_in_segments(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, dtype=torch.int64))
