"""Reading and writing frame streams: video files (PyAV/FFmpeg) and folders of numbered images.

Readers yield :class:`SourceFrame` items in display order (RGB ``uint8``, or ``uint16`` for
high-bit-depth sources); a frame that cannot be decoded is yielded with ``rgb=None`` and an
``error`` so the caller decides whether to go on. Writers never write under the final name
directly: they fill a temporary file (or folder) beside it and rename it in :meth:`commit`;
:meth:`abort` removes the temporary. The input is opened read-only.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from core.errors import InputError, OutputError, UsageError
from core.fs import discard, move_into_place, temp_sibling
from core.outputs import mark_folder, output_conflict, replace_folder, replace_folder_problem
from core.imageio import OUTPUT_FORMATS, DecodedImage, ImageReadError, ImageWriteError, read_image, write_image
from core.pixels import convert_depth, gray_to_rgb, join_alpha, split_alpha

if TYPE_CHECKING:
    from core.provenance import Record

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")
LOSSY_VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
LOSSLESS_VIDEO_SUFFIXES = (".mkv", ".avi", ".nut")


class VideoIOError(InputError):
    """An input video or frame folder that cannot be read (one-line message); its subclasses: an output
    that cannot be written, an encoding option that cannot be used."""


class VideoWriteError(OutputError, VideoIOError):
    """The output video or frame folder cannot be written there (exists, is the input, no folder, I/O)."""


class VideoOptionError(UsageError, VideoIOError):
    """An encoding option or output type that cannot be used (codec, suffix, lossless, frame type)."""


@dataclass(frozen=True)
class StreamInfo:
    """What the writer needs to know about the source.

    ``fps`` is the average frame rate (``None`` for a frame folder without ``--fps``);
    ``time_base`` the video stream's time base (``None`` for folders); ``n_frames`` the
    container's frame count (``None`` when unknown; an estimate for progress only);
    ``rotation`` the display rotation in degrees counter-clockwise; ``high_bit_depth`` whether
    frames come as ``uint16``; ``alpha`` whether (the first) frames have an alpha channel.
    """

    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction | None
    n_frames: int | None
    rotation: int
    high_bit_depth: bool
    audio_streams: int
    alpha: bool = False


@dataclass
class SourceFrame:
    """One input frame. ``rgb`` is ``[H, W, 3]`` uint8/uint16, or ``None`` when the frame is damaged
    (``error`` then says why). ``pts`` is in the source's time base (``None`` for folders);
    ``name`` is the file stem for frame folders.

    Frame images also carry what a still keeps (``core.imageio.DecodedImage``): ``alpha`` ``[H, W]``
    of ``rgb``'s dtype (None when opaque), the ICC profile, the still-true EXIF and the resolution."""

    index: int
    rgb: np.ndarray | None
    pts: int | None = None
    name: str | None = None
    error: str | None = None
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None


class FrameReader(Protocol):
    info: StreamInfo

    def frames(self) -> Iterator[SourceFrame]: ...

    def close(self) -> None: ...


class FrameWriter(Protocol):
    wants_uint16: bool

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None: ...

    def commit(self) -> Path: ...

    def abort(self) -> None: ...


# ----------------------------------------------------------------------------- readers


