"""Cutting a film into spans while reading it (``core.cluster.shots``): the same spans as cutting it
after reading all of it, each handed over as early as it is final."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from core.cluster.shots import ShotPlanner, Span, SpanMerger
from core.video import synth
from core.video.flow import MotionOptions
from core.video.io import VideoIOError


def _spans_after_reading_everything(starts: list[int], count: int, min_frames: int) -> list[Span]:
    """The rule stated once over the whole film: a shot shorter than ``min_frames`` joins the span it
    follows; a short last shot joins the span before it."""
    merged: list[int] = []
    for k, start in enumerate(starts):
        following = starts[k + 1] if k + 1 < len(starts) else count
        if merged and start - merged[-1] < min_frames:
            continue
        if merged and k + 1 == len(starts) and following - start < min_frames:
            continue
        merged.append(start)
    ends = merged[1:] + [count]
    return [Span(k, s, 10 * s, None if k + 1 == len(merged) else 10 * ends[k], ends[k] - s)
            for k, s in enumerate(merged)]


def _streamed(starts: list[int], count: int, min_frames: int) -> tuple[list[Span], list[int]]:
    """The merger fed frame by frame: its spans, and the frame count at which each was handed over."""
    merger, spans, when = SpanMerger(min_frames), [], []
    pending = list(starts)
    for frame in range(count):
        if pending and pending[0] == frame:
            merger.add_start(frame, 10 * frame)
            pending.pop(0)
        for span in merger.spans_until(frame + 1):
            spans.append(span)
            when.append(frame + 1)
    spans.extend(merger.finish(count))
    return spans, when


def test_spans_handed_over_while_reading_equal_those_of_the_whole_film():
    rng = np.random.default_rng(0)
    for _ in range(400):
        count = int(rng.integers(1, 300))
        cuts = sorted({0, *rng.integers(1, count, int(rng.integers(0, 12))).tolist()}) if count > 1 else [0]
        min_frames = int(rng.integers(1, 40))
        spans, _ = _streamed(cuts, count, min_frames)
        assert spans == _spans_after_reading_everything(cuts, count, min_frames), (cuts, count, min_frames)


def test_a_span_is_handed_over_once_the_next_one_is_long_enough_to_stand():
    spans, when = _streamed([0, 30, 40, 90, 100], 105, 24)
    assert [(s.first_index, s.n_frames) for s in spans] == [(0, 30), (30, 60), (90, 15)]
    # The first span is final once the shot from frame 30 has 24 frames (it can no longer be a short
    # last shot that joins it); the second would be once the span from 90 had 24, but the film ends
    # first, so the last two come at the end. The shots from 40 and 100 are too short to stand alone.
    assert when == [54]


def test_planner_reads_a_real_film_into_spans_of_its_shots(tmp_path):
    photos = [np.full((60, 80, 3), 40 + 70 * k, np.uint8) for k in range(3)]
    spec = synth.random_spec(3, 64, 48, (30, 26, 28), photo_sizes=[p.shape[:2] for p in photos], seed=1)
    film = tmp_path / "film.mp4"
    synth.write_video(film, (synth.to_gray(f) for f in synth.render_clip(photos, spec)), Fraction(24))
    planner = ShotPlanner(film, MotionOptions())
    spans = list(planner)
    assert [s.n_frames for s in spans] == [30, 26, 28] and planner.shots == 3 and planner.frames == 84
    assert spans[0].end_pts == spans[1].first_pts and spans[-1].end_pts is None


def test_planner_refuses_a_file_that_is_not_a_film(tmp_path):
    bad = tmp_path / "film.mp4"
    bad.write_bytes(b"not a film")
    with pytest.raises(VideoIOError, match="cannot open"):
        list(ShotPlanner(bad, MotionOptions()))
