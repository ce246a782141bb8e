"""Reading and writing images: modes, orientation, bit depth, ICC, bad files, atomic writes."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from engine_stand_ins import gradient_gray
from core.imageio import (
    ImageReadError,
    ImageWriteError,
    apply_orientation,
    read_image,
    write_image,
)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _rgb(h=20, w=30, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "mode, channels, dtype",
    [("L", 1, np.uint8), ("LA", 2, np.uint8), ("RGB", 3, np.uint8), ("RGBA", 4, np.uint8),
     ("I;16", 1, np.uint16), ("1", 1, np.uint8)],
)
def test_engine_reads_pillow_modes(tmp_path, mode, channels, dtype):
    base = Image.fromarray(_rgb()).convert("RGBA")
    image = base.convert("I;16") if mode == "I;16" else base.convert(mode)
    path = tmp_path / "in.png"
    image.save(path)
    decoded = read_image(path)
    assert decoded.pixels.shape == (20, 30, channels)
    assert decoded.pixels.dtype == dtype


def test_engine_reads_palette_with_transparency_as_rgba(tmp_path):
    image = Image.fromarray(_rgb()).convert("P")
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    assert read_image(path).pixels.shape == (20, 30, 4)
    image.save(tmp_path / "p2.png")
    assert read_image(tmp_path / "p2.png").pixels.shape == (20, 30, 3)


def test_engine_reads_cmyk_jpeg_as_rgb(tmp_path):
    path = tmp_path / "c.jpg"
    Image.fromarray(_rgb()).convert("CMYK").save(path)
    decoded = read_image(path)
    assert decoded.pixels.shape == (20, 30, 3) and decoded.pixels.dtype == np.uint8


def test_engine_reads_16bit_gray_png_and_tiff_exactly(tmp_path):
    gray = gradient_gray(dtype=np.uint16)
    for name in ("g.png", "g.tif"):
        Image.fromarray(gray).save(tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name).pixels[:, :, 0], gray)


def test_engine_reads_16bit_rgb_with_full_precision(tmp_path):
    rgb16 = np.random.default_rng(1).integers(0, 65536, (12, 17, 3), dtype=np.uint16)
    for name in ("c.png", "c.tif"):
        cv2.imwrite(str(tmp_path / name), rgb16[:, :, ::-1])
        decoded = read_image(tmp_path / name)
        assert decoded.pixels.dtype == np.uint16
        np.testing.assert_array_equal(decoded.pixels, rgb16)


def test_engine_reads_int32_and_float_modes(tmp_path):
    ints = np.array([[0, 300, 70000]], dtype=np.int32)
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i.tif").pixels[0, :, 0], [0, 300, 65535])
    floats = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    decoded = read_image(tmp_path / "f.tif")
    assert decoded.pixels.dtype == np.float32
    np.testing.assert_allclose(decoded.pixels[0, :, 0], floats[0])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_engine_orientation_matches_pillow(orientation):
    image = Image.fromarray(_rgb(5, 7))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=100)
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
        actual = apply_orientation(np.asarray(opened.convert("RGB")), orientation)
    np.testing.assert_array_equal(actual, expected)


def test_engine_read_applies_exif_rotation_and_resets_tag(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(_rgb(20, 30)).save(path, exif=exif.tobytes())
    decoded = read_image(path)
    assert decoded.pixels.shape[:2] == (30, 20)
    restored = Image.Exif()
    restored.load(decoded.exif)
    assert restored.get(0x0112) == 1


def test_engine_read_keeps_icc_profile(tmp_path):
    path = tmp_path / "icc.png"
    Image.fromarray(_rgb()).save(path, icc_profile=SRGB_ICC)
    assert read_image(path).icc_profile == SRGB_ICC


def test_engine_bad_files_give_one_line_errors(tmp_path, monkeypatch):
    missing = tmp_path / "missing.png"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image at all")
    truncated = tmp_path / "truncated.jpg"
    buffer = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buffer, format="JPEG")
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    for path, words in ((missing, "no such file"), (empty, "empty"), (junk, "not an image"), (truncated, "truncated")):
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        message = str(info.value)
        assert words in message and str(path) in message and "\n" not in message

    bomb = tmp_path / "bomb.png"
    Image.fromarray(_rgb(64, 64)).save(bomb)
    with pytest.raises(ImageReadError, match="decompression bomb.*--max-megapixels"):
        read_image(bomb, max_megapixels=0.001)
    assert read_image(bomb, max_megapixels=0.005).pixels.shape == (64, 64, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_engine_writes_16bit_with_icc_and_reads_back(tmp_path, suffix, channels):
    pixels = np.random.default_rng(2).integers(0, 65536, (9, 13, channels), dtype=np.uint16)
    path = tmp_path / f"out{suffix}"
    write_image(path, pixels, icc_profile=SRGB_ICC, dpi=(300.0, 300.0))
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert decoded.icc_profile == SRGB_ICC
    with Image.open(path) as image:  # other readers see a valid file of the right geometry
        assert image.size == (13, 9) and image.mode == ("RGBA" if channels == 4 else "RGB")
        assert round(image.info["dpi"][0]) == 300


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_engine_writes_8bit_with_icc(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    write_image(path, _rgb(), icc_profile=SRGB_ICC)
    with Image.open(path) as image:
        assert image.info.get("icc_profile") == SRGB_ICC
        assert image.mode == "RGB"


def test_engine_write_refuses_alpha_in_jpeg_and_leaves_nothing(tmp_path):
    with pytest.raises(ImageWriteError, match="alpha"):
        write_image(tmp_path / "out.jpg", np.zeros((4, 4, 4), np.uint8))
    assert os.listdir(tmp_path) == []


def test_engine_write_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous content")

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(target, _rgb())
    assert sorted(os.listdir(tmp_path)) == ["out.png"]
    assert target.read_bytes() == b"previous content"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_engine_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "out.png"
    write_image(path, _rgb())
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
