"""Reading images into arrays and writing arrays to image files (the engine's file I/O edge).

Images travel as :class:`DecodedImage`: ``pixels`` ``[H, W, C]`` with ``C`` = 1 (gray), 2 (gray +
alpha), 3 (RGB) or 4 (RGBA), dtype ``uint8``, ``uint16`` (16-bit sources) or ``float32`` in
``[0, 1]`` (floating-point sources), EXIF orientation already applied, plus the metadata worth
keeping (ICC profile, EXIF, resolution).

Pillow 13 has no in-memory 16-bit RGB mode: it reduces 16-bit colour PNG/TIFF to 8 bits. Those
files are decoded with OpenCV instead, and 16-bit RGB(A) output is written as PNG through OpenCV
(with the ICC/EXIF/resolution chunks spliced in) or as TIFF by :func:`_encode_tiff16`.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import threading
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .inputcheck import check_pixels

OUTPUT_FORMATS: dict[str, str] = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif"}
FORMAT_SUFFIX: dict[str, str] = {"png": ".png", "jpg": ".jpg", "tif": ".tif"}
EXIF_ORIENTATION_TAG = 0x0112
# Decompression-bomb guard: a 164 KB PNG can declare 13000x13000 (169 MP, 3.8 GB of work). 120 MP
# is above every common camera (100 MP medium format) and below such files; ``--max-megapixels``
# raises it (the full-resolution stages then run in bands, so memory stays bounded).
DEFAULT_MAX_MEGAPIXELS = 120.0


class ImageReadError(Exception):
    """An input file cannot be read as an image (missing, empty, truncated, corrupt, too large)."""


class ImageWriteError(Exception):
    """An output file cannot be written (unsupported format, alpha in JPEG, I/O failure)."""


@dataclass
class DecodedImage:
    """An image as pixels plus the metadata to carry to the output.

    Attributes:
        pixels: ``[H, W, C]``, C in {1, 2, 3, 4} (gray, gray+alpha, RGB, RGBA); ``uint8``,
            ``uint16`` or ``float32`` in ``[0, 1]``; orientation applied.
        icc_profile: the source's ICC profile bytes, or None.
        exif: EXIF bytes with the orientation reset to 1, or None.
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
        raise ImageReadError(f"{path}: truncated or corrupt image ({_one_line(exc)})") from None
    return decoded


