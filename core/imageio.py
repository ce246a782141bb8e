"""Reading images into arrays and writing arrays to image files (the engine's file I/O edge).

Images travel as :class:`DecodedImage`: ``pixels`` ``[H, W, C]`` with ``C`` = 1 (gray), 2 (gray +
alpha), 3 (RGB) or 4 (RGBA), dtype ``uint8``, ``uint16`` (16-bit sources) or ``float32`` in
``[0, 1]`` (floating-point sources), EXIF orientation already applied, plus the metadata that is
still true of a colorized version: the ICC profile, the resolution, the description, artist and
copyright (as EXIF with the orientation reset to 1). Nothing that describes the input file's own
layout (a TIFF's BitsPerSample, Photometric, strips...) or the camera is carried over.

Every writer embeds, in the same atomic write, the provenance record (``core.provenance``) as XMP
plus the format's simple fields (PNG ``iTXt`` Software/Description; EXIF Software/ImageDescription).
Pillow 13 has no in-memory 16-bit RGB mode: it reduces 16-bit colour PNG/TIFF to 8 bits. Those
files are decoded with OpenCV instead; 16-bit RGB(A) PNG is written through OpenCV (with the
metadata chunks spliced in), and every TIFF with ``tifffile``.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .errors import InputError
from .fs import FileWriteError, one_line, write_atomically
from .pixels import as_rgb8, check_pixels, to_uint8

if TYPE_CHECKING:
    from .provenance import Record

OUTPUT_FORMATS: dict[str, str] = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif",
                                  ".webp": "webp"}
FORMAT_SUFFIX: dict[str, str] = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "webp": ".webp"}
EXIF_ORIENTATION_TAG = 0x0112
EXIF_DESCRIPTION_TAG = 0x010E
EXIF_SOFTWARE_TAG = 0x0131
EXIF_ARTIST_TAG = 0x013B
EXIF_COPYRIGHT_TAG = 0x8298
# What an input's EXIF says that stays true of its colorized version (besides the orientation,
# which is applied to the pixels and reset to 1).
KEPT_EXIF_TAGS = (EXIF_DESCRIPTION_TAG, EXIF_ARTIST_TAG, EXIF_COPYRIGHT_TAG)
# IFD0 tags that describe a file's own layout: never written from a caller's EXIF.
_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 282,
                          283, 284, 290, 291, 292, 293, 296, 297, 301, 305, 317, 318, 319, 320, 322, 323, 324,
                          325, 338, 339, 340, 341, 513, 514, 529, 530, 531, 532, 700, 33723, 34377, 34675})
# Decompression-bomb guard: a 164 KB PNG can declare 13000x13000 (169 MP, 3.8 GB of work). 120 MP
# is above every common camera (100 MP medium format) and below such files; ``--max-megapixels``
# raises it (the full-resolution stages then run in bands, so memory stays bounded).
DEFAULT_MAX_MEGAPIXELS = 120.0


class ImageReadError(InputError):
    """An input file cannot be read as an image (missing, empty, truncated, corrupt, too large)."""


class ImageWriteError(FileWriteError):
    """An output image cannot be written (unsupported format, alpha in JPEG, I/O failure)."""


@dataclass
class DecodedImage:
    """An image as pixels plus the metadata to carry to the output.

    Attributes:
        pixels: ``[H, W, C]``, C in {1, 2, 3, 4} (gray, gray+alpha, RGB, RGBA); ``uint8``,
            ``uint16`` or ``float32`` in ``[0, 1]``; orientation applied.
        icc_profile: the source's ICC profile bytes, or None.
        exif: EXIF bytes holding only what stays true (:data:`KEPT_EXIF_TAGS`, the orientation
            reset to 1), or None.
        dpi: (x, y) resolution in dots per inch, or None.
        frames: how many frames (animation) or pages (multi-page TIFF) the file holds; only the
            first is in ``pixels``.
    """

    pixels: np.ndarray
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    frames: int = 1

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] in (2, 4)

    @property
    def is_gray(self) -> bool:
        return self.pixels.shape[2] in (1, 2)

    def rgb8(self) -> np.ndarray:
        """The pixels as ``[H, W, 3]`` uint8 sRGB (gray repeated, alpha dropped, depth rounded to 8 bits),
        as evaluation and training read files."""
        return as_rgb8(self.pixels)


def icc_color_space(profile: bytes | None) -> str | None:
    """The data colour space of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"``...), or None."""
    if not profile or len(profile) < 20:
        return None
    return profile[16:20].decode("ascii", "replace").strip()


