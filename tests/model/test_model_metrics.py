"""AuC, PSNR and colorfulness."""

import numpy as np
import torch

from core.metrics import ab_error_cdf, auc_ab, colorfulness, psnr


def test_auc_is_one_for_perfect_and_falls_with_error():
    ab = torch.randn(1, 2, 8, 8) * 30
    assert auc_ab(ab, ab) == 1.0
    # a constant error of 20.5 is counted from threshold 21 on: (150 - 21 + 1) / 151 of the thresholds
    off = ab + torch.tensor([20.5, 0.0]).view(1, 2, 1, 1)
    assert abs(auc_ab(off, ab) - 130 / 151) < 1e-9
    cdf = ab_error_cdf(off, ab)
    assert cdf[20] == 0 and cdf[21] == 1
    assert auc_ab(ab + 200, ab) == 0.0


def test_psnr_matches_definition():
    a = torch.zeros(3, 4, 4)
    b = torch.full((3, 4, 4), 0.1)
    assert abs(psnr(a, b) - 20.0) < 1e-5  # 0.1 is not exact in float32
    assert psnr(a, a) == float("inf")


def test_colorfulness_zero_for_gray_and_larger_for_saturated():
    gray = np.full((8, 8, 3), 128, np.uint8)
    assert colorfulness(gray) == 0.0
    rng = np.random.default_rng(0)
    vivid = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    dull = (0.3 * vivid + 0.7 * 128).astype(np.uint8)
    assert colorfulness(vivid) > colorfulness(dull) > 0
    # numpy HWC uint8 and torch CHW float agree
    t = torch.from_numpy(vivid).permute(2, 0, 1).float() / 255
    assert abs(colorfulness(t) - colorfulness(vivid)) < 1e-4


def test_wrong_vivid_counts_only_confident_wrong_pixels():
    from core.metrics import wrong_vivid_fraction, wrong_vivid_mask

    true = torch.zeros(1, 2, 2, 2)
    pred = torch.zeros(1, 2, 2, 2)
    pred[0, :, 0, 0] = torch.tensor([40.0, 0.0])  # vivid (40 > 20) and wrong (40 > 30)
    pred[0, :, 0, 1] = torch.tensor([25.0, 0.0])  # vivid but error 25 <= 30
    pred[0, :, 1, 0] = torch.tensor([10.0, 0.0])  # pale
    true[0, :, 1, 1] = torch.tensor([0.0, 60.0])  # output gray: chroma 0, error 60: not vivid
    mask = wrong_vivid_mask(pred, true)
    assert mask.tolist() == [[[True, False], [False, False]]]
    assert wrong_vivid_fraction(pred, true) == 0.25
    assert wrong_vivid_fraction(true, true) == 0.0


def test_mean_cast_and_per_page_cast():
    from core.metrics import mean_cast, per_page_cast

    true = torch.randn(1, 2, 4, 4) * 10
    shifted = true + torch.tensor([3.0, -4.0]).view(1, 2, 1, 1)
    da, db = mean_cast(shifted, true)
    assert abs(da - 3.0) < 1e-6 and abs(db + 4.0) < 1e-6
    # two pages cast in opposite directions: the pooled cast cancels, the per-page cast does not
    opposite = true - torch.tensor([3.0, -4.0]).view(1, 2, 1, 1)
    assert abs(per_page_cast([(shifted, true), (opposite, true)]) - 5.0) < 1e-6
    assert per_page_cast([(true, true)]) == 0.0
