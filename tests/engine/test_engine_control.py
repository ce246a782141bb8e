"""User control: colour hints, reference photos and palettes, confidence maps (core, API and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine_stand_ins import BLUE, YELLOW, TinyAbModel, TinyLogitsModel, gradient_gray
from core import cli
from core.errors import INPUT, OUTPUT, USAGE
from core.color import rgb_to_lab
from core.confidence import RISK_SCALE, confidence_from_logits
from core.hint_regions import alpha_of_rgba, check_regions, painted_regions, region_bytes
from core.hints import (SparseHints, hints_at_resolution, patch_hints, sparse_hints_from_regions,
                        sparse_hints_from_rgba)
from core.pipeline import Colorizer
from core.reference import (
    GRID_RADIUS, PALETTES, ReferenceError, ab_histogram, histogram_from_pixels, histogram_on_bins, load_palette,
    palette_from_json, palette_to_json, reference_logit_bias, reweight_logits,
)


def _grid_bins(radius: int = 11) -> torch.Tensor:
    """Every step-10 cell within ``radius`` cells of gray, as a model's [Q, 2] bin table."""
    axis = torch.arange(-radius, radius + 1, dtype=torch.float32) * 10
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    keep = a * a + b * b <= (radius * 10) ** 2
    return torch.stack([a[keep], b[keep]], dim=1)


def _lab_of(rgb8: tuple[int, int, int]) -> torch.Tensor:
    return rgb_to_lab(torch.tensor(rgb8, dtype=torch.float32).view(3, 1, 1) / 255.0).view(3)


# --------------------------------------------------------------------------------- hints


def _dense(hints: SparseHints) -> tuple[np.ndarray, np.ndarray]:
    """Sparse hints of one image -> (ab [H, W, 2], mask [H, W] bool), for checking."""
    ab = np.zeros((hints.height, hints.width, 2), np.float32)
    mask = np.zeros((hints.height, hints.width), bool)
    ab[hints.y.numpy(), hints.x.numpy()] = hints.ab.numpy()
    mask[hints.y.numpy(), hints.x.numpy()] = True
    return ab, mask


def test_control_hint_image_gives_ab_of_painted_pixels_only():
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[1, 2] = (200, 30, 40, 255)
    rgba[3, 4] = (20, 90, 210, 1)  # any alpha > 0 is a hint
    rgba[5, 7] = (250, 250, 0, 0)  # transparent: not a hint, whatever its colour
    hints = sparse_hints_from_rgba(rgba)
    assert hints.count == 2 and (hints.n, hints.height, hints.width) == (1, 6, 8)
    ab, mask = _dense(hints)
    assert mask[1, 2] and mask[3, 4] and not mask[5, 7]
    np.testing.assert_allclose(ab[1, 2], _lab_of((200, 30, 40))[1:].numpy(), atol=1e-3)
    np.testing.assert_allclose(ab[3, 4], _lab_of((20, 90, 210))[1:].numpy(), atol=1e-3)
    # Lightness is ignored: black and white hints both mean "no colour".
    grays = np.zeros((1, 2, 4), np.uint16)
    grays[0, 1] = (65535, 65535, 65535, 65535)
    grays[0, 0, 3] = 65535
    gray_hints = sparse_hints_from_rgba(grays)
    assert gray_hints.count == 2 and float(gray_hints.ab.abs().max()) < 1e-2
    float_ab, _ = _dense(sparse_hints_from_rgba(rgba.astype(np.float32) / 255.0))
    np.testing.assert_allclose(float_ab, ab, atol=1e-3)
    with pytest.raises(ValueError, match="RGBA"):
        sparse_hints_from_rgba(np.zeros((4, 4, 3), np.uint8))


