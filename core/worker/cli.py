"""``tinct worker start|stop|status``: run the engine worker yourself, e.g. for a Flatpak GIMP.

A GIMP from Flathub runs its plug-ins inside a sandbox with the Flatpak's own Python, which
cannot start the engine from this virtual environment. ``tinct worker start --flatpak`` starts
the worker on the host, listening in ``~/.var/app/org.gimp.GIMP/cache/tinct`` (a folder the
sandbox sees at the same path), and keeps it running until ``tinct worker stop``.
``--at-login systemd|desktop`` also writes a systemd user unit or an XDG autostart entry
that starts it at login (an existing file of the same name is never replaced).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.errors import OutputError, TinctError, UsageError
from core.worker import rendezvous
from core.worker import wire

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNIT_NAME = "tinct-worker"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``worker`` with ``start``, ``stop`` and ``status`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser("worker", help="start, stop or check the engine worker (e.g. for a Flatpak GIMP)",
                              description=__doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (("start", "start the worker in the background (nothing happens if one runs)"),
                           ("stop", "stop the running worker"),
                           ("status", "say whether a worker runs (exit status 0) or not (1)")):
        action = actions.add_parser(name, help=helptext, description=helptext)
        where = action.add_mutually_exclusive_group()
        where.add_argument("--flatpak", action="store_true",
                           help=f"use the folder a Flatpak GIMP sees ({rendezvous.flatpak_runtime_dir()})")
        where.add_argument("--run-dir", type=Path, help="use this runtime folder (default: the per-user one)")
        if name == "start":
            action.add_argument("--idle-timeout", type=float, default=0.0, metavar="S",
                                help="stop after S seconds without requests (default 0: keep running)")
            action.add_argument("--device", default="auto", help="torch device for the engine (default auto)")
            action.add_argument("--at-login", choices=("systemd", "desktop"),
                                help="also start it at every login: a systemd user unit or an XDG autostart entry")
        action.set_defaults(func=run)


def _run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir is not None:
        return rendezvous.runtime_dir(args.run_dir)
    return rendezvous.runtime_dir(rendezvous.flatpak_runtime_dir() if args.flatpak else None)


def live_endpoint(run_dir: Path) -> dict | None:
    """The endpoint of a worker that answers a ping in ``run_dir``, else None."""
    endpoint = rendezvous.read_endpoint(run_dir)
    if not endpoint:
        return None
    try:
        with rendezvous.connect(endpoint, timeout=5.0) as sock:
            wire.send_message(sock, {"op": "ping", "token": endpoint.get("token", "")})
            reply, _ = wire.recv_message(sock)
    except (OSError, EOFError, wire.ProtocolError):
        return None
    return endpoint if reply.get("ok") else None


def worker_command(run_dir: Path, idle_timeout: float, device: str) -> list[str]:
    """The command line that runs the worker in the foreground."""
    return [sys.executable, "-m", "core.worker", "--run-dir", str(run_dir), "--idle-timeout", f"{idle_timeout:g}",
            "--device", device]


def run(args: argparse.Namespace) -> int:
    """``tinct worker ACTION``; returns the exit status."""
    try:
        run_dir = _run_dir(args)
    except rendezvous.RendezvousError as error:
        raise UsageError(str(error)) from None
    if args.action == "status":
        endpoint = live_endpoint(run_dir)
        if endpoint:
            print(f"Tinct worker {endpoint['pid']} is running ({endpoint['transport']} {endpoint['address']})")
            return 0
        print(f"no Tinct worker is running in {run_dir}")
        return 1
    if args.action == "stop":
        return _stop(run_dir)
    return _start(run_dir, args)


def _start(run_dir: Path, args: argparse.Namespace) -> int:
    command = worker_command(run_dir, args.idle_timeout, args.device)
    if args.at_login:
        try:
            print(f"written: {write_login_entry(args.at_login, command)}")
        except FileExistsError as error:
            raise OutputError(str(error)) from None
    endpoint = live_endpoint(run_dir)
    if endpoint:
        print(f"a Tinct worker is already running (pid {endpoint['pid']}) in {run_dir}")
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    log_path = run_dir / rendezvous.LOG_FILE
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=str(PROJECT_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, start_new_session=True)
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        endpoint = live_endpoint(run_dir)
        if endpoint:
            print(f"Tinct worker {endpoint['pid']} is running in {run_dir} (stop it with: tinct worker stop"
                  f"{' --flatpak' if args.flatpak else ''})")
            return 0
        if process.poll() is not None and process.returncode != 3:  # 3: another one holds the lock
            raise TinctError(f"the worker exited with status {process.returncode}; see {log_path}")
        time.sleep(0.1)
    raise TinctError(f"the worker did not start within 120 s; see {log_path}")


def _stop(run_dir: Path) -> int:
    endpoint = rendezvous.read_endpoint(run_dir)
    pid = endpoint.get("pid") if endpoint else None
    if not isinstance(pid, int) or live_endpoint(run_dir) is None:
        print(f"no Tinct worker is running in {run_dir}")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30.0
    while rendezvous.read_endpoint(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    if rendezvous.read_endpoint(run_dir):
        raise TinctError(f"worker {pid} did not stop within 30 s")
    print(f"stopped Tinct worker {pid}")
    return 0


def write_login_entry(kind: str, command: list[str]) -> Path:
    """Write a systemd user unit or an XDG autostart entry running ``command``; returns its path.

    An existing file with other content is left alone (``FileExistsError``).
    """
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    line = shlex.join(command)
    env = f"PYTHONPATH={shlex.quote(str(PROJECT_ROOT))}"
    if kind == "systemd":
        path = config / "systemd" / "user" / f"{UNIT_NAME}.service"
        text = (f"[Unit]\nDescription=Tinct colorization engine worker\n\n[Service]\nEnvironment={env}\n"
                f"WorkingDirectory={PROJECT_ROOT}\nExecStart={line}\nRestart=on-failure\n\n"
                "[Install]\nWantedBy=default.target\n")
        after = f"enable it with: systemctl --user enable --now {UNIT_NAME}.service"
    else:
        path = config / "autostart" / f"{UNIT_NAME}.desktop"
        text = ("[Desktop Entry]\nType=Application\nName=Tinct engine worker\nComment=Colorization engine for GIMP\n"
                f"Exec=env {env} {line}\nPath={PROJECT_ROOT}\nTerminal=false\nNoDisplay=true\n")
        after = "it starts at your next login"
    if path.exists():
        if path.read_text(encoding="utf-8") != text:
            raise FileExistsError(f"{path} exists with other content; remove it first to have it rewritten")
        return path
    from core.fs import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))
    print(after)
    return path
