"""Provide a GIMP 3 that runs headless, for the GIMP tests, the benchmark and ``install.py``.

Debian 13 (or any machine with ``gimp-console-3.0`` on PATH) uses the installed GIMP. On
Debian 12, whose GIMP is 2.10 without Python, ``ensure_gimp3()`` builds (once, with a lock)
a Debian 13 chroot holding GIMP 3 in a cache directory outside the checkout, by default
``/var/cache/tinct-gimp3-trixie`` (``$TINCT_GIMP3_CHROOT`` overrides it).

GIMP then runs inside ``gimp3_session(gimp)``: for the length of the ``with`` block, the
checkout and the Python the project's virtual environment was made with are bind-mounted at
the same absolute paths inside the chroot (so the plug-in can start the engine worker from
the venv), with ``/proc`` and a tmpfs at ``/dev/shm``. Sessions may overlap (two test runs,
or a test run and a person's GIMP in the chroot): mounts are shared and unmounted by the last
session that uses them, and a session stops only the processes it started. ``/dev`` is
never bind-mounted.

Usage::

    gimp = ensure_gimp3()                       # raises Gimp3Unavailable with the reason
    with gimp3_session(gimp) as session:
        done = session.run_batch("print(Gimp.version())", plugin_dirs=[...])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHROOT = Path("/var/cache/tinct-gimp3-trixie")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
GIMP_CONSOLE = "gimp-console-3.0"
READY_MARK = ".tinct-gimp3-ready"
# Paths a chroot run must see: the console binary and GIMP's Python bindings.
_CHROOT_PATH = "/usr/local/bin:/usr/bin:/bin"


class Gimp3Unavailable(RuntimeError):
    """GIMP 3 cannot be provided on this machine (no GIMP 3 and not root/Debian); the message says why."""


class Gimp3SetupError(RuntimeError):
    """Providing GIMP 3 should have worked here but failed (network, apt, mounts)."""


@dataclass(frozen=True)
class Gimp3:
    """A runnable GIMP 3: ``root`` is the chroot directory, or None for a GIMP on this system."""

    console: str
    root: Path | None
    version: str


def chroot_dir() -> Path:
    """Where the Debian 13 chroot lives (``$TINCT_GIMP3_CHROOT`` or the default cache dir)."""
    return Path(os.environ.get("TINCT_GIMP3_CHROOT") or DEFAULT_CHROOT)


def ensure_gimp3(cache_dir: Path | None = None, *, build: bool = True,
                 log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> Gimp3:
    """Return a GIMP 3 that runs headless, building the Debian 13 chroot if needed.

    Idempotent and safe to call from several processes at once (a file lock serialises the
    build). ``build=False`` only reuses what exists. Raises ``Gimp3Unavailable`` where GIMP 3
    cannot be provided, ``Gimp3SetupError`` where providing it failed.
    """
    native = shutil.which(GIMP_CONSOLE)
    if native:
        return Gimp3(native, None, _native_version(native))
    if not sys.platform.startswith("linux"):
        raise Gimp3Unavailable(f"{GIMP_CONSOLE} is not on PATH (install GIMP 3 to run these tests)")
    root = Path(cache_dir) if cache_dir else chroot_dir()
    if _chroot_ready(root):
        return Gimp3(GIMP_CONSOLE, root, _chroot_version(root))
    if not build:
        raise Gimp3Unavailable(f"no {GIMP_CONSOLE} on PATH and no GIMP 3 chroot at {root}")
    if os.geteuid() != 0:
        raise Gimp3Unavailable(f"no {GIMP_CONSOLE} on PATH, and building a Debian 13 chroot needs root")
    if not Path("/etc/debian_version").exists():
        raise Gimp3Unavailable(f"no {GIMP_CONSOLE} on PATH, and the chroot set-up needs a Debian host")
    root.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(root.with_name(root.name + ".lock")):
        if not _chroot_ready(root):
            _build_chroot(root, log)
    return Gimp3(GIMP_CONSOLE, root, _chroot_version(root))


def _native_version(console: str) -> str:
    done = subprocess.run([console, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip().split()[-1] if done.stdout.strip() else "3"


def _chroot_ready(root: Path) -> bool:
    return (root / READY_MARK).is_file() and (root / "usr/bin" / GIMP_CONSOLE).exists()


def _chroot_version(root: Path) -> str:
    return (root / READY_MARK).read_text().strip() or "3"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_chroot(root: Path, log: Callable[[str], None]) -> None:
    """debootstrap a minimal Debian 13 into ``root.partial``, install GIMP, then rename it."""
    started = time.monotonic()
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        _remove_tree(partial)
    if root.exists():
        _remove_tree(root)
    if not shutil.which("debootstrap"):
        log("gimp_env: installing debootstrap on the host")
        _run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"], log, retry_update=True)
    log(f"gimp_env: debootstrap trixie into {partial}")
    _run(["debootstrap", "--variant=minbase", "trixie", str(partial), DEBIAN_MIRROR], log)
    shutil.copyfile("/etc/resolv.conf", partial / "etc/resolv.conf")
    with _mounted_proc(partial):
        env = ["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive",
               "LC_ALL=C.UTF-8"]
        log("gimp_env: apt-get install gimp in the chroot")
        _run(["chroot", str(partial), *env, "apt-get", "update"], log)
        _run(["chroot", str(partial), *env, "apt-get", "install", "-y", "--no-install-recommends", "gimp"], log)
        _run(["chroot", str(partial), *env, "apt-get", "clean"], log)
        done = subprocess.run(["chroot", str(partial), *env, GIMP_CONSOLE, "--version"],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise Gimp3SetupError(f"GIMP 3 in the new chroot does not start: {done.stderr.strip()[-500:]}")
    (partial / READY_MARK).write_text(done.stdout.strip().split()[-1] + "\n")
    partial.rename(root)
    log(f"gimp_env: GIMP 3 chroot ready at {root} in {time.monotonic() - started:.0f} s")


def ensure_chroot_packages(gimp: Gimp3, packages: Sequence[str],
                           log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> None:
    """Install Debian ``packages`` into the GIMP chroot if they are missing (once, under the build lock).

    For a GIMP on this system nothing is installed: ``Gimp3Unavailable`` says what is missing.
    """
    if gimp.root is None:
        missing = [p for p in packages if not shutil.which({"xvfb": "Xvfb"}.get(p, p))]
        if missing:
            raise Gimp3Unavailable(f"install {', '.join(missing)} to run this test")
        return
    root = gimp.root

    def absent() -> list[str]:
        info = root / "var/lib/dpkg/info"
        return [p for p in packages if not (info / f"{p}.list").exists() and not list(info.glob(f"{p}:*.list"))]

    if not absent():
        return
    with _file_lock(root.with_name(root.name + ".lock")):
        wanted = absent()
        if not wanted:
            return
        log(f"gimp_env: apt-get install {' '.join(wanted)} in the chroot")
        env = ["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive",
               "LC_ALL=C.UTF-8"]
        with _mounted_proc(root):
            install = ["chroot", str(root), *env, "apt-get", "install", "-y", "--no-install-recommends", *wanted]
            done = subprocess.run(install, capture_output=True, text=True)
            if done.returncode != 0:
                _run(["chroot", str(root), *env, "apt-get", "update"], log)
                _run(install, log)
            _run(["chroot", str(root), *env, "apt-get", "clean"], log)


def _run(cmd: Sequence[str], log: Callable[[str], None], retry_update: bool = False) -> None:
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if done.returncode != 0 and retry_update:
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        done = subprocess.run(list(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise Gimp3SetupError(f"{' '.join(cmd[:4])} ... failed ({done.returncode}):\n{tail}")


# ---------------------------------------------------------------------------------------------
# Mounts. Every mount made here is undone in a finally; nothing is deleted while mounted.

def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mounts."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _umount(point: str) -> None:
    done = subprocess.run(["umount", point], capture_output=True, text=True)
    if done.returncode != 0:
        # A process started inside the chroot still holds it: detach now, the kernel frees it later.
        subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=True)


def _remove_tree(path: Path) -> None:
    for point in _mounts_under(path):
        _umount(point)
    if _mounts_under(path):
        raise Gimp3SetupError(f"refusing to delete {path}: something is still mounted under it")
    shutil.rmtree(path)


@contextlib.contextmanager
def _mounted_proc(root: Path) -> Iterator[None]:
    target = root / "proc"
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(target)], check=True)
    try:
        yield
    finally:
        _umount(str(target))


def _venv_python() -> Path:
    return PROJECT_ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _python_binds(python: Path) -> list[Path]:
    """Host paths the venv's Python needs inside the chroot: its installation, not the system's /usr."""
    done = subprocess.run([str(python), "-c",
                           "import sys, sysconfig; print(sys.base_prefix); print(sys._base_executable);"
                           "print(sysconfig.get_paths()['stdlib'])"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise Gimp3SetupError(f"the project's Python {python} does not run: {done.stderr.strip()[-300:]}")
    base_prefix, executable, stdlib = (Path(p) for p in done.stdout.split("\n")[:3])
    if str(base_prefix) in ("/usr", "/usr/local", "/"):
        # A system Python: bind only its own files so the chroot's /usr stays Debian 13's.
        return [executable.resolve(), stdlib]
    return [base_prefix]


SESSION_TAG = "TINCT_GIMP_SESSION"


@dataclass
class GimpSession:
    """A GIMP 3 ready to run batch code; paths passed in are host paths (the same inside).

    ``tag`` marks the processes this session starts (the environment variable ``SESSION_TAG``,
    which GIMP passes to its plug-ins and the plug-in to the worker it starts), so that the
    session stops those and only those when it ends.
    """

    gimp: Gimp3
    scratch: Path
    tag: str = field(default_factory=lambda: f"{os.getpid()}-{os.urandom(6).hex()}")

    def host_path(self, inner: Path | str) -> Path:
        """The host path of a path as GIMP sees it."""
        inner = Path(inner)
        return inner if self.gimp.root is None else self.gimp.root / inner.relative_to("/")

    def inner_path(self, host: Path | str) -> Path:
        """The path GIMP sees for a host path under ``scratch`` or a bind mount."""
        host = Path(host)
        if self.gimp.root is None:
            return host
        try:
            return Path("/") / host.relative_to(self.gimp.root)
        except ValueError:
            return host  # bind-mounted at the same absolute path

    def new_dir(self, prefix: str) -> Path:
        """A fresh directory GIMP can read and write; returned as the path GIMP sees."""
        return self.inner_path(Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch)))

    def command(self, argv: Sequence[str], variables: dict[str, str]) -> list[str]:
        """``argv`` run in a clean environment of ``variables`` plus this session's tag (inside the chroot)."""
        cmd = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in {**variables, SESSION_TAG: self.tag}.items()),
               *argv]
        return cmd if self.gimp.root is None else ["chroot", str(self.gimp.root), *cmd]

    def run_batch(self, code: str, *, plugin_dirs: Sequence[Path] = (), env: dict[str, str] | None = None,
                  timeout: float = 300, hide: Sequence[Path] = ()) -> subprocess.CompletedProcess:
        """Run Python batch code in ``gimp-console-3.0`` with a fresh, isolated profile.

        ``plugin_dirs`` are added to GIMP's plug-in path; ``env`` adds variables to a clean
        environment. ``hide``: host paths bind-mounted into the chroot that this GIMP must not
        see (it runs in a private mount namespace where they are unmounted; other sessions keep
        them). Returns the finished process (text stdout/stderr).
        """
        profile = self.new_dir("profile-")
        gimprc = self.host_path(profile) / "gimprc"
        dirs = ":".join(["${gimp_dir}/plug-ins", "${gimp_plug_in_dir}/plug-ins", *map(str, plugin_dirs)])
        gimprc.write_text(f'(plug-in-path "{dirs}")\n')
        variables = {"HOME": str(profile), "PATH": _CHROOT_PATH if self.gimp.root else os.environ["PATH"],
                     "LC_ALL": "C.UTF-8", "XDG_CONFIG_HOME": str(profile / "config"),
                     "XDG_CACHE_HOME": str(profile / "cache"), "TMPDIR": "/tmp"}
        variables.update(env or {})
        cmd = self.command([self.gimp.console, "-i", "-d", "-f", "-g", str(profile / "gimprc"),
                            "--batch-interpreter", "python-fu-eval", "-b", "-", "--quit"], variables)
        if hide:
            if self.gimp.root is None:
                raise Gimp3Unavailable("hiding paths from GIMP needs the chroot")
            targets = [str(self.gimp.root / Path(h).resolve().relative_to("/")) for h in hide]
            script = ('for p in "$@"; do [ "$p" = -- ] && break; while mountpoint -q "$p"; do umount -l "$p"; done; '
                      'done; while [ "$1" != -- ]; do shift; done; shift; exec "$@"')
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *targets, "--", *cmd]
        return subprocess.run(cmd, input=code, capture_output=True, text=True, timeout=timeout)


