"""``tinct video`` and ``tinct eval-video``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from core.errors import Interrupted, UsageError, known_errors, one_line
from core.interrupt import Terminated, sigterm_as_interrupt
from core.options import add_argument as add_option
from core.options import check_arguments
from core.runs import add_cluster_arguments
from core.video.flow import DIS_PRESETS, MotionOptions
from core.video.temporal import TemporalOptions

# Video's own default for the option of core/options.py: the decode, flow and encode threads need a core.
VIDEO_THREADS_HELP = ("CPU threads per network call (default on the CPU: cores - 1, fewer while other programs keep "
                      "cores busy; N: exactly N)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``video`` and ``eval-video`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser(
        "video", help="colorize a black-and-white video or a folder of numbered frames",
        description=(
            "Colorize a video (any container/codec FFmpeg reads) or a folder of numbered frames, with "
            "flow-guided temporal smoothing against flicker. OUTPUT with a video suffix gives a video "
            "(.mp4 = H.264 by default; --lossless = FFV1 in .mkv) keeping frame times, rotation and the "
            "audio (copied packet for packet); OUTPUT without a suffix gives a folder of numbered images. "
            "The output appears under its name only when complete; the input is never touched."))
    p.add_argument("input", type=Path, metavar="INPUT", help="video file or folder of numbered frames")
    p.add_argument("output", type=Path, metavar="OUTPUT", help="video file (.mp4 .mkv .mov ...) or folder")
    _model_arguments(p)
    _temporal_arguments(p)
    enc = p.add_argument_group("output encoding")
    enc.add_argument("--codec", help="video encoder (default libx264; ffv1 with --lossless)")
    enc.add_argument("--crf", type=int, default=18, help="x264/x265 quality, lower is better (default 18)")
    enc.add_argument("--preset", default="medium", help="x264/x265 preset, e.g. veryfast, medium, slow (default medium)")
    enc.add_argument("--lossless", action="store_true", help="lossless FFV1 (needs .mkv/.avi/.nut)")
    enc.add_argument("--fps", type=Fraction, default=Fraction(24), help="frame rate for a frame folder input (default 24)")
    enc.add_argument("--frame-format", default="png", help="image type of a frame-folder output (default png)")
    p.add_argument("--on-damaged", choices=("skip", "stop"), default="skip",
                   help="a damaged input frame is reported and left out (skip, default) or stops the run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (never the input)")
    add_option(p, "batch_size")
    p.add_argument("--queue", type=int, default=8, metavar="N", help="frames buffered between stages (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_option(p, "threads", default=None, help=VIDEO_THREADS_HELP)
    p.add_argument("--report", type=Path, metavar="JSON", help="write the run's report (timings, damaged frames) here")
    from core.cli_colorize import add_provenance_argument

    add_provenance_argument(p)
    add_cluster_arguments(p, task_size=False)
    p.set_defaults(func=run_video)

    e = subparsers.add_parser(
        "eval-video", help="measure flicker (warping error) and colourfulness, and end-to-end speed",
        description=(
            "Turns colour clips gray, colorizes them with --temporal off and on, and reports Lai et al.'s "
            "warping error (x1e-3, RGB, flow and occlusion mask from the ground-truth luma), Hasler & "
            "Süsstrunk colourfulness and mean |ab error| for both and for the ground truth. Clips are "
            "synthetic (pans, zooms, cuts, moving objects, grain over shared/data photos) unless --video "
            "is given. --speed times 'tinct video' end to end on a generated gray clip."))
    e.add_argument("--video", type=Path, nargs="*", default=[], help="colour video files to use instead of synthetic clips")
    e.add_argument("--clips", type=int, default=4, help="number of synthetic clips (default 4)")
    e.add_argument("--size", default="320x180", help="synthetic clip size WxH (default 320x180)")
    e.add_argument("--shots", default="24,16", help="frames per shot, comma-separated (default 24,16)")
    e.add_argument("--max-frames", type=int, default=48, help="frames read from each --video (default 48)")
    e.add_argument("--simulate", type=float, metavar="JITTER",
                   help="instead of a network, use the true colour plus per-frame random ab noise of this size")
    e.add_argument("--speed", metavar="WxH", help="also time 'tinct video' end to end at this size (e.g. 720x405)")
    e.add_argument("--speed-frames", type=int, default=96, help="frames in the speed clip (default 96)")
    e.add_argument("--json", type=Path, metavar="FILE", help="write all numbers as JSON")
    _model_arguments(e)
    _temporal_arguments(e)
    add_option(e, "batch_size")
    add_option(e, "threads", default=None, help=VIDEO_THREADS_HELP)
    e.set_defaults(func=run_eval)


def _model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    add_option(g, "model")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto)")
    g.add_argument("--half", action=argparse.BooleanOptionalAction, default=None,
                   help="float16 network (default: on CUDA only)")
    add_option(g, "temperature")
    add_option(g, "render_size")


def _temporal_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("temporal consistency")
    g.add_argument("--temporal", choices=("on", "off"), default="on",
                   help="flow-guided blending with the previous frame (on, default) or plain per-frame output")
    g.add_argument("--alpha", type=float, default=0.8, help="weight of the warped previous colours (default 0.8)")
    g.add_argument("--flow-preset", choices=sorted(DIS_PRESETS), default="fast", help="DIS optical-flow preset (default fast)")
    g.add_argument("--flow-max-side", type=int, default=1024, help="flow computed at most this large (default 1024)")
    g.add_argument("--mask", choices=("fb", "photometric"), default="fb", dest="reliability",
                   help="where the flow is trusted: forward-backward consistency (default) or photometric check")
    g.add_argument("--cut-threshold", type=float, default=0.5, help="luma-histogram scene-cut threshold (default 0.5)")


def _temporal_options(args: argparse.Namespace) -> TemporalOptions:
    return TemporalOptions(alpha=args.alpha, motion=MotionOptions(
        preset=args.flow_preset, max_side=args.flow_max_side, mask=args.reliability,
        cut_threshold=args.cut_threshold))


def _colorizer(args: argparse.Namespace) -> Any:
    import torch

    from core.pipeline import Colorizer

    threads = getattr(args, "threads", None)
    colorizer = Colorizer(args.model, args.device, args.half, threads=threads or 0)  # 0: no more than the idle cores
    if threads is None and colorizer.device.type == "cpu":
        # The decode/flow and encode threads need a core; torch spreading over all of them
        # as well made a 2-core run 7x slower (1.9 vs 13 frames/s at 720x405, measured).
        threads = max(1, (os.cpu_count() or 2) - 1)
    if threads:
        torch.set_num_threads(threads)
    return colorizer


def _colorize_opts(args: argparse.Namespace) -> dict[str, Any]:
    return {"render_size": args.render_size}


def _option_problem(args: argparse.Namespace) -> str | None:
    """The first model option outside its range (core.options), as one line."""
    return check_arguments(args, ("temperature", "render_size", "batch_size", "threads"))


def run_video(args: argparse.Namespace) -> int:
    from core.video.io import EncodeOptions, VideoIOError, check_distinct
    from core.video.pipeline import VideoOptions, colorize_video

    problem = _option_problem(args)
    if problem:
        raise UsageError(problem)
    try:
        if args.input.exists():  # refuse an output over the input before the model loads
            check_distinct(args.input, args.output)
        options = VideoOptions(temperature=args.temperature, temporal=args.temporal == "on",
                               temporal_options=_temporal_options(args), batch_size=args.batch_size,
                               queue_frames=args.queue, on_damaged=args.on_damaged,
                               colorize_opts=_colorize_opts(args), progress=not args.no_progress)
        encode = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset, lossless=args.lossless,
                               fps=args.fps, frame_suffix="." + args.frame_format.lstrip("."),
                               overwrite=args.overwrite)
        if args.scheduler:
            from core.cluster import video_on_cluster

            with sigterm_as_interrupt():
                report = video_on_cluster(args, options, encode)  # shots in parallel on a Dask cluster
        else:
            colorizer = _colorizer(args)
            with sigterm_as_interrupt():
                report = colorize_video(args.input, args.output, colorizer, options, encode,
                                        provenance=args.provenance)
    except OSError as e:  # what PyAV or the file system says about a path (VideoIOError names its own kind)
        raise VideoIOError(one_line(e)) from None
    except (ValueError, KeyError) as e:
        if isinstance(e, known_errors()):  # a reference, an option, a device: their own kind
            raise
        raise UsageError(one_line(e)) from None  # a value the engine refuses where it uses it
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        raise Interrupted(f"{'terminated' if terminated else 'interrupted'}; no output written",
                          terminated=terminated) from None
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    print(f"{report.output}: {report.frames_written} frames in {report.wall:.1f}s ({report.fps:.2f} frames/s; "
          f"{stages}); {len(report.damaged)} damaged frame(s) skipped, {len(report.cuts)} shot start(s)")
    if args.report:
        args.report.write_text(json.dumps(_report_dict(report), indent=2))
    return 0


def _report_dict(report: Any) -> dict[str, Any]:
    return {"output": str(report.output), "frames_read": report.frames_read, "frames_written": report.frames_written,
            "fps": report.fps, "wall_s": report.wall, "stage_s": report.seconds, "damaged": report.damaged,
            "cuts": report.cuts, "notes": report.notes, "max_in_flight": report.max_in_flight}


def run_eval(args: argparse.Namespace) -> int:
    from core.video import evaluate as ev

    problem = _option_problem(args)
    if problem:
        raise UsageError(problem)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        shots = [int(v) for v in args.shots.split(",")]
    except ValueError:
        raise UsageError(f"--size must be WxH and --shots comma-separated integers, got {args.size!r}, "
                         f"{args.shots!r}") from None
    clips = ([ev.video_clip(p, args.max_frames) for p in args.video] if args.video
             else ev.synthetic_clips(args.clips, w, h, shots))
    temporal = _temporal_options(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    colorizer = None if args.simulate is not None else _colorizer(args)
    results = []
    for name, color, cuts in clips:
        model = ev.SimulatedColorizer(ev.ab_channels(color), jitter=args.simulate) if colorizer is None else colorizer
        r = ev.evaluate_clip(name, color, cuts, model, temperature=args.temperature, temporal=temporal,
                             batch_size=args.batch_size, **_colorize_opts(args))
        results.append(r)
        print(f"{name}: {r.n_frames} frames; warping error x1e-3 truth {r.warp['truth']:.3f} off {r.warp['off']:.3f} "
              f"on {r.warp['on']:.3f}; colourfulness truth {r.colorfulness['truth']:.1f} off {r.colorfulness['off']:.1f} "
              f"on {r.colorfulness['on']:.1f}")
    summary = ev.summarise(results)
    ch = summary["change_percent"]
    print(f"mean over {len(results)} clips: warping error x1e-3 truth {summary['warp']['truth']:.3f}, "
          f"per-frame {summary['warp']['off']:.3f}, temporal {summary['warp']['on']:.3f} ({ch['warp_error']:+.1f} %); "
          f"colourfulness truth {summary['colorfulness']['truth']:.1f}, per-frame {summary['colorfulness']['off']:.1f}, "
          f"temporal {summary['colorfulness']['on']:.1f} ({ch['colorfulness']:+.1f} %); ab-only warping error truth "
          f"{summary['warp_ab']['truth']:.2f}, per-frame {summary['warp_ab']['off']:.2f}, temporal "
          f"{summary['warp_ab']['on']:.2f} ({ch['warp_error_ab']:+.1f} %); |ab error| per-frame "
          f"{summary['ab_error']['off']:.2f}, temporal {summary['ab_error']['on']:.2f}")
    out: dict[str, Any] = {"clips": [vars(r) for r in results], "summary": summary}
    if args.speed:
        out["speed"] = _speed(args, temporal)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def _speed(args: argparse.Namespace, temporal: TemporalOptions) -> dict[str, Any]:
    from core.video import evaluate as ev
    from core.video.io import EncodeOptions
    from core.video.pipeline import VideoOptions, colorize_video

    w, h = (int(v) for v in args.speed.lower().split("x"))
    colorizer = _colorizer(args)
    results = {}
    with tempfile.TemporaryDirectory(prefix="tinct-speed-") as tmp:
        src = ev.write_speed_clip(Path(tmp) / "gray.mp4", w, h, args.speed_frames)
        for mode in ("off", "on"):
            opts = VideoOptions(temperature=args.temperature, temporal=mode == "on", temporal_options=temporal,
                                batch_size=args.batch_size, colorize_opts=_colorize_opts(args), progress=False)
            report = colorize_video(src, Path(tmp) / f"color_{mode}.mp4", colorizer, opts, EncodeOptions(preset="veryfast"))
            results[mode] = _report_dict(report)
            stages = ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items())
            print(f"speed {w}x{h}, temporal {mode}, device {getattr(colorizer, 'device', 'cpu')}: "
                  f"{report.frames_written} frames in {report.wall:.1f}s = {report.fps:.2f} frames/s ({stages})")
    return results