class VideoFileReader:
    """Decode the first video stream of any container FFmpeg reads.

    ``threads``: the decoder's threads (0: FFmpeg's choice, one per core); a one-thread cluster
    worker passes 1, so that two workers on two cores do not each decode on both."""

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        try:
            self._container = av.open(str(self.path), "r")
        except (av.error.FFmpegError, OSError) as e:
            raise VideoIOError(f"cannot open {self.path} as a video: {_short(e)}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoIOError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = threads
        # One converter for every frame: a frame's own to_ndarray(format=...) builds a new swscale
        # context each time, which costs 5-20x the conversion itself at film sizes.
        self._to_rgb = VideoReformatter()
        cc = self._stream.codec_context
        fmt = cc.format
        high = bool(fmt is not None and max((c.bits for c in fmt.components), default=8) > 8)
        rotation = _stream_rotation(self.path)
        self.info = StreamInfo(
            width=cc.width, height=cc.height,
            fps=Fraction(self._stream.average_rate) if self._stream.average_rate else None,
            time_base=Fraction(self._stream.time_base) if self._stream.time_base else None,
            n_frames=self._stream.frames or None, rotation=rotation, high_bit_depth=high,
            audio_streams=len(self._container.streams.audio))

    def seek(self, pts: int) -> None:
        """Position the next :meth:`frames` at the keyframe at or before ``pts`` (the stream's time base);
        frames before ``pts`` still come and are the caller's to drop."""
        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as e:
            raise VideoIOError(f"cannot seek in {self.path}: {_short(e)}") from None

    def frames(self) -> Iterator[SourceFrame]:
        fmt = "rgb48le" if self.info.high_bit_depth else "rgb24"
        index = 0
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                # The demuxer itself failed: nothing after this point can be located reliably.
                yield SourceFrame(index, None, error=f"container damaged, reading stopped: {_short(e)}")
                return
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as e:
                yield SourceFrame(index, None, pts=packet.pts, error=f"undecodable packet: {_short(e)}")
                index += 1
                continue
            for frame in decoded:
                if frame.is_corrupt:
                    yield SourceFrame(index, None, pts=frame.pts, error="frame decoded with errors")
                elif (frame.width, frame.height) != (self.info.width, self.info.height):
                    yield SourceFrame(index, None, pts=frame.pts,
                                      error=f"frame size changed to {frame.width}x{frame.height}")
                else:
                    yield SourceFrame(index, self._to_rgb.reformat(frame, format=fmt).to_ndarray(), pts=frame.pts)
                index += 1

    def close(self) -> None:
        self._container.close()


def _stream_rotation(path: Path) -> int:
    """Display rotation (degrees counter-clockwise) of the first video frame, 0 when none."""
    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                return int(round(frame.rotation or 0)) % 360
    except av.error.FFmpegError:
        return 0
    return 0


_NUMBER = re.compile(r"(\d+)")


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in _NUMBER.split(p.name)]


