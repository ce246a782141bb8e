"""ECCV16 generator: official key layout, parameter count, strict loading, shapes, decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.models.eccv16 import ECCV16Generator, normalize_official_state_dict

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "eccv16_state_dict_layout.json").read_text())



@pytest.fixture(scope="module")
def model() -> ECCV16Generator:
    torch.manual_seed(0)
    return ECCV16Generator().eval()


@pytest.fixture(scope="module")
def meta_model() -> ECCV16Generator:
    """Shapes only, no memory or init cost."""
    with torch.device("meta"):
        return ECCV16Generator().eval()


def _official_keys(state: dict) -> dict:
    return {k: list(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_state_dict_matches_official_layout_exactly(meta_model):
    state = meta_model.state_dict()
    assert _official_keys(state) == LAYOUT["keys"]
    counters = {k[: -len(".num_batches_tracked")] for k in state if k.endswith("num_batches_tracked")}
    assert counters == {k[: -len(".running_mean")] for k in LAYOUT["keys"] if k.endswith(".running_mean")}
    assert list(_official_keys(state)) == list(LAYOUT["keys"])  # same order too


def test_parameter_count_and_contract_attributes(model):
    assert sum(p.numel() for p in model.parameters()) == 32_236_011 == LAYOUT["parameter_count"]
    assert (model.output, model.stride, model.out_stride, model.accepts_hints) == ("logits", 8, 4, False)
    assert model.logit_fold == pytest.approx(2.606)
    centers = model.bin_centers
    assert centers.shape == (313, 2) and not centers.requires_grad
    assert torch.equal(centers, model.model_out.weight.detach()[:, :, 0, 0].T * 110)
    assert not any("bin_centers" in k for k in model.state_dict())


def test_official_state_dict_without_counters_loads_strictly(model):
    official = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    official = {"module." + k: v for k, v in official.items()}
    with pytest.raises(RuntimeError):
        ECCV16Generator().load_state_dict(official, strict=True)
    fresh = ECCV16Generator().eval()
    fresh.load_state_dict(normalize_official_state_dict(official), strict=True)
    L = torch.rand(1, 1, 16, 16) * 100
    with torch.no_grad():
        assert torch.equal(fresh(L), model(L))


def test_output_shapes(model, meta_model):
    assert meta_model(torch.empty(1, 1, 224, 224, device="meta")).shape == (1, 313, 56, 56)
    assert meta_model.forward_release(torch.empty(1, 1, 224, 224, device="meta")).shape == (1, 2, 224, 224)
    with torch.no_grad():
        L = torch.rand(2, 1, 24, 40) * 100
        assert model(L).shape == (2, 313, 6, 10)
        assert model.forward_release(L).shape == (2, 2, 24, 40)
        assert torch.equal(model(L, torch.ones(2, 2, 24, 40), torch.ones(2, 1, 24, 40)), model(L))


def test_bad_input_is_rejected(model):
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))


def test_input_is_normalised_from_raw_l(model):
    seen = []
    handle = model.model1.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    L = torch.linspace(0, 100, 16 * 16).view(1, 1, 16, 16)
    try:
        with torch.no_grad():
            model(L)
    finally:
        handle.remove()
    assert torch.allclose(seen[0], (L - 50) / 100)


def test_forward_release_equals_softmax_decode_of_logits(model):
    L = torch.rand(2, 1, 16, 24) * 100
    with torch.no_grad():
        logits = model(L)
        ab_low = torch.einsum("nqhw,qc->nchw", torch.softmax(logits, dim=1), model.bin_centers)
        decoded = F.interpolate(ab_low, scale_factor=4, mode="bilinear", align_corners=False)
        assert torch.allclose(decoded, model.forward_release(L), atol=1e-4)
