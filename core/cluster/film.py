"""``tinct video FILM OUT --scheduler``: a film split at its scene cuts, shots colorized in parallel.

1. **Plan** (client, a thread): one decoding pass runs the video path's own cut test and cuts the
   film into *spans* of whole shots (:mod:`core.cluster.shots`), each given by its first frame's
   index and timestamp and sent to the cluster as soon as it is final, so the workers start on the
   first shots while the client reads on. Temporal consistency lives inside shots and is reset at
   every cut, so colorizing spans apart gives what one pass would.
2. **Colorize** (workers, one task per span): seek to the span, run the ordinary three-stage video
   pipeline (:func:`core.video.pipeline.run_pipeline`) on it with the worker's kept model, and write
   the span into a hidden folder beside the output, encoded with the output's own codec and options
   when the pieces can be joined by stream copy (:func:`core.video.join.join_problem`), losslessly
   (FFV1) otherwise; the task returns every frame's index and timestamp. A span whose worker dies is
   redone elsewhere; the span file only appears when complete (the video writer's temp-then-rename).
3. **Join** (client, as spans arrive, in order): copy the spans' packets into the output
   (:class:`core.video.join.PacketJoinWriter`), or re-encode the lossless spans with the user's
   encoding options into the ordinary writer, at the source timestamps, copying the audio packet
   for packet; the output appears under its name only when complete, the hidden folder is removed.

Frame count, timestamps and audio are therefore those of a local run.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from core.video.io import EncodeOptions, SourceFrame, VideoFileReader, VideoIOError, check_distinct, open_writer
from core.video.join import PacketJoinWriter, join_problem, piece_suffix
from core.video.pipeline import VideoOptions, VideoReport, run_pipeline

from . import ClusterError
from .connect import open_client
from .shots import MIN_SPAN_FRAMES, ShotPlanner, Span
from .worker import ModelSpec, colorizer_for, set_torch_threads, worker_name

class SpanReader:
    """The frames of one span of a video file, with the film's own indices and timestamps."""

    def __init__(self, path: Path, span: Span, threads: int = 0):
        self._file = VideoFileReader(path, threads)
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
    """A frame writer that remembers each written frame's (index, pts) and writes it ``offset`` earlier."""

    def __init__(self, writer: Any, offset: int = 0):
        self._writer = writer
        self._offset = offset
        self.wants_uint16 = writer.wants_uint16
        self.notes = getattr(writer, "notes", [])
        self.written: list[tuple[int, int | None]] = []

    def write(self, rgb: np.ndarray, source: SourceFrame) -> None:
        shifted = source if source.pts is None or not self._offset else replace(source, pts=source.pts - self._offset)
        self._writer.write(rgb, shifted)
        self.written.append((source.index, source.pts))

    def commit(self) -> Path:
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


def colorize_span(film: str, span: Span, segment: str, spec: ModelSpec, options: VideoOptions,
                  uint16: bool, encode: EncodeOptions, offset: int) -> dict[str, Any]:
    """Worker side: colorize ``span`` of ``film`` into the video file ``segment``, encoded with ``encode``,
    timestamps counted from ``offset`` (source time base). The worker's decoder and encoder get as many
    threads as its torch, and a one-thread worker's video stages take turns, so it stays on one core:
    two such workers on two cores then do not slow each other's network down.

    Returns ``{"frames": [(index, pts)...], "damaged", "cuts", "seconds", "wall", "worker"}``.
    """
    threads = set_torch_threads()
    colorizer = colorizer_for(spec)
    reader = SpanReader(Path(film), span, threads)
    try:
        info = replace(reader.info, rotation=0, audio_streams=0, high_bit_depth=uint16)
        segment_encode = replace(encode, overwrite=True, provenance=None, codec_threads=threads)
        writer = _RecordingWriter(open_writer(Path(segment), info, segment_encode), offset)
        report = run_pipeline(reader, writer, colorizer, replace(options, progress=False, stages_take_turns=threads == 1))
    finally:
        reader.close()
    return {"frames": writer.written, "damaged": report.damaged, "cuts": report.cuts, "seconds": report.seconds,
            "wall": report.wall, "worker": worker_name()}


def _join_span(result: dict[str, Any], segment: Path, writer: Any, offset: int) -> int:
    """Append a finished span to the final writer at its source timestamps; returns the frames written."""
    frames = result["frames"]
    if isinstance(writer, PacketJoinWriter):
        written = writer.append(segment, [pts for _, pts in frames], offset)
        segment.unlink()
        return written
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


class _Dispatcher:
    """The planning thread: reads the film, submits each span to the cluster as soon as it is final.

    Its failure (an unreadable film) is kept in ``error`` for the main thread; ``done`` is set when it
    ends either way. ``submitted`` maps each future to its span; after :meth:`cancel` nothing more is sent.
    """

    def __init__(self, planner: ShotPlanner, submit: Callable[[Span], Any], completed: Any):
        self.planner = planner
        self.submitted: dict[Any, Span] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._submit, self._completed = submit, completed
        self.thread = threading.Thread(target=self._run, name="tinct-film-plan", daemon=True)

    def _run(self) -> None:
        try:
            for span in self.planner:
                with self._lock:
                    if self.cancelled.is_set():
                        return
                    future = self._submit(span)
                    self.submitted[future] = span
                self._completed.add(future)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, raised there
            self.error = error
        finally:
            self.done.set()

    def cancel(self) -> list[Any]:
        """Send no more spans; returns the futures sent so far."""
        with self._lock:
            self.cancelled.set()
            return list(self.submitted)