def rgb_profile_or_none(profile: bytes | None) -> bytes | None:
    """``profile`` when it describes RGB data (so it can tag an RGB output), else None."""
    return profile if icc_color_space(profile) == "RGB" else None


# --------------------------------------------------------------------------------------------- reading


_PILLOW_LIMIT = threading.Lock()


@contextlib.contextmanager
def _own_bomb_check() -> Iterator[None]:
    """Pillow's fixed decompression-bomb limit (a two-line warning at 89 MP, an error at 179 MP)
    is replaced by :func:`read_image`'s own ``max_megapixels`` while a file is read."""
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def read_image(path: str | os.PathLike, *, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS) -> DecodedImage:
    """Read any image Pillow can open, with its orientation applied (the first frame of an
    animation or multi-page file; ``DecodedImage.frames`` says how many there are).

    Args:
        max_megapixels: larger images are refused before their pixels are decoded (None: no limit).
    Raises:
        ImageReadError: with a one-line message naming ``path`` when the file is missing, empty,
            not an image, truncated/corrupt, or larger than ``max_megapixels`` (the message names
            ``--max-megapixels``).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with _own_bomb_check(), Image.open(path) as im:
            width, height = im.size
            if max_megapixels is not None and width * height > max_megapixels * 1e6:
                raise ImageReadError(
                    f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
                    f"{max_megapixels:g}-megapixel limit (a possible decompression bomb); raise --max-megapixels "
                    f"to read it")
            decoded = _decode_opened(im, path)
            decoded.frames = _frame_count(im)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image format Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageReadError(f"{path}: truncated or corrupt image ({one_line(exc)})") from None
    return decoded


def _frame_count(im: Image.Image) -> int:
    try:
        return max(1, int(getattr(im, "n_frames", 1) or 1))
    except (OSError, ValueError, EOFError):  # a damaged later frame: the first one was read
        return 1


def _decode_opened(im: Image.Image, path: Path) -> DecodedImage:
    width, height = im.size
    if width == 0 or height == 0:
        raise ImageReadError(f"{path}: zero-sized image ({width}x{height})")
    # The tile list must be inspected before anything loads the image (PNG's getexif() does).
    is_16bit_color = im.mode in ("RGB", "RGBA") and _is_16bit_tile(im)
    im.load()
    icc = im.info.get("icc_profile") or None
    exif = im.getexif()
    orientation = int(exif.get(EXIF_ORIENTATION_TAG, 1) or 1)
    pixels = _decode_16bit_color(path, (height, width)) if is_16bit_color else None
    if pixels is None:
        pixels, icc = pil_to_pixels(im, icc)
    pixels = apply_orientation(pixels, orientation)
    exif_bytes = _still_true_exif(exif, im.info.get("Description"))
    dpi = im.info.get("dpi")
    if getattr(im, "tag_v2", None) is not None and 282 not in im.tag_v2:
        dpi = None  # Pillow reports 1 dpi for a TIFF without XResolution: that is no resolution
    dpi = (float(dpi[0]), float(dpi[1])) if dpi and len(dpi) == 2 and dpi[0] and dpi[1] else None
    return DecodedImage(pixels=pixels, icc_profile=icc, exif=exif_bytes, dpi=dpi)


def _still_true_exif(exif: Image.Exif, png_description: object = None) -> bytes | None:
    """EXIF bytes with only :data:`KEPT_EXIF_TAGS` (and Orientation = 1 where the source had one).

    A TIFF's ``getexif()`` is its whole first IFD (size, BitsPerSample, Photometric, strips...):
    none of that may reach an output. A PNG's ``Description`` text counts as its description.
    """
    kept = Image.Exif()
    for tag in KEPT_EXIF_TAGS:
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip("\x00 "):
            kept[tag] = value.strip("\x00 ")
    if EXIF_DESCRIPTION_TAG not in kept and isinstance(png_description, str) and png_description.strip():
        kept[EXIF_DESCRIPTION_TAG] = png_description.strip()
    if EXIF_ORIENTATION_TAG in exif:
        kept[EXIF_ORIENTATION_TAG] = 1
    return kept.tobytes() if len(kept) else None


def _is_16bit_tile(im: Image.Image) -> bool:
    for tile in getattr(im, "tile", None) or []:
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _decode_16bit_color(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """16-bit RGB(A) pixels decoded by OpenCV, or None when OpenCV cannot decode them losslessly."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != size:
        return None
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.shape[2] == 3:
        return np.ascontiguousarray(arr[:, :, ::-1])
    if arr.shape[2] == 4:
        return np.ascontiguousarray(arr[:, :, [2, 1, 0, 3]])
    return None


