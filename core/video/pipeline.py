"""The video pipeline: decode thread -> batched colorization -> encode thread, bounded queues.

::

    reader thread        main thread                          writer thread
    decode, luma, flow -> [L, model batch, temporal, merge] -> encode/mux (+ audio copy), progress
             q_in (<= queue_frames)              q_out (<= queue_frames)

At most ``2 * queue_frames + batch_size + 2`` frames are alive at once, whatever the length of
the film, so memory stays flat. Any failure or Ctrl-C stops all three stages and removes the
temporary output; nothing is ever written under the final name until the last frame is muxed.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from core.options import TEMPERATURE
from core.video.flow import Motion, MotionAnalyser
from core.video.frames import lightness, merge, tensor_to_arrays
from core.video.io import (EncodeOptions, FrameReader, FrameWriter, SourceFrame, VideoIOError, check_distinct,
                           open_reader, open_writer)
from core.video.temporal import TemporalOptions, TemporalSmoother


class DamagedFrameError(VideoIOError):
    """A damaged input frame with ``on_damaged="stop"``."""


@dataclass(frozen=True)
class VideoOptions:
    """How to colorize a stream.

    ``temporal``: flow-guided temporal filter on (see :mod:`core.video.temporal`) or plain
    per-frame output. ``batch_size``: frames per network call. ``queue_frames``: bound of each
    inter-thread queue. ``on_damaged``: ``"skip"`` (report the frame, leave it out, go on; with
    pts kept, the previous frame is simply shown longer) or ``"stop"`` (clear error, no output).
    ``colorize_opts``: passed to ``Colorizer.colorize_L`` (``render_size``, ``decode``, ...).
    ``stages_take_turns``: the three stages still run in their threads but compute one at a time, so the
    run stays on one core (a one-thread cluster worker's budget; overlapping they take about 1.2 cores).
    """

    temperature: float = TEMPERATURE
    temporal: bool = True
    temporal_options: TemporalOptions = field(default_factory=TemporalOptions)
    batch_size: int = 4
    queue_frames: int = 8
    on_damaged: str = "skip"
    colorize_opts: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    stages_take_turns: bool = False

    def __post_init__(self) -> None:
        if self.on_damaged not in ("skip", "stop"):
            raise ValueError(f"on_damaged must be 'skip' or 'stop', not {self.on_damaged!r}")
        if self.batch_size < 1 or self.queue_frames < 1:
            raise ValueError("batch_size and queue_frames must be >= 1")


@dataclass
class VideoReport:
    """What a run did. ``seconds`` per stage: ``decode`` and ``motion`` (reader thread), ``model``,
    ``temporal`` and ``convert`` (main thread), ``encode`` (writer thread); stages overlap, so
    ``wall`` is less than their sum. ``max_in_flight``: the most frames read but not yet written."""

    output: Path | None = None
    frames_read: int = 0
    frames_written: int = 0
    damaged: list[tuple[int, str]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "motion", "model", "temporal", "convert", "encode"), 0.0))
    wall: float = 0.0
    max_in_flight: int = 0

    @property
    def fps(self) -> float:
        return self.frames_written / self.wall if self.wall > 0 else 0.0


_END = object()


@dataclass
class _Failure:
    error: BaseException


class _Stopped(Exception):
    """Internal: another stage failed, this one winds down."""


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def colorize_video(input_path: str | Path, output_path: str | Path, colorizer: Any,
                   options: VideoOptions = VideoOptions(), encode: EncodeOptions = EncodeOptions(),
                   *, provenance: bool = True) -> VideoReport:
    """Colorize a video file or frame folder into a video file or frame folder (see :func:`run_pipeline`).

    The output format follows ``output_path``: a video suffix (``.mp4`` H.264 by default, ``.mkv``
    for lossless FFV1, ...) or a path without suffix for a folder of numbered images.
    With ``provenance`` (the default) the output carries the record of the run (container tags,
    or the metadata of every frame), unless ``encode.provenance`` already holds one.
    Raises :class:`VideoIOError` (one-line message) for bad paths, formats or damaged input with
    ``on_damaged="stop"``.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if not provenance:
        encode = replace(encode, provenance=None)
    elif encode.provenance is None and hasattr(colorizer, "settings"):
        from core.provenance import record_from_settings

        settings = colorizer.settings(temperature=options.temperature, **options.colorize_opts)
        encode = replace(encode, provenance=record_from_settings(settings, temporal=options.temporal))
    reader = open_reader(input_path, fps=encode.fps)
    try:
        check_distinct(input_path, output_path)
        writer = open_writer(output_path, reader.info, encode,
                             audio_source=input_path if input_path.is_file() else None)
        report = run_pipeline(reader, writer, colorizer, options)
    finally:
        reader.close()
    return report


def run_pipeline(reader: FrameReader, writer: FrameWriter, colorizer: Any,
                 options: VideoOptions = VideoOptions(),
                 on_frame: Callable[[int], None] | None = None) -> VideoReport:
    """Run the three-stage pipeline; commit the writer on success, abort it on any failure.

    ``colorizer``: anything with ``colorize_L(L [N,1,H,W] float32 0..100, *, temperature, **opts)
    -> ab [N,2,H,W]`` and optionally a ``device``. ``on_frame(index)`` is called in the main
    thread before each frame is colorized (tests use it to interrupt a run).
    """
    report = VideoReport()
    report.notes.extend(getattr(writer, "notes", []))
    device = torch.device(getattr(colorizer, "device", "cpu"))
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=options.queue_frames)
    q_out: queue.Queue = queue.Queue(maxsize=options.queue_frames)
    counters = {"read": 0, "written": 0}
    lock = threading.Lock()
    turn = threading.Lock() if options.stages_take_turns else contextlib.nullcontext()
    failures: list[BaseException] = []
    bar = tqdm(total=reader.info.n_frames, unit="frame", disable=not options.progress, dynamic_ncols=True,
               smoothing=0.1, desc="colorizing")

    def read_stage() -> None:
        analyser = MotionAnalyser(options.temporal_options.motion) if options.temporal else None
        try:
            frames = reader.frames()
            while True:
                with turn:
                    t0 = time.perf_counter()
                    sf = next(frames, None)
                    t1 = time.perf_counter()
                    report.seconds["decode"] += t1 - t0
                    if sf is None:
                        break
                    motion = analyser(sf.rgb) if analyser is not None and sf.rgb is not None else None
                    report.seconds["motion"] += time.perf_counter() - t1
                with lock:
                    counters["read"] += 1
                    report.max_in_flight = max(report.max_in_flight, counters["read"] - counters["written"])
                _put(q_in, (sf, motion), stop)
            _put(q_in, _END, stop)
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, re-raised there
            failures.append(e)
            stop.set()

    def write_stage() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    return
                sf, rgb = item
                with turn:
                    t0 = time.perf_counter()
                    writer.write(rgb, sf)
                    report.seconds["encode"] += time.perf_counter() - t0
                with lock:
                    counters["written"] += 1
                bar.update(1)
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=read_stage, name="tinct-video-read", daemon=True),
               threading.Thread(target=write_stage, name="tinct-video-write", daemon=True)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    smoother = TemporalSmoother(options.temporal_options.alpha)
    out_dtype = np.uint16 if writer.wants_uint16 else np.uint8
    try:
        with torch.inference_mode():
            batch: list[tuple[SourceFrame, Motion | None]] = []
            while True:
                item = _get(q_in, stop)
                done = item is _END
                if not done:
                    sf, motion = item
                    report.frames_read += 1
                    if sf.rgb is None:
                        _damaged(sf, options, report, bar)
                    else:
                        if on_frame is not None:
                            on_frame(sf.index)
                        if motion is not None and motion.cut:
                            report.cuts.append(sf.index)
                        batch.append((sf, motion))
                if batch and (done or len(batch) == options.batch_size):
                    with turn:
                        outs = _colorize_batch(batch, colorizer, smoother, device, options, out_dtype, report)
                    for out in outs:
                        _put(q_out, out, stop)
                    batch = []
                if done:
                    break
            _put(q_out, _END, stop)
        for t in threads:
            t.join()
        if failures:
            raise failures[0]
        report.frames_written = counters["written"]
        report.output = writer.commit()
    except BaseException as e:
        stop.set()
        for t in threads:
            t.join()
        writer.abort()
        if isinstance(e, _Stopped) and failures:
            raise failures[0] from None
        raise
    finally:
        bar.close()
    report.wall = time.perf_counter() - start
    if report.frames_written == 0:
        raise VideoIOError("no frame could be decoded")
    return report


