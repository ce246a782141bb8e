"""Content choice (photo / document): the detector on L, the decode profiles, and --content / content= plumbing."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import core
from core import cli, content
from core.color import rgb_to_l
from core.content_fit import fit_logistic
from core.paths import SAMPLES_DIR
from core.pipeline import Colorizer
from core.training.synth_documents import render_page


def _L(rgb_u8: np.ndarray) -> torch.Tensor:
    return rgb_to_l(torch.from_numpy(rgb_u8.astype(np.float32) / 255.0).permute(2, 0, 1)[None])


def _photo() -> np.ndarray:
    with Image.open(SAMPLES_DIR / "garbage_truck.jpg") as im:
        return np.asarray(im.convert("RGB"))


def test_auto_picks_document_for_synthetic_pages_and_photo_for_a_natural_image():
    for seed, (h, w) in zip(range(4), ((384, 288), (256, 192), (300, 400), (512, 384))):
        L = _L(render_page(seed, h, w))
        assert content.document_score(L) >= content.DOCUMENT_THRESHOLD, f"page {seed}"
        assert content.resolve_content("auto", L) == "document"
    photo = _L(_photo())
    assert content.document_score(photo) < content.DOCUMENT_THRESHOLD
    assert content.resolve_content("auto", photo) == "photo"
    # an explicit choice is kept whatever the image shows
    assert content.resolve_content("document", photo) == "document"
    with pytest.raises(ValueError, match="unknown content 'scan'"):
        content.resolve_content("scan", photo)


def test_features_are_bounded_and_size_independent():
    page = render_page(5, 768, 576)
    small = np.asarray(Image.fromarray(page).resize((288, 384), Image.BOX))
    f_big, f_small = content.content_features(_L(page)), content.content_features(_L(small))
    assert f_big.shape == (len(content.FEATURE_NAMES),) and torch.isfinite(f_big).all()
    assert (f_big >= -1).all() and (f_big <= 1).all()
    assert f_small.shape == f_big.shape and (f_small >= -1).all() and (f_small <= 1).all()
    assert abs(content.document_score(_L(page)) - content.document_score(_L(small))) < 0.3


def test_profiles_are_frozen_and_document_starts_as_photo():
    assert set(content.PROFILES) == {"photo", "document"}
    assert dataclasses.fields(content.DOCUMENT_PROFILE) == dataclasses.fields(content.PHOTO_PROFILE)
    assert content.DOCUMENT_PROFILE == content.PHOTO_PROFILE
    with pytest.raises(dataclasses.FrozenInstanceError):
        content.PHOTO_PROFILE.chroma_scale = 2.0


def test_the_document_profile_is_applied_in_decoding(monkeypatch):
    colorizer = Colorizer("default", device="cpu")
    L = _L(render_page(1, 96, 72))
    photo_ab = colorizer.colorize_L(L, content="photo")
    assert colorizer.last_content == ["photo"]
    monkeypatch.setitem(content.PROFILES, "document", content.DecodeProfile(chroma_scale=0.5))
    doc_ab = colorizer.colorize_L(L, content="document")
    assert colorizer.last_content == ["document"]
    torch.testing.assert_close(doc_ab, 0.5 * photo_ab, atol=1e-3, rtol=1e-3)  # guided upsampling is linear in ab
    with pytest.raises(ValueError, match="unknown content"):
        colorizer.colorize_L(L, content="scan")


@pytest.fixture
def seen_content(monkeypatch):
    """The ``content`` the Colorizer resolves for every image it colorizes (the real resolution still runs)."""
    import core.pipeline

    seen: list[str] = []
    original = core.pipeline.resolve_content

    def spy(asked, L):
        seen.append(asked)
        return original(asked, L)

    monkeypatch.setattr(core.pipeline, "resolve_content", spy)
    return seen


def test_cli_passes_the_choice_to_the_colorizer_and_reports_auto(tmp_path, seen_content, capsys):
    page = tmp_path / "page.png"
    Image.fromarray(render_page(2, 256, 192)).convert("L").save(page)
    photo = tmp_path / "truck.png"
    Image.fromarray(_photo()).convert("L").save(photo)

    assert cli.main(["colorize", str(page), "-o", str(tmp_path / "forced.png"), "--content", "photo"]) == 0
    assert seen_content == ["photo"]
    assert "content (auto)" not in capsys.readouterr().err

    assert cli.main(["colorize", str(page), str(photo), "--out-dir", str(tmp_path / "out")]) == 0
    assert seen_content[1:] == ["auto", "auto"]  # the Colorizer decides per image
    assert "content (auto): 1 photo(s), 1 document(s)" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        cli.main(["colorize", str(page), "--content", "scan"])


def test_python_api_takes_content(seen_content):
    page = render_page(3, 64, 48)
    out = core.colorize(page, content="document")
    assert out.shape == page.shape and out.dtype == np.uint8
    assert seen_content == ["document"]
    core.colorize(Image.fromarray(page))
    assert seen_content[-1] == "auto"  # the default
    with pytest.raises(ValueError, match="unknown content"):
        core.colorize(page, content="scan")


def test_logistic_fit_separates_separable_data():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (20, 3))])
    y = np.concatenate([np.zeros(60), np.ones(20)])
    w, b = fit_logistic(X, y)
    assert ((X @ w + b > 0) == (y == 1)).mean() > 0.95
    assert w.shape == (3,) and np.isfinite(b)
