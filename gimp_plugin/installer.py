"""Find GIMP 3 and install/uninstall the Tinct plug-in for the current user (standard library only).

The functions ``install.py`` calls: ``find_gimp3()``, ``user_plugin_dir()``,
``install_plugin(venv_python, project_root, dest=None)``, ``uninstall_plugin(dest=None)``.
Also a command line: ``python -m gimp_plugin.installer {find,install,uninstall}``.

Installing copies ``gimp_plugin/tinct_colorize/`` (the plug-in and its stdlib helpers) into
``<plug-ins>/tinct_colorize/`` and writes ``tinct.json`` beside it: the virtual environment's
Python that runs the engine worker, the project root, the installed model names (for the
plug-in's model menu) and the worker's idle timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_NAME = "tinct_colorize"
PLUGIN_FILES = ("tinct_colorize.py", "tinct_client.py", "tinct_wire.py", "tinct_rendezvous.py")
CONFIG_FILE = "tinct.json"
SOURCE_DIR = Path(__file__).resolve().parent / PLUGIN_NAME
GIMP_SERIES = "3.0"


@dataclass(frozen=True)
class Gimp3Info:
    """A GIMP 3 found on this machine."""

    executable: Path
    version: str


def _version_of(executable: str) -> str | None:
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"version\s+(\d+\.\d+(?:\.\d+)?)", done.stdout + done.stderr)
    return found.group(1) if found else None


def _candidates() -> list[str]:
    names = ["gimp-console-3.0", "gimp-3.0", "gimp-console-3", "gimp-3", "gimp-console", "gimp"]
    found = [path for name in names if (path := shutil.which(name))]
    if os.name == "nt":
        for base in filter(None, (os.environ.get("ProgramFiles"), os.environ.get("LOCALAPPDATA"))):
            for folder in ("GIMP 3", os.path.join("Programs", "GIMP 3")):
                for exe in ("gimp-console-3.0.exe", "gimp-3.0.exe", "gimp-console-3.exe", "gimp-3.exe"):
                    found.append(os.path.join(base, folder, "bin", exe))
    elif sys.platform == "darwin":
        for app in ("/Applications/GIMP.app", os.path.expanduser("~/Applications/GIMP.app")):
            found.append(os.path.join(app, "Contents", "MacOS", "gimp"))
    return [path for path in dict.fromkeys(found) if os.path.isfile(path)]


def find_gimp3() -> Gimp3Info | None:
    """The first GIMP 3.x found (PATH, then the usual install places), or None."""
    for executable in _candidates():
        version = _version_of(executable)
        if version and version.startswith("3."):
            return Gimp3Info(Path(executable), version)
    return None


def user_plugin_dir() -> Path:
    """The current user's GIMP 3.0 plug-in folder (``$GIMP3_DIRECTORY`` is honoured, as GIMP does)."""
    override = os.environ.get("GIMP3_DIRECTORY")
    if override:
        return Path(override) / "plug-ins"
    if os.name == "nt":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "GIMP" / GIMP_SERIES / "plug-ins"


def _installed_models(venv_python: Path, project_root: Path) -> list[str]:
    code = "import json; from core.loading import list_models; print(json.dumps(list(list_models())))"
    try:
        done = subprocess.run([str(venv_python), "-c", code], cwd=str(project_root), capture_output=True, text=True,
                              timeout=300)
        models = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        models = []
    names = [str(m) for m in models]
    return names if "default" in names else ["default", *names]


def install_plugin(venv_python: Path, project_root: Path, dest: Path | None = None,
                   idle_timeout: float = 600.0, models: list[str] | None = None) -> Path:
    """Install the plug-in into ``dest`` (default: ``user_plugin_dir()``); returns the plug-in's folder.

    ``models`` lists the model names for the plug-in's menu; by default the venv is asked
    (``core.loading.list_models()``, which imports torch: a few seconds).

    Raises ``FileNotFoundError`` when the venv's Python or the engine is missing.
    """
    venv_python, project_root = Path(venv_python).absolute(), Path(project_root).resolve()
    if not venv_python.exists():
        raise FileNotFoundError(f"the engine's Python {venv_python} does not exist")
    if not (project_root / "core" / "worker" / "__main__.py").is_file():
        raise FileNotFoundError(f"{project_root} is not a Tinct checkout (no core/worker)")
    target = Path(dest or user_plugin_dir()) / PLUGIN_NAME
    target.mkdir(parents=True, exist_ok=True)
    for name in PLUGIN_FILES:
        shutil.copy2(SOURCE_DIR / name, target / name)
    main = target / f"{PLUGIN_NAME}.py"
    main.chmod(main.stat().st_mode | 0o755)
    config = {"python": str(venv_python), "project_root": str(project_root),
              "models": models or _installed_models(venv_python, project_root), "idle_timeout": idle_timeout}
    (target / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return target


def uninstall_plugin(dest: Path | None = None) -> bool:
    """Remove the installed plug-in from ``dest`` (default: the user's folder); False if it was not there."""
    target = Path(dest or user_plugin_dir()) / PLUGIN_NAME
    if not (target / f"{PLUGIN_NAME}.py").is_file():
        return False
    shutil.rmtree(target)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m gimp_plugin.installer {find,install,uninstall}``."""
    parser = argparse.ArgumentParser(prog="python -m gimp_plugin.installer", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("find", "install", "uninstall"))
    parser.add_argument("--dest", type=Path, default=None, help="plug-ins folder (default: the user's)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the engine venv's Python")
    args = parser.parse_args(argv)
    if args.action == "find":
        info = find_gimp3()
        print(f"GIMP {info.version}: {info.executable}" if info else "GIMP 3 not found")
        print(f"plug-in folder: {args.dest or user_plugin_dir()}")
        return 0 if info else 1
    if args.action == "install":
        print(install_plugin(args.python, Path(__file__).resolve().parent.parent, args.dest))
        return 0
    return 0 if uninstall_plugin(args.dest) else 1


if __name__ == "__main__":
    sys.exit(main())
