"""``tinct bench``: per-stage timings of the pipeline next to a reference pipeline, in one run.

The REFERENCE is the official code's recipe (its demo script) with the same eccv16
network: skimage ``rgb2lab`` / ``lab2rgb`` at full resolution, a 256x256 (squashed) network input,
bilinear ab upsampling. Every configuration (pipeline x model x size) runs in a fresh Python
process, so its peak memory (``resource.getrusage`` maxrss) is its own; stage times are medians
over ``--repeat`` runs after one warm-up run. Inputs are synthetic grayscale JPEGs written to a
temporary folder, outputs are JPEGs written by the same encoder for both pipelines. With
``--hints N`` our pipeline also gets N painted colour dabs (:func:`hint_dabs`, the layout that
``tests/gimp/bench_gimp.py --hints`` paints in GIMP), sent the GIMP plug-in's way: the stage
``hints`` finds the painted regions (``core.hint_regions``) and turns them into hinted pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import UsageError
from .options import OPTIONS, check_arguments
from .options import add_argument as add_option

STAGES: tuple[str, ...] = ("read", "hints", "lab", "content", "network", "decode", "upsample", "merge", "write")
DEFAULT_SIZES = "1,12"
DEFAULT_MODELS = "eccv16,default"
REFERENCE_NETWORK_SIZE = 256
RATIO_TARGET = 1.0 / 3.0
RATIO_TARGET_MEGAPIXELS = 12  # the target is stated for 12 MP photos with eccv16


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser(
        "bench",
        help="time the pipeline's stages against the reference pipeline",
        description=(
            "Time read, Lab, network, decode, upsample, merge and write (medians) on synthetic grayscale "
            "photos of the given sizes, for each model, next to the REFERENCE pipeline (skimage Lab at full "
            "resolution, 256x256 network input, bilinear upsampling; eccv16 network) measured in the same run. "
            "Prints a table, the end-to-end ratio to the reference (target: at most 1/3 at 12 MP with eccv16) "
            "and each configuration's peak memory (maxrss of a fresh process). eccv16 runs with random "
            "weights; a model whose weights are absent is skipped with a note."
        ),
    )
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"megapixels, comma-separated (default {DEFAULT_SIZES})")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"models, comma-separated (default {DEFAULT_MODELS})")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="timed runs per configuration (default 3)")
    p.add_argument("--device", default="auto", help="device for our pipeline (the reference runs on the CPU)")
    p.add_argument("--post", default="", metavar="STEPS", help="post-processing steps for our pipeline")
    p.add_argument("--render-size", type=int, default=None, metavar="N", help="our pipeline's render size")
    p.add_argument("--hints", type=int, default=0, metavar="N",
                   help="give our pipeline N painted colour dabs as hints (default 0: none)")
    add_option(p, "threads", help=f"{OPTIONS['threads'].help} (our pipeline; the table shows the counts used)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference pipeline")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------- synthetic inputs


def synthetic_size(megapixels: float) -> tuple[int, int]:
    """(height, width) of a 4:3 landscape image of about ``megapixels`` MP (multiples of 8)."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 8)) * 8
    return max(8, width * 3 // 4 // 8 * 8), max(8, width)


def write_synthetic_photo(path: Path, height: int, width: int, seed: int = 0) -> None:
    """A grayscale JPEG with smooth shading, hard-edged shapes and grain, like a scanned photo."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    img = 0.35 + 0.3 * np.sin(3.0 * x + 1.0) * np.cos(2.0 * y)
    for _ in range(12):
        cy, cx, r = rng.random(), rng.random(), 0.05 + 0.2 * rng.random()
        img = np.where((x - cx) ** 2 + ((y - cy) * height / width) ** 2 < r * r, rng.random(), img)
    img += rng.normal(0.0, 0.02, (height, width)).astype(np.float32)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "L").save(path, quality=92)


HINT_COLOURS = ((40, 80, 220), (200, 60, 40), (60, 160, 60), (230, 200, 60), (150, 90, 60))


def hint_dabs(width: int, height: int, count: int = 10) -> list[list]:
    """``count`` square colour dabs (2 % of the shorter side) spread over a ``width`` x ``height``
    layer, five per row: ``[x, y, w, h, [r, g, b]]`` in pixels and 8-bit sRGB."""
    side = max(2, min(width, height) // 50)
    rows = (count + 4) // 5
    return [[width * (1 + 2 * (i % 5)) // 10, height * (1 + 2 * (i // 5)) // (2 * rows), side, side,
             list(HINT_COLOURS[i % 5])] for i in range(count)]


def hint_layer(height: int, width: int, count: int):
    """:func:`hint_dabs` painted on a transparent ``[H, W, 4]`` uint8 RGBA layer."""
    import numpy as np

    layer = np.zeros((height, width, 4), np.uint8)
    for x, y, w, h, rgb in hint_dabs(width, height, count):
        layer[y : y + h, x : x + w] = (*rgb, 255)
    return layer


# --------------------------------------------------------------------------------- one configuration (child process)


def _median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    return {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in STAGES}


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _measure_ours(config: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from .imageio import read_image, write_image
    from .pipeline import Colorizer, record_stage_times

    model: Any = config["model"]
    if model == "eccv16":
        from .models import create_model

        torch.manual_seed(0)
        model = create_model("eccv16")
    colorizer = Colorizer(model, config["device"], threads=config.get("threads", 0))
    options: dict[str, Any] = {"post": tuple(config["post"])}
    if config.get("render_size"):
        options["render_size"] = config["render_size"]
    source, target = Path(config["input"]), Path(config["output"])
    from .provenance import record_from_settings

    record = record_from_settings(colorizer.settings(**options))  # written as `tinct colorize` does
    layer = None
    if config.get("hints"):
        if not colorizer.accepts_hints:
            raise UsageError(f"model {config['model']!r} does not take colour hints")
        size = read_image(source).pixels.shape[:2]
        layer = hint_layer(size[0], size[1], config["hints"])

    def hinted() -> dict[str, Any]:
        """The hint layer as the GIMP plug-in sends it and the worker reads it."""
        from .hint_regions import alpha_of_rgba, painted_regions, region_bytes, region_pixels
        from .hints import sparse_hints_from_regions

        height, width = layer.shape[:2]
        regions = painted_regions(alpha_of_rgba(memoryview(layer).cast("B")), width, height)
        data = region_bytes(memoryview(layer).cast("B"), width, regions, 4)
        pixels = np.frombuffer(data, np.uint8).reshape(region_pixels(regions), 4)
        return {"hints": [sparse_hints_from_regions(regions, pixels, (height, width))]}

    def once() -> dict[str, float]:
        times: dict[str, float] = {}
        start = time.perf_counter()
        decoded = read_image(source)
        times["read"] = time.perf_counter() - start
        start = time.perf_counter()
        hints = hinted() if layer is not None else {}
        times["hints"] = time.perf_counter() - start
        with record_stage_times() as stages:
            pixels = colorizer.colorize_arrays([decoded.pixels], **options, **hints)[0]
        times.update({name: sum(values) for name, values in stages.items()})
        start = time.perf_counter()
        write_image(target, pixels, icc_profile=decoded.icc_profile, exif=decoded.exif, dpi=decoded.dpi,
                    provenance=record)
        times["write"] = time.perf_counter() - start
        return times

    once()  # warm-up: allocator, kernels, lookup tables
    runs, threads = [], set()
    for _ in range(config["repeat"]):
        runs.append(once())
        threads.add(colorizer.last_threads)
    return {"stages": _median_stages(runs), "total": statistics.median(sum(r.values()) for r in runs),
            "device": str(colorizer.device), "threads": sorted(threads)}


def _measure_reference(config: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from skimage.color import lab2rgb, rgb2lab

    from .decode import decode_logits
    from .models import create_model

    torch.manual_seed(0)
    model = create_model("eccv16").eval()
    source, target = Path(config["input"]), Path(config["output"])
    size = REFERENCE_NETWORK_SIZE

    def once() -> dict[str, float]:
        t: dict[str, float] = {}
        start = time.perf_counter()
        with Image.open(source) as image:
            img = np.asarray(image.convert("RGB"))  # the official load_img tiles gray to 3 channels
        t["read"] = time.perf_counter() - start

        start = time.perf_counter()
        img_rs = np.asarray(Image.fromarray(img).resize((size, size), resample=Image.BICUBIC))
        L_orig = torch.from_numpy(rgb2lab(img)[:, :, 0]).float()[None, None]
        L_rs = torch.from_numpy(rgb2lab(img_rs)[:, :, 0]).float()[None, None]
        t["lab"] = time.perf_counter() - start

        start = time.perf_counter()
        with torch.inference_mode():
            logits = model(L_rs)
        t["network"] = time.perf_counter() - start

        start = time.perf_counter()
        ab = decode_logits(logits, model.bin_centers, logit_fold=model.logit_fold)
        ab = F.interpolate(ab, scale_factor=model.out_stride, mode="bilinear")  # the official upsample4
        t["decode"] = time.perf_counter() - start

        start = time.perf_counter()
        ab = F.interpolate(ab, size=L_orig.shape[-2:], mode="bilinear")
        t["upsample"] = time.perf_counter() - start

        start = time.perf_counter()
        lab = torch.cat([L_orig, ab], dim=1)[0].permute(1, 2, 0).numpy()
        rgb = (np.clip(lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
        t["merge"] = time.perf_counter() - start

        start = time.perf_counter()
        Image.fromarray(rgb).save(target, quality=95, subsampling=0)
        t["write"] = time.perf_counter() - start
        return t

    once()
    runs = [once() for _ in range(config["repeat"])]
    return {"stages": _median_stages(runs), "total": statistics.median(sum(r.values()) for r in runs),
            "device": "cpu"}


def measure_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this process; returns stage medians, total and peak memory."""
    result = _measure_reference(config) if config["pipeline"] == "reference" else _measure_ours(config)
    result["peak_mb"] = _peak_rss_mb()
    return result


def _run_child(config: dict[str, Any]) -> dict[str, Any]:
    """``measure_configuration`` in a fresh interpreter; a skipped model comes back as ``{"skipped": why}``."""
    project_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = project_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    completed = subprocess.run([sys.executable, "-m", "core.bench", json.dumps(config)], capture_output=True,
                               text=True, env=env)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        message = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": message}
    return json.loads(lines[-1])


def _child_main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    try:
        result = measure_configuration(config)
    except Exception as error:  # reported as a skipped configuration by the parent
        from weights_fetch import WeightsError

        if isinstance(error, (WeightsError, KeyError, ModuleNotFoundError, UsageError)):
            print(json.dumps({"skipped": " ".join(str(error).split())}))
            return 0
        raise
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------- the command


def _parse_list(text: str, kind: type) -> list:
    values = [kind(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError(f"empty list: {text!r}")
    return values


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table: one row per configuration, seconds per stage, total, peak MB and the CPU
    threads our pipeline's timed runs used (``1/2``: some runs one, some two; the reference: torch's pool)."""
    header = (f"{'size':>6} {'pipeline':<22}" + "".join(f"{s:>9}" for s in STAGES)
              + f"{'total':>9}{'peak MB':>9}{'threads':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        label = f"{row['megapixels']:>5g}M {row['label']:<22}"
        if "stages" not in row:
            lines.append(label + "  " + row.get("skipped", row.get("error", "?")))
            continue
        cells = "".join(f"{row['stages'][s]:>9.3f}" for s in STAGES)
        threads = "/".join(str(t) for t in row.get("threads") or []) or "-"
        lines.append(label + cells + f"{row['total']:>9.3f}{row['peak_mb']:>9.0f}{threads:>9}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run every configuration, print the table and the ratios; 0 unless a configuration failed."""
    try:
        sizes = _parse_list(args.sizes, float)
        models = _parse_list(args.models, str)
    except ValueError as error:
        raise UsageError(str(error)) from None
    problem = check_arguments(args, ("threads",))
    if problem:
        raise UsageError(problem)
    if args.repeat < 1 or any(s <= 0 for s in sizes):
        raise UsageError("--repeat and --sizes must be positive")
    if not 0 <= args.hints <= 100:
        raise UsageError(f"--hints must be in [0, 100], got {args.hints}")
    post: list[str] = []
    if args.post.strip():
        from .post import parse_post_steps

        post = list(parse_post_steps(args.post))

    rows: list[dict[str, Any]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="tinct-bench-") as folder:
        for megapixels in sizes:
            height, width = synthetic_size(megapixels)
            source = Path(folder) / f"synthetic_{megapixels:g}mp.jpg"
            write_synthetic_photo(source, height, width)
            pipelines = [("ours", m) for m in models] + ([] if args.no_reference else [("reference", "eccv16")])
            for pipeline, model in pipelines:
                config = {"pipeline": pipeline, "model": model, "device": args.device, "post": post,
                          "hints": args.hints if pipeline == "ours" else 0, "threads": args.threads,
                          "render_size": args.render_size, "repeat": args.repeat, "input": str(source),
                          "output": str(Path(folder) / f"out_{pipeline}_{model}.jpg")}
                label = f"REFERENCE ({model})" if pipeline == "reference" else f"tinct {model}"
                if pipeline == "ours" and args.hints:
                    label += f" +{args.hints} hints"
                print(f"tinct bench: {megapixels:g} MP ({width}x{height}), {label} ...", file=sys.stderr, flush=True)
                result = _run_child(config)
                failed |= "error" in result
                rows.append({"megapixels": megapixels, "width": width, "height": height, "pipeline": pipeline,
                             "model": model, "label": label, **result})

    print(format_table(rows))
    ratios = []
    for megapixels in sizes:
        reference = next((r for r in rows if r["megapixels"] == megapixels and r["pipeline"] == "reference"
                          and "total" in r), None)
        for row in rows:
            if row["megapixels"] == megapixels and row["pipeline"] == "ours" and "total" in row and reference:
                ratio = row["total"] / reference["total"]
                ratios.append({"megapixels": megapixels, "model": row["model"], "ratio": ratio})
                verdict = ""
                if row["model"] == "eccv16" and megapixels == RATIO_TARGET_MEGAPIXELS:
                    verdict = "  (target <= 0.333: " + ("met)" if ratio <= RATIO_TARGET else "NOT met)")
                print(f"{megapixels:g} MP end-to-end, tinct {row['model']} / REFERENCE: {ratio:.3f}{verdict}")
    if args.json is not None:
        from .fs import write_atomically

        payload = json.dumps({"rows": rows, "ratios": ratios, "stages": list(STAGES)}, indent=2).encode()
        write_atomically(args.json, lambda handle: handle.write(payload))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