class FrameFolderReader:
    """Numbered images in a folder (scanned film), in natural order of their names.

    Each file is read like a still (``core.imageio.read_image``: EXIF orientation applied; alpha,
    ICC profile, EXIF and resolution kept on the :class:`SourceFrame`). 8-bit images give ``uint8``
    frames, 16-bit and floating-point ones ``uint16``; gray images are expanded to RGB. An
    unreadable file, or one whose size differs from the first, is yielded as a damaged frame.
    """

    def __init__(self, folder: str | Path, fps: Fraction | None = None):
        self.folder = Path(folder)
        self.paths = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=_natural_key)
        if not self.paths:
            raise VideoIOError(f"{self.folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        first = None
        for p in self.paths:
            first = _read_frame(p)
            if first is not None:
                break
        if first is None:
            raise VideoIOError(f"no image in {self.folder} could be read")
        height, width = first.pixels.shape[:2]
        self.info = StreamInfo(width=width, height=height, fps=fps, time_base=None, n_frames=len(self.paths),
                               rotation=0, high_bit_depth=first.pixels.dtype != np.uint8, audio_streams=0,
                               alpha=first.has_alpha)

    def frames(self) -> Iterator[SourceFrame]:
        depth = np.uint16 if self.info.high_bit_depth else np.uint8
        for i, p in enumerate(self.paths):
            decoded = _read_frame(p)
            if decoded is None:
                yield SourceFrame(i, None, name=p.stem, error=f"unreadable image {p.name}")
                continue
            height, width = decoded.pixels.shape[:2]
            if (height, width) != (self.info.height, self.info.width):
                yield SourceFrame(i, None, name=p.stem,
                                  error=f"{p.name} is {width}x{height}, not {self.info.width}x{self.info.height}")
                continue
            color, alpha = split_alpha(convert_depth(decoded.pixels, depth))
            yield SourceFrame(i, np.ascontiguousarray(gray_to_rgb(color)), name=p.stem,
                              alpha=None if alpha is None else np.ascontiguousarray(alpha),
                              icc_profile=decoded.icc_profile, exif=decoded.exif, dpi=decoded.dpi)

    def close(self) -> None:
        pass


def _read_frame(path: Path) -> DecodedImage | None:
    """The frame image as a still is read, or ``None`` if the file is not a readable image."""
    try:
        return read_image(path, max_megapixels=None)
    except ImageReadError:
        return None


def open_reader(path: str | Path, fps: Fraction | None = None) -> FrameReader:
    """A folder gives a :class:`FrameFolderReader`, anything else a :class:`VideoFileReader`."""
    path = Path(path)
    if not path.exists():
        raise VideoIOError(f"input {path} does not exist")
    return FrameFolderReader(path, fps) if path.is_dir() else VideoFileReader(path)


# ----------------------------------------------------------------------------- writers


@dataclass(frozen=True)
class EncodeOptions:
    """Output encoding. ``codec`` None picks H.264 (``libx264``), or FFV1 when ``lossless``.
    ``crf``/``preset`` apply to x264/x265; ``fps`` is used when the source has no rate (folders);
    ``frame_suffix`` is the image type of folder output. ``provenance``: the record every output
    carries (container tags of a video, the metadata of every frame image), or None.
    ``codec_threads``: the encoder's threads (0: the codec's choice)."""

    codec: str | None = None
    crf: int = 18
    preset: str = "medium"
    lossless: bool = False
    fps: Fraction = Fraction(24)
    frame_suffix: str = ".png"
    overwrite: bool = False
    provenance: "Record | None" = None
    codec_threads: int = 0

    @property
    def video_codec(self) -> str:
        """The codec a video file is encoded with: ``codec``, else FFV1 when ``lossless``, else H.264."""
        return self.codec or ("ffv1" if self.lossless else "libx264")


def encoding_notes(info: StreamInfo, codec: str) -> list[str]:
    """What encoding ``info``'s frames with ``codec`` into a video file will not keep as it is."""
    notes = []
    if info.alpha:
        notes.append("a video file cannot hold alpha: the frames' alpha channel is not kept")
    if codec not in ("ffv1", "libx264rgb") and (info.width % 2 or info.height % 2):
        notes.append(f"odd frame size {info.width}x{info.height}: encoded as 4:4:4 "
                     "(4:2:0 needs even sizes; some players cannot decode 4:4:4)")
    return notes


def _check_output(final: Path, overwrite: bool, is_dir: bool) -> None:
    if not final.parent.is_dir():
        raise VideoWriteError(f"output folder {final.parent} does not exist")
    if is_dir:
        problem = replace_folder_problem(final, overwrite)
        if problem:
            raise VideoWriteError(problem)
    elif final.exists():
        if final.is_dir():
            raise VideoWriteError(f"output {final} exists and is a folder")
        if not overwrite:
            raise VideoWriteError(f"output {final} already exists (use --overwrite to replace it)")


class VideoFileWriter:
    """Encode frames into a video container; copy the source's audio packets unchanged.

    Video pts are the source's (in the source time base), so frame timing, including a
    variable frame rate, is kept; the display rotation is written back as stream metadata.
    Audio packets are read from a second demuxer on the source and interleaved by time;
    streams whose codec the output container cannot hold are dropped (reported in ``notes``).
    """

    wants_uint16 = False

    def __init__(self, final: str | Path, info: StreamInfo, options: EncodeOptions,
                 audio_source: str | Path | None = None):
        self.final = Path(final)
        suffix = self.final.suffix.lower()
        codec = options.video_codec
        if options.lossless and codec != "ffv1":
            raise VideoOptionError(f"--lossless uses FFV1, not {codec}")
        if codec == "ffv1" and suffix not in LOSSLESS_VIDEO_SUFFIXES:
            raise VideoOptionError(f"FFV1 (lossless) needs a {'/'.join(LOSSLESS_VIDEO_SUFFIXES)} output, not {suffix or 'no suffix'}")
        if suffix not in LOSSY_VIDEO_SUFFIXES + LOSSLESS_VIDEO_SUFFIXES:
            raise VideoOptionError(f"unknown video suffix {suffix or '(none)'} for {self.final}; "
                               f"use one of {', '.join(sorted(set(LOSSY_VIDEO_SUFFIXES + LOSSLESS_VIDEO_SUFFIXES)))}")
        _check_output(self.final, options.overwrite, is_dir=False)
        self.notes: list[str] = []
        self.codec = codec
        # PyAV picks the container from the file name, so the temporary keeps the final suffix.
        self.temp = temp_sibling(self.final, suffix=self.final.suffix, error=VideoWriteError)
        try:
            self._out = av.open(str(self.temp), "w")
        except (av.error.FFmpegError, OSError) as e:
            discard(self.temp)
            raise VideoWriteError(f"cannot write {self.final}: {_short(e)}") from None
        try:
            self._setup(info, options, codec, audio_source)
        except Exception:
            self.abort()
            raise

    def _setup(self, info: StreamInfo, options: EncodeOptions, codec: str, audio_source: str | Path | None) -> None:
        fps = info.fps or options.fps
        self._time_base = info.time_base or Fraction(1) / fps
        self._frame_step = max(int(round(1 / (fps * self._time_base))), 1)
        self.notes.extend(encoding_notes(info, codec))
        self._video = self._add_video(info, options, codec, fps)
        if options.provenance is not None:
            from core.provenance import container_tags

            self._out.metadata.update(container_tags(options.provenance))
        self._audio_in = None
        self._audio_map: dict[int, av.stream.Stream] = {}
        self._audio_packets = iter(())
        self._pending_audio: av.Packet | None = None
        if audio_source is not None and info.audio_streams:
            self._open_audio(Path(audio_source))
        self._count = 0

    def _add_video(self, info: StreamInfo, options: EncodeOptions, codec: str, fps: Fraction) -> Any:
        """The encoder's video stream, at the source's time base and display rotation."""
        enc_opts: dict[str, str] = {}
        if codec in ("libx264", "libx265"):
            enc_opts = {"crf": str(options.crf), "preset": options.preset}
        try:
            vs = self._out.add_stream(codec, rate=fps, options=enc_opts)
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoOptionError(f"cannot encode {codec} into {self.final.suffix}: {_short(e)}") from None
        vs.width, vs.height = info.width, info.height
        vs.codec_context.thread_count = options.codec_threads
        if codec == "ffv1":
            self.wants_uint16 = info.high_bit_depth
            vs.pix_fmt = "gbrp16le" if info.high_bit_depth else "bgr0"
        elif codec == "libx264rgb":
            vs.pix_fmt = "rgb24"
        else:
            # 4:2:0 needs even sizes; 4:4:4 keeps every pixel but fewer players decode it.
            vs.pix_fmt = "yuv444p" if info.width % 2 or info.height % 2 else "yuv420p"
        vs.codec_context.time_base = self._time_base
        vs.time_base = self._time_base
        if info.rotation:
            vs.set_display_rotation(info.rotation)
        return vs

    def _open_audio(self, source: Path) -> None:
        self._audio_in = av.open(str(source), "r")
        supported = self._out.supported_codecs
        for s in self._audio_in.streams.audio:
            if s.codec_context.name not in supported:
                self.notes.append(f"audio stream {s.index} ({s.codec_context.name}) cannot be stored in "
                                  f"{self.final.suffix} without re-encoding: dropped")
                continue
            self._audio_map[s.index] = self._out.add_stream_from_template(s)
        if self._audio_map:
            streams = [self._audio_in.streams[i] for i in self._audio_map]
            self._audio_packets = self._audio_in.demux(streams)

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Mux source audio packets whose time is before ``seconds`` (all of them for ``None``)."""
        while True:
            pk = self._pending_audio
            if pk is None:
                pk = next(self._audio_packets, None)
                if pk is None:
                    return
            if pk.dts is None or pk.size == 0:
                self._pending_audio = None
                continue
            if seconds is not None and float(pk.dts * pk.time_base) > seconds:
                self._pending_audio = pk
                return
            self._pending_audio = None
            pk.stream = self._audio_map[pk.stream.index]
            self._out.mux(pk)

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None:
        """Encode ``rgb`` ``[H, W, 3]`` uint8 (uint16 when ``wants_uint16``) at the source frame's pts."""
        fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=fmt)
        frame.pts = source.pts if source.pts is not None else source.index * self._frame_step
        frame.time_base = self._time_base
        self._mux_audio_until(float(frame.pts * self._time_base))
        self._out.mux(self._video.encode(frame))
        self._count += 1

    def _flush_video(self) -> None:
        self._out.mux(self._video.encode())

    def commit(self) -> Path:
        """Flush, close and rename the temporary file to the final name."""
        try:
            self._flush_video()
            self._mux_audio_until(None)
            self._out.close()
        except Exception:
            self.abort()
            raise
        self._close_audio()
        if self._count == 0:
            self.temp.unlink(missing_ok=True)
            raise VideoWriteError("no frame was written")
        move_into_place(self.temp, self.final, error=VideoWriteError)
        return self.final

    def abort(self) -> None:
        """Close without finishing and remove the temporary file."""
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - a half-written container may fail to close; it is deleted anyway
            pass
        self._close_audio()
        self.temp.unlink(missing_ok=True)

    def _close_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None