def test_control_painted_regions_carry_every_painted_pixel_and_little_else():
    width, height = 300, 200
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[10:14, 20:25] = (200, 30, 40, 255)  # a dab
    rgba[15, 290] = (20, 90, 210, 7)  # one pixel in the same band, far right
    rgba[120:150, 100:130] = (10, 200, 30, 255)  # a dab over two bands
    rgba[199, 0] = (250, 250, 0, 1)  # the last row's first pixel
    rgba[60, 60, :3] = (255, 0, 0)  # colour without alpha: not a hint
    for dtype, scale in ((np.uint8, 1), (np.uint16, 257), (np.float32, 1 / 255)):
        layer = (rgba.astype(np.float64) * scale).astype(dtype)
        alpha = np.ascontiguousarray(layer[:, :, 3]).tobytes()
        regions = painted_regions(alpha, width, height, layer.dtype.itemsize)
        # the plug-in's way: the whole RGBA layer's bytes, alpha found by alpha_of_rgba
        mask = alpha_of_rgba(layer.tobytes(), layer.dtype.itemsize)
        np.testing.assert_array_equal(np.frombuffer(mask, np.uint8).reshape(height, width) != 0, layer[..., 3] != 0)
        assert painted_regions(mask, width, height) == regions
        check_regions(regions, width, height)
        assert [r[1] for r in regions] == sorted(r[1] for r in regions)
        assert sum(w * h for _, _, w, h in regions) < 0.05 * width * height
        assert regions[0] == (20, 10, 271, 6)  # rows 10-15 of the first band, columns 20-290
        pixels = np.concatenate([layer[y : y + h, x : x + w].reshape(-1, 4) for x, y, w, h in regions])
        assert region_bytes(layer.tobytes(), width, regions, 4 * layer.dtype.itemsize) == pixels.tobytes()
        sent = sparse_hints_from_regions(regions, pixels, (height, width))
        whole = sparse_hints_from_rgba(layer)
        for got, want in zip(_dense(sent), _dense(whole)):
            np.testing.assert_array_equal(got, want)
    assert painted_regions(bytes(width * height), width, height) == []
    with pytest.raises(ValueError, match="bytes"):
        painted_regions(bytes(10), width, height)
    with pytest.raises(ValueError, match="whole pixels"):
        alpha_of_rgba(bytes(10), 2)
    for bad in ([[0, 0, 0, 1]], [[290, 0, 20, 1]], [[0, -1, 1, 1]], [(0, 0, 1.5, 1)], "0,0,1,1"):
        with pytest.raises(ValueError, match="hint region"):
            check_regions(bad, width, height)
    with pytest.raises(ValueError, match=r"\[6, 4\]"):
        sparse_hints_from_regions([[0, 0, 3, 2]], np.zeros((5, 4), np.uint8), (height, width))


def test_control_hints_at_render_resolution_average_hint_pixels_only():
    hint_ab = torch.zeros(1, 2, 8, 8)
    hint_mask = torch.zeros(1, 1, 8, 8)
    hint_ab[0, :, 0, 0] = torch.tensor([40.0, -20.0])  # one hint pixel in the top-left 4x4 cell
    hint_mask[0, 0, 0, 0] = 1
    hint_ab[0, :, 4:6, 4] = torch.tensor([10.0, 30.0]).view(2, 1)
    hint_ab[0, :, 6, 6] = torch.tensor([30.0, 10.0])  # bottom-right cell: 3 hint pixels, mean (16.67, 23.33)
    hint_mask[0, 0, 4:6, 4] = 1
    hint_mask[0, 0, 6, 6] = 1
    hint_ab[0, :, 0, 7] = 99.0  # not masked: ignored
    ab, mask = hints_at_resolution(hint_ab, hint_mask, (2, 2))
    assert mask.view(-1).tolist() == [1.0, 0.0, 0.0, 1.0]
    torch.testing.assert_close(ab[0, :, 0, 0], torch.tensor([40.0, -20.0]))
    torch.testing.assert_close(ab[0, :, 1, 1], torch.tensor([50.0 / 3, 70.0 / 3]))
    assert float(ab[0, :, 0, 1].abs().max()) == 0.0


