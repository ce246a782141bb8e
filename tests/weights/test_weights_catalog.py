"""The packaged catalog and the extra-catalog mechanism."""

from __future__ import annotations

import json

import pytest

from weights_fetch import catalog
from weights_fetch.errors import CatalogError, UnknownWeights


def test_packaged_entries(weights_env):
    by_name = {entry.name: entry for entry in catalog.entries()}
    assert list(by_name) == ["tinct-small", "tinct-small-l2", "tinct-small-v1", "eccv16", "siggraph17"]

    eccv16 = by_name["eccv16"]
    assert (eccv16.file, eccv16.size, eccv16.arch, eccv16.license, eccv16.bundled) == (
        "colorization_release_v2-9b330a0b.pth", 128_976_165, "eccv16", "BSD-2-Clause", False,
    )
    assert eccv16.sha256 == "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"
    assert eccv16.urls[0] == "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth"
    assert "people.eecs.berkeley.edu" in eccv16.urls[1]

    siggraph = by_name["siggraph17"]
    assert (siggraph.size, siggraph.arch) == (136_787_426, "siggraph17")
    assert siggraph.sha256 == "df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66"

    for name in ("tinct-small", "tinct-small-l2", "tinct-small-v1"):
        entry = by_name[name]
        assert entry.bundled and entry.sha256 is None and entry.urls == ()
        assert (entry.file, entry.arch, entry.license) == (f"{name}.safetensors", "tinct_unet", "Apache-2.0")


def test_downloads_follow_the_torch_hub_hash_naming(weights_env):
    for entry in catalog.entries():
        if not entry.bundled:
            stem = entry.file.rsplit(".", 1)[0]
            assert stem.rsplit("-", 1)[1] == entry.sha256[:8]
            assert all(url.endswith("/" + entry.file) for url in entry.urls)


def test_aliases_and_unknown_names(weights_env):
    assert catalog.get_entry("default").name == "tinct-small"
    assert catalog.aliases() == {"default": "tinct-small"}
    with pytest.raises(UnknownWeights, match=r"unknown weights 'nope'; known names: default, eccv16"):
        catalog.get_entry("nope")


def test_extra_catalog_adds_entries_but_cannot_redefine(tmp_path, monkeypatch, weights_env):
    extra = tmp_path / "extra.json"
    entry = {
        "name": "eccv16", "file": "x-12345678.pth", "urls": ["https://h/x-12345678.pth"],
        "sha256": "12345678", "arch": "eccv16", "license": "MIT", "bundled": False,
    }
    extra.write_text(json.dumps({"format": 1, "entries": [entry]}))
    monkeypatch.setenv("TINCT_WEIGHTS_CATALOG", str(extra))
    with pytest.raises(CatalogError, match="'eccv16' is already in the packaged catalog"):
        catalog.entries()

    entry["name"] = "in-house"
    extra.write_text(json.dumps({"format": 1, "entries": [entry]}))
    added = catalog.get_entry("in-house")
    assert added.sha256 == "12345678" and added.size is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arch": "Res Net"}, "bad architecture name 'Res Net'"),
        ({"file": "../escape.pth"}, "must be a bare file name"),
        ({"sha256": "xyz"}, "8 to 64 hex digits"),
        ({"urls": []}, "needs \"urls\" and \"sha256\""),
        ({"size": "big"}, "field 'size' has the wrong type"),
    ],
)
def test_malformed_extra_catalog_is_a_clear_error(tmp_path, monkeypatch, weights_env, change, message):
    entry = {
        "name": "in-house", "file": "x-12345678.pth", "urls": ["https://h/x-12345678.pth"],
        "sha256": "12345678", "arch": "eccv16", "license": "MIT", "bundled": False, **change,
    }
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"format": 1, "entries": [entry]}))
    monkeypatch.setenv("TINCT_WEIGHTS_CATALOG", str(extra))
    with pytest.raises(CatalogError, match=message):
        catalog.entries()


def test_unreadable_extra_catalog(tmp_path, monkeypatch, weights_env):
    monkeypatch.setenv("TINCT_WEIGHTS_CATALOG", str(tmp_path / "absent.json"))
    with pytest.raises(CatalogError, match="cannot read weights catalog"):
        catalog.entries()
    (tmp_path / "bad.json").write_text("{")
    monkeypatch.setenv("TINCT_WEIGHTS_CATALOG", str(tmp_path / "bad.json"))
    with pytest.raises(CatalogError, match="is not valid JSON"):
        catalog.entries()


def test_catalog_architectures_are_the_model_registry_s():
    """The catalog names architectures; the registry is the one list of them."""
    from core.models import list_architectures

    assert {entry.arch for entry in catalog.entries()} <= set(list_architectures())


def test_weights_for_an_unknown_architecture_are_refused_in_one_line():
    import torch

    from core.loading import build_from_state
    from weights_fetch import CheckpointError

    with pytest.raises(CheckpointError, match="architecture 'resnet', which this Tinct does not have") as error:
        build_from_state({"w": torch.zeros(1)}, {"arch": "resnet"}, "in-house")
    assert "\n" not in str(error.value)


def test_the_bundled_folder_has_one_definition():
    import core.paths
    from weights_fetch import cache

    assert core.paths.BUNDLED_WEIGHTS_DIR == cache.BUNDLED_DIR == core.paths.PROJECT_ROOT / "core" / "weights"
