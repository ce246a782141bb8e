"""In a real GIMP 3: the new layer carries the provenance record as a parasite, and GIMP's own PNG
and JPEG export writes it into the file (read back with exiftool and ``tinct info``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import provenance
from core.paths import BUNDLED_WEIGHTS_DIR
from exiftool_env import read_tags

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = [ROOT / "gimp_plugin"]
TINCT_SHA256 = hashlib.sha256((BUNDLED_WEIGHTS_DIR / "tinct-small.safetensors").read_bytes()).hexdigest()

BATCH = r'''
import json, os
from gi.repository import Gimp, Gio

PDB = Gimp.get_pdb()
OUT = PARAMS["out_dir"]


def configured(name, **values):
    procedure = PDB.lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    for key, value in values.items():
        if key == "drawables":
            config.set_core_object_array("drawables", value)
        else:
            config.set_property(key.replace("_", "-"), value)
    return procedure.run(config)


def parasite_text(item):
    parasite = item.get_parasite("tinct-provenance")
    return None if parasite is None else bytes(parasite.get_data()).decode("utf-8")


def export(image, name):
    statuses = {}
    for ext, procedure in (("png", "file-png-export"), ("jpg", "file-jpeg-export")):
        path = os.path.join(OUT, f"{name}.{ext}")
        result = configured(procedure, image=image, file=Gio.File.new_for_path(path), include_xmp=True,
                            include_exif=True)
        statuses[ext] = result.index(0).value_nick
    return statuses


results = {}
for case in PARAMS["cases"]:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["path"]))
    source = image.get_layers()[0]
    common = dict(model="default", render_size=64, provenance=case["provenance"])
    if case.get("animation"):
        frame = source.copy()
        image.insert_layer(frame, None, 0)
        result = configured("plug-in-tinct-colorize-animation", image=image, drawables=[], **common)
        target = result.index(1)
        layers = list(target.get_layers())
    else:
        result = configured("plug-in-tinct-colorize", image=image, drawables=[source], **common)
        target, layers = image, [image.get_layers()[0]]
    results[case["name"]] = {"status": result.index(0).value_nick,
                             "parasites": [parasite_text(layer) for layer in layers],
                             "exports": export(target, case["name"])}
with open(os.path.join(OUT, "results.json"), "w") as handle:
    json.dump(results, handle)
'''

CASES = [
    {"name": "layer", "image": "jpeg", "provenance": True},
    {"name": "layer_off", "image": "png", "provenance": False},
    {"name": "animation", "image": "png", "provenance": True, "animation": True},
]


@pytest.fixture(scope="module")
def exported(gimp_session, exiftool):
    folder = gimp_session.host_path(gimp_session.new_dir("in-"))
    gray = Image.fromarray((np.add.outer(np.arange(48), np.arange(64)) * 2).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010E] = "Grandma, 1932"
    gray.save(folder / "gray.jpg", exif=exif.tobytes(), quality=95)
    gray.save(folder / "gray.png")
    paths = {"jpeg": folder / "gray.jpg", "png": folder / "gray.png"}
    cases = [{**case, "path": str(gimp_session.inner_path(paths[case["image"]]))} for case in CASES]
    out = gimp_session.new_dir("out-")
    params = {"out_dir": str(out), "cases": cases}
    code = f"PARAMS = {json.dumps(params)!r}\nimport json\nPARAMS = json.loads(PARAMS)\n" + BATCH
    variables = {"TINCT_RUNTIME_DIR": str(gimp_session.new_dir("run-"))}
    done = gimp_session.run_batch(code, plugin_dirs=PLUGIN_DIRS, env=variables, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    host = gimp_session.host_path(out)
    return host, json.loads((host / "results.json").read_text())


@pytest.mark.parametrize("name, layers", [("layer", 1), ("animation", 2)])
def test_gimp_new_layers_carry_the_record_as_a_parasite(exported, name, layers):
    _, results = exported
    result = results[name]
    assert result["status"] == "success"
    assert len(result["parasites"]) == layers and all(result["parasites"])
    for text in result["parasites"]:
        record = provenance.Record.from_dict(json.loads(text))
        assert record.model == "tinct-small" and record.weights_sha256 == TINCT_SHA256
        assert record.render_size == 64 and record.temporal is (True if name == "animation" else None)


@pytest.mark.parametrize("name", ["layer", "animation"])
@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_gimp_export_writes_the_record(exported, exiftool, name, ext):
    out, results = exported
    assert results[name]["exports"][ext] == "success"
    path = out / f"{name}.{ext}"
    tags = read_tags(exiftool, path, "-XMP:all")
    assert tags["XMP-tinct:Model"] == "tinct-small" and tags["XMP-tinct:WeightsSHA256"] == TINCT_SHA256
    assert tags["XMP-iptcExt:DigitalSourceType"] == provenance.DIGITAL_SOURCE_TYPE
    assert tags["XMP-dc:Description"] == provenance.DESCRIPTION
    if name == "layer":  # the JPEG input's own description is kept (GIMP's comment -> EXIF)
        assert read_tags(exiftool, path, "-EXIF:ImageDescription")["IFD0:ImageDescription"] == "Grandma, 1932"
    record = provenance.from_xmp(str(path))  # what `tinct info` shows
    assert record is not None and record.model == "tinct-small" and record.render_size == 64


def test_gimp_without_provenance_nothing_is_recorded(exported, exiftool):
    out, results = exported
    result = results["layer_off"]
    assert result["status"] == "success" and result["parasites"] == [None]
    for ext in ("png", "jpg"):
        assert result["exports"][ext] == "success"
        assert not [k for k in read_tags(exiftool, out / f"layer_off.{ext}", "-XMP:all") if k.startswith("XMP-tinct")]
