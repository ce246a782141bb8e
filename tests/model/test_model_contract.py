"""One contract test over every registered architecture (core/models/__init__.py states the contract)."""

from __future__ import annotations

import json

import pytest
import torch

from core.loading import build_from_state
from core.models import create_model, list_architectures
from weights_fetch import CheckpointError

# Constructor arguments worth checking beyond the defaults (each architecture's other heads).
VARIANTS = {"tinct_unet": [{}, {"head": "regression"}]}


def _cases() -> list[tuple[str, dict]]:
    return [(arch, config) for arch in list_architectures() for config in VARIANTS.get(arch, [{}])]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize(("arch", "config"), _cases(), ids=lambda v: v if isinstance(v, str) else json.dumps(v))
def test_model_contract(arch, config):
    torch.manual_seed(0)
    model = create_model(arch, **config).eval()
    assert model.output in ("logits", "ab")
    assert isinstance(model.stride, int) and isinstance(model.out_stride, int)
    assert model.stride >= model.out_stride >= 1 and model.stride % model.out_stride == 0
    assert isinstance(model.accepts_hints, bool)
    assert float(model.logit_fold) > 0
    if model.output == "logits":
        centers = model.bin_centers
        assert centers.dtype == torch.float32 and centers.dim() == 2 and centers.shape[1] == 2 and len(centers) > 1
        assert centers.abs().max() <= 128  # (a fresh tinct_unet's table is filled by its weights file)

    n, h, w = 2, 2 * model.stride, 3 * model.stride
    L = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(1)) * 100
    with torch.inference_mode():
        out = model(L)
    channels = len(model.bin_centers) if model.output == "logits" else 2
    assert out.shape == (n, channels, h // model.out_stride, w // model.out_stride)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())

    hint_ab, hint_mask = torch.zeros(n, 2, h, w), torch.zeros(n, 1, h, w)
    hint_ab[:, 0], hint_mask[:, :, : h // 2] = 60.0, 1.0
    with torch.inference_mode():
        hinted = model(L, hint_ab, hint_mask)
        unhinted = model(L, torch.zeros_like(hint_ab), torch.zeros_like(hint_mask))
    assert hinted.shape == out.shape
    if model.accepts_hints:
        assert not torch.allclose(hinted, unhinted)  # the hints reach the output
    else:
        torch.testing.assert_close(hinted, out)  # ignored, as the contract says
        torch.testing.assert_close(unhinted, out)

    # strict load through the real loader: the same network back, and a missing key refused
    metadata = {"arch": arch, "config": json.dumps(config), "logit_fold": str(float(model.logit_fold))}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loaded = build_from_state(state, metadata, f"contract-{arch}").eval()
    with torch.inference_mode():
        torch.testing.assert_close(loaded(L), out)
    broken = dict(state)
    broken.pop(next(k for k in state if not k.endswith("num_batches_tracked")))
    with pytest.raises(CheckpointError, match="do not fit architecture"):
        build_from_state(broken, metadata, f"contract-{arch}")
    with pytest.raises(CheckpointError, match="do not fit architecture"):
        build_from_state({**state, "unexpected.weight": torch.zeros(1)}, metadata, f"contract-{arch}")
