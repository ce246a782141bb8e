"""A film cut into spans of whole shots for the cluster, each span handed over as soon as it is final.

:class:`SpanMerger` is the rule (pure): shots shorter than :data:`MIN_SPAN_FRAMES` join the span
they follow, and a short last shot joins the span before it. :class:`ShotPlanner` feeds it from one
decoding pass with the video path's own cut test (the luma-histogram jump of
:class:`core.video.flow.MotionAnalyser`, on the same downscaled luma), so the client can send the
first shots to the workers while it is still reading the rest of the film.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from core.video.flow import MotionOptions, cut_score, luma_histogram, motion_luma
from core.video.io import VideoFileReader, VideoIOError

# Spans shorter than this are merged with the next one: a task per two-frame shot costs more than
# it gains. Merging keeps results exact, since the worker's own cut test resets at the inner cut.
MIN_SPAN_FRAMES = 24


@dataclass(frozen=True)
class Span:
    """Consecutive whole shots: frames ``first_index`` .. ``first_index + n_frames - 1`` (decoder
    order, damaged frames counted), from timestamp ``first_pts`` up to, not including, ``end_pts``
    (``None`` = the end of the film). ``n_frames`` is for progress only."""

    number: int
    first_index: int
    first_pts: int
    end_pts: int | None
    n_frames: int


class SpanMerger:
    """Shot starts in, final spans out.

    Call :meth:`add_start` for each shot's first frame (in order), :meth:`spans_until` as frames are
    read, :meth:`finish` at the end; each returns the spans that became final, numbered from 0.
    """

    def __init__(self, min_frames: int = MIN_SPAN_FRAMES):
        self.min_frames = min_frames
        self.starts: list[tuple[int, int]] = []  # (index, pts) of each span's first frame
        self.shots = 0
        self._emitted = 0
        self._last_start_kept = False

    def add_start(self, index: int, pts: int) -> None:
        """A shot starts at frame ``index`` (timestamp ``pts``)."""
        self.shots += 1
        self._last_start_kept = not self.starts or index - self.starts[-1][0] >= self.min_frames
        if self._last_start_kept:
            self.starts.append((index, pts))
        # else the current span is still too short: this shot joins it

    def spans_until(self, count: int) -> list[Span]:
        """The spans that are final once frames ``0 .. count - 1`` are read."""
        final = len(self.starts) - 1  # the span before the newest start is closed ...
        if final >= 1 and count - self.starts[-1][0] < self.min_frames:
            final -= 1  # ... unless the newest start may still be a short last shot, which joins it
        return self._emit(final, count)

    def finish(self, count: int) -> list[Span]:
        """The remaining spans of a film of ``count`` frames."""
        if len(self.starts) > 1 and self._last_start_kept and count - self.starts[-1][0] < self.min_frames:
            self.starts.pop()  # a short last shot joins the span before it
        return self._emit(len(self.starts), count)

    def _emit(self, upto: int, count: int) -> list[Span]:
        spans = []
        while self._emitted < upto:
            k = self._emitted
            index, pts = self.starts[k]
            following = self.starts[k + 1] if k + 1 < len(self.starts) else None
            spans.append(Span(k, index, pts, None if following is None else following[1],
                              (following[0] if following else count) - index))
            self._emitted += 1
        return spans


class ShotPlanner:
    """Decode ``path`` once and yield its spans as each becomes final.

    After the iteration: ``frames`` (frames read, damaged ones counted), ``shots`` (shots found) and
    ``seconds`` (wall time of the pass, with the caller's work between spans).

    Raises (while iterating):
        VideoIOError: unreadable film, no decodable frame, or frames without timestamps (which cannot
            be split).
    """

    def __init__(self, path: Path, motion: MotionOptions, min_frames: int = MIN_SPAN_FRAMES):
        self.path = Path(path)
        self.motion = motion
        self.merger = SpanMerger(min_frames)
        self.frames = 0
        self.seconds = 0.0

    @property
    def shots(self) -> int:
        return self.merger.shots

    def __iter__(self) -> Iterator[Span]:
        start = time.perf_counter()
        reader = VideoFileReader(self.path)
        previous = None
        try:
            for sf in reader.frames():
                self.frames = sf.index + 1
                if sf.rgb is None:
                    continue  # damaged: the pipeline skips it too, without feeding its cut test
                if sf.pts is None:
                    raise VideoIOError(f"{self.path}: frames without timestamps cannot be split into shots; "
                                       "run without --scheduler")
                hist = luma_histogram(motion_luma(sf.rgb, self.motion.max_side))
                if previous is None or cut_score(previous, hist) > self.motion.cut_threshold:
                    self.merger.add_start(sf.index, sf.pts)
                previous = hist
                yield from self.merger.spans_until(self.frames)
        finally:
            reader.close()
            self.seconds = time.perf_counter() - start
        if not self.merger.starts:
            raise VideoIOError("no frame could be decoded")
        yield from self.merger.finish(self.frames)