def _colorize_film(client: Any, input_path: Path, output_path: Path, info: Any, spec: ModelSpec,
                   options: VideoOptions, encode: EncodeOptions, resources: dict[str, float] | None,
                   min_span_frames: int, start: float) -> VideoReport:
    from distributed import as_completed
    from tqdm import tqdm

    from .images import check_resources

    writer = open_writer(output_path, info, encode, audio_source=input_path)
    uint16 = writer.wants_uint16
    work = output_path.parent / f".{output_path.name}.shots-{uuid.uuid4().hex[:8]}"
    report = VideoReport()
    report.notes.extend(getattr(writer, "notes", []))
    problem = join_problem(output_path, info, encode)
    if problem is None:
        writer.abort()  # the output was checked; the pieces are encoded on the workers
        writer = PacketJoinWriter(output_path, info, encode, audio_source=input_path)
        piece_encode, suffix = encode, piece_suffix(encode.video_codec)
        report.notes.append("shots encoded on the workers and joined by stream copy")
    else:
        piece_encode, suffix = EncodeOptions(lossless=True), ".mkv"
        report.notes.append(f"shots re-encoded on the client ({problem})")
    bar = dispatcher = None
    try:
        work.mkdir()
        note = check_resources(client, resources or {})
        bar = tqdm(total=info.n_frames, unit="frame", disable=not options.progress, dynamic_ncols=True,
                   smoothing=0.1, desc="colorizing")
        if note:
            bar.write(f"tinct video: note: {note}")
        run_id = uuid.uuid4().hex[:12]

        def piece_path(span: Span) -> Path:
            return (work / f"shot_{span.number:05d}{suffix}").resolve()

        def submit(span: Span) -> Any:
            # Earlier spans first: the join takes them in order.
            return client.submit(colorize_span, str(input_path.resolve()), span, str(piece_path(span)), spec, options,
                                 uint16, piece_encode, span.first_pts, key=f"tinct-shot-{run_id}-{span.number}",
                                 resources=resources or None, priority=-span.number, pure=False)

        completed = as_completed()
        dispatcher = _Dispatcher(ShotPlanner(input_path, options.temporal_options.motion, min_span_frames),
                                 submit, completed)
        dispatcher.thread.start()
        done: dict[int, tuple[Span, dict[str, Any]]] = {}
        workers: set[str] = set()
        next_span = 0
        while True:
            for future in completed:
                span = dispatcher.submitted[future]
                try:
                    result = future.result()
                except (VideoIOError, ValueError, OSError) as error:
                    raise VideoIOError(f"shot {span.number + 1} (from frame {span.first_index}): {error}") from None
                except Exception as error:  # noqa: BLE001 - KilledWorker and the like
                    raise ClusterError(f"shot {span.number + 1} (from frame {span.first_index}) was lost on the "
                                       f"cluster: {type(error).__name__}: {error}") from None
                done[span.number] = (span, result)
                workers.add(result["worker"])
                bar.update(span.n_frames)
                while next_span in done:
                    joined, result = done.pop(next_span)
                    t0 = time.perf_counter()
                    report.frames_written += _join_span(result, piece_path(joined), writer, joined.first_pts)
                    report.seconds["join"] = report.seconds.get("join", 0.0) + time.perf_counter() - t0
                    report.frames_read += len(result["frames"]) + len(result["damaged"])
                    report.damaged.extend(tuple(d) for d in result["damaged"])
                    report.cuts.extend(result["cuts"])
                    for stage, seconds in result["seconds"].items():
                        report.seconds[stage] = report.seconds.get(stage, 0.0) + seconds
                    next_span += 1
                if dispatcher.error is not None:
                    raise dispatcher.error
            if dispatcher.error is not None:
                raise dispatcher.error
            if dispatcher.done.is_set() and completed.is_empty():
                break
            dispatcher.done.wait(0.05)  # the planner is still reading: more spans will come
        bar.total = dispatcher.planner.frames
        bar.refresh()
        report.seconds["plan"] = dispatcher.planner.seconds
        report.output = writer.commit()
    except BaseException:
        writer.abort()
        if dispatcher is not None:
            client.cancel(dispatcher.cancel())
        raise
    finally:
        if bar is not None:
            bar.close()
        if dispatcher is not None:
            dispatcher.thread.join(timeout=5.0)  # after a failure it stops at its next span, sending nothing
        shutil.rmtree(work, ignore_errors=True)
    report.wall = time.perf_counter() - start
    report.notes.append(f"{dispatcher.planner.shots} shot(s) in {next_span} task(s) on {len(workers)} worker(s); "
                        "stage times are summed over the workers")
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