def engine_paths() -> list[Path]:
    """The host paths that make the engine's virtual environment visible in the chroot."""
    return [PROJECT_ROOT, *_python_binds(_venv_python())]


def _chroot_mounts(root: Path, binds: Sequence[Path]) -> list[tuple[str, str, Path]]:
    """(type, source, target) of every mount a session needs, in mounting order."""
    wanted = [("proc", "proc", root / "proc"), ("tmpfs", "tmpfs", root / "dev/shm")]
    for host in [*engine_paths(), *map(Path, binds)]:
        host = host.resolve()
        wanted.append(("bind", str(host), root / host.relative_to("/")))
    return wanted


def _same_file(source: str, target: Path) -> bool:
    """Whether a bind mount's target shows ``source`` itself (same device and inode)."""
    try:
        a, b = os.stat(source), os.stat(target)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _sessions_dir(root: Path) -> Path:
    """Host folder (beside the chroot) where each live session lists the mounts it uses."""
    return root.with_name(root.name + ".sessions")


def _live_session_mounts(root: Path) -> set[str]:
    """Mount targets used by sessions whose process still runs (stale entries are removed)."""
    used: set[str] = set()
    for entry in _sessions_dir(root).glob("*.json"):
        pid = int(entry.name.split("-", 1)[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass
        used.update(json.loads(entry.read_text()))
    return used


@contextlib.contextmanager
def gimp3_session(gimp: Gimp3, binds: Sequence[Path] = ()) -> Iterator[GimpSession]:
    """Mount what GIMP needs for the ``with`` block (chroot case) and unmount it after.

    Binds the checkout, the venv's Python installation and ``binds`` at the same paths.
    Several sessions (and a person's GIMP in the same chroot) may run at once: a mount that
    is already there is shared, and a session unmounts only what no other live session uses.
    At the end, the processes this session started and left running (the engine worker the
    plug-in started) are stopped; no other process is touched.
    """
    if gimp.root is None:
        with tempfile.TemporaryDirectory(prefix="tinct-gimp-") as scratch:
            session = GimpSession(gimp, Path(scratch))
            try:
                yield session
            finally:
                _stop_session_processes(session.tag, None)
        return
    root = gimp.root
    wanted = _chroot_mounts(root, binds)
    scratch = Path(tempfile.mkdtemp(prefix="tinct-gimp-", dir=root / "tmp"))
    session = GimpSession(gimp, scratch)
    registry = _sessions_dir(root)
    registry.mkdir(exist_ok=True)
    entry = registry / f"{session.tag}.json"
    mounted: list[Path] = []
    try:
        with _file_lock(root.with_name(root.name + ".mounts.lock")):
            present, shared = set(_mounts_under(root)), _live_session_mounts(root)
            for fs_type, source, target in wanted:
                if str(target) in present and fs_type == "bind" and not _same_file(source, target):
                    # A bind left by a session that was killed, whose source has since been deleted and made
                    # anew (a fresh clone at the same path): it shows the old files. Unmount it unless a live
                    # session uses it, and mount the new ones.
                    if str(target) not in shared:
                        _umount(str(target))
                    present.discard(str(target))
                if str(target) in present:
                    if str(target) not in shared:
                        continue  # mounted by someone else (a person's GIMP): use it, never unmount it
                else:
                    if fs_type != "bind" or Path(source).is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.touch(exist_ok=True)
                    options = ["--bind", source] if fs_type == "bind" else ["-t", fs_type, source]
                    subprocess.run(["mount", *options, str(target)], check=True)
                mounted.append(target)
            entry.write_text(json.dumps([str(t) for t in mounted]))
        yield session
    finally:
        _stop_session_processes(session.tag, root)
        with _file_lock(root.with_name(root.name + ".mounts.lock")):
            entry.unlink(missing_ok=True)
            others = _live_session_mounts(root)
            for target in reversed(mounted):
                if str(target) not in others:
                    _umount(str(target))
        if not _mounts_under(scratch):
            shutil.rmtree(scratch, ignore_errors=True)


def _session_pids(tag: str, root: Path | None) -> list[int]:
    """Processes carrying ``SESSION_TAG=tag`` in their environment (and, for a chroot, running in it)."""
    marker = f"{SESSION_TAG}={tag}".encode()
    pids: list[int] = []
    if not Path("/proc").is_dir():
        return pids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if root is not None and os.readlink(entry / "root") != str(root):
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def _stop_session_processes(tag: str, root: Path | None, grace: float = 5.0) -> None:
    """SIGTERM, then after ``grace`` seconds SIGKILL, the processes this session started."""
    import signal

    for pid in _session_pids(tag, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _session_pids(tag, root) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in _session_pids(tag, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    started = time.monotonic()
    found = ensure_gimp3()
    print(f"GIMP {found.version} at {found.root or found.console} ({time.monotonic() - started:.1f} s)")