def _damaged(sf: SourceFrame, options: VideoOptions, report: VideoReport, bar: tqdm) -> None:
    where = f"frame {sf.index}" + (f" ({sf.name})" if sf.name else "") + (f" pts {sf.pts}" if sf.pts is not None else "")
    if options.on_damaged == "stop":
        raise DamagedFrameError(f"damaged input {where}: {sf.error}")
    report.damaged.append((sf.index, sf.error or "damaged"))
    bar.write(f"warning: skipped damaged input {where}: {sf.error}", file=sys.stderr)


def _colorize_batch(batch: list[tuple[SourceFrame, Motion | None]], colorizer: Any, smoother: TemporalSmoother,
                    device: torch.device, options: VideoOptions, out_dtype: type,
                    report: VideoReport) -> list[tuple[SourceFrame, np.ndarray]]:
    t0 = time.perf_counter()
    L = lightness([sf.rgb for sf, _ in batch], device)
    t1 = time.perf_counter()
    ab = colorizer.colorize_L(L, temperature=options.temperature,
                              **{"batch_size": len(batch), **options.colorize_opts})
    t2 = time.perf_counter()
    if options.temporal:
        ab = torch.stack([smoother.step(ab[i], m) for i, (_, m) in enumerate(batch)])
    t3 = time.perf_counter()
    rgb = tensor_to_arrays(merge(L, ab), out_dtype)
    t4 = time.perf_counter()
    report.seconds["model"] += t2 - t1
    report.seconds["temporal"] += t3 - t2
    report.seconds["convert"] += (t1 - t0) + (t4 - t3)
    return [(sf, out) for (sf, _), out in zip(batch, rgb)]
