"""``--scheduler``: the same commands on a real Dask cluster (scheduler and worker processes on 127.0.0.1).

The model is the shipped ``tinct-small`` at a small render size; workers have one thread each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cluster_support import audio_packets, decoded_frames, frame_times, gray_images
from core.bench_cluster import colour_photos
from core.cli import main
from core.errors import INPUT
from core.paths import PROJECT_ROOT
from core.runs import read_manifest
from core.video import synth


RENDER = ["--render-size", "64"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The local reference runs in this process on one thread, like each worker."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two one-thread workers; ``gpu`` advertises the resource GPU=1 (a label here)."""
    from core.cluster.processes import DaskProcesses

    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start_worker("gpu", resources="GPU=1")
        cluster.start_worker("cpu")
        cluster.names = cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_cluster_without_dask_says_how_to_install(tmp_path, capsys, monkeypatch):
    gray_images(tmp_path / "in", 2)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    rc = main(["colorize", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), "--scheduler", "local:1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert [line for line in err.splitlines() if "error" in line] == [
        "tinct colorize: error: --scheduler needs Dask, which is not installed: "
        "pip install 'tinct[cluster]' (or: python3 install.py --cluster)"]
    assert not list((tmp_path / "out").glob("*.png"))


def test_cluster_local_run_never_imports_the_cluster_code(tmp_path):
    gray_images(tmp_path, 1)
    code = ("import sys; from core.cli import main; "
            f"rc = main(['colorize', {str(tmp_path / 'scan_000.png')!r}, '--render-size', '64']); "
            "assert rc == 0, rc; "
            "bad = [m for m in ('core.cluster', 'distributed', 'dask') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "scan_000_color.png").is_file()


def test_cluster_results_summary_and_manifest_equal_a_local_run(dask_cluster, tmp_path, capsys):
    gray_images(tmp_path / "in", 7)
    # Last in order, so the local run's network batches are the cluster's tasks: the same batches give
    # the same pixels (another split of the batches differs by float rounding, at most 1 code value).
    (tmp_path / "in" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    common = [str(tmp_path / "in"), *RENDER, "--batch-size", "2"]
    rc_local = main(["colorize", *common, "--out-dir", str(tmp_path / "local"), "--manifest", str(tmp_path / "local.jsonl")])
    err_local = capsys.readouterr().err
    rc_cluster = main(["colorize", *common, "--out-dir", str(tmp_path / "cluster"), "--scheduler", dask_cluster.address,
                       "--task-size", "2", "--manifest", str(tmp_path / "cluster.jsonl")])
    err_cluster = capsys.readouterr().err
    assert rc_local == rc_cluster == INPUT  # the broken file
    assert _last_line(err_local) == _last_line(err_cluster)
    assert _last_line(err_cluster).startswith("tinct colorize: 7 of 8 image(s) colorized, 1 failed (")
    errors = [line for line in err_cluster.splitlines() if "error" in line]
    assert len(errors) == 1 and "zz_broken.png" in errors[0]

    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local == sorted(p.name for p in (tmp_path / "cluster").iterdir()) and len(local) == 7
    for name in local:
        assert np.array_equal(_pixels(tmp_path / "local" / name), _pixels(tmp_path / "cluster" / name)), name

    lines = read_manifest(tmp_path / "cluster.jsonl")
    assert sorted(Path(e["input"]).name for e in lines) == sorted(p.name for p in (tmp_path / "in").iterdir())
    assert {e["status"] for e in lines if "broken" not in e["input"]} == {"ok"}
    assert [e["status"] for e in lines if "broken" in e["input"]] == ["error"]
    assert {e["worker"] for e in lines} <= set(dask_cluster.names.values())
    assert all(e["model"] == "default" and e["seconds"] >= 0 for e in lines)
    assert all(Path(e["output"]).parent == tmp_path / "cluster" for e in lines)
    local_lines = read_manifest(tmp_path / "local.jsonl")
    assert {(Path(e["input"]).name, e["status"]) for e in local_lines} == {(Path(e["input"]).name, e["status"])
                                                                          for e in lines}
    assert {e["worker"] for e in local_lines} == {"local"}


def _hint_layer(path: Path, size: tuple[int, int], rgb: tuple[int, int, int]) -> None:
    """An RGBA hint image of ``size`` (w, h): one opaque ``rgb`` square, transparent elsewhere."""
    w, h = size
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[h // 3: h // 3 + 12, w // 3: w // 3 + 12] = (*rgb, 255)
    Image.fromarray(rgba, "RGBA").save(path)


def test_cluster_hints_references_and_confidence_maps_equal_a_local_run(dask_cluster, tmp_path, capsys):
    inputs = gray_images(tmp_path / "in", 4)
    (tmp_path / "hints").mkdir()
    (tmp_path / "refs").mkdir()
    _hint_layer(tmp_path / "hints" / f"{inputs[0].stem}.png", (96, 64), (200, 30, 30))
    _hint_layer(tmp_path / "hints" / f"{inputs[3].stem}.png", (96, 64), (30, 60, 220))
    Image.fromarray(colour_photos(1, (80, 60), seed=3)[0]).save(tmp_path / "refs" / f"{inputs[1].stem}.png")
    common = [str(tmp_path / "in"), *RENDER, "--batch-size", "2", "--hints-dir", str(tmp_path / "hints"),
              "--reference-dir", str(tmp_path / "refs")]
    runs = {}
    for where in ("local", "cluster"):
        extra = ["--scheduler", dask_cluster.address, "--task-size", "2"] if where == "cluster" else []
        assert main(["colorize", *common, "--out-dir", str(tmp_path / where), "--confidence-dir",
                     str(tmp_path / f"{where}-confidence"), *extra]) == 0
        runs[where] = capsys.readouterr().err
    assert _last_line(runs["local"]) == _last_line(runs["cluster"]) == "tinct colorize: 4 of 4 image(s) colorized"
    for name in sorted(p.name for p in (tmp_path / "local").iterdir()):
        assert np.array_equal(_pixels(tmp_path / "local" / name), _pixels(tmp_path / "cluster" / name)), name
    maps = sorted(p.name for p in (tmp_path / "local-confidence").iterdir())
    assert maps == sorted(p.name for p in (tmp_path / "cluster-confidence").iterdir()) == [
        f"{p.stem}.png" for p in inputs]
    for name in maps:
        assert np.array_equal(_pixels(tmp_path / "local-confidence" / name),
                              _pixels(tmp_path / "cluster-confidence" / name)), name
    # The hint reached the network on the worker: the hinted image differs from an automatic one.
    assert main(["colorize", str(inputs[0]), *RENDER, "-o", str(tmp_path / "auto.png")]) == 0
    hinted = next((tmp_path / "cluster").glob(f"{inputs[0].stem}*"))
    assert not np.array_equal(_pixels(tmp_path / "auto.png"), _pixels(hinted))


def test_cluster_palette_and_bad_controls_answer_as_a_local_run(dask_cluster, tmp_path, capsys):
    inputs = gray_images(tmp_path / "in", 2)
    common = [str(tmp_path / "in"), *RENDER, "--palette", "parchment"]
    assert main(["colorize", *common, "--out-dir", str(tmp_path / "local")]) == 0
    assert main(["colorize", *common, "--out-dir", str(tmp_path / "cluster"), "--scheduler", dask_cluster.address]) == 0
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert len(names) == len(inputs) and names == sorted(p.name for p in (tmp_path / "cluster").iterdir())
    for name in names:
        assert np.array_equal(_pixels(tmp_path / "local" / name), _pixels(tmp_path / "cluster" / name)), name
    capsys.readouterr()
    # A regression model has no distribution: the cluster refuses a confidence map with the local run's line.
    lines = {}
    for where in ("local", "cluster"):
        extra = ["--scheduler", dask_cluster.address] if where == "cluster" else []
        assert main(["colorize", str(tmp_path / "in"), *RENDER, "--model", "tinct-small-l2", "--out-dir",
                     str(tmp_path / f"l2-{where}"), "--confidence-dir", str(tmp_path / f"c-{where}"), *extra]) == 2
        lines[where] = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert lines["local"] == lines["cluster"] and len(lines["cluster"]) == 1
    assert "regression model" in lines["cluster"][0]
    assert not (tmp_path / "c-cluster").exists() or not any((tmp_path / "c-cluster").iterdir())
    # A hint image of the wrong size fails that file only, on the worker, with the local run's line.
    (tmp_path / "hints").mkdir()
    _hint_layer(tmp_path / "hints" / f"{inputs[0].stem}.png", (50, 50), (200, 30, 30))
    rc = main(["colorize", str(tmp_path / "in"), *RENDER, "--out-dir", str(tmp_path / "bad"), "--hints-dir",
               str(tmp_path / "hints"), "--scheduler", dask_cluster.address])
    err = capsys.readouterr().err
    assert rc == INPUT and "must be the same size" in err
    assert [p.name.startswith(inputs[1].stem) for p in (tmp_path / "bad").iterdir()] == [True]


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_cluster_skip_existing_redoes_exactly_the_missing_files(dask_cluster, tmp_path, capsys, where):
    gray_images(tmp_path / "in", 6, seed=1)
    extra = ["--scheduler", dask_cluster.address] if where == "cluster" else []
    argv = ["colorize", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), *RENDER, *extra]
    assert main(argv) == 0
    outputs = sorted((tmp_path / "out").iterdir())
    reference = {p.name: _pixels(p) for p in outputs}
    removed = {outputs[1].name, outputs[4].name}
    for name in removed:
        (tmp_path / "out" / name).unlink()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "out").iterdir()}
    capsys.readouterr()

    time.sleep(0.05)  # a rewrite would show in mtime
    assert main([*argv, "--skip-existing", "--manifest", str(tmp_path / "m.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "4 image(s) skipped" in err and _last_line(err) == "tinct colorize: 2 of 2 image(s) colorized"
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "out").iterdir()}
    assert set(after) == set(reference)
    assert {name: after[name] for name in before} == before  # untouched: same inode, same mtime
    for name in removed:
        assert np.array_equal(_pixels(tmp_path / "out" / name), reference[name])
    statuses = {Path(e["output"]).name: e["status"] for e in read_manifest(tmp_path / "m.jsonl")}
    assert statuses == {name: ("ok" if name in removed else "skipped") for name in reference}


def test_cluster_resources_send_tasks_only_to_workers_that_have_them(dask_cluster, tmp_path, capsys):
    gray_images(tmp_path / "in", 4, seed=2)
    rc = main(["colorize", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), *RENDER, "--task-size", "1",
               "--scheduler", dask_cluster.address, "--resources", "GPU=1", "--manifest", str(tmp_path / "m.jsonl")])
    assert rc == 0
    assert {e["worker"] for e in read_manifest(tmp_path / "m.jsonl")} == {dask_cluster.names["gpu"]}
    capsys.readouterr()
    assert main(["colorize", str(tmp_path / "in"), "--out-dir", str(tmp_path / "x"), "--scheduler",
                 dask_cluster.address, "--resources", "GPU"]) == 2
    assert "expected NAME=N" in capsys.readouterr().err


