"""Joining separately encoded pieces of one film into one video file by stream copy.

A film colorized in pieces (the shots of ``tinct video --scheduler``) is encoded piece by piece
with the output's own codec and options; :class:`PacketJoinWriter` then copies the pieces'
packets, in order, into the output container at the source's timestamps, with the source's audio,
rotation and provenance, exactly as :class:`~core.video.io.VideoFileWriter` would have written one
continuous encode. Nothing is decoded or encoded again: the join costs a read and a write.

A piece's timestamps must come back exactly. The source's time base is ``1/N`` for
:func:`join_problem` to allow a stream-copy join of a reordering codec (H.264, H.265), whose pieces
are QuickTime files (``.mov``) that keep such a time base; an intra-only codec (FFV1) has each
packet's decoding and display order equal, so its pieces' timestamps are taken from the frame
list whatever their container rounded them to.

A reordering codec starts each piece's decoding timestamps a few frames before its first frame.
Where the film's frames are evenly spaced that is after the previous piece's last decoding
timestamp; where they are not (a variable frame rate, a damaged frame skipped next to a cut), a
decoding timestamp that would not follow the previous one is moved to just after it, which keeps
the order of decoding and every presentation time (a decoding timestamp only orders packets).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from core.video.io import EncodeOptions, StreamInfo, VideoFileWriter, VideoIOError, is_frame_folder_target

# Containers the joined output may be; each holds H.264/H.265 from a .mov piece by stream copy.
JOIN_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
REORDERING_CODECS = ("libx264", "libx265")
INTRA_CODECS = ("ffv1",)


def piece_suffix(codec: str) -> str:
    """The container of one encoded piece: ``.mov`` keeps a ``1/N`` time base exactly, ``.mkv`` holds FFV1."""
    return ".mkv" if codec in INTRA_CODECS else ".mov"


def join_problem(output: Path, info: StreamInfo, options: EncodeOptions) -> str | None:
    """Why the pieces of a film cannot be joined by stream copy into ``output``, or None when they can."""
    if is_frame_folder_target(output):
        return "a frame folder is written frame by frame"
    if output.suffix.lower() not in JOIN_SUFFIXES:
        return f"{output.suffix or 'no suffix'} is not one of {', '.join(JOIN_SUFFIXES)}"
    codec = options.video_codec
    if codec in INTRA_CODECS:
        return None
    if codec not in REORDERING_CODECS:
        return f"codec {codec} is not one of {', '.join(REORDERING_CODECS + INTRA_CODECS)}"
    if info.time_base is None or Fraction(info.time_base).numerator != 1:
        return f"the time base {info.time_base} is not 1/N"
    return None


class PacketJoinWriter(VideoFileWriter):
    """The output file of a film joined from encoded pieces (see the module docstring).

    Checks the output like :class:`~core.video.io.VideoFileWriter` and writes into a temporary beside
    it; :meth:`append` copies one piece, :meth:`commit` renames the temporary to the final name,
    :meth:`abort` removes it. The video stream is made from the first piece's, so every piece must
    carry the same codec parameters (the same encoder and options give them).
    """

    def _add_video(self, info: StreamInfo, options: EncodeOptions, codec: str, fps: Fraction) -> Any:
        self._rotation = info.rotation
        self._parameters: bytes | None = None
        self._last_dts: int | None = None
        self._audio_source: Path | None = None
        return None

    def _open_audio(self, source: Path) -> None:
        self._audio_source = source  # opened after the video stream, which keeps index 0 as in a local run

    def _flush_video(self) -> None:
        pass  # nothing is encoded here

    def write(self, rgb: Any, source: Any) -> None:
        raise TypeError("a PacketJoinWriter takes encoded pieces (append), not frames")

    def append(self, piece: Path, frame_pts: list[int], offset: int) -> int:
        """Copy the packets of the encoded ``piece`` to the end of the output; returns the frames copied.

        Args:
            piece: a file holding one video stream, encoded with the output's codec and options.
            frame_pts: the source timestamps of the piece's frames, in display order (source time base).
            offset: the source timestamp the piece's own timestamps count from (unused for an FFV1 piece,
                whose timestamps are ``frame_pts``).
        Raises:
            VideoIOError: the piece cannot be read, its frames or timestamps are not ``frame_pts``, or its
                codec parameters differ from the first piece's.
        """
        try:
            container = av.open(str(piece), "r")
        except (av.error.FFmpegError, OSError) as e:
            raise VideoIOError(f"cannot read the encoded shot {piece.name}: {e}") from None
        try:
            stream = container.streams.video[0]
            self._check_parameters(piece, stream)
            intra = self.codec in INTRA_CODECS
            copied: list[int] = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if intra:
                    if len(copied) >= len(frame_pts):
                        raise VideoIOError(f"the encoded shot {piece.name} holds more frames than the "
                                           f"{len(frame_pts)} colorized")
                    pts = dts = frame_pts[len(copied)]
                else:
                    pts = self._source_ticks(piece, packet.pts, stream.time_base) + offset
                    dts = self._source_ticks(piece, packet.dts, stream.time_base) + offset
                if self._last_dts is not None and dts <= self._last_dts:
                    dts = self._last_dts + 1  # see the module docstring
                    if dts > pts:
                        raise VideoIOError(f"the encoded shot {piece.name} does not continue the film's "
                                           f"decoding order (frame at {pts} after {self._last_dts})")
                self._last_dts = dts
                packet.pts, packet.dts = pts, dts
                packet.time_base = self._time_base
                packet.stream = self._video
                self._mux_audio_until(float(pts * self._time_base))
                self._out.mux(packet)
                copied.append(pts)
        except av.error.FFmpegError as e:
            raise VideoIOError(f"cannot copy the encoded shot {piece.name}: {e}") from None
        finally:
            container.close()
        if sorted(copied) != list(frame_pts):
            raise VideoIOError(f"the encoded shot {piece.name} holds {len(copied)} frames at other timestamps "
                               f"than the {len(frame_pts)} colorized")
        self._count += len(copied)
        return len(copied)

    def _check_parameters(self, piece: Path, stream: Any) -> None:
        """Make the output's video stream from the first piece; later pieces must match it."""
        parameters = bytes(stream.codec_context.extradata or b"")
        if self._video is None:
            self._video = self._out.add_stream_from_template(stream)
            self._video.time_base = self._time_base
            if self._rotation:
                self._video.set_display_rotation(self._rotation)
            self._parameters = parameters
            if self._audio_source is not None:
                super()._open_audio(self._audio_source)
        elif parameters != self._parameters:
            raise VideoIOError(f"the encoded shot {piece.name} has other codec parameters than the first shot "
                               "(workers with different FFmpeg builds?)")

    def _source_ticks(self, piece: Path, value: int | None, time_base: Fraction) -> int:
        if value is None:
            raise VideoIOError(f"the encoded shot {piece.name} has a packet without a timestamp")
        ticks = value * Fraction(time_base) / self._time_base
        if ticks.denominator != 1:
            raise VideoIOError(f"the encoded shot {piece.name} rounded the film's timestamps")
        return int(ticks)

    def commit(self) -> Path:
        if self._video is None:
            self.abort()
            raise VideoIOError("no shot was joined")
        return super().commit()
