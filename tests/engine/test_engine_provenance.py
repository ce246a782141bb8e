"""Every still Tinct writes says what it is: the provenance record, read back by independent readers
(Pillow for PNG text and EXIF, exiftool for XMP) and by ``tinct info``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine_stand_ins import gradient_gray
from exiftool_env import read_tags
from core import cli, provenance
from core.errors import FAILED, INPUT
from core.imageio import write_image
from core.paths import BUNDLED_WEIGHTS_DIR

RECORD = provenance.Record(model="tinct-small", weights_sha256="0123456789abcdef" * 4, temperature=0.3,
                           decode="annealed", render_size=320, post=("segments", "crf"), post_strength=0.7,
                           mask=True, content="document", content_choice="auto", time="2026-12-02T03:04:05Z")
TINCT_SHA256 = hashlib.sha256((BUNDLED_WEIGHTS_DIR / "tinct-small.safetensors").read_bytes()).hexdigest()


def _pixels(channels: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(channels)
    peak = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, peak + 1, (24, 32, channels), dtype=dtype)


def _assert_xmp(tags: dict, record: provenance.Record) -> None:
    assert tags["XMP-xmp:CreatorTool"] == f"Tinct {record.version}"
    assert provenance.DESCRIPTION in tags["XMP-dc:Description"]
    assert tags["XMP-iptcExt:DigitalSourceType"] == provenance.DIGITAL_SOURCE_TYPE
    assert tags["XMP-tinct:Model"] == record.model
    assert tags["XMP-tinct:WeightsSHA256"] == record.weights_sha256
    assert float(tags["XMP-tinct:Temperature"]) == pytest.approx(record.temperature)
    assert int(tags["XMP-tinct:RenderSize"]) == record.render_size
    assert tags["XMP-tinct:PostSteps"] == (",".join(record.post) or "none")
    assert str(tags["XMP-tinct:Mask"]).lower() == str(record.mask).lower()
    assert str(tags["XMP-tinct:Hints"]).lower() == str(record.hints).lower()
    assert tags.get("XMP-tinct:Content") == record.content
    assert tags.get("XMP-tinct:ContentChoice") == record.content_choice


WRITERS = [  # (name, suffix, channels, dtype)
    ("png8", ".png", 3, np.uint8),
    ("png8_alpha", ".png", 4, np.uint8),
    ("png16_opencv", ".png", 3, np.uint16),
    ("png16_alpha", ".png", 4, np.uint16),
    ("jpeg", ".jpg", 3, np.uint8),
    ("jpeg_from16", ".jpg", 3, np.uint16),
    ("tiff8", ".tif", 3, np.uint8),
    ("tiff16_alpha", ".tif", 4, np.uint16),
    ("webp", ".webp", 3, np.uint8),
]


@pytest.mark.parametrize("name, suffix, channels, dtype", WRITERS, ids=[w[0] for w in WRITERS])
def test_engine_every_still_writer_embeds_the_record(tmp_path, exiftool, name, suffix, channels, dtype):
    path = tmp_path / f"out{suffix}"
    write_image(path, _pixels(channels, dtype), dpi=(300.0, 300.0), provenance=RECORD)
    _assert_xmp(read_tags(exiftool, path, "-XMP:all"), RECORD)
    with Image.open(path) as image:  # the format's simple fields, through Pillow
        image.load()
        if suffix == ".png":
            assert image.text["Software"] == RECORD.creator_tool
            assert image.text["Description"] == provenance.DESCRIPTION
        elif suffix == ".tif":
            assert image.tag_v2[305] == RECORD.creator_tool and image.tag_v2[270] == provenance.DESCRIPTION
        else:
            exif = image.getexif()
            assert exif[0x0131] == RECORD.creator_tool and exif[0x010E] == provenance.DESCRIPTION
    assert provenance.from_xmp(str(path)) == RECORD  # what `tinct info` reads


def test_engine_without_a_record_nothing_is_claimed(tmp_path, exiftool):
    for suffix in (".png", ".jpg", ".tif", ".webp"):
        path = tmp_path / f"plain{suffix}"
        write_image(path, _pixels(3, np.uint8))
        tags = read_tags(exiftool, path, "-XMP:all", "-EXIF:all", "-PNG:all")
        assert not [k for k in tags if k.startswith("XMP-") or k.endswith(":Software")], tags
        assert provenance.from_xmp(str(path)) is None


def test_engine_record_round_trips_through_xmp_and_json():
    packet = provenance.to_xmp(RECORD)
    assert packet.startswith(b"<?xpacket") and b"Colorized by Tinct" in packet
    assert provenance.from_xmp(packet) == RECORD
    assert provenance.Record.from_dict(json.loads(RECORD.to_json())) == RECORD
    in_memory = provenance.Record(model="TinyLogitsModel", weights_sha256=None, temperature=0.38,
                                  decode="annealed", render_size=256)
    assert b"WeightsSHA256" not in provenance.to_xmp(in_memory)
    assert provenance.from_xmp(provenance.to_xmp(in_memory)) == in_memory
    assert provenance.description_text("Grandma, 1932") == f"Grandma, 1932 ({provenance.DESCRIPTION})"
    assert provenance.description_text(provenance.description_text("x")) == provenance.description_text("x")


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_engine_colorize_records_model_digest_and_settings(tmp_path, capsys, exiftool):
    source = tmp_path / "photo.png"
    Image.fromarray(gradient_gray()).save(source)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(mask)
    code, _, err = _cli(["colorize", str(source), "--format", "jpg", "--render-size", "64", "--temperature", "0.3",
                         "--post", "tv", "--post-strength", "0.5", "--mask", str(mask), "--device", "cpu"], capsys)
    assert code == 0, err
    out = tmp_path / "photo_color.jpg"
    tags = read_tags(exiftool, out, "-XMP:all")
    expected = provenance.Record(model="tinct-small", weights_sha256=TINCT_SHA256, temperature=0.3, decode="annealed",
                                 render_size=64, post=("tv",), post_strength=0.5, mask=True, content="photo",
                                 content_choice="auto", time=tags["XMP-tinct:Time"])
    _assert_xmp(tags, expected)
    record = provenance.from_xmp(str(out))
    assert record.weights_sha256 == TINCT_SHA256 and record.post == ("tv",) and record.mask and not record.hints

    code, text, _ = _cli(["info", str(out)], capsys)
    assert code == 0
    assert text.splitlines()[0] == str(out) and provenance.DESCRIPTION in text
    assert "tinct-small" in text and TINCT_SHA256 in text and "tv (strength 0.5)" in text and "mask" in text
    assert "content:       photo (detected)" in text


def test_engine_colorize_records_the_content_each_image_got(tmp_path, capsys, exiftool):
    """``--content document`` is recorded as asked; ``auto`` records what the detector chose per image."""
    from core.training.synth_documents import render_page

    Image.fromarray(gradient_gray()).save(tmp_path / "photo.png")
    page = render_page(1, 256, 192)
    Image.fromarray(np.asarray(Image.fromarray(page).convert("L"))).save(tmp_path / "page.png")
    code, _, err = _cli(["colorize", str(tmp_path / "photo.png"), str(tmp_path / "page.png"), "--out-dir",
                         str(tmp_path / "auto")], capsys)
    assert code == 0, err
    got = {name: provenance.from_xmp(str(tmp_path / "auto" / f"{name}_color.png")) for name in ("photo", "page")}
    assert {name: (r.content, r.content_choice) for name, r in got.items()} == {
        "photo": ("photo", "auto"), "page": ("document", "auto")}
    code, _, err = _cli(["colorize", str(tmp_path / "photo.png"), "--out-dir", str(tmp_path / "asked"),
                         "--render-size", "64", "--content", "document"], capsys)
    assert code == 0, err
    record = provenance.from_xmp(str(tmp_path / "asked" / "photo_color.png"))
    assert (record.content, record.content_choice) == ("document", "document")
    code, text, _ = _cli(["info", str(tmp_path / "asked" / "photo_color.png")], capsys)
    assert code == 0 and "content:       document (as asked)" in text


def test_engine_no_provenance_embeds_nothing(tmp_path, capsys, exiftool):
    source = tmp_path / "photo.png"
    Image.fromarray(gradient_gray()).save(source)
    code, _, err = _cli(["colorize", str(source), "--no-provenance", "--render-size", "64", "--device", "cpu"], capsys)
    assert code == 0, err
    out = tmp_path / "photo_color.png"
    with Image.open(out) as image:
        assert "Software" not in image.text and "XML:com.adobe.xmp" not in image.text
    assert not [k for k in read_tags(exiftool, out, "-XMP:all") if k.startswith("XMP-")]
    code, text, _ = _cli(["info", str(out)], capsys)
    assert code == 1 and text.splitlines() == [str(out), "  no Tinct record"]


def test_engine_info_json_and_bad_files(tmp_path, capsys):
    good = tmp_path / "good.png"
    write_image(good, _pixels(3, np.uint8), provenance=RECORD)
    plain = tmp_path / "plain.png"
    write_image(plain, _pixels(3, np.uint8))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    code, text, err = _cli(["info", "--json", str(good), str(plain), str(junk), str(tmp_path / "missing.png")], capsys)
    assert code == FAILED  # unreadable files and one without a record: different kinds
    results = {Path(r["file"]).name: r for r in json.loads(text)}
    assert provenance.Record.from_dict(results["good.png"]["record"]) == RECORD
    assert results["plain.png"]["record"] is None and results["plain.png"]["error"] is None
    assert results["junk.png"]["error"] and "\n" not in results["junk.png"]["error"]
    assert "no such file" in results["missing.png"]["error"]
    code, text, err = _cli(["info", str(junk)], capsys)
    assert code == INPUT and len(err.strip().splitlines()) == 1 and "junk.png" in err


def test_engine_python_api_default_on_and_off():
    from core.pipeline import Colorizer
    from engine_stand_ins import TinyLogitsModel

    colorizer = Colorizer(TinyLogitsModel(), "cpu")
    image = Image.fromarray(gradient_gray())
    record = provenance.from_xmp(colorizer.colorize_image(image, render_size=64).info["xmp"])
    assert record.model == "TinyLogitsModel" and record.weights_sha256 is None and record.render_size == 64
    assert "xmp" not in colorizer.colorize_image(image, provenance=False).info
    import core

    assert core.colorize(gradient_gray(), TinyLogitsModel(), device="cpu", provenance=False).shape == (48, 64, 3)
    assert "xmp" in core.colorize(image, TinyLogitsModel(), device="cpu").info
    named = Colorizer("default", "cpu")
    assert named.model_name == "tinct-small" and named.weights_sha256 == TINCT_SHA256
    settings = named.settings(hint_ab=[None], mask=[None], post=("crf",))
    assert settings["hints"] is False and settings["mask"] is False and settings["post"] == ["crf"]


def test_engine_bench_provenance_reports_every_format(tmp_path, capsys):
    report = tmp_path / "bench.json"
    code, text, err = _cli(["bench-provenance", "--megapixels", "0.01", "--repeat", "1", "--json", str(report)], capsys)
    assert code == 0, err
    rows = json.loads(report.read_text())["rows"]
    assert [r["format"] for r in rows] == ["png", "png16", "jpg", "tif", "tif16", "webp"]
    assert all(r["build_ms"] > 0 and r["write_ms"] > 0 and r["plain_ms"] > 0 for r in rows)
    assert "building the record's metadata costs at most" in text and "target <= 5 ms" in text
