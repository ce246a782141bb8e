#!/usr/bin/env python3
"""One-step set-up of Tinct (standard library only, so it runs before anything is installed).

    python3 install.py              create .venv, install Tinct and a fitting torch, install the GIMP 3
                                    plug-in when GIMP 3 is present, check the install and colorize the
                                    bundled sample photo
    python3 install.py --dev        the same plus what the tests need (and the Dask extra, which they use)
    python3 install.py --cluster    the same plus the Dask extra (tinct[cluster]) for --scheduler runs
    python3 install.py --test       --dev, then prepare a headless GIMP 3 and run the whole test suite
    python3 install.py --uninstall  remove the GIMP plug-in (the .venv stays; delete it by hand)

Works on Linux, macOS and Windows (Python 3.10+).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
SAMPLE = ROOT / "core" / "samples"
OUTPUT_DIR = ROOT / "outputs"
# The torch release the project is tested with; on a Linux machine without an NVIDIA GPU this is the
# CPU build where the package index offers one (see --torch-index-url).
TORCH_SPEC = "torch==2.13.0"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def has_nvidia_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_venv() -> Path:
    py = venv_python()
    if not py.exists():
        print(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    return py


def install_packages(py: Path, dev: bool, torch_index_url: str | None, cluster: bool = False) -> None:
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    torch_cmd = [*pip, TORCH_SPEC]
    if torch_index_url:
        torch_cmd += ["--index-url", torch_index_url]
    gpu = has_nvidia_gpu()
    print(f"installing torch ({'NVIDIA GPU found' if gpu else 'no NVIDIA GPU: CPU is used'})")
    run(torch_cmd)
    extras = [name for name, wanted in (("dev", dev), ("cluster", cluster or dev)) if wanted]
    run([*pip, "-e", f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)])


def install_gimp_plugin(py: Path) -> Path | None:
    sys.path.insert(0, str(ROOT))
    from gimp_plugin.installer import find_flatpak_gimp, find_gimp3, install_plugin, tinct_command

    info, flatpak = find_gimp3(), find_flatpak_gimp()
    if info is None and flatpak is None:
        print("GIMP 3 not found: the plug-in was not installed (run install.py again after installing GIMP 3)")
        return None
    dest = None
    if info is not None:
        dest = install_plugin(py, ROOT)
        print(f"GIMP 3 plug-in installed in {dest} (Filters > Colors > Colorize (Tinct)...)")
    if flatpak is not None:
        dest = install_plugin(py, ROOT, flatpak, flatpak=True)
        print(f"Flatpak GIMP plug-in installed in {dest}; the Flatpak cannot start the engine itself: run\n"
              f"  {tinct_command(Path(py))} worker start --flatpak   (add --at-login desktop to start it at login)")
    return dest


def check_and_colorize(py: Path) -> Path:
    """Import the engine, load the embedded model and colorize the bundled sample."""
    samples = sorted(p for p in SAMPLE.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not samples:
        raise SystemExit(f"install check failed: no sample photo in {SAMPLE}")
    sample = samples[0]
    OUTPUT_DIR.mkdir(exist_ok=True)
    out = OUTPUT_DIR / f"{sample.stem}_color.png"
    run([py, "-m", "core.cli", "colorize", sample, "-o", out, "--overwrite"], cwd=ROOT)
    return out


def run_tests(py: Path, pytest_args: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    try:
        from tests.gimp_env import Gimp3SetupError, Gimp3Unavailable, ensure_gimp3

        gimp = ensure_gimp3()
        print(f"headless GIMP 3 ready: {gimp}")
    except Gimp3Unavailable as exc:  # the GIMP tests skip themselves with this reason
        print(f"GIMP 3 tests will be skipped: {exc}")
    except Gimp3SetupError as exc:  # the GIMP tests will fail and say why; run the rest anyway
        print(f"setting up GIMP 3 failed: {exc}", file=sys.stderr)
    from tests.exiftool_env import ExiftoolUnavailable, ensure_exiftool

    try:
        print(f"exiftool ready: {ensure_exiftool()}")
    except ExiftoolUnavailable as exc:  # the provenance tests that read XMP skip themselves with this reason
        print(f"exiftool tests will be skipped: {exc}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([str(py), "-m", "pytest", "-q", *pytest_args], cwd=ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="store_true", help="also install the test dependencies")
    ap.add_argument("--test", action="store_true", help="install with --dev, set up headless GIMP 3, run all tests")
    ap.add_argument("--cluster", action="store_true", help="also install the Dask extra (tinct[cluster]) for --scheduler")
    ap.add_argument("--uninstall", action="store_true", help="remove the GIMP plug-in")
    ap.add_argument("--no-gimp", action="store_true", help="do not install the GIMP plug-in")
    ap.add_argument("--torch-index-url", default=os.environ.get("TINCT_TORCH_INDEX_URL"),
                    help="package index for torch (e.g. PyTorch's CPU-only wheel index, to avoid the large CUDA build)")
    ap.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (with --test)")
    args = ap.parse_args(argv)

    if sys.version_info < (3, 10):
        print("Tinct needs Python 3.10 or newer", file=sys.stderr)
        return 2
    if args.uninstall:
        sys.path.insert(0, str(ROOT))
        from gimp_plugin.installer import uninstall_plugin

        print("GIMP plug-in removed" if uninstall_plugin() else "no installed GIMP plug-in found")
        return 0
    print(f"Tinct set-up on {platform.system()} {platform.machine()}, Python {platform.python_version()}")
    py = ensure_venv()
    try:
        install_packages(py, dev=args.dev or args.test, torch_index_url=args.torch_index_url,
                         cluster=args.cluster)
    except subprocess.CalledProcessError as exc:
        print(f"installation failed: {exc}", file=sys.stderr)
        return 1
    if args.test:
        return run_tests(py, args.pytest_args)
    if not args.no_gimp:
        install_gimp_plugin(py)
    try:
        out = check_and_colorize(py)
    except subprocess.CalledProcessError as exc:
        print(f"install check failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nTinct is installed. Colorized sample: {out}")
    print(f"Use it: {venv_python().relative_to(ROOT)} -m core.cli colorize PHOTO.jpg  (or the `tinct` script in .venv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
