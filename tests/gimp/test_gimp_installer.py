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