def pil_to_pixels(im: Image.Image, icc: bytes | None = None) -> tuple[np.ndarray, bytes | None]:
    """Convert a loaded Pillow image to ``[H, W, C]`` pixels (see :class:`DecodedImage`).

    Args:
        im: any Pillow image.
        icc: its ICC profile; a CMYK image is converted to sRGB through it when possible.
    Returns:
        (pixels, icc) where ``icc`` is the profile still describing the returned pixels.
    Raises:
        ValueError: a mode that cannot be turned into gray or RGB.
    """
    mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"))[:, :, None], icc
    if mode == "L":
        return np.asarray(im)[:, :, None], icc
    if mode in ("LA", "La"):
        return np.asarray(im.convert("LA")), icc
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB")), icc
    if mode in ("RGB", "RGBX", "YCbCr", "HSV"):
        return np.asarray(im.convert("RGB")), icc
    if mode in ("RGBA", "RGBa"):
        return np.asarray(im.convert("RGBA")), icc
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc)
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)[:, :, None], icc
    if mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[:, :, None], icc
    if mode == "F":
        return float_gray_to_unit(np.asarray(im, dtype=np.float32))[:, :, None], icc
    try:
        return np.asarray(im.convert("RGB")), None
    except ValueError:
        raise ValueError(f"unsupported image mode {mode!r}") from None


def float_gray_to_unit(values: np.ndarray) -> np.ndarray:
    """Map a floating-point image to ``[0, 1]``: kept when its largest finite value is <= 1, else
    read as 0..255 when <= 255, else as 0..65535; then :func:`core.pixels.check_pixels`
    (NaN -> 0, +inf -> 1, clipped). Returns float32."""
    values = values.astype(np.float32, copy=False)
    finite = values[np.isfinite(values)]
    peak = float(finite.max()) if finite.size else 0.0
    scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    return check_pixels((values / np.float32(scale)).astype(np.float32, copy=False))


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    if icc_color_space(icc) == "CMYK":
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return np.asarray(converted), None
        except (ImageCms.PyCMSError, OSError):
            pass
    return np.asarray(im.convert("RGB")), None


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to ``[H, W, C]`` pixels, as ``PIL.ImageOps.exif_transpose``."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return pixels if op is None else np.ascontiguousarray(op(pixels))


# --------------------------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike) -> str:
    """``"png"``, ``"jpg"``, ``"tif"`` or ``"webp"`` from the file name's suffix.

    Raises:
        ImageWriteError: an unsupported suffix.
    """
    suffix = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise ImageWriteError(f"{path}: unsupported output format {suffix or '(none)'!r}; use one of {known}") from None


@dataclass(frozen=True)
class OutputMetadata:
    """What an output file carries besides its pixels (see :func:`output_metadata`).

    Attributes:
        exif: EXIF tags for PNG/JPEG/WebP (layout tags removed; Software/ImageDescription set from
            the record), or None.
        tiff_tags: ``{tag: value}`` of the same EXIF tags, for a TIFF's own first IFD.
        xmp: the XMP packet (UTF-8), or None without a record.
        software: ``"Tinct VERSION"`` with a record, else None.
        description: the description (the source's, extended by the record's sentence), or None.
    """

    exif: Image.Exif | None
    tiff_tags: dict[int, object]
    xmp: bytes | None
    software: str | None
    description: str | None