def test_control_patch_hints_are_seeded_patch_means():
    torch.manual_seed(3)
    true_ab = torch.randn(1, 2, 40, 50) * 30
    first = patch_hints(true_ab, 10, generator=torch.Generator().manual_seed(7))
    again = patch_hints(true_ab, 10, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(first[0], again[0])
    torch.testing.assert_close(first[1], again[1])
    assert 25 <= float(first[1].sum()) <= 250
    none_ab, none_mask = patch_hints(true_ab, 0)
    assert float(none_mask.sum()) == 0 and float(none_ab.abs().sum()) == 0
    one_ab, one_mask = patch_hints(true_ab, 1, generator=torch.Generator().manual_seed(1))
    ys, xs = torch.nonzero(one_mask[0, 0], as_tuple=True)
    patch = true_ab[0, :, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert patch.shape[-2:] == (5, 5)
    torch.testing.assert_close(one_ab[0, :, ys[0], xs[0]], patch.mean(dim=(1, 2)))


def test_control_hints_steer_a_hint_model_through_the_api():
    torch.manual_seed(0)
    from core.models import create_model

    colorizer = Colorizer(create_model("siggraph17").eval(), "cpu")
    gray = gradient_gray(48, 64)
    hints = np.zeros((48, 64, 4), np.uint8)
    hints[20:28, 28:36] = (30, 60, 220, 255)
    plain = colorizer.colorize_array(gray, render_size=64)
    hinted = colorizer.colorize_array(gray, render_size=64, hints=hints)
    assert hinted.shape == plain.shape == (48, 64, 3)
    assert np.abs(hinted.astype(int) - plain).max() > 0  # the random network still reacts to its hint input
    empty = colorizer.colorize_array(gray, render_size=64, hints=np.zeros((48, 64, 4), np.uint8))
    np.testing.assert_array_equal(empty, plain)  # an empty hint layer is automatic colorization
    with pytest.raises(ValueError, match="RGBA 64x48"):
        colorizer.colorize_array(gray, hints=hints[:40])

    ab_model = Colorizer(TinyAbModel(), "cpu")  # copies hints into its output: checks the colour arrives
    out = ab_model.colorize_array(gray, hints=Image.fromarray(hints, "RGBA"))
    lab = rgb_to_lab(torch.from_numpy(out[22:26, 30:34].astype(np.float32) / 255).permute(2, 0, 1))
    target = _lab_of((30, 60, 220))
    assert float(lab[2].mean()) < -30 and float(target[2]) < -30


def test_control_hints_to_a_model_without_hints_is_one_clear_error():
    colorizer = Colorizer(TinyLogitsModel(), "cpu")
    with pytest.raises(ValueError, match="does not take colour hints"):
        colorizer.colorize_array(gradient_gray(), hints=np.zeros((48, 64, 4), np.uint8))


# --------------------------------------------------------------------------------- reference and palettes


def test_control_ab_histogram_on_the_grid_and_on_any_bins():
    ab = torch.zeros(1, 2, 4, 4)
    ab[0, 0, :2] = 42.0  # a = 42 -> cell 40; b = 0
    ab[0, 1, 2:] = -7.0  # b = -7 -> cell -10
    hist = ab_histogram(ab)
    assert hist.shape == (23, 23) and abs(float(hist.sum()) - 1) < 1e-12
    assert float(hist[GRID_RADIUS + 4, GRID_RADIUS]) == 0.5 and float(hist[GRID_RADIUS, GRID_RADIUS - 1]) == 0.5
    for bins in (_grid_bins(), _grid_bins(8), torch.tensor([[0.0, 0.0], [*BLUE], [*YELLOW]])):
        probs = histogram_on_bins(hist, bins)
        assert probs.shape == (bins.shape[0],) and abs(float(probs.sum()) - 1) < 1e-5 and float(probs.min()) > 0
    probs = histogram_on_bins(hist, _grid_bins())
    centers = _grid_bins()
    near = lambda a, b: int(((centers - torch.tensor([a, b])) ** 2).sum(1).argmin())  # noqa: E731
    assert float(probs[near(40, 0)]) > 10 * float(probs[near(-60, 60)])
    assert float(probs[near(0, -10)]) > 10 * float(probs[near(-60, 60)])


def test_control_logit_bias_multiplies_the_distribution_by_the_reference():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 3, 4)
    ref = torch.tensor([0.4, 0.3, 0.2, 0.05, 0.05])
    for fold, strength in ((1.0, 1.0), (2.606, 0.5)):
        out = torch.softmax(reweight_logits(logits, reference_logit_bias(ref, strength, fold)) / fold, dim=1)
        expected = torch.softmax(logits / fold, dim=1) * ref.view(1, 5, 1, 1) ** strength
        torch.testing.assert_close(out, expected / expected.sum(1, keepdim=True))
    torch.testing.assert_close(reweight_logits(logits, reference_logit_bias(ref, 0.0)), logits)


def test_control_reference_moves_colour_toward_the_reference():
    colorizer = Colorizer(TinyLogitsModel(sharpness=1.0), "cpu")  # an unsure model: gray, blue, yellow
    L = torch.full((1, 1, 32, 32), 50.0)
    plain = colorizer.colorize_L(L)
    yellow_photo = np.zeros((16, 16, 3), np.uint8)
    yellow_photo[:] = (230, 200, 40)
    steered = colorizer.colorize_L(L, reference=yellow_photo)
    assert float(steered[0, 1].mean()) > float(plain[0, 1].mean()) + 10
    weaker = colorizer.colorize_L(L, reference=yellow_photo, reference_strength=0.3)
    assert float(plain[0, 1].mean()) < float(weaker[0, 1].mean()) < float(steered[0, 1].mean())
    # one reference per image in list form
    both = colorizer.colorize_L([L, L], reference=[None, yellow_photo])
    torch.testing.assert_close(both[0], plain)
    torch.testing.assert_close(both[1], steered)


def test_control_reference_works_with_eccv16_and_refuses_regression_and_gray():
    torch.manual_seed(0)
    from core.models import create_model

    colorizer = Colorizer(create_model("eccv16").eval(), "cpu")
    gray = gradient_gray(64, 64)
    red = np.zeros((20, 20, 3), np.uint8)
    red[:] = (200, 40, 40)
    plain = rgb_to_lab(torch.from_numpy(colorizer.colorize_array(gray).astype(np.float32) / 255).permute(2, 0, 1))
    red_out = colorizer.colorize_array(gray, reference=Image.fromarray(red))
    steered = rgb_to_lab(torch.from_numpy(red_out.astype(np.float32) / 255).permute(2, 0, 1))
    red_a = float(_lab_of((200, 40, 40))[1])
    assert abs(float(steered[1].mean()) - red_a) < abs(float(plain[1].mean()) - red_a)
    with pytest.raises(ValueError, match="regression model"):
        Colorizer(TinyAbModel(), "cpu").colorize_array(gray, reference=red)
    with pytest.raises(ReferenceError, match="gray"):
        colorizer.colorize_array(gray, reference=np.stack([gray] * 3, axis=2))
    with pytest.raises(ReferenceError, match="unknown palette"):
        colorizer.colorize_array(gray, reference="sepia")


def test_control_histogram_ignores_transparent_reference_pixels():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (200, 40, 40, 255)
    rgba[:, 5:] = (40, 40, 200, 0)
    hist = histogram_from_pixels(rgba)
    a, b = _lab_of((200, 40, 40))[1:]
    assert float(hist[GRID_RADIUS + round(float(a) / 10), GRID_RADIUS + round(float(b) / 10)]) == 1.0


def test_control_shipped_palettes_are_small_paper_coloured_histograms():
    axis = torch.arange(23, dtype=torch.float64) - GRID_RADIUS
    for name in PALETTES:
        hist = load_palette(name)
        assert hist.shape == (23, 23) and abs(float(hist.sum()) - 1) < 1e-9
        mean_b = float((hist.sum(0) * axis).sum() * 10)
        assert 3 < mean_b < 30, (name, mean_b)  # paper is cream to yellow, never blue
    from core.reference import PALETTE_DIR

    assert all((PALETTE_DIR / f"{n}.json").stat().st_size < 4096 for n in PALETTES)
    roundtrip = palette_from_json(json.loads(json.dumps(palette_to_json(load_palette("parchment")))))
    torch.testing.assert_close(roundtrip, load_palette("parchment"), atol=1e-4, rtol=0)


def test_control_palette_builder_uses_only_the_training_part(tmp_path):
    from core.palettes.build import SOURCES, build

    documents = tmp_path / "documents"
    held_out = []
    for folder in {f for _, folders in SOURCES.values() for f in folders}:
        (documents / folder).mkdir(parents=True)
        Image.new("RGB", (40, 30), (225, 205, 160)).save(documents / folder / "train.jpg", quality=98)
        Image.new("RGB", (40, 30), (40, 60, 220)).save(documents / folder / "held.jpg", quality=98)
        held_out.append(f"{folder}/held.jpg")
    (documents / "VALIDATION.txt").write_text("# held out\n" + "\n".join(held_out) + "\n")
    out = tmp_path / "palettes"
    out.mkdir()
    used = build(documents, out)
    assert set(used) == set(PALETTES)
    for name in PALETTES:
        data = json.loads((out / f"{name}.json").read_text())
        assert data["scans"] == len(SOURCES[name][1])
        hist = palette_from_json(data)
        assert all(b >= 0 for _, b, p in data["cells"] if p > 0.01)  # no blue from the held-out scans
        assert float(hist.max()) > 0.9


# --------------------------------------------------------------------------------- confidence


def test_control_confidence_is_low_where_the_decoded_colour_is_far_from_the_mass_or_vivid():
    centers = torch.tensor([[0.0, 0.0], [40.0, 0.0], [-40.0, 0.0], [0.0, 60.0]])
    logits = torch.full((1, 4, 1, 4), -1e4)
    logits[0, 0, 0, 0] = 0.0  # certain of gray
    logits[0, 1, 0, 1] = 0.0  # certain of a vivid red
    logits[0, 1:3, 0, 2] = 0.0  # red or green, half each, decoded as their mean: gray
    logits[0, 0, 0, 3] = 0.0  # certain of gray, yet decoded as yellow (e.g. a reference pulled it)
    ab = torch.tensor([[0.0, 0.0], [40.0, 0.0], [0.0, 0.0], [0.0, 60.0]]).T.reshape(1, 2, 1, 4)
    conf = confidence_from_logits(logits, ab, centers)[0, 0, 0]
    assert conf.shape == (4,) and float(conf[0]) > 0.999  # no risk: 1
    expected = torch.exp(-torch.tensor([40.0, 40.0, 120.0]) / RISK_SCALE)  # ‖â‖, E‖c − â‖, both
    torch.testing.assert_close(conf[1:], expected)
    torch.testing.assert_close(confidence_from_logits(logits * 2.606, ab, centers, 2.606), conf[None, None, None])
    with pytest.raises(ValueError, match="bin_centers"):
        confidence_from_logits(logits, ab, centers[:3])


def test_control_confidence_map_at_full_resolution_from_the_api():
    colorizer = Colorizer(TinyLogitsModel(), "cpu")
    gray = gradient_gray(48, 64)
    out, conf = colorizer.colorize_array(gray, confidence=True)
    np.testing.assert_array_equal(out, colorizer.colorize_array(gray))
    assert conf.shape == (48, 64) and conf.dtype == np.float32 and 0 <= conf.min() and conf.max() <= 1
    # the stand-in is sure of blue at the dark end and of yellow at the light end: the risk there is their chroma;
    # at mid-gray it hesitates between all three, which is riskier still
    assert abs(conf[:, :6].mean() - np.exp(-np.hypot(*BLUE) / RISK_SCALE)) < 0.01
    assert abs(conf[:, -6:].mean() - np.exp(-np.hypot(*YELLOW) / RISK_SCALE)) < 0.01
    assert conf[:, 29:35].mean() < min(conf[:, :6].mean(), conf[:, -6:].mean()) - 0.02
    image, conf_image = colorizer.colorize_image(Image.fromarray(gray), confidence=True)
    assert conf_image.mode == "L" and conf_image.size == image.size == (64, 48)
    with pytest.raises(ValueError, match="regression model.*no confidence map"):
        Colorizer(TinyAbModel(), "cpu").colorize_array(gray, confidence=True)


# --------------------------------------------------------------------------------- CLI


@pytest.fixture
def control_models(install_named):
    """Names for the CLI: "tiny" (classification, no hints), "tinyab" (regression, takes hints)."""
    install_named({"tiny": ("test-tiny-logits", {}), "tinyab": ("test-tiny-ab", {})})


def _run(args, capsys):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _hint_file(path, size=(48, 64), colour=(30, 60, 220)):
    rgba = np.zeros(size + (4,), np.uint8)
    rgba[16:32, 24:40] = (*colour, 255)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_control_cli_hints_and_hints_dir(tmp_path, capsys, control_models):
    for stem in ("a", "b"):
        Image.fromarray(gradient_gray()).save(tmp_path / f"{stem}.png")
    hints = tmp_path / "hints"
    hints.mkdir()
    _hint_file(hints / "a.png")
    code, out, err = _run(["colorize", tmp_path / "a.png", "--model", "tinyab", "--hints", hints / "a.png",
                           "-o", tmp_path / "one.png"], capsys)
    assert code == 0, err
    one = np.asarray(Image.open(tmp_path / "one.png").convert("RGB"))
    lab = rgb_to_lab(torch.from_numpy(one[20:28, 28:36].astype(np.float32) / 255).permute(2, 0, 1))
    assert float(lab[2].mean()) < -30  # blue where the hint is

    code, out, err = _run(["colorize", tmp_path / "a.png", tmp_path / "b.png", "--model", "tinyab",
                           "--hints-dir", hints, "--out-dir", tmp_path / "out"], capsys)
    assert code == 0, err
    a = np.asarray(Image.open(tmp_path / "out" / "a_color.png").convert("RGB"))
    b = np.asarray(Image.open(tmp_path / "out" / "b_color.png").convert("RGB"))
    np.testing.assert_array_equal(a, one)
    assert np.abs(a.astype(int) - b).max() > 20  # b had no hint file: automatic

    code, _, err = _run(["colorize", tmp_path / "a.png", tmp_path / "b.png", "--model", "tinyab",
                         "--hints", hints / "a.png", "--out-dir", tmp_path / "x"], capsys)
    assert code == USAGE and "--hints-dir" in err and len(err.strip().splitlines()) == 1


def test_control_cli_hint_problems_are_one_line(tmp_path, capsys, control_models):
    Image.fromarray(gradient_gray()).save(tmp_path / "a.png")
    wrong = _hint_file(tmp_path / "wrong.png", size=(40, 64))
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tinyab", "--hints", wrong,
                         "--out-dir", tmp_path / "o"], capsys)
    assert code == INPUT and "64x40 but the input is 64x48" in err and err.count("error:") == 1
    assert not (tmp_path / "o" / "a_color.png").exists()
    opaque = tmp_path / "opaque.png"
    Image.new("RGB", (64, 48), (200, 0, 0)).save(opaque)
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tinyab", "--hints", opaque,
                         "--out-dir", tmp_path / "o"], capsys)
    assert code == INPUT and "no alpha channel" in err
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tiny", "--hints", _hint_file(tmp_path / "h.png"),
                         "--out-dir", tmp_path / "o"], capsys)
    assert code == USAGE and "does not take colour hints" in err and len(err.strip().splitlines()) == 1


