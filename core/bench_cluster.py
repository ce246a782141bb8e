"""``tinct bench-cluster``: throughput of ``--scheduler`` runs against the plain local run, as a JSON report.

Photos: ``--photos`` synthetic gray JPEGs of ``--megapixels`` MP (``core.bench``'s generator),
colorized by the plain local run (``tinct colorize DIR --out-dir``, its default threads) and by
the cluster path on 1 and 2 (``--workers``) one-thread worker processes of a Dask cluster on
127.0.0.1. Film: a synthetic gray H.264 film with audio (``--film-seconds``, ``--shots``) colorized
with temporal consistency by 1 and 2 workers. Each run is the ``tinct`` command in a fresh process,
timed end to end (client start, model registration, all files, summary); the cluster itself is
started before the timed run (a once-per-cluster cost, reported as ``cluster_start_s``). The report
also has the model loads per worker, the load average before and after, and the extrapolation to
files per hour per worker and to 1 million scans on N workers.

Not a test: the targets (2 workers >= 1.8x one; 2 workers >= 0.95x the local run; film 2 workers
>= 1.7x one) are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import UsageError

TARGETS = {"photos_2_vs_1_workers": 1.8, "photos_cluster_vs_local": 0.95, "film_2_vs_1_workers": 1.7}
ARCHIVE_SCANS = 1_000_000
ARCHIVE_WORKERS = (1, 10, 100, 1000)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench-cluster`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser(
        "bench-cluster", help="throughput on a Dask cluster of 1 and 2 workers vs the plain local run (JSON report)",
        description=__doc__.split("\n\n")[1] + " Needs the extra tinct[cluster].")
    p.add_argument("--photos", type=int, default=200, help="number of photos (default 200)")
    p.add_argument("--megapixels", type=float, default=3.0, help="photo size in MP (default 3)")
    p.add_argument("--workers", default="1,2", help="worker counts to time, comma-separated (default 1,2)")
    p.add_argument("--film-seconds", type=float, default=120.0, help="film length in seconds (default 120; 0 = no film)")
    p.add_argument("--film-size", default="320x180", help="film frame size WxH (default 320x180)")
    p.add_argument("--film-fps", type=Fraction, default=Fraction(24), help="film frame rate (default 24)")
    p.add_argument("--shots", type=int, default=8, help="shots in the film (default 8)")
    p.add_argument("--model", default="default", help="model (default: the embedded one)")
    p.add_argument("--render-size", type=int, default=None, metavar="N", help="render size (default: the engine's)")
    p.add_argument("--work-dir", type=Path, help="keep inputs and outputs here (default: a temporary folder)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the report here (it is also printed)")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------- synthetic inputs


def colour_photos(n: int, size: tuple[int, int] = (240, 320), seed: int = 0) -> list[np.ndarray]:
    """``n`` smooth colour "photos" RGB uint8 ``[h, w, 3]`` (``size`` is (h, w)) to film with
    :mod:`core.video.synth`; their brightness differs from one to the next, so a cut between two is
    a clear luma-histogram jump."""
    import cv2

    rng = np.random.default_rng(seed)
    photos = []
    for i in range(n):
        level = 50.0 + 150.0 * ((i * 0.618) % 1.0)
        coarse = np.clip(level + rng.uniform(-45, 45, (6, 8, 3)), 0, 255).astype(np.float32)
        smooth = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        photos.append(np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8))
    return photos


def write_film(path: Path, width: int, height: int, seconds: float, shots: int, fps: Fraction = Fraction(24)) -> Any:
    """A gray H.264 film with an audio tone: ``shots`` camera moves of unequal length (±20 %)."""
    from core.video import synth

    n_frames = int(round(seconds * fps))
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.8, 1.2, shots)
    lengths = np.maximum(1, np.floor(weights / weights.sum() * n_frames)).astype(int)
    lengths[-1] += n_frames - int(lengths.sum())
    try:
        photos = synth.load_photos(synth.sample_photo_paths(shots + 1, seed=3))
    except FileNotFoundError:  # no shared photos on this machine: synthetic ones
        photos = colour_photos(shots + 1, seed=3)
    spec = synth.random_spec(len(photos), width, height, [int(v) for v in lengths],
                             photo_sizes=[p.shape[:2] for p in photos], seed=3)
    return synth.write_video(path, (synth.to_gray(f) for f in synth.render_clip(photos, spec)), fps), spec


# --------------------------------------------------------------------------------- timed runs


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _timed(argv: list[str], worker_pids: Sequence[int] = ()) -> dict[str, Any]:
    """Run ``tinct ARGV`` in a fresh process: its wall time, and the CPU seconds it and the workers
    ``worker_pids`` spent meanwhile (on a busy machine wall time measures the neighbours too; CPU time
    per file does not)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_before = [_process_cpu_s(pid) for pid in worker_pids]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core.cli", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_after = [_process_cpu_s(pid) for pid in worker_pids]
    if done.returncode != 0:
        raise RuntimeError(f"tinct {' '.join(argv[:1])} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result: dict[str, Any] = {"wall_s": round(wall, 3), "client_cpu_s": round(client_cpu, 2)}
    if worker_pids and None not in workers_before + workers_after:
        result["workers_cpu_s"] = round(sum(a - b for a, b in zip(workers_after, workers_before)), 2)
    result["stdout"] = done.stdout.strip()[-400:]
    return result


def _with_cluster(folder: Path, workers: int, argv_for: Any) -> dict[str, Any]:
    """Start a scheduler and ``workers`` one-thread workers, time ``tinct argv_for(address)``, stop them."""
    from distributed import Client

    from core.cluster.processes import DaskProcesses
    from core.cluster.worker import model_loads

    start = time.perf_counter()
    cluster = DaskProcesses(folder)
    try:
        for k in range(workers):
            cluster.start_worker(f"w{k}")
        cluster.wait_for_workers(workers)
        started = time.perf_counter() - start
        result = _timed(argv_for(cluster.address), [p.pid for p in cluster.workers.values()])
        with Client(cluster.address, timeout=60) as client:
            loads = client.run(model_loads)
    finally:
        cluster.close()
    result.update(cluster_start_s=round(started, 3), model_loads_per_worker=loads)
    return result


def _fresh(folder: Path) -> Path:
    """``folder`` emptied of an earlier bench run's outputs (it only ever holds those)."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def _photos_section(args: argparse.Namespace, work: Path, worker_counts: list[int]) -> dict[str, Any]:
    from core.bench import synthetic_size, write_synthetic_photo

    height, width = synthetic_size(args.megapixels)
    src = work / f"photos-{args.photos}x{width}x{height}"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(args.photos):
        path = src / f"scan_{i:04d}.jpg"
        if not path.exists():
            write_synthetic_photo(path, height, width, seed=i)
    common = ["colorize", str(src), "--model", args.model]
    if args.render_size:
        common += ["--render-size", str(args.render_size)]
    out: dict[str, Any] = {"photos": args.photos, "size": f"{width}x{height}",
                           "megapixels": round(width * height / 1e6, 2)}
    print(f"photos: {args.photos} of {width}x{height}; plain local run", file=sys.stderr)
    local = _timed([*common, "--out-dir", str(_fresh(work / "out-local"))])
    local["files_per_s"] = round(args.photos / local["wall_s"], 3)
    local["cpu_s_per_file"] = round(local["client_cpu_s"] / args.photos, 3)
    out["local"] = local
    for n in worker_counts:
        print(f"photos: cluster of {n} worker(s)", file=sys.stderr)
        target = _fresh(work / f"out-cluster-{n}")
        run = _with_cluster(work / f"dask-photos-{n}",
                            n, lambda address: [*common, "--out-dir", str(target), "--scheduler", address])
        run["files_per_s"] = round(args.photos / run["wall_s"], 3)
        if "workers_cpu_s" in run:
            run["cpu_s_per_file"] = round((run["workers_cpu_s"] + run["client_cpu_s"]) / args.photos, 3)
        out[f"cluster_{n}"] = run
    return out


def _film_section(args: argparse.Namespace, work: Path, worker_counts: list[int]) -> dict[str, Any]:
    width, height = (int(v) for v in args.film_size.lower().split("x"))
    film = work / "film.mp4"
    print(f"film: writing {args.film_seconds:g} s at {width}x{height}, {args.film_fps} frames/s, {args.shots} shots",
          file=sys.stderr)
    written, spec = write_film(film, width, height, args.film_seconds, args.shots, args.film_fps)
    out: dict[str, Any] = {"seconds": args.film_seconds, "size": f"{width}x{height}", "fps": str(args.film_fps),
                           "frames": written.n_frames,
                           "shots": args.shots, "shot_frames": [s.n_frames for s in spec.shots]}
    common = ["--model", args.model, "--no-progress", "--preset", "veryfast"]
    if args.render_size:
        common += ["--render-size", str(args.render_size)]
    for n in worker_counts:
        print(f"film: cluster of {n} worker(s)", file=sys.stderr)
        target = work / f"film-cluster-{n}.mp4"
        target.unlink(missing_ok=True)
        run = _with_cluster(work / f"dask-film-{n}", n,
                            lambda address: ["video", str(film), str(target), *common, "--scheduler", address])
        run["frames_per_s"] = round(written.n_frames / run["wall_s"], 3)
        if "workers_cpu_s" in run:
            run["cpu_s_per_frame"] = round((run["workers_cpu_s"] + run["client_cpu_s"]) / written.n_frames, 4)
        out[f"cluster_{n}"] = run
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 3)


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Speed-ups against the targets and the extrapolation to an archive."""
    photos, film = report.get("photos", {}), report.get("film", {})
    rate = {n: photos.get(f"cluster_{n}", {}).get("files_per_s") for n in (1, 2)}
    ratios = {"photos_2_vs_1_workers": _ratio(rate[2], rate[1]),
              "photos_cluster_vs_local": _ratio(rate[2], photos.get("local", {}).get("files_per_s")),
              "film_2_vs_1_workers": _ratio(film.get("cluster_2", {}).get("frames_per_s"),
                                            film.get("cluster_1", {}).get("frames_per_s"))}
    verdict = {k: (None if v is None else v >= TARGETS[k]) for k, v in ratios.items()}
    out: dict[str, Any] = {"ratios": ratios, "targets": TARGETS, "meets_target": verdict}
    cpu = {"photos_local": photos.get("local", {}).get("cpu_s_per_file"),
           **{f"photos_{n}_workers": photos.get(f"cluster_{n}", {}).get("cpu_s_per_file") for n in (1, 2)},
           **{f"film_{n}_workers": film.get(f"cluster_{n}", {}).get("cpu_s_per_frame") for n in (1, 2)}}
    # CPU seconds per item do not depend on what else runs on the machine: equal per-item cost for 1 and
    # 2 workers means 2 free cores would give 2 / (cost_2 / cost_1) times the throughput.
    out["cpu_seconds_per_item"] = cpu
    out["speedup_on_free_cores_from_cpu"] = {
        "photos_2_vs_1_workers": _ratio(2 * (cpu["photos_1_workers"] or 0), cpu["photos_2_workers"]),
        "photos_cluster_vs_local": _ratio(cpu["photos_local"], cpu["photos_2_workers"]),
        "film_2_vs_1_workers": _ratio(2 * (cpu["film_1_workers"] or 0), cpu["film_2_workers"])}
    if cpu["photos_1_workers"]:
        # What one worker does on a core of its own: a busy machine's wall time measures the neighbours too.
        per_core_hour = 3600.0 / cpu["photos_1_workers"]
        cpu_efficiency = min(1.0, (out["speedup_on_free_cores_from_cpu"]["photos_2_vs_1_workers"] or 2.0) / 2.0)
        out["extrapolation_dedicated_cores"] = {
            "files_per_hour_per_worker": round(per_core_hour),
            "scaling_efficiency": round(cpu_efficiency, 3),
            f"hours_for_{ARCHIVE_SCANS}_scans": {str(n): round(ARCHIVE_SCANS / (per_core_hour * n * (1.0 if n == 1 else cpu_efficiency)), 1)
                                                  for n in ARCHIVE_WORKERS},
        }
    best = rate[2] or rate[1]
    if best:
        workers = 2 if rate[2] else 1
        per_worker_hour = best / workers * 3600.0
        efficiency = (ratios["photos_2_vs_1_workers"] or 2.0) / 2.0 if rate[2] else 1.0
        out["extrapolation_measured_wall"] = {
            "files_per_hour_per_worker": round(per_worker_hour),
            "scaling_efficiency": round(efficiency, 3),
            "assumes": ("one-thread CPU workers like these, at the measured per-worker rate and 2-worker "
                        "efficiency; a shared filesystem and a scheduler that keep up"),
            f"hours_for_{ARCHIVE_SCANS}_scans": {str(n): round(ARCHIVE_SCANS / (per_worker_hour * n * (1.0 if n == 1 else efficiency)), 1)
                                                  for n in ARCHIVE_WORKERS},
        }
    return out


def run(args: argparse.Namespace) -> int:
    try:
        worker_counts = sorted({int(v) for v in args.workers.split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"--workers must be comma-separated integers, got {args.workers!r}") from None
    try:
        import distributed  # noqa: F401
    except ImportError:
        from core.runs import CLUSTER_INSTALL_HINT

        raise UsageError(f"needs Dask: {CLUSTER_INSTALL_HINT}") from None
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                          "python": platform.python_version(),
                                          "load_average_before": [round(v, 2) for v in os.getloadavg()]}}
    with tempfile.TemporaryDirectory(prefix="tinct-bench-cluster-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.photos > 0:
            report["photos"] = _photos_section(args, work, worker_counts)
        if args.film_seconds > 0:
            report["film"] = _film_section(args, work, worker_counts)
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["summary"] = summarise(report)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0