class FrameFolderWriter:
    """Numbered images into a folder: ``<source name><suffix>`` or ``frame_000001<suffix>``.

    Written into a hidden temporary folder beside the target, renamed on :meth:`commit`, with
    ``core.outputs.FOLDER_MARKER`` listing the frames, so a later ``--overwrite`` knows the
    folder is Tinct's (a folder holding anything else is never replaced). Each frame is written
    by ``core.imageio.write_image``, so every frame carries the provenance record and, like a still,
    its source's alpha (not in JPEG), ICC profile, EXIF and resolution. 16-bit sources give 16-bit
    PNG/TIFF.
    """

    def __init__(self, final: str | Path, info: StreamInfo, options: EncodeOptions):
        self.final = Path(final)
        self.suffix = options.frame_suffix if options.frame_suffix.startswith(".") else "." + options.frame_suffix
        if self.suffix.lower() not in OUTPUT_FORMATS:
            raise VideoOptionError(f"frame image type {self.suffix} cannot be written; use one of "
                               f"{', '.join(sorted(OUTPUT_FORMATS))}")
        self.provenance = options.provenance
        _check_output(self.final, options.overwrite, is_dir=True)
        self.wants_uint16 = info.high_bit_depth and self.suffix.lower() in (".png", ".tif", ".tiff")
        self.overwrite = options.overwrite
        self.temp = temp_sibling(self.final, directory=True, error=VideoWriteError)
        self.notes: list[str] = []
        if info.audio_streams:
            self.notes.append("a frame folder cannot hold audio: the audio stream is not kept")
        self.keeps_alpha = OUTPUT_FORMATS[self.suffix.lower()] != "jpg"
        if info.alpha and not self.keeps_alpha:
            self.notes.append(f"{self.suffix} frames cannot hold alpha: the alpha channel is not kept")
        self._names: list[str] = []

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None:
        name = source.name if source.name is not None else f"frame_{source.index + 1:06d}"
        path = self.temp / f"{name}{self.suffix}"
        pixels = join_alpha(rgb, source.alpha) if self.keeps_alpha else rgb
        try:
            write_image(path, pixels, icc_profile=source.icc_profile, exif=source.exif, dpi=source.dpi,
                        provenance=self.provenance)
        except ImageWriteError as e:
            raise VideoWriteError(f"could not write frame {path.name}: {e}") from None
        self._names.append(path.name)

    def commit(self) -> Path:
        if not self._names:
            self.abort()
            raise VideoWriteError("no frame was written")
        try:
            mark_folder(self.temp, self._names)
            replace_folder(self.temp, self.final, self.overwrite)
        except FileExistsError as e:
            self.abort()
            raise VideoWriteError(str(e)) from None
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.temp, ignore_errors=True)


def is_frame_folder_target(path: Path) -> bool:
    """An output path with no suffix, or an existing folder, is a frame folder."""
    return path.is_dir() or path.suffix == ""


def open_writer(path: str | Path, info: StreamInfo, options: EncodeOptions,
                audio_source: str | Path | None = None) -> FrameWriter:
    """A folder-like path gives a :class:`FrameFolderWriter`, a video suffix a :class:`VideoFileWriter`."""
    path = Path(path)
    if is_frame_folder_target(path):
        return FrameFolderWriter(path, info, options)
    return VideoFileWriter(path, info, options, audio_source)


def check_distinct(input_path: Path, output_path: Path) -> None:
    """Refuse an output that is the input, contains it (a folder above it) or lies inside the input folder."""
    problem = output_conflict(output_path, [input_path])
    if problem:
        raise VideoWriteError(problem)


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
