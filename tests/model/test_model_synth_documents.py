"""The synthetic document generator: deterministic, well-formed, paper-dominated pages, with or without fonts."""

import numpy as np
import pytest
from skimage.color import rgb2lab

from core.training import synth_documents as sd


def test_same_seed_same_page_and_shape():
    a = sd.render_page(7, 96, 128)
    b = sd.render_page(7, 96, 128)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    odd = sd.render_page(3, 65, 50)
    assert odd.shape == (65, 50, 3) and odd.dtype == np.uint8


def test_different_seeds_differ():
    pages = [sd.render_page(seed, 64, 48) for seed in range(6)]
    for i in range(len(pages)):
        for j in range(i + 1, len(pages)):
            assert np.abs(pages[i].astype(int) - pages[j].astype(int)).mean() > 1.0


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        sd.render_page(0, 8, 64)


def test_paper_dominates_and_is_low_chroma():
    for seed in range(16):
        lab = rgb2lab(sd.render_page(seed, 128, 96))
        chroma = np.hypot(lab[..., 1], lab[..., 2])
        paperish = (lab[..., 0] > 50) & (chroma < 30)
        assert paperish.mean() > 0.5, f"seed {seed}: only {paperish.mean():.0%} of the page looks like paper"
        paper_ab = lab[paperish][:, 1:].mean(0)
        assert np.hypot(*paper_ab) < 25, f"seed {seed}: paper ab {paper_ab}"
        # Real pages are yellowish rather than bluish or greenish.
        assert paper_ab[1] > -3, f"seed {seed}: paper ab {paper_ab}"
        assert (lab[..., 0] < np.median(lab[..., 0]) - 15).mean() > 0.002, f"seed {seed}: no ink on the page"


def test_runs_without_any_font_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(sd, "FONT_DIRS", (str(tmp_path / "no-fonts"),))
    sd.font_files.cache_clear()
    sd._font.cache_clear()
    try:
        assert sd.font_files() == ()
        for seed in range(12):  # printed pages, initials and stamps all need a font
            page = sd.render_page(seed, 80, 60)
            assert page.shape == (80, 60, 3) and page.dtype == np.uint8
    finally:
        sd.font_files.cache_clear()
        sd._font.cache_clear()


def test_paper_ink_measure_on_a_known_page():
    from skimage.color import lab2rgb

    lab = np.zeros((100, 100, 3))
    lab[...] = (85.0, 1.0, 12.0)  # cream paper
    lab[20:80:6, 20:80] = (25.0, 6.0, 15.0)  # brown ink lines
    rgb = (np.clip(lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
    paper_ab, ink_ab = sd.paper_ink_ab(rgb)
    np.testing.assert_allclose(paper_ab, (1.0, 12.0), atol=1.0)
    np.testing.assert_allclose(ink_ab, (6.0, 15.0), atol=1.5)


def test_contact_sheet_tiles_the_pages():
    sheet = sd.contact_sheet([0, 1, 2], 40, 30, columns=2)
    assert sheet.size == (2 * 34, 2 * 44)
    np.testing.assert_array_equal(np.asarray(sheet)[:40, :30], sd.render_page(0, 40, 30))
