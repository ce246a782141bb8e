"""``tinct video FILM OUT --scheduler``: a film split at its scene cuts, shots colorized in parallel.

1. **Plan** (client): one decoding pass runs the video path's own cut test (the luma-histogram
   jump of :class:`core.video.flow.MotionAnalyser`, on the same downscaled luma) and cuts the film
   into *spans* of whole shots, each given by its first frame's index and timestamp. Temporal
   consistency lives inside shots and is reset at every cut, so colorizing spans apart gives what
   one pass would.
2. **Colorize** (workers, one task per span): seek to the span, run the ordinary three-stage video
   pipeline (:func:`core.video.pipeline.run_pipeline`) on it with the worker's kept model, and write
   the span losslessly (FFV1) into a hidden folder beside the output; the task returns every frame's
   index and timestamp. A span whose worker dies is redone elsewhere; the span file only appears
   when complete (the video writer's temp-then-rename).
3. **Join** (client, as spans arrive, in order): re-encode the spans with the user's encoding
   options into the ordinary video writer at the source timestamps, copying the audio packet for
   packet; the output appears under its name only when complete, the hidden folder is removed.

Frame count, timestamps and audio are therefore those of a local run.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.video.flow import MotionOptions, cut_score, luma_histogram, motion_luma
from core.video.io import (EncodeOptions, SourceFrame, VideoFileReader, VideoIOError, check_distinct,
                           open_writer)
from core.video.pipeline import VideoOptions, VideoReport, run_pipeline

from . import ClusterError
from .connect import open_client
from .worker import ModelSpec, colorizer_for, set_torch_threads, worker_name

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


def plan_spans(path: Path, motion: MotionOptions, min_frames: int = MIN_SPAN_FRAMES) -> tuple[Any, list[Span], int]:
    """Decode ``path`` once and cut it into spans at scene cuts.

    Returns:
        (stream info, spans, number of shots found).
    Raises:
        VideoIOError: unreadable film, or frames without timestamps (which cannot be split).
    """
    reader = VideoFileReader(path)
    starts: list[tuple[int, int]] = []  # (index, pts) of every shot's first frame
    count = 0
    previous = None
    try:
        for sf in reader.frames():
            count = sf.index + 1
            if sf.rgb is None:
                continue  # damaged: the pipeline skips it too, without feeding its cut test
            if sf.pts is None:
                raise VideoIOError(f"{path}: frames without timestamps cannot be split into shots; run without --scheduler")
            hist = luma_histogram(motion_luma(sf.rgb, motion.max_side))
            if previous is None or cut_score(previous, hist) > motion.cut_threshold:
                starts.append((sf.index, sf.pts))
            previous = hist
        info = reader.info
    finally:
        reader.close()
    if not starts:
        raise VideoIOError("no frame could be decoded")
    shots = len(starts)
    merged: list[tuple[int, int]] = []
    for k, start in enumerate(starts):
        following = starts[k + 1][0] if k + 1 < len(starts) else count
        if merged and start[0] - merged[-1][0] < min_frames:
            continue  # the current span is still too short: this shot joins it
        if merged and following - start[0] < min_frames and k + 1 == len(starts):
            continue  # a short last shot joins the span before it
        merged.append(start)
    spans = []
    for k, (index, pts) in enumerate(merged):
        nxt = merged[k + 1] if k + 1 < len(merged) else None
        spans.append(Span(k, index, pts, None if nxt is None else nxt[1], (nxt[0] if nxt else count) - index))
    return info, spans, shots


class SpanReader:
    """The frames of one span of a video file, with the film's own indices and timestamps."""

    def __init__(self, path: Path, span: Span):
        self._file = VideoFileReader(path)
        self.span = span
        self.info = replace(self._file.info, n_frames=span.n_frames)

    def frames(self) -> Iterator[SourceFrame]:
        span = self.span
        if span.first_index > 0:
            self._file.seek(span.first_pts)
        index = span.first_index
        started = False
        for sf in self._file.frames():
            if sf.pts is not None:
                if sf.pts < span.first_pts:
                    continue
                if span.end_pts is not None and sf.pts >= span.end_pts:
                    return
                started = True
            elif not started:
                continue
            yield replace(sf, index=index)
            index += 1

    def close(self) -> None:
        self._file.close()


