"""SIGGRAPH17 generator: official key layout, parameter count, shapes and hint handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.models.eccv16 import normalize_official_state_dict
from core.models.siggraph17 import SIGGRAPH17Generator

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "siggraph17_state_dict_layout.json").read_text())



@pytest.fixture(scope="module")
def meta_model() -> SIGGRAPH17Generator:
    with torch.device("meta"):
        return SIGGRAPH17Generator().eval()


@pytest.fixture(scope="module")
def model() -> SIGGRAPH17Generator:
    torch.manual_seed(0)
    net = SIGGRAPH17Generator().eval()
    # Random BN statistics, so that the outputs are not dominated by one channel.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    return net


def test_state_dict_matches_official_layout_exactly(meta_model):
    state = meta_model.state_dict()
    official = {k: list(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert official == LAYOUT["keys"]
    assert list(official) == list(LAYOUT["keys"])


def test_parameter_count_and_contract_attributes(meta_model):
    model = meta_model
    assert sum(p.numel() for p in model.parameters()) == 34_187_027 == LAYOUT["parameter_count"]
    head = sum(p.numel() for p in model.model_class.parameters())
    assert 34_187_027 - head == 34_051_074  # OMZ's count without the unused class head
    assert (model.output, model.stride, model.out_stride, model.accepts_hints) == ("ab", 8, 1, True)
    assert model.logit_fold == 1.0


def test_official_state_dict_loads_strictly(model):
    official = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = SIGGRAPH17Generator().eval()
    fresh.load_state_dict(normalize_official_state_dict(official), strict=True)
    L = torch.rand(1, 1, 16, 24) * 100
    with torch.no_grad():
        assert torch.equal(fresh(L), model(L))


def test_output_shape_and_range(model, meta_model):
    assert meta_model(torch.empty(1, 1, 256, 256, device="meta")).shape == (1, 2, 256, 256)
    with torch.no_grad():
        ab = model(torch.rand(2, 1, 24, 40) * 100)
    assert ab.shape == (2, 2, 24, 40)
    assert ab.abs().max() <= 110


def test_no_hints_equal_zero_hints_and_hints_change_output(model):
    L = torch.rand(1, 1, 16, 16) * 100
    zeros_ab, zeros_mask = torch.zeros(1, 2, 16, 16), torch.zeros(1, 1, 16, 16)
    hint_ab, hint_mask = zeros_ab.clone(), zeros_mask.clone()
    hint_ab[:, :, 4:8, 4:8] = torch.tensor([60.0, -40.0]).view(1, 2, 1, 1)
    hint_mask[:, :, 4:8, 4:8] = 1
    with torch.no_grad():
        auto = model(L)
        assert torch.equal(auto, model(L, zeros_ab, zeros_mask))
        hinted = model(L, hint_ab, hint_mask)
        grey_hint = model(L, zeros_ab, hint_mask)  # mask=1 with ab=0 is a "grey" hint, not "no hint"
    assert (hinted - auto).abs().max() > 1e-3
    assert (grey_hint - auto).abs().max() > 1e-3


def test_bad_hints_are_rejected(model):
    L = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="together"):
        model(L, torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="hint_mask must be"):
        model(L, torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.zeros(1, 1, 12, 16))