def output_metadata(exif: bytes | None, provenance: "Record | None") -> OutputMetadata:
    """The metadata to embed: ``exif`` (tags describing the source file's layout removed) plus the
    provenance record's XMP, Software and ImageDescription.

    Args:
        exif: EXIF bytes (usually :attr:`DecodedImage.exif`), or None.
        provenance: the record, or None to embed none (``--no-provenance``).
    """
    tags = Image.Exif()
    if exif:
        source = Image.Exif()
        source.load(exif)
        for tag, value in source.items():
            if tag not in _LAYOUT_TAGS:
                tags[tag] = value
    description = tags.get(EXIF_DESCRIPTION_TAG)
    description = description.strip("\x00 ") or None if isinstance(description, str) else None
    xmp = software = None
    if provenance is not None:
        from .provenance import to_xmp

        if description and provenance.source_description is None:
            provenance = provenance.with_source_description(description)
        description, software = provenance.description, provenance.creator_tool
        xmp = to_xmp(provenance)
        tags[EXIF_DESCRIPTION_TAG] = description
        tags[EXIF_SOFTWARE_TAG] = software
    tiff_tags = {tag: value for tag, value in tags.items()  # sub-IFD pointers are offsets into the EXIF block
                 if isinstance(value, (str, int)) and tag not in (34665, 34853, 40965)}
    return OutputMetadata(exif=tags if len(tags) else None, tiff_tags=tiff_tags, xmp=xmp, software=software,
                          description=description)


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    jpeg_quality: int = 95,
    provenance: "Record | None" = None,
) -> None:
    """Write RGB(A) pixels atomically: into a temporary file beside ``path``, then ``os.replace``.

    Args:
        path: target; the suffix picks the format (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``,
            ``.webp``).
        pixels: ``[H, W, 3|4]`` ``uint8`` or ``uint16`` (16 bits are kept in PNG and TIFF; JPEG
            and WebP get them rounded to 8 bits).
        icc_profile: an RGB ICC profile to embed (other colour spaces are dropped).
        exif: EXIF bytes to embed (tags describing another file's layout are dropped); in a TIFF
            its tags go into the file's own first IFD.
        dpi: resolution to record; None records none (a TIFF then says "no absolute unit").
        jpeg_quality: JPEG and WebP quality, 1..100 (JPEG chroma is not subsampled).
        provenance: the record to embed as XMP plus Software/Description fields (None: none).
    Raises:
        ImageWriteError: unsupported format or pixels, alpha in a JPEG, or an OS error; no file is
            left behind.
    """
    path = Path(path)
    fmt = output_format(path)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype not in (np.uint8, np.uint16):
        raise ImageWriteError(f"{path}: expected [H,W,3|4] uint8/uint16 pixels, got {pixels.shape} {pixels.dtype}")
    if fmt == "jpg" and pixels.shape[2] == 4:
        raise ImageWriteError(f"{path}: JPEG cannot store the alpha channel; write PNG or TIFF (--format png)")
    icc_profile = rgb_profile_or_none(icc_profile)
    meta = output_metadata(exif, provenance)
    if pixels.dtype == np.uint16 and fmt in ("jpg", "webp"):
        pixels = to_uint8(pixels)
    if fmt == "tif":
        writer = lambda handle: _write_tiff(handle, pixels, icc_profile, meta, dpi)  # noqa: E731
    elif pixels.dtype == np.uint16:
        encoded = _encode_png16(pixels, icc_profile, meta, dpi)
        writer = lambda handle: handle.write(encoded)  # noqa: E731
    else:
        writer = lambda handle: _save_pil8(handle, pixels, fmt, icc_profile, meta, dpi, jpeg_quality)  # noqa: E731
    write_atomically(path, writer, error=ImageWriteError)


