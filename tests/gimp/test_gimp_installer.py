"""The installer API that install.py calls (no GIMP needed)."""

from __future__ import annotations

import json
import os
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
    assert sorted(p.name for p in folder.iterdir()) == sorted([*installer.PLUGIN_FILES, "tinct_options.py", "tinct.json"])
    assert (folder / "tinct_options.py").read_bytes() == (ROOT / "core" / "options.py").read_bytes()
    assert os.access(folder / "tinct_colorize.py", os.X_OK)
    config = json.loads((folder / "tinct.json").read_text())
    assert config["python"] == str(python.absolute()) and config["project_root"] == str(ROOT)
    assert config["models"][0] == "default"
    installer.install_plugin(python, ROOT, dest=tmp_path, models=["default", "eccv16"])  # reinstall over it
    assert json.loads((folder / "tinct.json").read_text())["models"] == ["default", "eccv16"]
    assert installer.uninstall_plugin(tmp_path) is True
    assert not folder.exists()
    assert installer.uninstall_plugin(tmp_path) is False


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
