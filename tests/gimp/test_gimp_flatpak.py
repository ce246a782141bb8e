"""A Flatpak GIMP, simulated: GIMP without the engine's venv, a worker started on the host, a shared folder.

The Flatpak sandbox runs the plug-in with its own Python and shares the user's home with the
host. Here GIMP runs in the test chroot in a mount namespace where the checkout and the venv's
Python are NOT visible; the worker is started on the host with ``tinct worker start``; the
folder it listens in is bind-mounted into the chroot at the same path, as the Flatpak's app
folder is. The plug-in is installed by the installer with ``flatpak=True``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gimp_plugin import installer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "gimp"))
import gimp_env  # noqa: E402
from test_gimp_plugin import MODEL, MODEL_ID, RENDER, SCENARIOS, engine_missing, write_inputs  # noqa: E402


def tinct(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def shared_dir():
    path = Path(tempfile.mkdtemp(prefix="tf-", dir="/tmp"))  # short: Unix socket paths are limited
    yield path
    tinct("worker", "stop", "--run-dir", str(path))
    shutil.rmtree(path, ignore_errors=True)


def test_flatpak_gimp_uses_a_worker_started_outside(gimp3, shared_dir):
    if gimp3.root is None:
        pytest.skip("the simulation needs the GIMP chroot")
    reason = engine_missing()
    if reason:
        pytest.skip(reason)
    started = tinct("worker", "start", "--run-dir", str(shared_dir))
    assert started.returncode == 0, started.stderr
    assert tinct("worker", "status", "--run-dir", str(shared_dir)).returncode == 0
    hidden = gimp_env.engine_paths()
    venv_python = ROOT / ".venv" / "bin" / "python"
    with gimp_env.gimp3_session(gimp3, binds=[shared_dir]) as session:
        plugins = session.host_path(session.new_dir("plug-ins-"))
        folder = installer.install_plugin(venv_python, ROOT, dest=plugins, models=[MODEL], more_models=["eccv16"],
                                          flatpak=True, runtime_dir=shared_dir)
        config = json.loads((folder / "tinct.json").read_text())
        assert config["flatpak"] and config["runtime_dir"] == str(shared_dir)
        inputs = write_inputs(session)

        def run(cases: list[dict]) -> tuple[Path, subprocess.CompletedProcess]:
            out = session.new_dir("out-")
            params = {"out_dir": str(out), "model": MODEL_ID, "args": {"render_size": RENDER}, "cases": cases,
                      "probe": [str(venv_python), str(ROOT / "core")]}
            code = f"PARAMS = {json.dumps(params)!r}\nimport json\nPARAMS = json.loads(PARAMS)\n" + SCENARIOS.read_text()
            done = session.run_batch(code, plugin_dirs=[session.inner_path(plugins)], hide=hidden, timeout=600,
                                     env={"FLATPAK_ID": "org.gimp.GIMP"})
            return session.host_path(out), done

        out, done = run([{"name": "colorized", "path": inputs["gray"]},
                         {"name": "not_installed", "path": inputs["gray"], "args": {"model": "eccv16"}}])
        assert done.returncode == 0, done.stderr[-3000:]
        assert not any(json.loads((out / "visible.json").read_text()).values()), "GIMP could see the venv"
        record = json.loads((out / "colorized.json").read_text())
        assert record["status"] == "success", record
        assert record["layers"][0]["name"].startswith(f"Tinct {MODEL} ")
        missing = json.loads((out / "not_installed.json").read_text())
        assert missing["status"] == "execution-error"
        assert f"{config['command']} weights fetch eccv16" in missing["error"]

        assert tinct("worker", "stop", "--run-dir", str(shared_dir)).returncode == 0
        assert tinct("worker", "status", "--run-dir", str(shared_dir)).returncode == 1
        out, done = run([{"name": "no_worker", "path": inputs["gray"]}])
        assert done.returncode == 0, done.stderr[-3000:]
        record = json.loads((out / "no_worker.json").read_text())
        assert record["status"] == "execution-error"
        assert record["error"] == (f"Tinct: the engine is not running; in a terminal (outside GIMP) run: "
                                   f"{config['command']} worker start --flatpak")