def test_cluster_local_address_runs_its_own_worker_processes(tmp_path, capsys):
    from core.cluster import ClusterError
    from core.cluster.connect import parse_local

    assert parse_local("local:3") == 3 and parse_local("tcp://10.0.0.1:8786") is None
    with pytest.raises(ClusterError, match="local:N"):
        parse_local("local:x")
    gray_images(tmp_path / "in", 2, seed=3)
    rc = main(["colorize", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"), *RENDER,
               "--scheduler", "local:1", "--manifest", str(tmp_path / "m.jsonl")])
    assert rc == 0 and len(list((tmp_path / "out").glob("*.png"))) == 2
    workers = {e["worker"] for e in read_manifest(tmp_path / "m.jsonl")}
    assert len(workers) == 1 and next(iter(workers)).startswith("tcp://127.0.0.1:")


def _film(path: Path, shots: tuple[int, ...]) -> synth.WrittenClip:
    photos = colour_photos(len(shots), seed=5)
    spec = synth.random_spec(len(photos), 96, 64, shots, photo_sizes=[p.shape[:2] for p in photos], seed=5)
    return synth.write_video(path, (synth.to_gray(f) for f in synth.render_clip(photos, spec)), Fraction(24))


def _mean_errors(frames: list[np.ndarray], reference: list[np.ndarray]) -> list[float]:
    return [float(np.abs(x.astype(np.int16) - y.astype(np.int16)).mean()) for x, y in zip(frames, reference)]


