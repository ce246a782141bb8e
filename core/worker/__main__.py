"""``python -m core.worker``: run the per-user Tinct worker until it has been idle for a while."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.worker import rendezvous
from core.worker import wire


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m core.worker", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="private runtime directory (default: the per-user one, see core/worker/rendezvous.py)")
    parser.add_argument("--idle-timeout", type=float, default=600.0,
                        help="seconds without requests before exiting (0: never)")
    parser.add_argument("--max-payload", type=int, default=wire.DEFAULT_MAX_PAYLOAD,
                        help="largest request payload accepted, in bytes")
    parser.add_argument("--header-timeout", type=float, default=None,
                        help="seconds a connection has to send a request's header (default 5)")
    parser.add_argument("--device", default="auto", help="torch device for the engine (auto, cpu, cuda, mps)")
    args = parser.parse_args(argv)
    run_dir = args.run_dir or rendezvous.runtime_dir()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from core.worker.engine import EngineHandler
    from core.worker.server import DEFAULT_HEADER_TIMEOUT, serve

    return serve(EngineHandler(device=args.device), run_dir, idle_timeout=args.idle_timeout or None,
                 max_payload=args.max_payload, header_timeout=args.header_timeout or DEFAULT_HEADER_TIMEOUT, log=log)


if __name__ == "__main__":
    sys.exit(main())
