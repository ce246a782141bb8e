"""``tinct colorize ... --scheduler``: files in small batches, one Dask task each.

The client plans the jobs exactly as a local run does (:mod:`core.cli_colorize`); each task gets
``--task-size`` (input, output) pairs, runs them through the same :func:`core.cli_colorize.colorize_jobs`
on its worker's kept model and returns one result per file. Outputs are written by the worker with
the atomic writer (temporary file beside the target, then rename), so a target either does not exist
or is complete. A task whose worker dies is redone elsewhere by the scheduler; once the run is over,
temporary files a killed worker left beside this run's targets are removed. Tasks are submitted in a
bounded window, so a run over a million files keeps the scheduler's memory flat. Hints, references,
palettes and confidence maps take the local run's paths: a task carries each file's confidence-map
target, and the worker reads the hint and reference files itself.
"""

from __future__ import annotations

import argparse
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from distributed import as_completed

from ..errors import FAILED
from ..fs import temp_owner
from . import ClusterError
from .connect import open_client
from .worker import ModelSpec, TinctWorkerPlugin, colorizer_for, worker_name

# Tasks in flight per worker thread: enough that no worker waits for the client, few enough that a
# run over a million files does not put them all on the scheduler at once.
TASKS_PER_THREAD = 4
MIN_WINDOW = 16


@dataclass(frozen=True)
class FileTaskSettings:
    """Everything a worker needs besides the files (small, sent with each task)."""

    spec: ModelSpec
    options: dict
    mask_path: str | None
    batch_size: int
    jpeg_quality: int
    max_megapixels: float
    provenance: bool
    controls: ControlSettings | None = None


@dataclass(frozen=True)
class ControlSettings:
    """The user-control options of a run (``--hints``, ``--hints-dir``, ``--reference-dir``, and the one
    reference or palette of ``--reference``/``--palette``), as the worker needs them.

    ``reference`` is the ``[23, 23]`` ab histogram the client read from ``--reference`` (read once, sent
    with each task), a palette name, or None; the per-file hint and reference files are read by the
    worker, from the filesystem all machines see. ``steering`` is what the provenance records.
    """

    hints: str | None
    hints_dir: str | None
    reference_dir: str | None
    reference: Any
    steering: dict

    def arguments(self) -> argparse.Namespace:
        """The fields :func:`core.cli_colorize.control_inputs` reads, as the command line gives them."""
        return argparse.Namespace(**{name: None if value is None else Path(value) for name, value in
                                     (("hints", self.hints), ("hints_dir", self.hints_dir),
                                      ("reference_dir", self.reference_dir))})


_MASKS: dict[str, Any] = {}


def _mask(path: str | None, max_megapixels: float) -> Any:
    if path is None:
        return None
    if path not in _MASKS:
        from core.cli_colorize import _read_mask

        _MASKS[path] = _read_mask(Path(path), max_megapixels)
    return _MASKS[path]


def colorize_task(pairs: list[tuple[str, str, str | None]], settings: FileTaskSettings) -> dict[str, Any]:
    """Worker side: colorize ``(input, output, confidence map or None)`` triples: ``{"results": [{"input",
    "error", "seconds", "worker"} per file], "chosen": {"photo": n, "document": n}}``.

    A per-file failure is a result with ``error`` set; the task itself only fails when the model
    cannot be loaded.
    """
    from core.cli_colorize import Job, colorize_jobs, control_inputs

    colorizer = colorizer_for(settings.spec)
    mask = _mask(settings.mask_path, settings.max_megapixels)
    name = worker_name()
    results: list[dict[str, Any]] = []
    chosen = {"photo": 0, "document": 0}

    def report(job: Job, error: str | None, seconds: float, code: int = FAILED) -> None:
        results.append({"input": str(job.source), "error": error, "seconds": seconds, "worker": name, "code": code})

    jobs = [Job(Path(source), Path(target)) for source, target, _ in pairs]
    confidence_paths = {Path(source): Path(map_path) for source, _, map_path in pairs if map_path is not None}
    controls, steering = None, None
    if settings.controls is not None:
        arguments, reference = settings.controls.arguments(), settings.controls.reference
        steering = settings.controls.steering

        def controls(job: Job, decoded: Any) -> tuple:
            return control_inputs(job, decoded, arguments, reference)

    try:
        colorize_jobs(colorizer, jobs, options=settings.options, mask=mask, batch_size=settings.batch_size,
                      jpeg_quality=settings.jpeg_quality, max_megapixels=settings.max_megapixels,
                      provenance=settings.provenance, report=report, chosen=chosen, controls=controls,
                      confidence_paths=confidence_paths or None, steering=steering)
    except Exception as error:  # noqa: BLE001 - the files not reported yet fail with this one line each
        done = {r["input"] for r in results}
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        results += [{"input": str(job.source), "error": f"{job.source}: {message}", "seconds": 0.0, "worker": name}
                    for job in jobs if str(job.source) not in done]
    return {"results": results, "chosen": chosen}


def _chunks(jobs: list, size: int) -> Iterator[list]:
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def register_model(client: Any, spec: ModelSpec) -> None:
    """Load ``spec``'s model on every worker (and on workers that join later).

    Raises:
        ClusterError: a worker could not load it (missing weights, bad device...), one line.
    """
    plugin = TinctWorkerPlugin(spec)
    try:
        client.register_plugin(plugin)
    except Exception as error:  # noqa: BLE001 - a worker's set-up failure, whatever it is, is one line
        try:
            client.unregister_worker_plugin(plugin.name)
        except Exception:  # noqa: BLE001 - not registered at all: nothing to undo
            pass
        text = str(error).strip()
        raise ClusterError(f"a worker could not load the model {spec.model!r}: "
                           f"{text.splitlines()[0] if text else type(error).__name__}") from None