def _frame_count(im: Image.Image) -> int:
    try:
        return max(1, int(getattr(im, "n_frames", 1) or 1))
    except (OSError, ValueError, EOFError):  # a damaged later frame: the first one was read
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
    exif_bytes = None
    if len(exif):
        if EXIF_ORIENTATION_TAG in exif:
            exif[EXIF_ORIENTATION_TAG] = 1
        exif_bytes = exif.tobytes()
    dpi = im.info.get("dpi")
    dpi = (float(dpi[0]), float(dpi[1])) if dpi and len(dpi) == 2 and dpi[0] and dpi[1] else None
    return DecodedImage(pixels=pixels, icc_profile=icc, exif=exif_bytes, dpi=dpi)


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
    read as 0..255 when <= 255, else as 0..65535; then :func:`core.inputcheck.check_pixels`
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
    """``"png"``, ``"jpg"`` or ``"tif"`` from the file name's suffix.

    Raises:
        ImageWriteError: an unsupported suffix.
    """
    suffix = Path(path).suffix.lower()
    try:
        return OUTPUT_FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise ImageWriteError(f"{path}: unsupported output format {suffix or '(none)'!r}; use one of {known}") from None


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    jpeg_quality: int = 95,
) -> None:
    """Write RGB(A) pixels atomically: into a temporary file beside ``path``, then ``os.replace``.

    Args:
        path: target; the suffix picks the format (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``).
        pixels: ``[H, W, 3|4]`` ``uint8`` or ``uint16`` (16 bits are kept in PNG and TIFF; JPEG
            gets them rounded to 8 bits).
        icc_profile: an RGB ICC profile to embed (other colour spaces are dropped).
        exif: EXIF bytes to embed (8-bit outputs and PNG).
        dpi: resolution to record.
        jpeg_quality: JPEG quality, 1..100 (chroma is not subsampled).
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
    if pixels.dtype == np.uint16 and fmt == "jpg":
        pixels = to_uint8(pixels)
    if pixels.dtype == np.uint16:
        encoded = _encode_png16(pixels, icc_profile, exif, dpi) if fmt == "png" else _encode_tiff16(pixels, icc_profile, dpi)
        writer = lambda handle: handle.write(encoded)  # noqa: E731
    else:
        writer = lambda handle: _save_pil8(handle, pixels, fmt, icc_profile, exif, dpi, jpeg_quality)  # noqa: E731
    write_atomically(path, writer)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Round 16-bit samples to 8 bits (``round(v / 257)``)."""
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def write_atomically(path: Path, writer) -> None:
    """Call ``writer(binary_file)`` on a temp file beside ``path`` and move it into place.

    The temporary file is removed on any error (including KeyboardInterrupt).
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot create a file in {directory} ({_one_line(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ImageWriteError(f"{path}: cannot write ({_one_line(exc)})") from None
        raise


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _save_pil8(handle, pixels, fmt, icc_profile, exif, dpi, jpeg_quality) -> None:
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if pixels.shape[2] == 4 else "RGB")
    options: dict = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif:
        options["exif"] = exif
    if dpi:
        options["dpi"] = dpi
    if fmt == "jpg":
        image.save(handle, format="JPEG", quality=jpeg_quality, subsampling=0, **options)
    elif fmt == "png":
        image.save(handle, format="PNG", **options)
    else:
        image.save(handle, format="TIFF", compression="tiff_deflate", **options)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _encode_png16(pixels: np.ndarray, icc: bytes | None, exif: bytes | None, dpi) -> bytes:
    """16-bit RGB(A) PNG: OpenCV encodes the pixels; iCCP/eXIf/pHYs chunks go right after IHDR."""
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
    if exif:
        raw = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", raw)
    if dpi:
        per_metre = [max(1, int(round(d / 0.0254))) for d in dpi]
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1))
    return data[:ihdr_end] + extra + data[ihdr_end:]


def _encode_tiff16(pixels: np.ndarray, icc: bytes | None, dpi) -> bytes:
    """A baseline little-endian 16-bit RGB(A) TIFF: Deflate strips with horizontal differencing."""
    height, width, channels = pixels.shape
    rows_per_strip = max(1, (1 << 20) // (width * channels * 2))
    # Predictor 2: each sample stores its difference to the previous pixel's sample (mod 2^16).
    diff = pixels.astype("<u2", copy=True)
    diff[:, 1:] -= pixels[:, :-1]
    strips = [diff[y : y + rows_per_strip].tobytes() for y in range(0, height, rows_per_strip)]
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        compressed = list(pool.map(lambda s: zlib.compress(s, 6), strips))

    entries: list[tuple[int, int, int, bytes | int | list[int]]] = []  # (tag, type, count, value)
    SHORT, LONG, RATIONAL, UNDEFINED = 3, 4, 5, 7
    entries.append((256, LONG, 1, width))
    entries.append((257, LONG, 1, height))
    entries.append((258, SHORT, channels, [16] * channels))
    entries.append((259, SHORT, 1, 8))  # Adobe Deflate
    entries.append((262, SHORT, 1, 2))  # RGB
    entries.append((273, LONG, len(strips), [0] * len(strips)))  # patched below
    entries.append((277, SHORT, 1, channels))
    entries.append((278, LONG, 1, rows_per_strip))
    entries.append((279, LONG, len(strips), [len(c) for c in compressed]))
    if dpi:
        entries.append((282, RATIONAL, 1, [int(round(dpi[0] * 100)), 100]))
        entries.append((283, RATIONAL, 1, [int(round(dpi[1] * 100)), 100]))
    entries.append((284, SHORT, 1, 1))  # chunky
    if dpi:
        entries.append((296, SHORT, 1, 2))  # inches
    entries.append((317, SHORT, 1, 2))  # horizontal differencing
    if channels == 4:
        entries.append((338, SHORT, 1, 2))  # unassociated alpha
    entries.append((339, SHORT, channels, [1] * channels))  # unsigned integers
    if icc:
        entries.append((34675, UNDEFINED, len(icc), icc))

    type_size = {SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1}
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    out_of_line = ifd_offset + ifd_size
    blobs: list[bytes] = []
    packed_entries: list[bytes] = []

    def pack_value(kind: int, value) -> bytes:
        if kind == UNDEFINED:
            return bytes(value)
        if kind == RATIONAL:
            return struct.pack("<II", *value)
        values = value if isinstance(value, list) else [value]
        return struct.pack("<" + ("H" if kind == SHORT else "I") * len(values), *values)

    # First pass sizes the out-of-line area so strip offsets are known.
    ool_size = 0
    for tag, kind, count, value in entries:
        nbytes = type_size[kind] * count
        if nbytes > 4:
            ool_size += nbytes + (nbytes & 1)
    strip_data_start = out_of_line + ool_size
    offsets, position = [], strip_data_start
    for chunk in compressed:
        offsets.append(position)
        position += len(chunk)

    cursor = out_of_line
    for tag, kind, count, value in entries:
        if tag == 273:
            value = offsets
        payload = pack_value(kind, value)
        if len(payload) > 4:
            packed_entries.append(struct.pack("<HHII", tag, kind, count, cursor))
            padded = payload + (b"\x00" if len(payload) & 1 else b"")
            blobs.append(padded)
            cursor += len(padded)
        else:
            packed_entries.append(struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\x00"))
    header = b"II*\x00" + struct.pack("<I", ifd_offset)
    ifd = struct.pack("<H", len(entries)) + b"".join(packed_entries) + struct.pack("<I", 0)
    return header + ifd + b"".join(blobs) + b"".join(compressed)
