"""The plug-in in a real, headless GIMP 3, loaded from the checkout, with the real engine worker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from core.options import NO_POST, OPTIONS, TEMPERATURE

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = [ROOT / "gimp_plugin"]
SCENARIOS = Path(__file__).with_name("gimp_scenarios.py")
MODEL = "tinct-small-v1"  # a shipped model other than the default, so the menu choice is seen to reach the engine
MODEL_ID = "tinct-small-v1"
RENDER = 64  # a small render size keeps the (CPU-only, shared) engine quick; sizes are the benchmark's job
SIZE = (64, 48)
DTYPES = {"u8": (np.uint8, 255.0), "u16": (np.uint16, 65535.0), "float": (np.float32, 1.0)}


def engine_missing() -> str | None:
    try:
        from core.loading import load_model

        load_model(MODEL)
    except Exception as exc:  # noqa: BLE001 - any failure means the engine cannot run yet
        return f"the engine cannot colorize yet: {exc!r}"
    return None


def run_gimp(session, cases: list[dict], env: dict | None = None) -> tuple[Path, object]:
    """Run the scenario script in GIMP; returns (host output dir, finished process)."""
    out = session.new_dir("out-")
    params = {"out_dir": str(out), "model": MODEL_ID, "args": {"render_size": RENDER}, "cases": cases}
    code = f"PARAMS = {json.dumps(params)!r}\nimport json\nPARAMS = json.loads(PARAMS)\n" + SCENARIOS.read_text()
    variables = {"TINCT_MODELS": MODEL, "TINCT_RUNTIME_DIR": str(session.new_dir("run-"))}
    variables.update(env or {})
    done = session.run_batch(code, plugin_dirs=PLUGIN_DIRS, env=variables, timeout=600)
    return session.host_path(out), done


def write_inputs(session) -> dict[str, str]:
    """Test images (a real photo, small), as paths GIMP sees."""
    # The bundled sample photo (black and white), tinted so that the RGB input has real colour.
    gray = np.asarray(Image.open(ROOT / "core" / "samples" / "garbage_truck.jpg").convert("L").resize(SIZE),
                      dtype=np.float32)
    ramp = np.linspace(0.55, 1.0, SIZE[0], dtype=np.float32)[None, :]
    tint = np.stack([ramp, np.full_like(ramp, 0.85), ramp[:, ::-1]], axis=2)
    source = Image.fromarray((gray[:, :, None] * tint + 0.5).astype(np.uint8), "RGB")
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
     "fmt": "R'G'B'A float", "args": {"temperature": 0.5}},
    {"name": "group", "image": "rgb", "group": True},
    {"name": "indexed", "image": "rgb", "indexed": True},
    {"name": "animation", "image": "gray", "frames": 3, "animation": True},
    {"name": "second_runs", "image": "gray", "args": {"temperature": 0.2},
     "then": [{"temperature": 0.9}, {"temperature": 0.9, "post": "crf", "post_strength": 0.5}]},
]


@pytest.fixture(scope="module")
def colorized(gimp_session):
    reason = engine_missing()
    if reason:
        pytest.skip(reason)
    inputs = write_inputs(gimp_session)
    cases = [{**case, "path": inputs[case["image"]]} for case in CASES]
    profile = gimp_session.host_path(gimp_session.new_dir("profile-")) / "calls.jsonl"
    out, done = run_gimp(gimp_session, cases, env={"TINCT_PROFILE": str(gimp_session.inner_path(profile))})
    assert done.returncode == 0, done.stderr[-4000:]
    results = {case["name"]: json.loads((out / f"{case['name']}.json").read_text()) for case in CASES}
    results["profile"] = [json.loads(line) for line in profile.read_text().splitlines()]
    return out, results, done


def test_every_call_is_answered_by_the_one_process_gimp_started(colorized):
    """The extension serves all calls: no call pays for starting Python and importing GIMP's bindings."""
    _, results, _ = colorized
    calls = results["profile"]
    assert len(calls) >= 6  # colorize calls: four formats, a layer group, three runs of one layer
    assert len({call["plugin_pid"] for call in calls}) == 1


def test_procedures_are_registered(gimp_session):
    out, done = run_gimp(gimp_session, [])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "registered.json").read_text()) == {
        "plug-in-tinct-colorize": True, "plug-in-tinct-add-hint-layer": True, "plug-in-tinct-colorize-animation": True}


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
    temperature = case.get("args", {}).get("temperature", TEMPERATURE)
    assert new["name"] == f"Tinct {MODEL} T={temperature:.2f} {RENDER}px"
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