def model_capabilities(spec: ModelSpec) -> tuple[bool, str]:
    """Worker side: whether ``spec``'s model takes hints, and its output kind (``"logits"``, ``"ab"``)."""
    colorizer = colorizer_for(spec)
    return bool(colorizer.accepts_hints), str(colorizer.model.output)


def check_capabilities(client: Any, spec: ModelSpec, args: Any) -> None:
    """Raise :class:`ClusterError` (the local run's one line) when the model cannot do what the options
    ask (hints to a model without them, a reference or confidence map from a regression model)."""
    from core.cli_control import capability_problem

    accepts_hints, output = client.submit(model_capabilities, spec, pure=False).result()
    problem = capability_problem(accepts_hints, output, args)
    if problem:
        raise ClusterError(problem)


def check_resources(client: Any, resources: dict[str, float]) -> str | None:
    """A note when no connected worker offers ``resources`` (tasks would wait for one), else ``None``."""
    if not resources:
        return None
    try:
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()  # all, not the first 5
    except TypeError:  # distributed before 2025: always all of them
        workers = client.scheduler_info().get("workers", {}).values()
    for info in workers:
        offered = info.get("resources", {}) or {}
        if all(offered.get(name, 0) >= amount for name, amount in resources.items()):
            return None
    wanted = ",".join(f"{k}={v:g}" for k, v in resources.items())
    return f"no worker offers {wanted} yet (start workers with --resources {wanted}); tasks wait for one"


def remove_stale_temporaries(targets: list[Path]) -> int:
    """Remove the atomic writer's temporary files (``core.fs.temp_sibling`` names) beside ``targets``; returns how many.

    Called once every task of the run is over, when only a killed worker can have left one.
    """
    by_folder: dict[Path, set[str]] = {}
    for target in targets:
        by_folder.setdefault(target.parent, set()).add(target.name)
    removed = 0
    for folder, names in by_folder.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if temp_owner(entry) in names:
                try:
                    os.unlink(folder / entry)
                    removed += 1
                except OSError:
                    pass
    return removed


def colorize_files(jobs: list, args: Any, options: dict, report: Callable[..., None], chosen: dict[str, int], *,
                   reference: Any = None, confidence_paths: dict | None = None, steering: dict | None = None) -> None:
    """Colorize ``jobs`` (``core.cli_colorize.Job``) on the cluster ``args.scheduler``.

    ``report(job, error, seconds, worker)`` is called once per job as results arrive, exactly as
    the local run calls it; ``chosen`` adds up the content kinds the workers saw. ``reference`` (the
    histogram of ``--reference`` or a palette name), ``confidence_paths`` (job source -> map file) and
    ``steering`` are the local run's user-control inputs; hint and per-file reference files are read
    by the workers. Raises :class:`ClusterError` when the cluster cannot be used or the model cannot
    do what the options ask.
    """
    from tqdm import tqdm

    from core.runs import parse_resources

    try:
        resources = parse_resources(args.resources)
    except ValueError as error:
        raise ClusterError(str(error)) from None
    spec = ModelSpec(args.model, args.device, None, args.fetch)
    controls = None
    if any((steering or {}).values()) or reference is not None:
        controls = ControlSettings(*(None if value is None else str(Path(value).resolve())
                                     for value in (args.hints, args.hints_dir, args.reference_dir)),
                                   reference=reference, steering=dict(steering or {}))
    settings = FileTaskSettings(spec, dict(options), None if args.mask is None else str(Path(args.mask).resolve()),
                                args.batch_size, args.jpeg_quality, args.max_megapixels, args.provenance, controls)
    by_source = {str(job.source.resolve()): job for job in jobs}
    confidence_paths = confidence_paths or {}
    pairs = [(str(job.source.resolve()), str(job.target.resolve()),
              str(Path(confidence_paths[job.source]).resolve()) if job.source in confidence_paths else None)
             for job in jobs]
    run_id = uuid.uuid4().hex[:12]
    with open_client(args.scheduler) as client:
        register_model(client, spec)
        if controls is not None or confidence_paths:
            check_capabilities(client, spec, args)
        note = check_resources(client, resources)
        if note:
            tqdm.write(f"tinct colorize: note: {note}")
        threads = sum(client.nthreads().values()) or 1
        window = max(MIN_WINDOW, TASKS_PER_THREAD * threads)
        chunks = enumerate(_chunks(pairs, args.task_size))
        futures = as_completed()
        chunk_of: dict[str, list[tuple[str, str, str | None]]] = {}

        def submit_next() -> None:
            item = next(chunks, None)
            if item is None:
                return
            index, chunk = item
            future = client.submit(colorize_task, chunk, settings, key=f"tinct-colorize-{run_id}-{index}",
                                   resources=resources or None, pure=False)
            chunk_of[future.key] = chunk
            futures.add(future)

        for _ in range(window):
            submit_next()
        for future in futures:
            chunk = chunk_of.pop(future.key)
            try:
                answer = future.result()
                results = answer["results"]
                for kind, count in answer["chosen"].items():
                    chosen[kind] = chosen.get(kind, 0) + count
            except Exception as error:  # noqa: BLE001 - KilledWorker and the like: these files failed
                text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                results = [{"input": source, "error": f"{source}: lost on the cluster ({type(error).__name__}: "
                            f"{text})", "seconds": 0.0, "worker": None} for source, _, _ in chunk]
            future.release()
            for result in results:
                report(by_source[result["input"]], result["error"], result["seconds"], result["worker"],
                       code=result.get("code", FAILED))
            submit_next()
    remove_stale_temporaries([job.target for job in jobs])
