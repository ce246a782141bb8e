"""The plug-in in a real, headless GIMP 3, loaded from the checkout, with the real engine worker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = [ROOT / "gimp_plugin"]
SCENARIOS = Path(__file__).with_name("gimp_scenarios.py")
MODEL = "random:eccv16"  # seeded random weights: the tests check the plumbing, not colour quality
MODEL_ID = "random-eccv16"
LAYER_NAME = f"Tinct {MODEL} T=0.38"
SIZE = (64, 48)
DTYPES = {"u8": (np.uint8, 255.0), "u16": (np.uint16, 65535.0), "float": (np.float32, 1.0)}


def engine_missing() -> str | None:
    try:
        from core.models import create_model
        from core.pipeline import Colorizer  # noqa: F401

        create_model("eccv16")
    except Exception as exc:  # noqa: BLE001 - any failure means the engine cannot run yet
        return f"the engine cannot colorize yet: {exc!r}"
    return None


def run_gimp(session, cases: list[dict], env: dict | None = None) -> tuple[Path, object]:
    """Run the scenario script in GIMP; returns (host output dir, finished process)."""
    out = session.new_dir("out-")
    # A small render size keeps the (CPU-only, shared) engine quick; sizes are the benchmark's job.
    params = {"out_dir": str(out), "model": MODEL_ID, "args": {"render_size": 64}, "cases": cases}
    code = f"PARAMS = {json.dumps(params)!r}\nimport json\nPARAMS = json.loads(PARAMS)\n" + SCENARIOS.read_text()
    variables = {"TINCT_MODELS": MODEL, "TINCT_RUNTIME_DIR": str(session.new_dir("run-"))}
    variables.update(env or {})
    done = session.run_batch(code, plugin_dirs=PLUGIN_DIRS, env=variables, timeout=600)
    return session.host_path(out), done


def write_inputs(session) -> dict[str, str]:
    """Test images (a real photo, small), as paths GIMP sees."""
    photo = sorted((ROOT.parent / "shared" / "data" / "imagenet-samples").glob("*.JPEG"))
    source = Image.open(photo[0]).convert("RGB").resize(SIZE) if photo else Image.radial_gradient("L").convert(
        "RGB").resize(SIZE)
    folder = session.host_path(session.new_dir("in-"))
    paths = {"gray": folder / "gray.png", "rgb": folder / "rgb.png", "gray16": folder / "gray16.png"}
    source.convert("L").save(paths["gray"])
    source.save(paths["rgb"])
    gray16 = (np.asarray(source.convert("L"), dtype=np.float64) * 257 + np.linspace(0, 200, SIZE[0])).astype(np.uint16)
    Image.fromarray(gray16).save(paths["gray16"])
    return {key: str(session.inner_path(path)) for key, path in paths.items()}


def read_raw(path: Path, fmt: str, shape: tuple[int, int]) -> np.ndarray:
    dtype, scale = DTYPES[fmt.split()[-1]]
    pixels = np.fromfile(path, dtype=dtype).reshape(shape[1], shape[0], 4)
    return pixels.astype(np.float64) / scale


def lab(rgba: np.ndarray) -> np.ndarray:
    return rgb2lab(np.clip(rgba[..., :3], 0, 1))


CASES = [
    {"name": "gray8", "image": "gray"},
    {"name": "rgb8_mask", "image": "rgb", "select": [10, 8, 30, 20],
     "args": {"selection_mask": True, "blend": "lch-color"}},
    {"name": "gray16", "image": "gray16", "fmt": "R'G'B'A u16"},
    {"name": "float_alpha_offsets", "image": "rgb", "precision": "FLOAT_LINEAR", "alpha_offsets": [7, 5],
     "fmt": "R'G'B'A float", "temperature": 0.5},
    {"name": "group", "image": "rgb", "group": True},
    {"name": "indexed", "image": "rgb", "indexed": True},
    {"name": "animation", "image": "gray", "frames": 3, "animation": True},
]


@pytest.fixture(scope="module")
def colorized(gimp_session):
    reason = engine_missing()
    if reason:
        pytest.skip(reason)
    inputs = write_inputs(gimp_session)
    cases = [{**case, "path": inputs[case["image"]]} for case in CASES]
    out, done = run_gimp(gimp_session, cases)
    assert done.returncode == 0, done.stderr[-4000:]
    results = {case["name"]: json.loads((out / f"{case['name']}.json").read_text()) for case in CASES}
    return out, results, done


def test_procedures_are_registered(gimp_session):
    out, done = run_gimp(gimp_session, [])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "registered.json").read_text()) == {
        "plug-in-tinct-colorize": True, "plug-in-tinct-colorize-animation": True}


@pytest.mark.parametrize("name", ["gray8", "rgb8_mask", "gray16", "float_alpha_offsets"])
def test_adds_one_layer_above_with_source_L_and_colour(colorized, name):
    out, results, _ = colorized
    record = results[name]
    case = next(c for c in CASES if c["name"] == name)
    fmt = case.get("fmt", "R'G'B'A u8")
    assert record["status"] == "success"
    assert len(record["layers"]) == len(record["layers_before"]) + 1
    source = record["layers"][record["source_index"]]
    new = record["layers"][record["source_index"] - 1]
    assert new["name"] == f"Tinct {MODEL} T={case.get('temperature', 0.38):.2f}"
    assert (new["x"], new["y"], new["width"], new["height"]) == (source["x"], source["y"], source["width"],
                                                                 source["height"])
    assert record["base_type_after"] == "rgb"
    shape = (source["width"], source["height"])
    before = (out / f"{name}.src_before").read_bytes()
    assert before == (out / f"{name}.src_after").read_bytes(), "the source layer changed"
    src, result = read_raw(out / f"{name}.src_before", fmt, shape), read_raw(out / f"{name}.new", fmt, shape)
    src_lab, new_lab = lab(src), lab(result)
    opaque = src[..., 3] > 0
    assert np.abs(src_lab[..., 0] - new_lab[..., 0])[opaque].max() < 1.5
    # Random weights give weak but non-zero colour; an untouched grey stays below 0.01.
    assert np.abs(new_lab[..., 1:]).max() > 0.2, "the new layer has no colour"
    assert np.array_equal(src[..., 3], result[..., 3]), "alpha was not kept"


def test_offsets_and_alpha_are_kept(colorized):
    _, results, _ = colorized
    record = results["float_alpha_offsets"]
    new = record["layers"][record["source_index"] - 1]
    assert (new["x"], new["y"], new["alpha"]) == (7, 5, True)


def test_selection_becomes_the_mask_and_blend_mode_applies(colorized):
    _, results, _ = colorized
    record = results["rgb8_mask"]
    new = record["layers"][record["source_index"] - 1]
    assert new["mask"] and new["mode"] == "lch-color"
    assert not results["gray8"]["layers"][0]["mask"]


def test_grayscale_image_becomes_rgb(colorized):
    _, results, _ = colorized
    assert (results["gray8"]["base_type_before"], results["gray8"]["base_type_after"]) == ("gray", "rgb")


def test_groups_and_indexed_images_are_refused_with_a_message(colorized):
    _, results, done = colorized
    for name in ("group", "indexed"):
        assert results[name]["status"] == "execution-error"
        assert len(results[name]["layers"]) == len(results[name]["layers_before"])
    assert "is a layer group" in done.stderr and "indexed image" in done.stderr


def test_animation_frames_in_stack_order(colorized):
    out, results, _ = colorized
    record = results["animation"]
    assert record["status"] == "success"
    assert [layer["name"] for layer in record["new_layers"]] == ["frame 1", "frame 2", "frame 3"]
    assert [layer["x"] for layer in record["new_layers"]] == [0, 1, 2]
    assert record["new_base_type"] == "rgb" and len(record["layers"]) == 3
    for index in range(3):
        src = read_raw(out / f"animation.frame{index}", "R'G'B'A u8", SIZE)
        new = read_raw(out / f"animation.newframe{index}", "R'G'B'A u8", SIZE)
        assert np.abs(lab(src)[..., 0] - lab(new)[..., 0]).max() < 1.5
        assert np.abs(lab(new)[..., 1:]).max() > 0.2


def test_engine_unavailable_fails_with_a_message(gimp_session):
    inputs = write_inputs(gimp_session)
    out, done = run_gimp(gimp_session, [{"name": "no_engine", "path": inputs["rgb"]}],
                         env={"TINCT_PYTHON": "/nonexistent/bin/python"})
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "no_engine.json").read_text())
    assert record["status"] == "execution-error"
    assert [layer["name"] for layer in record["layers"]] == record["layers_before"]
    assert "Python was not found at /nonexistent/bin/python" in done.stderr