def test_cluster_film_split_at_cuts_keeps_frames_timestamps_and_audio(dask_cluster, tmp_path, capsys):
    """Shots are encoded on the workers and joined by stream copy: H.264 into MP4, FFV1 into Matroska."""
    film = tmp_path / "film.mp4"
    written = _film(film, (26, 30, 25))
    assert written.audio_packets > 0
    common = [*RENDER, "--preset", "ultrafast", "--no-progress"]
    assert main(["video", str(film), str(tmp_path / "local.mp4"), *common, "--threads", "1"]) == 0
    local_out = capsys.readouterr().out
    assert main(["video", str(film), str(tmp_path / "cluster.mp4"), *common, "--scheduler", dask_cluster.address]) == 0
    captured = capsys.readouterr()
    assert "3 shot(s) in 3 task(s) on 2 worker(s)" in captured.err
    assert "joined by stream copy" in captured.err
    assert "81 frames" in local_out and "81 frames" in captured.out and "3 shot start(s)" in captured.out
    lossless = [*RENDER, "--lossless", "--no-progress"]
    assert main(["video", str(film), str(tmp_path / "local.mkv"), *lossless, "--threads", "1"]) == 0
    assert main(["video", str(film), str(tmp_path / "cluster.mkv"), *lossless, "--scheduler", dask_cluster.address]) == 0
    assert "joined by stream copy" in capsys.readouterr().err

    local, cluster = tmp_path / "local.mp4", tmp_path / "cluster.mp4"
    assert frame_times(cluster) == frame_times(local) == frame_times(film)
    assert audio_packets(cluster) == audio_packets(local) == audio_packets(film)
    exact, joined = decoded_frames(tmp_path / "local.mkv"), decoded_frames(tmp_path / "cluster.mkv")
    assert len(exact) == len(joined) == 81 and all(np.array_equal(x, y) for x, y in zip(exact, joined))
    assert frame_times(tmp_path / "cluster.mkv") == frame_times(tmp_path / "local.mkv")
    assert audio_packets(tmp_path / "cluster.mkv") == audio_packets(tmp_path / "local.mkv")  # Matroska starts at 0
    # Each shot is its own H.264 stream, so the lossy results differ from each other by the codec's own error.
    local_error, cluster_error = _mean_errors(decoded_frames(local), exact), _mean_errors(decoded_frames(cluster), exact)
    assert len(cluster_error) == 81 and max(cluster_error) < max(local_error) + 0.5
    assert _temporaries(tmp_path) == []  # the shot files' folder is gone


