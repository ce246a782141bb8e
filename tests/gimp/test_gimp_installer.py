"""The installer API that install.py calls (no GIMP needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gimp_plugin import installer

ROOT = Path(__file__).resolve().parents[2]


def test_user_plugin_dir_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert installer.user_plugin_dir() == tmp_path / "GIMP" / "3.0" / "plug-ins"
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "g3"))
    assert installer.user_plugin_dir() == tmp_path / "g3" / "plug-ins"


def test_install_and_uninstall(tmp_path):
    python = Path(sys.executable)
    folder = installer.install_plugin(python, ROOT, dest=tmp_path)
    assert folder == tmp_path / "tinct_colorize"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*installer.PLUGIN_FILES, "tinct_options.py", "tinct_wire.py", "tinct_rendezvous.py", "tinct_hint_regions.py",
         "tinct.json"])
    for name, source in (("tinct_options.py", "core/options.py"), ("tinct_wire.py", "core/worker/wire.py"),
                         ("tinct_rendezvous.py", "core/worker/rendezvous.py"),
                         ("tinct_hint_regions.py", "core/hint_regions.py")):
        assert (folder / name).read_bytes() == (ROOT / source).read_bytes(), name
    assert os.access(folder / "tinct_colorize.py", os.X_OK)
    config = json.loads((folder / "tinct.json").read_text())
    assert config["python"] == str(python.absolute()) and config["project_root"] == str(ROOT)
    assert config["models"][0] == "default"
    installer.install_plugin(python, ROOT, dest=tmp_path, models=["default", "eccv16"])  # reinstall over it
    assert json.loads((folder / "tinct.json").read_text())["models"] == ["default", "eccv16"]
    assert installer.uninstall_plugin(tmp_path) is True
    assert not folder.exists()
    assert installer.uninstall_plugin(tmp_path) is False


def _shared_files_seen_by_the_plugin(folder: Path) -> dict:
    """Where the plug-in in ``folder`` finds its shared modules, asked of a Python that sees nothing else."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import tinct_client, tinct_shared; "
            "print(json.dumps({n: tinct_shared.load(n).__file__ for n in tinct_shared.SHARED}))")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(folder)], capture_output=True, text=True,
                          cwd=folder, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_plugin_finds_its_shared_modules_installed_and_in_the_checkout(tmp_path):
    folder = installer.install_plugin(Path(sys.executable), ROOT, dest=tmp_path / "plug-ins", models=["default"])
    assert _shared_files_seen_by_the_plugin(folder) == {
        "tinct_options": str(folder / "tinct_options.py"), "tinct_wire": str(folder / "tinct_wire.py"),
        "tinct_rendezvous": str(folder / "tinct_rendezvous.py"),
        "tinct_hint_regions": str(folder / "tinct_hint_regions.py")}
    assert _shared_files_seen_by_the_plugin(ROOT / "gimp_plugin" / "tinct_colorize") == {
        "tinct_options": str(ROOT / "core" / "options.py"), "tinct_wire": str(ROOT / "core" / "worker" / "wire.py"),
        "tinct_rendezvous": str(ROOT / "core" / "worker" / "rendezvous.py"),
        "tinct_hint_regions": str(ROOT / "core" / "hint_regions.py")}
    (folder / "tinct_wire.py").unlink()  # a broken installation says what to do
    code = "import sys; sys.path.insert(0, sys.argv[1]); import tinct_client"
    done = subprocess.run([sys.executable, "-I", "-c", code, str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "tinct_wire.py is missing" in done.stderr and "reinstall" in done.stderr


def test_install_refuses_a_missing_engine(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        installer.install_plugin(tmp_path / "no-python", ROOT, dest=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a Tinct checkout"):
        installer.install_plugin(Path(sys.executable), tmp_path, dest=tmp_path)


def test_find_gimp3_reports_only_gimp_3(monkeypatch, tmp_path):
    fake = tmp_path / "gimp"
    fake.write_text("#!/bin/sh\necho 'GNU Image Manipulation Program version 2.10.34'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert installer.find_gimp3() is None
    fake.write_text("#!/bin/sh\necho 'GNU Image Manipulation Program version 3.0.4'\n")
    assert installer.find_gimp3() == installer.Gimp3Info(fake, "3.0.4")


def test_a_flatpak_gimp_is_found_by_its_app_folder_and_installed_into(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no `flatpak` command: the app folder decides
    assert installer.find_flatpak_gimp() is None
    (tmp_path / ".var" / "app" / "org.gimp.GIMP").mkdir(parents=True)
    plugins = installer.find_flatpak_gimp()
    assert plugins == tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"
    folder = installer.install_plugin(Path(sys.executable), ROOT, plugins, models=["default"], flatpak=True)
    config = json.loads((folder / "tinct.json").read_text())
    assert config["flatpak"] is True
    assert config["runtime_dir"] == str(tmp_path / ".var/app/org.gimp.GIMP/cache/tinct")


def test_login_entries_are_written_once_and_never_replace_a_users_file(monkeypatch, tmp_path):
    from core.worker.cli import write_login_entry

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    command = [sys.executable, "-m", "core.worker", "--idle-timeout", "0"]
    unit = write_login_entry("systemd", command)
    assert unit == tmp_path / "systemd" / "user" / "tinct-worker.service"
    assert "ExecStart=" in unit.read_text() and "core.worker" in unit.read_text()
    assert write_login_entry("systemd", command) == unit  # the same content again: fine
    desktop = tmp_path / "autostart" / "tinct-worker.desktop"
    desktop.parent.mkdir(parents=True)
    desktop.write_text("[Desktop Entry]\nName=mine\n")
    with pytest.raises(FileExistsError, match="exists with other content"):
        write_login_entry("desktop", command)
    assert desktop.read_text() == "[Desktop Entry]\nName=mine\n"