class _RecordingWriter:
    """A frame writer that remembers each written frame's (index, pts)."""

    def __init__(self, writer: Any):
        self._writer = writer
        self.wants_uint16 = writer.wants_uint16
        self.notes = getattr(writer, "notes", [])
        self.written: list[tuple[int, int | None]] = []

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None:
        self._writer.write(rgb, source)
        self.written.append((source.index, source.pts))

    def commit(self) -> Path:
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


def colorize_span(film: str, span: Span, segment: str, spec: ModelSpec, options: VideoOptions,
                  uint16: bool) -> dict[str, Any]:
    """Worker side: colorize ``span`` of ``film`` into the lossless file ``segment``.

    Returns ``{"frames": [(index, pts)...], "damaged", "cuts", "seconds", "wall", "worker"}``.
    """
    set_torch_threads()
    colorizer = colorizer_for(spec)
    reader = SpanReader(Path(film), span)
    try:
        info = replace(reader.info, rotation=0, audio_streams=0, high_bit_depth=uint16)
        writer = _RecordingWriter(open_writer(Path(segment), info, EncodeOptions(lossless=True, overwrite=True)))
        report = run_pipeline(reader, writer, colorizer, replace(options, progress=False))
    finally:
        reader.close()
    return {"frames": writer.written, "damaged": report.damaged, "cuts": report.cuts, "seconds": report.seconds,
            "wall": report.wall, "worker": worker_name()}


def _join_span(result: dict[str, Any], segment: Path, writer: Any) -> int:
    """Append a finished span to the final writer at its source timestamps; returns the frames written."""
    frames = result["frames"]
    reader = VideoFileReader(segment)
    written = 0
    try:
        for sf, (index, pts) in zip(reader.frames(), frames):
            if sf.rgb is None:
                raise VideoIOError(f"shot file {segment.name} is damaged: {sf.error}")
            writer.write(sf.rgb, SourceFrame(index, sf.rgb, pts=pts))
            written += 1
    finally:
        reader.close()
    if written != len(frames):
        raise VideoIOError(f"shot file {segment.name} holds {written} frames, {len(frames)} were colorized")
    segment.unlink()
    return written


def colorize_film(input_path: Path, output_path: Path, scheduler: str, spec: ModelSpec, options: VideoOptions,
                  encode: EncodeOptions, resources: dict[str, float] | None = None,
                  min_span_frames: int = MIN_SPAN_FRAMES, provenance: bool = True) -> VideoReport:
    """Colorize the film ``input_path`` into ``output_path`` on the cluster ``scheduler``.

    Raises:
        VideoIOError: bad paths or film (one line), as the local run does.
        ClusterError: the cluster cannot be used, or a shot failed on it.
    """
    from .images import register_model

    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise VideoIOError(f"--scheduler needs a video file as input, not {input_path}"
                           + (" (a frame folder: run without --scheduler)" if input_path.is_dir() else ""))
    check_distinct(input_path, output_path)
    start = time.perf_counter()
    probe = VideoFileReader(input_path)
    probe.close()
    with open_client(scheduler) as client:
        register_model(client, spec)
        if provenance and encode.provenance is None:  # the record names the model a worker loaded
            record = client.submit(provenance_record, spec, options, pure=False).result()
            encode = replace(encode, provenance=record)
        elif not provenance:
            encode = replace(encode, provenance=None)
        return _colorize_film(client, input_path, output_path, probe.info, spec, options, encode, resources,
                              min_span_frames, start)


