"""One contract test over every registered architecture (core/models/__init__.py states the contract).

The registry holds Tinct's architectures and the tests' stand-ins (``engine_stand_ins``, imported here so
that the set does not depend on which tests ran first): the engine tests' results mean something only
if their stand-ins honour the same contract.
"""

from __future__ import annotations

import json

import pytest
import torch

import engine_stand_ins  # noqa: F401 - registers the stand-in architectures
import weights_fetch
from core.loading import build_from_state, load_model
from core.models import create_model, list_architectures
from weights_fetch import CheckpointError

SHIPPED = {"eccv16", "siggraph17", "tinct_unet"}
# Constructor arguments worth checking beyond the defaults (each architecture's other heads and inputs).
VARIANTS = {"tinct_unet": [{}, {"head": "regression"}, {"hints": True, "global_context": True},
                           {"head": "regression", "hints": True}],
            "test-fails-on-bright": [{"error": "memory"}, {"error": "cuda"}, {"error": "bug"}]}


def _cases() -> list[tuple[str, dict]]:
    return [(arch, config) for arch in list_architectures() for config in VARIANTS.get(arch, [{}])]


def test_model_contract_covers_every_registered_architecture():
    covered = {arch for arch, _ in _cases()}
    assert covered == set(list_architectures()) and SHIPPED | {"test-tiny-logits", "test-tiny-ab"} <= covered
    catalog_archs = {entry.arch for entry in weights_fetch.catalog.entries()}
    assert catalog_archs <= SHIPPED, "the catalog names an architecture Tinct does not register"


@pytest.mark.parametrize("name", [e.name for e in weights_fetch.catalog.entries() if e.bundled])
def test_model_contract_holds_for_every_shipped_weights_file(name):
    """Strict load through the real loader; what the file's config says is what the network does."""
    model = load_model(name)
    config = json.loads(model.metadata["config"])
    assert model.metadata["arch"] in SHIPPED and model.name == name
    assert model.output == ("ab" if config.get("head") == "regression" else "logits")
    assert model.accepts_hints is bool(config.get("hints", False))
    n, h, w = 1, model.stride, 2 * model.stride
    with torch.inference_mode():
        out = model(torch.full((n, 1, h, w), 50.0))
    channels = len(model.bin_centers) if model.output == "logits" else 2
    assert out.shape == (n, channels, h // model.out_stride, w // model.out_stride)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _gradients(model, L, hint_ab, hint_mask) -> list[float]:
    """Sum of |d loss / d p| per parameter of a toy loss on the output (train mode for this once)."""
    model.zero_grad()
    model(L, hint_ab, hint_mask).square().mean().backward()
    grads = [float(p.grad.abs().sum()) if p.grad is not None else 0.0 for p in model.parameters()]
    model.zero_grad()
    return grads


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
    if model.accepts_hints:  # trained with hints: a hint changes what the network says
        hint_ab, hint_mask = torch.zeros(n, 2, h, w), torch.zeros(n, 1, h, w)
        hint_ab[:, 1], hint_mask[:, :, :, :w // 2] = 60.0, 1.0
        with torch.inference_mode():
            hinted = model(torch.full((n, 1, h, w), 50.0), hint_ab, hint_mask)
        assert (hinted - out).abs().max() > 1e-3
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())

    hint_ab, hint_mask = torch.zeros(n, 2, h, w), torch.zeros(n, 1, h, w)
    hint_ab[:, 0], hint_mask[:, :, : h // 2] = 60.0, 1.0
    with torch.inference_mode():
        hinted = model(L, hint_ab, hint_mask)
        unhinted = model(L, torch.zeros_like(hint_ab), torch.zeros_like(hint_mask))
    assert hinted.shape == out.shape
    if model.accepts_hints:
        # The hints reach the output, or (hint branches that start at zero, as tinct_unet's) at least
        # the training signal: the parameters' gradients differ with hints.
        assert not torch.allclose(hinted, unhinted) or _gradients(model, L, hint_ab, hint_mask) != pytest.approx(
            _gradients(model, L, torch.zeros_like(hint_ab), torch.zeros_like(hint_mask)))
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
