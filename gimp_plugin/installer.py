"""Find GIMP 3 and install/uninstall the Tinct plug-in for the current user (standard library only).

The functions ``install.py`` calls: ``find_gimp3()``, ``find_flatpak_gimp()``,
``user_plugin_dir()``, ``install_plugin(venv_python, project_root, dest=None, flatpak=False)``,
``uninstall_plugin(dest=None)``. Also a command line:
``python -m gimp_plugin.installer {find,install,uninstall} [--flatpak]``.

Installing copies ``gimp_plugin/tinct_colorize/`` (the plug-in and its stdlib helpers) and the
standard-library modules of ``core`` it shares with the engine (``tinct_shared.SHARED``:
``core/options.py`` as ``tinct_options.py``, the option table; ``core/worker/wire.py`` and
``core/worker/rendezvous.py`` as ``tinct_wire.py`` and ``tinct_rendezvous.py``, the worker's
protocol and where it listens; ``core/hint_regions.py`` as ``tinct_hint_regions.py``, where a hint
layer is painted) into ``<plug-ins>/tinct_colorize/`` and writes ``tinct.json`` beside them: the virtual environment's
Python that runs the engine worker, the project root, the installed model names (the plug-in's
model menu) and the catalog's other models, the ``tinct`` command, the worker's idle timeout.

A Flatpak GIMP (``org.gimp.GIMP`` from Flathub) keeps its profile in
``~/.var/app/org.gimp.GIMP/config/GIMP/3.0`` and runs plug-ins in its sandbox, whose Python
cannot run this engine: there the plug-in connects to a worker started on the host with
``tinct worker start --flatpak`` through ``~/.var/app/org.gimp.GIMP/cache/tinct``, a folder
both sides see (``tinct.json`` says ``"flatpak": true`` and that folder).
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

from gimp_plugin.tinct_colorize.tinct_shared import SHARED

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "tinct_colorize"
PLUGIN_FILES = ("tinct_colorize.py", "tinct_dialog.py", "tinct_client.py", "tinct_shared.py")
# Installed file name -> the project file it is a copy of.
SHARED_FILES = {f"{name}.py": PROJECT_ROOT / source for name, source in SHARED.items()}
CONFIG_FILE = "tinct.json"
SOURCE_DIR = Path(__file__).resolve().parent / PLUGIN_NAME
GIMP_SERIES = "3.0"
FLATPAK_APP = "org.gimp.GIMP"


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


def flatpak_profile_dir() -> Path:
    """Where a Flatpak GIMP 3 keeps its profile: ``~/.var/app/org.gimp.GIMP/config/GIMP/3.0``."""
    return Path.home() / ".var" / "app" / FLATPAK_APP / "config" / "GIMP" / GIMP_SERIES


def find_flatpak_gimp() -> Path | None:
    """The plug-in folder of a Flatpak GIMP installed for this user or system-wide, or None.

    Found by ``flatpak info org.gimp.GIMP`` or, without the ``flatpak`` command, by its app
    folder in the home directory (GIMP creates it on first start).
    """
    known = (Path.home() / ".var" / "app" / FLATPAK_APP).is_dir()
    flatpak = shutil.which("flatpak")
    if flatpak:
        try:
            done = subprocess.run([flatpak, "info", FLATPAK_APP], capture_output=True, text=True, timeout=60)
            known = known or done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            pass
    return flatpak_profile_dir() / "plug-ins" if known else None


def _catalog_models(venv_python: Path, project_root: Path) -> tuple[list[str], list[str]]:
    """(installed models, the catalog's other models), asking the venv (imports torch: a few seconds)."""
    code = ("import json; from core.loading import list_models; "
            "print(json.dumps([list_models(available_only=True), list_models()]))")
    try:
        done = subprocess.run([str(venv_python), "-c", code], cwd=str(project_root), capture_output=True, text=True,
                              timeout=300)
        installed, every = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else ([], [])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        installed, every = [], []
    names = [str(m) for m in installed]
    names = names if "default" in names else ["default", *names]
    return names, [str(m) for m in every if m not in names]


def tinct_command(venv_python: Path) -> str:
    """The ``tinct`` command of the venv, as a user would type it (full path)."""
    script = venv_python.with_name("tinct.exe" if os.name == "nt" else "tinct")
    return str(script) if script.exists() else f"{venv_python} -m core.cli"


def install_plugin(venv_python: Path, project_root: Path, dest: Path | None = None,
                   idle_timeout: float = 600.0, models: list[str] | None = None, flatpak: bool = False,
                   more_models: list[str] | None = None, runtime_dir: Path | None = None) -> Path:
    """Install the plug-in into ``dest`` (default: ``user_plugin_dir()``); returns the plug-in's folder.

    ``models`` lists the installed model names for the plug-in's menu and ``more_models`` the
    catalog's others; by default the venv is asked. ``flatpak``: the plug-in will run in a
    Flatpak GIMP and connect to a worker started with ``tinct worker start --flatpak``, in
    ``runtime_dir`` (default: the folder that command uses).

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
    for name, source in SHARED_FILES.items():
        shutil.copy2(source, target / name)
    main = target / f"{PLUGIN_NAME}.py"
    main.chmod(main.stat().st_mode | 0o755)
    if models is None:
        models, found_more = _catalog_models(venv_python, project_root)
        more_models = found_more if more_models is None else more_models
    config = {"python": str(venv_python), "project_root": str(project_root), "models": models,
              "more_models": more_models or [], "command": tinct_command(venv_python), "idle_timeout": idle_timeout}
    if flatpak:
        from core.worker.rendezvous import flatpak_runtime_dir

        config.update(flatpak=True, runtime_dir=str(runtime_dir or flatpak_runtime_dir()))
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
    parser.add_argument("--flatpak", action="store_true",
                        help=f"for the Flatpak GIMP ({FLATPAK_APP}): its profile, and a worker you start yourself")
    args = parser.parse_args(argv)
    dest = args.dest or (flatpak_profile_dir() / "plug-ins" if args.flatpak else None)
    if args.action == "find":
        info, flatpak = find_gimp3(), find_flatpak_gimp()
        print(f"GIMP {info.version}: {info.executable}" if info else "GIMP 3 not found on PATH")
        print(f"Flatpak GIMP ({FLATPAK_APP}): {flatpak}" if flatpak else "no Flatpak GIMP")
        print(f"plug-in folder: {dest or user_plugin_dir()}")
        return 0 if info or flatpak else 1
    if args.action == "install":
        print(install_plugin(args.python, Path(__file__).resolve().parent.parent, dest, flatpak=args.flatpak))
        return 0
    return 0 if uninstall_plugin(dest) else 1


if __name__ == "__main__":
    sys.exit(main())
