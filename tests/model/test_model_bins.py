"""The ab bin table, soft encoding and class rebalancing."""

import torch

from core.bins import nearest_bin, rebalance_weights, smoothed_prior, soft_encode

GRID = torch.tensor([[a, b] for a in range(-30, 31, 10) for b in range(-30, 31, 10)], dtype=torch.float32)


def test_soft_encode_is_a_distribution_on_the_k_nearest_bins():
    ab = torch.tensor([[[[3.0, -12.0]], [[17.0, 29.0]]]])  # [1, 2, 1, 2]: pixels (3, 17) and (-12, 29)
    z = soft_encode(ab, GRID, k=5, sigma=5.0)
    assert z.shape == (1, len(GRID), 1, 2)
    torch.testing.assert_close(z.sum(dim=1), torch.ones(1, 1, 2))
    assert ((z > 0).sum(dim=1) == 5).all()
    # the most weight goes to the nearest centre
    assert torch.equal(z.argmax(dim=1), nearest_bin(ab, GRID))
    assert GRID[z[0, :, 0, 0].argmax()].tolist() == [0.0, 20.0]


def test_soft_encode_of_a_bin_centre_peaks_there_and_weights_fall_off_with_distance():
    ab = torch.tensor([10.0, -20.0]).view(1, 2, 1, 1)
    z = soft_encode(ab, GRID, k=5, sigma=5.0)[0, :, 0, 0]
    i = int(((GRID - torch.tensor([10.0, -20.0])) ** 2).sum(1).argmin())
    assert z.argmax() == i
    # the four neighbours at distance 10 get exp(-100 / 50) of the centre's weight
    torch.testing.assert_close(z.topk(2).values[1] / z[i], torch.tensor(float(torch.exp(torch.tensor(-2.0)))))


def test_rebalancing_weights_have_unit_expectation_and_favour_rare_bins():
    counts = torch.zeros(len(GRID), dtype=torch.int64)
    counts[24] = 1000  # (0, 0): the common gray
    counts[0] = 3
    prior = smoothed_prior(counts, GRID, sigma=5.0)
    torch.testing.assert_close(prior.sum(), torch.tensor(1.0, dtype=torch.float64))
    w = rebalance_weights(prior, lam=0.5)
    torch.testing.assert_close((prior * w.double()).sum(), torch.tensor(1.0, dtype=torch.float64))
    assert w[0] > w[24] * 5
    # λ = 1 mixes in only the uniform distribution: every class weighs the same
    torch.testing.assert_close(rebalance_weights(prior, lam=1.0), torch.ones(len(GRID)))
