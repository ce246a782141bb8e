"""resolve / state / verify / remove / import_file, for downloadable and bundled weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import weights_fetch
from weights_fetch.errors import VerificationError, WeightsError, WeightsMissing


@pytest.fixture
def bundled_dir(tmp_path, monkeypatch, weights_env):
    """A stand-in for ``core/weights`` (the real one is being filled by the training run)."""
    from weights_fetch import cache

    folder = tmp_path / "bundled"
    folder.mkdir()
    monkeypatch.setattr(cache, "BUNDLED_DIR", folder)
    return folder


def test_resolve_missing_says_how_to_fetch(publish):
    published = publish()
    with pytest.raises(WeightsMissing) as error:
        weights_fetch.resolve(published.name)
    message = str(error.value)
    assert "`tinct weights fetch test-tiny`" in message and "--fetch" in message
    assert "\n" not in message


def test_resolve_fetch_true_downloads(publish, server):
    published = publish()
    path = weights_fetch.resolve(published.name, fetch=True, mirror=published.mirror, progress=False)
    assert path.suffix == ".safetensors" and path.is_file()
    assert len(server.requests) == 1


def test_state_verify_remove_cycle(publish, weights_env):
    published = publish()
    assert weights_fetch.state(published.name) == "missing"
    assert not weights_fetch.verify(published.name).ok

    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert weights_fetch.state(published.name) == "cached"
    result = weights_fetch.verify(published.name)
    assert (result.ok, result.state, result.path) == (True, "cached", path)

    removed = weights_fetch.remove(published.name)
    assert path in removed and not path.exists()
    assert weights_fetch.state(published.name) == "missing"
    assert weights_fetch.remove(published.name) == []


def test_verify_detects_a_changed_cached_file(publish):
    published = publish()
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip a bit inside the tensor data
    path.write_bytes(bytes(data))
    result = weights_fetch.verify(published.name)
    assert not result.ok
    assert "changed since conversion" in result.message


def test_import_file_checks_and_converts_without_network(publish, server, tmp_path):
    published = publish()
    by_hand = tmp_path / "downloaded-elsewhere.pth"
    by_hand.write_bytes(published.data)
    path = weights_fetch.import_file(published.name, by_hand)
    assert server.requests == []
    assert weights_fetch.resolve(published.name) == path
    assert weights_fetch.verify(published.name).ok
    assert by_hand.exists()  # the user's file is left alone


def test_import_of_the_wrong_file_is_refused(publish, tmp_path, torch_bytes):
    published = publish()
    other = tmp_path / "other.pth"
    other.write_bytes(torch_bytes({"w": torch.zeros(3)}))
    with pytest.raises(VerificationError, match=rf"expected {len(published.data):,} bytes, got"):
        weights_fetch.import_file(published.name, other)
    same_size = tmp_path / "same-size.pth"
    same_size.write_bytes(b"\0" * len(published.data))
    with pytest.raises(VerificationError, match=rf"expected SHA-256 {published.sha256}, got [0-9a-f]{{64}}"):
        weights_fetch.import_file(published.name, same_size)
    assert weights_fetch.state(published.name) == "missing"


def test_import_of_a_missing_file(publish, tmp_path):
    published = publish()
    with pytest.raises(WeightsError, match="no such file"):
        weights_fetch.import_file(published.name, tmp_path / "nope.pth")


def test_missing_bundled_weights_are_reported_clearly(bundled_dir):
    assert weights_fetch.state("default") == "missing"
    with pytest.raises(WeightsMissing, match=r"bundled weights 'tinct-small' are missing: expected .*tinct-small.safetensors"):
        weights_fetch.resolve("default")
    with pytest.raises(WeightsMissing, match="bundled"):
        weights_fetch.fetch("tinct-small-l2")


def test_present_bundled_weights_resolve_and_verify(bundled_dir, server):
    path = bundled_dir / "tinct-small.safetensors"
    save_file({"bin_centers": torch.zeros(4, 2)}, str(path), metadata={"arch": "tinct_unet", "name": "tinct-small"})
    assert weights_fetch.resolve("default") == path
    assert weights_fetch.resolve("tinct-small", fetch=True) == path
    assert weights_fetch.state("tinct-small") == "bundled"
    assert weights_fetch.verify("default").ok
    assert server.requests == []
    with pytest.raises(WeightsError, match="ships with Tinct"):
        weights_fetch.remove("tinct-small")
    with pytest.raises(WeightsError, match="ships with Tinct"):
        weights_fetch.import_file("tinct-small", path)


def test_bundled_weights_without_arch_metadata_fail_verification(bundled_dir):
    save_file({"w": torch.zeros(2)}, str(bundled_dir / "tinct-small-l2.safetensors"))
    result = weights_fetch.verify("tinct-small-l2")
    assert not result.ok and 'no "arch" metadata' in result.message
    save_file({"w": torch.zeros(2)}, str(bundled_dir / "tinct-small.safetensors"), metadata={"arch": "eccv16"})
    assert "expected architecture 'tinct_unet'" in weights_fetch.verify("tinct-small").message


def test_remove_refuses_while_another_fetch_holds_the_lock(publish):
    from weights_fetch import cache
    from weights_fetch.errors import LockTimeout
    from weights_fetch.lock import FileLock

    published = publish()
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    entry = weights_fetch.catalog.get_entry(published.name)
    with FileLock(cache.lock_path(entry), timeout=1):
        with pytest.raises(WeightsError, match="is being fetched by another process"):
            weights_fetch.remove(published.name)
        with pytest.raises(LockTimeout, match="another process has held"):
            with FileLock(cache.lock_path(entry), timeout=0.2):
                pass
    assert path.is_file()
    assert weights_fetch.remove(published.name)
