"""Safe checkpoint loading: pickled objects refused, nesting unwrapped, .pth -> safetensors round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import weights_fetch
from weights_fetch.errors import CheckpointError, UnsafeCheckpoint
from weights_fetch.safeload import read_checkpoint, save_safetensors, unwrap_state_dict


class LeavesAMark:
    """Unpickling this object would create ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model1.0.weight": torch.ones(2), "payload": LeavesAMark(marker)}, path)
    with pytest.raises(UnsafeCheckpoint, match=r"evil.pth holds a pickled object that is not a tensor"):
        read_checkpoint(path)
    assert not marker.exists()


def test_fetched_checkpoint_with_a_pickled_object_is_refused_and_not_cached(publish, tmp_path, weights_env):
    marker = tmp_path / "code-ran"
    published = publish(payload={"w": torch.ones(3), "payload": LeavesAMark(marker)})
    with pytest.raises(UnsafeCheckpoint):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert not marker.exists()
    assert weights_fetch.state(published.name) == "missing"
    leftovers = [p.name for p in weights_env.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert leftovers == []


def test_junk_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pth is not a readable PyTorch checkpoint"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 12, "arch": "x"},
        lambda sd: {"checkpoint": {"model": sd}, "optimizer_name": "adam"},
        lambda sd: {"module." + k: v for k, v in sd.items()},
    ],
    ids=["bare", "state_dict", "nested-twice", "dataparallel"],
)
def test_nested_checkpoints_are_unwrapped(tmp_path, make_state_dict, wrap):
    state = make_state_dict()
    path = tmp_path / "nested.pth"
    torch.save(wrap(state), path)
    loaded = read_checkpoint(path)
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_state_dict_with_a_non_tensor_entry_is_refused():
    with pytest.raises(CheckpointError, match=r"entry 'version' of the state dict is a int, not a tensor"):
        unwrap_state_dict({"w": torch.ones(1), "version": 3}, "odd.pth")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        unwrap_state_dict([torch.ones(1)], "list.pth")


def test_pth_to_safetensors_round_trip(tmp_path, make_state_dict):
    state = make_state_dict(3)
    # A view and tensors sharing storage: safetensors refuses those unless they are copied.
    base = torch.arange(12.0)
    state["view"] = base.view(3, 4).t()
    state["shared"] = base
    pth = tmp_path / "model.pth"
    torch.save({"state_dict": state}, pth)

    out = tmp_path / "model.safetensors"
    metadata = {"arch": "eccv16", "name": "m", "license": "BSD-2-Clause", "source_sha256": "ab" * 32}
    save_safetensors(read_checkpoint(pth), out, metadata)

    tensors, got_metadata = weights_fetch.load_state_dict(out)
    assert got_metadata == metadata
    assert tensors.keys() == state.keys()
    for key, tensor in state.items():
        assert tensors[key].dtype == tensor.dtype
        assert torch.equal(tensors[key], tensor)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_load_state_dict_reads_pth_safely_too(tmp_path, make_state_dict):
    state = make_state_dict()
    torch.save(state, tmp_path / "m.pth")
    tensors, metadata = weights_fetch.load_state_dict(tmp_path / "m.pth")
    assert metadata == {} and tensors.keys() == state.keys()


def test_broken_safetensors_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="broken.safetensors is not a valid safetensors file"):
        weights_fetch.load_state_dict(path)