def test_control_cli_confidence_reference_and_palette(tmp_path, capsys, control_models):
    for stem in ("a", "b"):
        Image.fromarray(gradient_gray()).save(tmp_path / f"{stem}.png")
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tiny", "--out-dir", tmp_path / "o",
                         "--confidence", tmp_path / "conf.png", "--palette", "parchment"], capsys)
    assert code == 0, err
    conf = Image.open(tmp_path / "conf.png")
    assert conf.mode == "L" and conf.size == (64, 48)
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tiny", "--out-dir", tmp_path / "o2",
                         "--confidence", tmp_path / "conf.png"], capsys)
    assert code == OUTPUT and "exists" in err  # never replaced without --overwrite
    assert not (tmp_path / "o2" / "a_color.png").exists()

    refs = tmp_path / "refs"
    refs.mkdir()
    Image.new("RGB", (30, 20), (230, 200, 40)).save(refs / "b.jpg")
    code, _, err = _run(["colorize", tmp_path / "a.png", tmp_path / "b.png", "--model", "tiny",
                         "--out-dir", tmp_path / "o3", "--reference-dir", refs, "--confidence-dir", tmp_path / "maps"],
                        capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["a.png", "b.png"]
    a = np.asarray(Image.open(tmp_path / "o3" / "a_color.png").convert("RGB")).astype(np.float32) / 255
    b = np.asarray(Image.open(tmp_path / "o3" / "b_color.png").convert("RGB")).astype(np.float32) / 255
    b_lab, a_lab = (rgb_to_lab(torch.from_numpy(x).permute(2, 0, 1)) for x in (b, a))
    assert float(b_lab[2].mean()) > float(a_lab[2].mean()) + 5  # b followed its yellow reference

    gray_ref = tmp_path / "gray.png"
    Image.fromarray(gradient_gray()).save(gray_ref)
    code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tiny", "--out-dir", tmp_path / "o4",
                         "--reference", gray_ref], capsys)
    assert code == INPUT and "gray" in err and len(err.strip().splitlines()) == 1
    for option in (["--confidence", tmp_path / "c2.png"], ["--palette", "white-paper"]):
        code, _, err = _run(["colorize", tmp_path / "a.png", "--model", "tinyab", "--out-dir", tmp_path / "o5",
                             *option], capsys)
        assert code == 2 and "regression model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c2.png").exists()