def test_cluster_film_into_a_container_without_stream_copy_is_re_encoded_on_the_client(dask_cluster, tmp_path, capsys):
    film = tmp_path / "film.mp4"
    _film(film, (26, 30))
    common = [*RENDER, "--preset", "ultrafast", "--no-progress"]
    assert main(["video", str(film), str(tmp_path / "local.avi"), *common, "--threads", "1"]) == 0
    assert main(["video", str(film), str(tmp_path / "cluster.avi"), *common, "--scheduler", dask_cluster.address]) == 0
    assert "shots re-encoded on the client (.avi is not one of" in capsys.readouterr().err
    local, cluster = decoded_frames(tmp_path / "local.avi"), decoded_frames(tmp_path / "cluster.avi")
    assert len(local) == len(cluster) == 56
    assert max(_mean_errors(cluster, local)) < 0.5  # one encode of the same lossless frames
    assert _temporaries(tmp_path) == []


def test_cluster_film_that_cannot_be_cut_into_shots_fails_in_one_line_and_leaves_nothing(dask_cluster, tmp_path,
                                                                                          capsys):
    """A raw H.264 stream has no timestamps: the planning thread fails, the run says so in one line."""
    import av

    raw = tmp_path / "film.h264"
    with av.open(str(raw), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    assert main(["video", str(raw), str(tmp_path / "out.mp4"), *RENDER, "--no-progress",
                 "--scheduler", dask_cluster.address]) == INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert "frames without timestamps cannot be split into shots" in err[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.h264"]  # no output, no temporary, no shot folder


def test_cluster_worker_killed_mid_run_loses_nothing(dask_cluster, tmp_path):
    """Last in this module: it leaves the cluster one worker short."""
    from distributed import Client

    inputs = gray_images(tmp_path / "in", 40, size=(160, 120), seed=4)
    out = tmp_path / "out"
    manifest = tmp_path / "m.jsonl"
    client_run = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "colorize", str(tmp_path / "in"), "--out-dir", str(out),
         "--render-size", "128", "--task-size", "1", "--scheduler", dask_cluster.address, "--manifest", str(manifest)],
        cwd=PROJECT_ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        with Client(dask_cluster.address, timeout=60) as client:
            deadline = time.monotonic() + 240
            victim = in_flight = None
            while victim is None:
                assert client_run.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
                if manifest.is_file() and manifest.read_text().count("\n") >= 2:
                    busy = {w: keys for w, keys in client.processing().items() if keys}
                    gpu = dask_cluster.names["gpu"]
                    if gpu in busy:
                        victim, in_flight = "gpu", busy[gpu]
                time.sleep(0.02)
            dask_cluster.kill_worker(victim)
        stdout, stderr = client_run.communicate(timeout=300)
    finally:
        if client_run.poll() is None:
            client_run.kill()
            client_run.wait()
    assert client_run.returncode == 0, stderr[-2000:]
    assert _last_line(stderr) == "tinct colorize: 40 of 40 image(s) colorized"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.stem}_color.png" for p in inputs)  # no temporaries
    for path in out.iterdir():
        assert _pixels(path).shape == (120, 160, 3)

    lines = read_manifest(manifest)
    assert sorted(Path(e["input"]).name for e in lines) == sorted(p.name for p in inputs)  # each exactly once
    assert {e["status"] for e in lines} == {"ok"}
    survivor = dask_cluster.names["cpu"]
    redone = [inputs[int(key.rsplit("-", 1)[1])].name for key in in_flight]
    by_input = {Path(e["input"]).name: e["worker"] for e in lines}
    assert any(by_input[name] == survivor for name in redone), (redone, by_input)

    reference = tmp_path / "reference"
    assert main(["colorize", *map(str, inputs[:6]), "--out-dir", str(reference), "--render-size", "128",
                 "--batch-size", "1"]) == 0  # one file per network call, like the one-file tasks
    for path in reference.iterdir():
        assert np.array_equal(_pixels(path), _pixels(out / path.name)), path.name
