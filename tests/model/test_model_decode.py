"""Decoding bin distributions: annealed mean, mode and mean."""

import pytest
import torch

from core.decode import annealed_distribution, decode_logits, expectation

CENTERS = torch.tensor([[-40.0, 0.0], [0.0, 0.0], [30.0, 50.0], [60.0, -20.0]])


@pytest.fixture
def logits():
    torch.manual_seed(1)
    return torch.randn(2, len(CENTERS), 3, 5) * 2


def test_temperature_one_is_the_mean(logits):
    mean = expectation(torch.softmax(logits, 1), CENTERS)
    torch.testing.assert_close(decode_logits(logits, CENTERS, temperature=1.0), mean)
    torch.testing.assert_close(decode_logits(logits, CENTERS, method="mean"), mean)


def test_temperature_to_zero_is_the_mode(logits):
    mode = CENTERS[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(decode_logits(logits, CENTERS, method="mode"), mode)
    torch.testing.assert_close(decode_logits(logits, CENTERS, temperature=1e-4), mode, atol=1e-3, rtol=0)
    torch.testing.assert_close(decode_logits(logits, CENTERS, temperature=0.0), mode)


def test_annealing_moves_monotonically_from_mean_to_mode(logits):
    mode = decode_logits(logits, CENTERS, method="mode")
    dists = [(decode_logits(logits, CENTERS, temperature=t) - mode).norm() for t in (1.0, 0.7, 0.38, 0.2, 0.05)]
    assert all(a >= b for a, b in zip(dists, dists[1:]))
    # lower T concentrates the distribution: its entropy falls
    ent = [-(p * p.clamp_min(1e-12).log()).sum() for p in (annealed_distribution(logits, t) for t in (1.0, 0.38))]
    assert ent[1] < ent[0]


def test_logit_fold_makes_temperature_mean_the_same_for_every_checkpoint(logits):
    folded = logits * 2.606  # what a checkpoint with the Caffe scale folded in outputs
    torch.testing.assert_close(
        decode_logits(folded, CENTERS, logit_fold=2.606, temperature=0.38),
        decode_logits(logits, CENTERS, temperature=0.38),
    )


def test_bad_arguments_are_refused(logits):
    with pytest.raises(ValueError, match="decode method"):
        decode_logits(logits, CENTERS, method="median")
    with pytest.raises(ValueError, match="temperature"):
        decode_logits(logits, CENTERS, temperature=-1.0)
