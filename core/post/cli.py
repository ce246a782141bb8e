"""``tinct eval-post`` (measure post-processing on BSDS500 val) and ``tinct bench-post`` (timings)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.errors import InputError, UsageError, report
from core.options import add_argument as add_option
from core.options import check_arguments
from .steps import POST_STEPS, parse_post_steps


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval-post`` and ``bench-post`` sub-commands; each sets ``func(args) -> int``."""
    evaluate = subparsers.add_parser(
        "eval-post",
        help="measure post-processing (crf, segments, tv) on BSDS500 val against human segmentations",
        description="Scores the raw output, each step alone and all steps together: colour homogeneity inside "
        "ground-truth segments, colour leakage across their boundaries, AuC and colourfulness. Writes "
        "post_eval.md, post_eval.json and post_grid.png.",
    )
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--model", default="default", help="model name for core.loading.load_model (default: default)")
    source.add_argument("--synthetic", action="store_true",
                        help="no model: degrade the true colours with halos, blotches and noise (a stand-in)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate only the first N val images")
    evaluate.add_argument("--out", type=Path, default=Path("runs/post"), help="output folder (default runs/post)")
    evaluate.add_argument("--steps", default=None,
                          help=f"extra combination to score besides the defaults, e.g. 'crf,tv' (from {', '.join(POST_STEPS)})")
    evaluate.add_argument("--post-strength", type=float, default=1.0, help="post strength in [0,1] (default 1)")
    add_option(evaluate, "temperature")
    add_option(evaluate, "render_size")
    evaluate.add_argument("--device", default="cpu", help="torch device (default cpu)")
    evaluate.add_argument("--grid", type=int, default=4, help="images in the before/after grid (default 4)")
    evaluate.add_argument("--data", type=Path, default=None, help="shared data folder (default: core.paths.data_dir())")
    evaluate.set_defaults(func=run_eval_post)

    bench = subparsers.add_parser("bench-post", help="time each post-processing step at network resolution")
    bench.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"),
                       help="network-output grid (default 128 128, about a 12 MP photo rendered at 512 px)")
    bench.add_argument("--bins", type=int, default=313, help="number of ab bins Q (default 313)")
    bench.add_argument("--repeats", type=int, default=3, help="timed runs per step (median reported)")
    bench.add_argument("--device", default="cpu", help="torch device (default cpu)")
    bench.set_defaults(func=run_bench_post)


def run_eval_post(args: argparse.Namespace) -> int:
    from core.paths import data_dir

    from .measure import DEFAULT_COMBINATIONS, evaluate_post, load_bsds_val, model_predictor, synthetic_predictor, \
        write_report

    problem = check_arguments(args, ("temperature", "render_size"))
    if problem:
        raise UsageError(problem)
    if not 0.0 <= args.post_strength <= 1.0:
        raise UsageError(f"--post-strength must be in [0, 1], got {args.post_strength}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    combinations = list(DEFAULT_COMBINATIONS)
    if args.steps:
        try:
            extra = parse_post_steps(args.steps)
        except ValueError as error:
            raise UsageError(f"--steps: {error}") from None
        if extra not in combinations:
            combinations.append(extra)
    try:
        images = load_bsds_val(args.data or data_dir(), limit=args.limit)
    except FileNotFoundError as error:
        raise InputError(str(error)) from None
    if args.synthetic:
        from .synthetic import grid_bin_centers

        bins = grid_bin_centers()
        predict = synthetic_predictor(bins[bins.norm(dim=1).argsort()[:313]])
        title = "Post-processing on BSDS500 val: SYNTHETIC degraded logits (no model)"
    else:
        from core.loading import load_model

        model = load_model(args.model, device=args.device)
        predict = model_predictor(model, render_size=args.render_size, device=args.device)
        title = f"Post-processing on BSDS500 val: model {args.model!r}, render size {args.render_size}"
    table, rows = evaluate_post(images, predict, combinations=combinations, strength=args.post_strength,
                                temperature=args.temperature, keep_rgb=args.grid)
    written = write_report(table, rows, args.out, title)
    print((args.out / "post_eval.md").read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def run_bench_post(args: argparse.Namespace) -> int:
    from .measure import bench_post

    try:
        results = bench_post(size=tuple(args.size), num_bins=args.bins, repeats=args.repeats, device=args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(json.dumps({"size": list(args.size), "bins": args.bins, "device": args.device,
                      "median_seconds": results}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m core.post.cli eval-post ...``) until ``tinct`` wires ``add_parser``."""
    parser = argparse.ArgumentParser(prog="python -m core.post.cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (Exception, KeyboardInterrupt) as error:
        return report(f"python -m core.post.cli {args.command}", error)


if __name__ == "__main__":
    raise SystemExit(main())