def test_groups_and_indexed_images_are_refused_with_one_message(colorized):
    _, results, done = colorized
    for name, words in (("group", "is a layer group"), ("indexed", "indexed image")):
        record = results[name]
        assert record["status"] == "execution-error"
        assert len(record["layers"]) == len(record["layers_before"])
        assert words in record["error"] and record["error"].startswith("Tinct: ")
        assert record["error"].count("Tinct") == 1, record["error"]
        assert done.stderr.count(words) <= 1, "the failure was reported more than once"


def test_a_second_run_goes_above_the_first_and_is_named_by_its_settings(colorized):
    _, results, _ = colorized
    record = results["second_runs"]
    names = [layer["name"] for layer in record["layers"]]
    assert names == [f"Tinct {MODEL} T=0.90 crf 0.5 {RENDER}px", f"Tinct {MODEL} T=0.90 {RENDER}px",
                     f"Tinct {MODEL} T=0.20 {RENDER}px", *record["layers_before"]]


def test_procedures_take_their_arguments_from_the_option_table(gimp_session):
    out, done = run_gimp(gimp_session, [])
    assert done.returncode == 0, done.stderr[-3000:]
    procedures = json.loads((out / "procedures.json").read_text())
    for name, procedure in procedures.items():
        assert procedure["image_types"] == "RGB*, GRAY*", name  # indexed images: menu item greyed out
        arguments = {a["name"]: a for a in procedure["arguments"]}
        offered = [option for option in OPTIONS.values() if option.gimp_name in arguments]
        if name == "plug-in-tinct-add-hint-layer":
            assert offered == [], offered  # nothing to choose: it adds an empty layer
            continue
        assert {"temperature", "render_size", "post", "post_strength", "content"} <= {o.name for o in offered}
        if name == "plug-in-tinct-colorize":
            assert {"use_hints", "hint_layer", "reference_layer", "reference_file", "palette", "reference_strength",
                    "confidence_layer"} <= {o.name for o in offered}
        for option in offered:
            argument = arguments[option.gimp_name]
            assert (argument["label"], argument["tooltip"]) == (option.label, option.tooltip)
            if option.kind in ("float", "int"):
                assert (argument["minimum"], argument["maximum"], argument["default"]) == (
                    option.minimum, option.maximum, option.default), option.name
            elif option.kind == "steps":
                assert [c[0] for c in argument["choices"]] == [NO_POST.value, *(c.value for c in option.choices)]
            elif option.kind == "choice":
                assert argument["choices"] == [[c.value, c.label] for c in option.choices]
                assert argument["default"] == option.default
        # Mnemonics: one letter per control, none taken from the dialog's Reset, Cancel, OK, Load/Save Settings, Help.
        letters = [a["label"].split("_", 1)[1][0].lower() for a in procedure["arguments"] if "_" in a["label"]]
        assert len(letters) == len(set(letters)) and not set(letters) & set("rcolsh"), (name, letters)


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


def _extreme_cases(path: str) -> list[dict]:
    """Every numeric argument at its minimum and maximum, alone and with every post-processing choice and blend."""
    posts = [NO_POST.value, *(c.value for c in OPTIONS["post"].choices)]
    cases = []
    for procedure in ("colorize", "animation"):
        for name in ("temperature", "render_size", "post_strength"):
            option = OPTIONS[name]
            for value in (option.minimum, option.maximum):
                for post in posts:
                    args = {name: value, "post": post}
                    if name != "render_size":
                        args["render_size"] = RENDER
                    cases.append({"name": f"{procedure}-{name}-{value:g}-{post}", "path": path, "args": args,
                                  "animation": procedure == "animation"})
        for value in (False, True):
            key = "selection_mask" if procedure == "colorize" else "temporal"
            cases.append({"name": f"{procedure}-{key}-{value}", "path": path, "args": {key: value},
                          "animation": procedure == "animation", "frames": 2 if procedure == "animation" else 0,
                          "select": [4, 4, 20, 20]})
    cases += [{"name": f"colorize-blend-{c.value}", "path": path, "args": {"blend": c.value}}
              for c in OPTIONS["blend"].choices]
    return cases


def test_every_offered_value_works(gimp_session):
    reason = engine_missing()
    if reason:
        pytest.skip(reason)
    inputs = write_inputs(gimp_session)
    cases = _extreme_cases(inputs["gray"])
    out, done = run_gimp(gimp_session, cases)
    assert done.returncode == 0, done.stderr[-4000:]
    failed = {}
    for case in cases:
        record = json.loads((out / f"{case['name']}.json").read_text())
        if record["status"] != "success":
            failed[case["name"]] = record.get("error")
    assert not failed, failed