def _save_pil8(handle, pixels, fmt, icc_profile, meta: OutputMetadata, dpi, jpeg_quality) -> None:
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if pixels.shape[2] == 4 else "RGB")
    options: dict = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if meta.exif is not None:
        options["exif"] = meta.exif.tobytes()
    if dpi and fmt != "webp":
        options["dpi"] = dpi
    if fmt == "jpg":
        image.save(handle, format="JPEG", quality=jpeg_quality, subsampling=0, xmp=meta.xmp or b"", **options)
    elif fmt == "webp":
        image.save(handle, format="WEBP", quality=jpeg_quality, xmp=meta.xmp or b"", **options)
    else:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for keyword, text in _png_texts(meta):
            info.add_itxt(keyword, text)
        image.save(handle, format="PNG", pnginfo=info, **options)


def _png_texts(meta: OutputMetadata) -> list[tuple[str, str]]:
    """(keyword, text) of the PNG ``iTXt`` chunks: Software, Description and the XMP packet."""
    texts = []
    if meta.software:
        texts.append(("Software", meta.software))
    if meta.description:
        texts.append(("Description", meta.description))
    if meta.xmp:
        texts.append(("XML:com.adobe.xmp", meta.xmp.decode("utf-8")))
    return texts


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _itxt_chunk(keyword: str, text: str) -> bytes:
    """An uncompressed PNG ``iTXt`` chunk (no language tag)."""
    return _png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


def _encode_png16(pixels: np.ndarray, icc: bytes | None, meta: OutputMetadata, dpi) -> bytes:
    """16-bit RGB(A) PNG: OpenCV encodes the pixels; iCCP/eXIf/pHYs/iTXt chunks go right after IHDR."""
    import cv2

    order = [2, 1, 0, 3] if pixels.shape[2] == 4 else [2, 1, 0]
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, order]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ImageWriteError("OpenCV could not encode the 16-bit PNG")
    data = buffer.tobytes()
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if meta.exif is not None:
        raw = meta.exif.tobytes()
        extra += _png_chunk(b"eXIf", raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
    if dpi:
        per_metre = [max(1, int(round(d / 0.0254))) for d in dpi]
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1))
    for keyword, text in _png_texts(meta):
        extra += _itxt_chunk(keyword, text)
    return data[:ihdr_end] + extra + data[ihdr_end:]


def _ascii(value: object) -> str:
    """TIFF ASCII fields hold 7-bit text; anything else is kept in full in the XMP."""
    return str(value).encode("ascii", "replace").decode("ascii")


def _write_tiff(handle, pixels: np.ndarray, icc: bytes | None, meta: OutputMetadata, dpi) -> None:
    """An RGB(A) TIFF of ``pixels``' depth written by tifffile: Deflate with horizontal
    differencing, the metadata in its first IFD (EXIF tags as TIFF tags, XMP as tag 700)."""
    import tifffile

    extratags = []
    for tag, value in sorted(meta.tiff_tags.items()):
        if tag in (EXIF_DESCRIPTION_TAG, EXIF_SOFTWARE_TAG):
            continue  # written through tifffile's own arguments below
        if isinstance(value, str):
            extratags.append((tag, "s", 0, _ascii(value), True))
        elif isinstance(value, int) and 0 <= value < 65536:
            extratags.append((tag, "H", 1, value, True))
    if meta.xmp:
        extratags.append((700, "B", len(meta.xmp), meta.xmp, True))
    encoded = io.BytesIO()  # tifffile wants a named file; the temp file's handle has only a descriptor
    try:
        tifffile.imwrite(
            encoded,
            pixels,
            photometric="rgb",
            extrasamples=("unassalpha",) if pixels.shape[2] == 4 else None,
            compression="zlib",
            predictor=True,
            metadata=None,  # no tifffile JSON in ImageDescription
            description=_ascii(meta.description) if meta.description else None,
            software=_ascii(meta.software) if meta.software else "",  # None would write "tifffile.py"
            resolution=(float(dpi[0]), float(dpi[1])) if dpi else None,
            resolutionunit="INCH" if dpi else "NONE",
            iccprofile=icc,
            extratags=extratags,
            maxworkers=os.cpu_count() or 1,
        )
    except ValueError as exc:
        raise ImageWriteError(f"tifffile could not encode the TIFF ({one_line(exc)})") from None
    handle.write(encoded.getbuffer())
