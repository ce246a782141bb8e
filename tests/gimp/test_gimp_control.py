"""User control in a real, headless GIMP 3: the hint layer, a reference layer / file / palette, the confidence
layer and the content choice, with the real engine worker and the shipped hint-capable default model."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gimp_plugin import MODEL, RENDER, SIZE, engine_missing, lab, read_raw, run_gimp, write_inputs  # noqa: E402

HINT_RGB = (40, 80, 220)  # a clear blue
HINT_BOX = (20, 14, 10, 10)  # x, y, w, h on the 64 x 48 photo
REFERENCE_RGB = (230, 140, 40)  # orange


def _mean_ab(rgba: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    ab = lab(rgba)[..., 1:]
    if box is not None:
        x, y, w, h = box
        ab = ab[y:y + h, x:x + w]
    return ab.reshape(-1, 2).mean(axis=0)


def _palette_mean_ab(name: str) -> np.ndarray:
    """The mean ab of a shipped palette (a histogram on the step-10 ab grid)."""
    from core.reference import GRID_RADIUS, load_palette

    hist = load_palette(name).numpy()
    centers = (np.arange(hist.shape[0]) - GRID_RADIUS) * 10.0
    return np.array([(hist.sum(axis=1) * centers).sum(), (hist.sum(axis=0) * centers).sum()])


def _reference_image(session) -> str:
    """An orange photo-like image (a gradient around ``REFERENCE_RGB``), as a path GIMP sees."""
    folder = session.host_path(session.new_dir("ref-"))
    shade = np.linspace(0.7, 1.0, 40, dtype=np.float32)[None, :, None]
    pixels = np.clip(np.array(REFERENCE_RGB, np.float32)[None, None, :] * shade, 0, 255)
    Image.fromarray(np.repeat(pixels, 30, axis=0).astype(np.uint8), "RGB").save(folder / "orange.png")
    return str(session.inner_path(folder / "orange.png"))


def _cases(inputs: dict[str, str], reference: str) -> list[dict]:
    default = {"model": "default"}  # the shipped model, which takes hints
    return [
        {"name": "add_hints", "path": inputs["gray"], "add_hint_layer": True},
        {"name": "empty_hints", "path": inputs["gray"], "add_hint_layer": True, "args": default,
         "then": [{"use_hints": False}]},
        {"name": "painted_hints", "path": inputs["gray"], "add_hint_layer": True, "paint": [[*HINT_BOX, HINT_RGB]],
         "args": default, "then": [{"use_hints": False}]},
        {"name": "hint_layer_selected", "path": inputs["gray"], "add_hint_layer": True,
         "paint": [[*HINT_BOX, HINT_RGB]], "select_layer": "Tinct hints", "args": default},
        {"name": "confidence", "path": inputs["gray"], "args": {**default, "confidence_layer": True}},
        {"name": "regression_confidence", "path": inputs["gray"],
         "args": {"model": "tinct-small-l2", "confidence_layer": True}},
        {"name": "reference", "path": inputs["gray"], "rgb": True, "add_layers": [{"path": reference, "name": "orange"}],
         "args": default, "then": [{"reference_layer": {"layer": "orange"}}, {"reference_file": {"file": reference}},
                                   {"palette": "parchment"}]},
        {"name": "two_references", "path": inputs["gray"], "rgb": True,
         "add_layers": [{"path": reference, "name": "orange"}],
         "args": {**default, "reference_layer": {"layer": "orange"}, "palette": "parchment"}},
        {"name": "gray_image_reference", "path": inputs["gray"], "add_layers": [{"path": reference, "name": "orange"}],
         "args": {**default, "reference_layer": {"layer": "orange"}}},
        {"name": "content", "path": inputs["gray"], "args": {**default, "content": "document"},
         "then": [{"content": "photo"}]},
        {"name": "content_animation", "path": inputs["gray"], "frames": 2, "animation": True,
         "args": {**default, "content": "document"}},
    ]


@pytest.fixture(scope="module")
def controlled(gimp_session):
    reason = engine_missing()
    if reason:
        pytest.skip(reason)
    inputs = write_inputs(gimp_session)
    cases = _cases(inputs, _reference_image(gimp_session))
    out, done = run_gimp(gimp_session, cases, env={"TINCT_MODELS": f"{MODEL},tinct-small-l2"})
    assert done.returncode == 0, done.stderr[-4000:]
    results = {case["name"]: json.loads((out / f"{case['name']}.json").read_text()) for case in cases}
    return out, results, done


def _names(layers: list[dict]) -> list[str]:
    """Layer names without the " #1" GIMP adds to a repeated name."""
    return [re.sub(r" #\d+$", "", layer["name"]) for layer in layers]


def _run(out, name: str, index: int, confidence: bool = False) -> np.ndarray:
    return read_raw(out / f"{name}.run{index}{'.confidence' if confidence else ''}", "R'G'B'A u8", SIZE)


def test_add_hint_layer_puts_an_empty_named_layer_above_the_photo_and_selects_it(controlled):
    _, results, _ = controlled
    record = results["add_hints"]
    assert record["add_hint_layer"] == ["success", None]
    hint = record["hint_layer"]
    assert (hint["name"], hint["width"], hint["height"], hint["x"], hint["y"], hint["alpha"], hint["visible"]) == (
        "Tinct hints", *SIZE, 0, 0, True, True)
    assert record["selected"] == ["Tinct hints"]
    assert record["hint_layer_again"], "a second call must select the existing hint layer, not add another"
    assert record["base_type_after"] == "rgb"  # a grayscale photo became RGB so that hints can have colour
    names = [layer["name"] for layer in record["layers"]]
    assert names[names.index("Tinct hints") + 2] == record["layers"][record["source_index"]]["name"]


def test_an_empty_hint_layer_changes_nothing(controlled):
    out, results, _ = controlled
    record = results["empty_hints"]
    assert [run["status"] for run in record["runs"]] == ["success", "success"]
    assert [_names(run["added"]) for run in record["runs"]] == [[f"Tinct default T=0.38 {RENDER}px"]] * 2
    assert np.array_equal(_run(out, "empty_hints", 0), _run(out, "empty_hints", 1))


def test_a_painted_hint_pulls_the_colour_there_toward_the_hint(controlled):
    out, results, _ = controlled
    record = results["painted_hints"]
    assert [run["status"] for run in record["runs"]] == ["success", "success"]
    assert record["runs"][0]["added"][0]["name"] == f"Tinct default T=0.38 {RENDER}px hints"
    # The result goes right above the photo, under the hint layer.
    names = [layer["name"] for layer in record["layers"]]
    assert names.index("Tinct hints") < names.index(f"Tinct default T=0.38 {RENDER}px hints") < record["source_index"]
    target = lab(np.array(HINT_RGB, np.float64).reshape(1, 1, 3) / 255.0)[0, 0, 1:]
    hinted, plain = _mean_ab(_run(out, "painted_hints", 0), HINT_BOX), _mean_ab(_run(out, "painted_hints", 1), HINT_BOX)
    assert np.linalg.norm(hinted - target) < 0.75 * np.linalg.norm(plain - target), (hinted, plain, target)
    assert hinted[1] < plain[1] - 10, "the hinted area did not turn bluer"  # b: negative is blue
    # The photo's lightness is kept under the hint.
    source = read_raw(out / "painted_hints.src_before", "R'G'B'A u8", SIZE)
    assert np.abs(lab(source)[..., 0] - lab(_run(out, "painted_hints", 0))[..., 0]).max() < 1.5


def test_colorize_with_the_hint_layer_selected_colorizes_the_photo_under_it(controlled):
    out, results, _ = controlled
    record = results["hint_layer_selected"]
    assert record["runs"][0]["status"] == "success", record["runs"][0]["error"]
    assert record["runs"][0]["added"][0]["name"].endswith(" hints")
    assert (out / "hint_layer_selected.src_before").read_bytes() == (out / "hint_layer_selected.src_after").read_bytes()


def test_the_confidence_layer_is_hidden_gray_and_the_size_of_the_photo(controlled):
    out, results, _ = controlled
    added = results["confidence"]["runs"][0]["added"]
    assert [layer["name"] for layer in added] == ["Tinct confidence", f"Tinct default T=0.38 {RENDER}px"]
    confidence, result = added
    assert (confidence["visible"], result["visible"]) == (False, True)
    assert (confidence["width"], confidence["height"], confidence["x"], confidence["y"]) == (*SIZE, 0, 0)
    names = [layer["name"] for layer in results["confidence"]["layers"]]
    assert names.index("Tinct confidence") + 1 == names.index(result["name"])  # right above its result
    pixels = _run(out, "confidence", 0, confidence=True)
    assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
    assert pixels[..., 0].std() > 0.01 and 0.0 < pixels[..., 0].mean() < 1.0


def test_a_regression_model_says_in_one_message_that_it_has_no_confidence_map(controlled):
    _, results, done = controlled
    run = results["regression_confidence"]["runs"][0]
    assert run["status"] == "success"
    assert [layer["name"] for layer in run["added"]] == [f"Tinct tinct-small-l2 T=0.38 {RENDER}px"]
    lines = [line for line in done.stderr.splitlines() if "no confidence map" in line]
    assert len(lines) == 1 and "regression model" in lines[0], lines


def test_a_reference_layer_file_or_palette_moves_the_mean_colour(controlled):
    out, results, _ = controlled
    record = results["reference"]
    assert [run["status"] for run in record["runs"]] == ["success"] * 4, [run["error"] for run in record["runs"]]
    assert [_names(run["added"])[0] for run in record["runs"]] == [
        f"Tinct default T=0.38 {RENDER}px", f"Tinct default T=0.38 {RENDER}px ref orange",
        f"Tinct default T=0.38 {RENDER}px ref orange.png", f"Tinct default T=0.38 {RENDER}px ref parchment"]
    plain, by_layer, by_file, parchment = (_mean_ab(_run(out, "reference", k)) for k in range(4))
    target = lab(np.array(REFERENCE_RGB, np.float64).reshape(1, 1, 3) / 255.0)[0, 0, 1:]
    for steered in (by_layer, by_file):
        assert np.linalg.norm(steered - target) < np.linalg.norm(plain - target) - 3, (steered, plain, target)
    assert np.abs(by_layer - by_file).max() < 2.0  # the same colours, from a layer or from the file
    palette = _palette_mean_ab("parchment")  # about (0.6, 13): cream, where the photo model leans red-orange
    assert np.linalg.norm(parchment - palette) < np.linalg.norm(plain - palette) - 3, (parchment, plain, palette)


def test_two_references_at_once_are_refused_with_one_message(controlled):
    _, results, _ = controlled
    run = results["two_references"]["runs"][0]
    assert run["status"] == "execution-error" and run["added"] == []
    assert run["error"].startswith("Tinct: choose one reference") and run["error"].count("Tinct") == 1, run["error"]


def test_a_reference_layer_in_a_grayscale_image_says_what_to_do(controlled):
    _, results, _ = controlled
    run = results["gray_image_reference"]["runs"][0]
    assert run["status"] == "execution-error" and run["added"] == []
    assert "Image > Mode > RGB" in run["error"] and "image file" in run["error"], run["error"]


def test_content_is_passed_to_the_engine(controlled):
    _, results, _ = controlled
    runs = results["content"]["runs"]
    assert [run["status"] for run in runs] == ["success", "success"]
    assert [_names(run["added"])[0] for run in runs] == [f"Tinct default T=0.38 {RENDER}px document",
                                                         f"Tinct default T=0.38 {RENDER}px"]
    assert results["content_animation"]["status"] == "success", results["content_animation"]["error"]
