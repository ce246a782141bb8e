import pytest
import torch

from core.post import blend_with_mask


def _pair():
    raw = torch.zeros(2, 2, 4, 5)
    post = torch.full((2, 2, 4, 5), 10.0)
    return raw, post


def test_mask_selects_post_inside_raw_outside_and_blends_soft_edges():
    raw, post = _pair()
    mask = torch.zeros(2, 1, 4, 5)
    mask[:, :, :, :2] = 1.0
    mask[:, :, :, 2] = 0.25
    out = blend_with_mask(raw, post, mask)
    assert torch.equal(out[..., :2], post[..., :2])
    assert torch.allclose(out[..., 2], torch.full_like(out[..., 2], 2.5))
    assert torch.equal(out[..., 3:], raw[..., 3:])


def test_mask_shared_by_batch_bool_mask_and_none():
    raw, post = _pair()
    shared = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    shared[..., 0, 0] = True
    out = blend_with_mask(raw, post, shared)
    assert out.shape == raw.shape
    assert float(out.sum()) == 2 * 2 * 10.0
    assert torch.equal(blend_with_mask(raw, post, None), post)


@pytest.mark.parametrize(
    "mask, message",
    [
        (torch.zeros(2, 2, 4, 5), "mask must be"),
        (torch.zeros(3, 1, 4, 5), "mask must be"),
        (torch.zeros(2, 1, 4, 4), "mask must be"),
        (torch.full((2, 1, 4, 5), 1.5), r"\[0, 1\]"),
        (torch.full((2, 1, 4, 5), float("nan")), r"\[0, 1\]"),
    ],
)
def test_mask_bad_input_raises_clear_error(mask, message):
    raw, post = _pair()
    with pytest.raises(ValueError, match=message):
        blend_with_mask(raw, post, mask)


def test_mask_shape_mismatch_between_raw_and_post():
    raw, post = _pair()
    with pytest.raises(ValueError, match="differs"):
        blend_with_mask(raw, post[:, :, :3], torch.ones(2, 1, 4, 5))
