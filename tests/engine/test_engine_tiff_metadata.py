"""What a TIFF input carries must not leak into the outputs.

An 8-bit grayscale TIFF in gave a TIFF out that Pillow could not open (the input's
BitsPerSample / Photometric tags were carried over), the same TIFF tags leaked into PNG and JPEG
outputs as EXIF, and a TIFF without resolution came out claiming 1 dpi.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine_stand_ins import gradient_gray
from core import cli

# ImageWidth .. PlanarConfiguration and the other tags that describe a TIFF's own layout (not 270
# ImageDescription, 271/272 Make/Model, 274 Orientation).
LAYOUT_TAGS = set(range(256, 270)) | {273} | set(range(277, 285)) | {317, 338, 339}


def _colorize(tmp_path, source, fmt, capsys) -> Path:
    code = cli.main(["colorize", str(source), "--format", fmt, "--out-dir", str(tmp_path / "out"),
                     "--model", "tiny", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    return tmp_path / "out" / f"{source.stem}_color.{fmt}"


def test_engine_gray_tiff_gives_a_tiff_pillow_opens(tmp_path, capsys, tiny_models):
    source = tmp_path / "gray.tif"
    Image.fromarray(gradient_gray()).save(source, dpi=(300, 300), description="Grandma, 1932")
    out = _colorize(tmp_path, source, "tif", capsys)
    with Image.open(out) as image:
        image.load()
        assert image.mode == "RGB" and image.size == (64, 48)
        assert image.tag_v2[262] == 2  # RGB, not the input's BlackIsZero
        assert tuple(image.tag_v2[258]) == (8, 8, 8)
        assert [round(v) for v in image.info["dpi"]] == [300, 300]
        assert "Grandma, 1932" in image.tag_v2[270]  # the description is still true


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_engine_tiff_tags_do_not_leak_into_exif(tmp_path, capsys, tiny_models, fmt):
    source = tmp_path / "gray.tif"
    Image.fromarray(gradient_gray()).save(source, dpi=(200, 200))
    out = _colorize(tmp_path, source, fmt, capsys)
    with Image.open(out) as image:
        leaked = LAYOUT_TAGS & set(image.getexif())
        assert not leaked, f"TIFF layout tags leaked into the {fmt} EXIF: {sorted(leaked)}"
        assert [round(v) for v in image.info["dpi"]] == [200, 200]


def test_engine_tiff_without_resolution_claims_none(tmp_path, capsys, tiny_models):
    source = tmp_path / "gray.tif"
    Image.fromarray(gradient_gray()).save(source)
    with Image.open(source) as image:
        assert "dpi" not in image.info or image.tag_v2.get(296) != 2
    out = _colorize(tmp_path, source, "tif", capsys)
    with Image.open(out) as image:
        assert "dpi" not in image.info, f"a resolution was invented: {image.info.get('dpi')}"
