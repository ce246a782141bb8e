"""``tinct bench-network``: the network alone at the render size, median milliseconds per image.

The model issue's speed target (≤ 60 ms at the default render size on a 2-core CPU) is a figure of this report,
measured with 1 and 2 torch threads, never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

DEFAULT_MODELS = "tinct-small"
# The default render (longer side 256) of a 4:3 photo, and a square one.
DEFAULT_SHAPES = "192x256,256x256"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench-network", help="time the network alone (median ms per image)",
                              description=__doc__)
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--shapes", default=DEFAULT_SHAPES, help=f"HxW network inputs (default {DEFAULT_SHAPES})")
    p.add_argument("--threads", default="1,2", help="torch thread counts to measure (default 1,2)")
    p.add_argument("--repeat", type=int, default=20, help="timed calls per configuration (default 20)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


def _parse_shape(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def time_network(model: torch.nn.Module, shape: tuple[int, int], repeat: int, threads: int) -> dict[str, float]:
    """Median and spread of ``repeat`` forward passes of one gray image of ``shape`` (after 3 warm-up calls)."""
    torch.set_num_threads(threads)
    L = torch.rand(1, 1, *shape) * 100.0
    hints = {}
    if getattr(model, "accepts_hints", False):
        hints = {"hint_ab": torch.zeros(1, 2, *shape), "hint_mask": torch.zeros(1, 1, *shape)}
    times = []
    with torch.inference_mode():
        for i in range(repeat + 3):
            t0 = time.perf_counter()
            model(L, **hints)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def run(args: argparse.Namespace) -> int:
    from .loading import load_model

    shapes = [_parse_shape(s) for s in args.shapes.split(",") if s]
    threads = [int(t) for t in args.threads.split(",") if t]
    rows = []
    for name in [m for m in args.models.split(",") if m]:
        model = load_model(name)
        for shape in shapes:
            for n in threads:
                row = {"model": name, "shape": f"{shape[0]}x{shape[1]}", "threads": n,
                       **time_network(model, shape, args.repeat, n)}
                rows.append(row)
                print(f"{name:16s} {row['shape']:>9s} threads={n}  median {row['median_ms']:6.1f} ms "
                      f"(min {row['min_ms']:.1f}, max {row['max_ms']:.1f})")
    report = {"torch": torch.__version__, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "repeat": args.repeat, "rows": rows}
    print(f"load average at the end: {report['load_average'][0]:.2f}", file=sys.stderr)
    if args.json:
        from .fs import write_atomically

        write_atomically(args.json, lambda f: f.write(json.dumps(report, indent=1).encode()))
    return 0
