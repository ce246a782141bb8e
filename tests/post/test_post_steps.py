import pytest
import torch

from core.post import POST_STEPS, apply_post, parse_post_steps
from core.decode import decode_logits
from core.post.synthetic import degraded_logits
from post_scenes import coarse_bins, region_std, two_region_scene


def test_parse_post_steps_canonical_order_and_none():
    assert parse_post_steps("tv, Segments,crf") == POST_STEPS == ("crf", "segments", "tv")
    assert parse_post_steps("tv") == ("tv",)
    assert parse_post_steps("") == () and parse_post_steps("none") == ()


@pytest.mark.parametrize("text, message", [("crf,blur", "unknown post-processing step 'blur'"),
                                           ("tv,tv", "given twice")])
def test_parse_post_steps_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_post_steps(text)


def _scene():
    bins = coarse_bins()
    L, ab = two_region_scene()
    return bins, L, ab, degraded_logits(ab, bins, seed=2, blotch_share=0.15, blotch_sigma=2.0)


def _post(steps, **kw):
    bins, L, _, logits = _scene()
    args = dict(logits=logits, ab=None, L=L, bin_centers=bins, logit_fold=1.0, temperature=0.38, decode="annealed")
    args.update(kw)
    return apply_post(steps, **args)


def test_no_steps_is_the_plain_decode_and_strength_zero_is_identity():
    bins, L, _, logits = _scene()
    plain = decode_logits(logits, bins, logit_fold=2.0, method="annealed", temperature=0.38)
    assert torch.allclose(_post((), logit_fold=2.0), plain)
    out = _post(POST_STEPS, logit_fold=2.0, strength=0.0)
    assert torch.allclose(out, plain, atol=1e-3)


def test_all_steps_make_a_degraded_prediction_more_homogeneous():
    _, _, ab, _ = _scene()
    raw = _post(())
    for steps in [("crf",), ("segments",), ("tv",), POST_STEPS]:
        out = _post(steps)
        assert out.shape == (1, 2, 32, 32) and out.dtype == torch.float32
        assert region_std(out) < 0.9 * region_std(raw), steps
    assert region_std(_post(POST_STEPS)) < 0.75 * region_std(raw)


def test_mode_decode_and_half_precision_logits():
    _, _, _, logits = _scene()
    out = _post(("crf", "tv"), logits=logits.half(), decode="mode")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_ab_models_get_segments_and_tv_but_a_clear_crf_error():
    _, L, ab, _ = _scene()
    noisy = ab + 10 * torch.randn(ab.shape, generator=torch.Generator().manual_seed(0))
    args = dict(logits=None, ab=noisy, L=L, bin_centers=None, logit_fold=1.0, temperature=0.38, decode="annealed")
    out = apply_post(("segments", "tv"), **args)
    assert region_std(out) < 0.6 * region_std(noisy)
    assert torch.equal(apply_post((), **args), noisy)
    with pytest.raises(ValueError, match="crf step needs a classification model"):
        apply_post(("crf",), **args)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"ab": torch.zeros(1, 2, 32, 32)}, "exactly one of logits"),
        ({"logits": None}, "exactly one of logits"),
        ({"L": torch.zeros(1, 1, 16, 16)}, "L must be"),
        ({"bin_centers": None}, "bin_centers"),
        ({"strength": -0.1}, "strength"),
        ({"decode": "median"}, "decode method"),
    ],
)
def test_apply_post_errors(override, message):
    with pytest.raises(ValueError, match=message):
        _post(("crf",), **override)


def test_apply_post_rejects_a_bare_string_and_unknown_steps():
    with pytest.raises(ValueError, match="not the string"):
        _post("crf")
    with pytest.raises(ValueError, match="unknown post-processing step"):
        _post(("bilateral",))
