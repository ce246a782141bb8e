"""Provide ``exiftool`` (Debian ``libimage-exiftool-perl``), the independent XMP reader of the provenance tests.

``ensure_exiftool()`` returns its path: the one on PATH, else (as root on Debian/Ubuntu) it
installs the package with apt-get once. Where that is not possible it raises
``ExiftoolUnavailable`` with the reason, and the tests that need it skip with that reason.
``install.py --test`` calls it before running the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "libimage-exiftool-perl"


class ExiftoolUnavailable(RuntimeError):
    """exiftool is not on PATH and cannot be installed here; the message says why."""


def ensure_exiftool() -> str:
    """The path of ``exiftool``, installing the Debian package when needed and possible."""
    found = shutil.which("exiftool")
    if found:
        return found
    if not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        raise ExiftoolUnavailable(f"exiftool is not on PATH and this is not a Debian system (install {PACKAGE} "
                                  "or ExifTool by hand)")
    if os.geteuid() != 0:
        raise ExiftoolUnavailable(f"exiftool is not on PATH and installing {PACKAGE} needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    done = subprocess.run(install, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # an old package list: update once and retry
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env)
        done = subprocess.run(install, capture_output=True, text=True, env=env)
    found = shutil.which("exiftool")
    if done.returncode != 0 or not found:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise ExiftoolUnavailable(f"apt-get install {PACKAGE} failed: {tail[0]}")
    return found


def read_tags(exiftool: str, path: Path | str, *groups: str) -> dict[str, object]:
    """exiftool's ``-G1 -s -j`` view of ``path`` (``groups`` such as ``-XMP:all``), as ``{"Group:Tag": value}``."""
    done = subprocess.run([exiftool, "-j", "-G1", "-s", "-n", *groups, str(path)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"exiftool failed on {path}: {done.stderr.strip()}")
    return json.loads(done.stdout)[0]


if __name__ == "__main__":
    print(ensure_exiftool())