# --------------------------------------------------------------------------------- eval-hints


def _colour_photos(folder, count=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        y, x = np.mgrid[0:48, 0:64]
        rgb = np.stack([(x * 4 + 40 * i) % 256, (y * 5) % 256, rng.integers(60, 200, (48, 64))], axis=2)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_control_eval_hints_reports_all_three_measures_deterministically(tmp_path, capsys, control_models):
    photos = _colour_photos(tmp_path / "photos")
    args = ["eval-hints", photos, "--model", "tiny", "--render-size", "64"]
    code, out, err = _run([*args, "--json", tmp_path / "a.json", "--figure", tmp_path / "fig.png"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["images"] == 3 and "skipped" in report["hints"]
    assert set(report["reference"]) >= {"own_reference_auc_gain", "similar_photo"}
    assert report["confidence"]["ratio"] > 0 and Image.open(tmp_path / "fig.png").size[0] > 64 * 3
    code, _, err = _run([*args, "--json", tmp_path / "b.json"], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "b.json").read_text())
    assert again["reference"] == report["reference"] and again["confidence"] == report["confidence"]

    code, out, err = _run(["eval-hints", photos, "--model", "tinyab", "--render-size", "32",
                           "--json", tmp_path / "h.json", "--figure", tmp_path / "h.png"], capsys)
    assert code == 0, err
    hints = json.loads((tmp_path / "h.json").read_text())
    assert set(hints["hints"]["by_patches"]) == {"0", "1", "10"}
    assert "psnr_gain" in hints["hints"]["by_patches"]["10"] and "skipped" in hints["confidence"]
    code, _, err = _run(["eval-hints", tmp_path / "nothing-here"], capsys)
    assert code == INPUT and len(err.strip().splitlines()) == 1