def provenance_record(spec: ModelSpec, options: VideoOptions) -> Any:
    """Worker side: the provenance record of a film colorized with ``spec`` and ``options``."""
    from core.provenance import record_from_settings

    settings = colorizer_for(spec).settings(temperature=options.temperature, **options.colorize_opts)
    return record_from_settings(settings, temporal=options.temporal)


def _colorize_film(client: Any, input_path: Path, output_path: Path, info: Any, spec: ModelSpec,
                   options: VideoOptions, encode: EncodeOptions, resources: dict[str, float] | None,
                   min_span_frames: int, start: float) -> VideoReport:
    from distributed import as_completed
    from tqdm import tqdm

    from .images import check_resources

    writer = open_writer(output_path, info, encode, audio_source=input_path)
    work = output_path.parent / f".{output_path.name}.shots-{uuid.uuid4().hex[:8]}"
    report = VideoReport()
    report.notes.extend(getattr(writer, "notes", []))
    bar = None
    try:
        _, spans, shots = plan_spans(input_path, options.temporal_options.motion, min_span_frames)
        report.seconds["plan"] = time.perf_counter() - start
        bar = tqdm(total=sum(s.n_frames for s in spans), unit="frame", disable=not options.progress,
                   dynamic_ncols=True, smoothing=0.1, desc="colorizing")
        work.mkdir()
        note = check_resources(client, resources or {})
        if note:
            bar.write(f"tinct video: note: {note}")
        run_id = uuid.uuid4().hex[:12]
        futures = {}
        for span in spans:
            future = client.submit(colorize_span, str(input_path.resolve()), span,
                                   str((work / f"shot_{span.number:05d}.mkv").resolve()), spec, options,
                                   writer.wants_uint16, key=f"tinct-shot-{run_id}-{span.number}",
                                   resources=resources or None, priority=len(spans) - span.number, pure=False)
            futures[future] = span
        done: dict[int, dict[str, Any]] = {}
        workers: set[str] = set()
        next_span = 0
        for future in as_completed(futures):
            span = futures[future]
            try:
                result = future.result()
            except (VideoIOError, ValueError, OSError) as error:
                raise VideoIOError(f"shot {span.number + 1} (from frame {span.first_index}): {error}") from None
            except Exception as error:  # noqa: BLE001 - KilledWorker and the like
                raise ClusterError(f"shot {span.number + 1} (from frame {span.first_index}) was lost on the "
                                   f"cluster: {type(error).__name__}: {error}") from None
            done[span.number] = result
            workers.add(result["worker"])
            bar.update(span.n_frames)
            while next_span in done:
                result = done.pop(next_span)
                t0 = time.perf_counter()
                report.frames_written += _join_span(result, work / f"shot_{next_span:05d}.mkv", writer)
                report.seconds["join"] = report.seconds.get("join", 0.0) + time.perf_counter() - t0
                report.frames_read += len(result["frames"]) + len(result["damaged"])
                report.damaged.extend(tuple(d) for d in result["damaged"])
                report.cuts.extend(result["cuts"])
                for stage, seconds in result["seconds"].items():
                    report.seconds[stage] = report.seconds.get(stage, 0.0) + seconds
                next_span += 1
        report.output = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(work, ignore_errors=True)
    report.wall = time.perf_counter() - start
    report.notes.append(f"{shots} shot(s) in {len(spans)} task(s) on {len(workers)} worker(s); stage times are "
                        "summed over the workers")
    if report.frames_written == 0:
        raise VideoIOError("no frame could be decoded")
    return report


def video_on_cluster(args: Any, options: VideoOptions, encode: EncodeOptions) -> VideoReport:
    """``tinct video`` with ``--scheduler``: the command's arguments -> :func:`colorize_film`."""
    from core.runs import parse_resources

    try:
        resources = parse_resources(args.resources)
    except ValueError as error:
        raise ClusterError(str(error)) from None
    spec = ModelSpec(args.model, args.device, args.half, False)
    return colorize_film(args.input, args.output, args.scheduler, spec, options, encode, resources,
                         provenance=args.provenance)
