"""``tinct bench-provenance``: what embedding the provenance record costs per output file.

Two figures per still format: the time to build the file's metadata (the record, its XMP packet,
the EXIF/PNG text fields: :func:`core.imageio.output_metadata`), and the end-to-end difference of
``write_image`` with and without the record on the same pixels (medians; the difference carries
the encoder's own noise). Target: at most 5 ms per file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import UsageError

TARGET_MS = 5.0
FORMATS = (("png", ".png", "uint8"), ("png16", ".png", "uint16"), ("jpg", ".jpg", "uint8"),
           ("tif", ".tif", "uint8"), ("tif16", ".tif", "uint16"), ("webp", ".webp", "uint8"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench-provenance`` to the ``tinct`` sub-commands."""
    p = subparsers.add_parser(
        "bench-provenance", help="time what embedding the provenance record costs per file",
        description=("For every still format, the median time to build the provenance metadata (record, XMP "
                     "packet, EXIF/PNG fields) and the median write_image time with and without it on a "
                     "synthetic photo. Target: at most 5 ms per file."))
    p.add_argument("--megapixels", type=float, default=1.0, help="size of the synthetic photo (default 1)")
    p.add_argument("--repeat", type=int, default=9, metavar="N", help="timed runs per figure (default 9)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run)


def _median_seconds(*actions, repeat: int) -> list[float]:
    """Median seconds of each action, run interleaved (so a load change on the machine hits all alike)."""
    for action in actions:
        action()  # warm-up (imports, lookup tables)
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, measured in zip(actions, times):
            start = time.perf_counter()
            action()
            measured.append(time.perf_counter() - start)
    return [statistics.median(measured) for measured in times]


def measure(megapixels: float, repeat: int) -> list[dict[str, Any]]:
    """One row per format: ``build_ms``, ``write_ms`` (with the record), ``plain_ms``, ``overhead_ms``."""
    import numpy as np

    from .bench import synthetic_size
    from .imageio import output_metadata, write_image
    from .pixels import PEAK
    from .provenance import Record

    record = Record(model="tinct-small", weights_sha256="0" * 64, temperature=0.38, decode="annealed",
                    render_size=256, post=("segments", "crf"), post_strength=0.7)
    height, width = synthetic_size(megapixels)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256], axis=2).astype(np.float64) / 255.0
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinct-bench-provenance-") as folder:
        for name, suffix, dtype in FORMATS:
            peak = PEAK[np.dtype(dtype)]
            pixels = (base * peak).astype(dtype)
            target = Path(folder) / f"out{suffix}"
            (build,) = _median_seconds(lambda: output_metadata(None, record), repeat=repeat)
            with_record, plain = _median_seconds(
                lambda: write_image(target, pixels, dpi=(300.0, 300.0), provenance=record),
                lambda: write_image(target, pixels, dpi=(300.0, 300.0)), repeat=repeat)
            rows.append({"format": name, "width": width, "height": height, "build_ms": build * 1e3,
                         "write_ms": with_record * 1e3, "plain_ms": plain * 1e3,
                         "overhead_ms": (with_record - plain) * 1e3})
    return rows


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1 or args.megapixels <= 0:
        raise UsageError("--repeat and --megapixels must be positive")
    rows = measure(args.megapixels, args.repeat)
    print(f"{'format':<8}{'metadata ms':>13}{'write ms':>10}{'without ms':>12}{'difference ms':>15}")
    for row in rows:
        print(f"{row['format']:<8}{row['build_ms']:>13.2f}{row['write_ms']:>10.1f}{row['plain_ms']:>12.1f}"
              f"{row['overhead_ms']:>15.2f}")
    worst = max(row["build_ms"] for row in rows)
    verdict = "met" if worst <= TARGET_MS else "NOT met"
    print(f"{rows[0]['width']}x{rows[0]['height']}: building the record's metadata costs at most {worst:.2f} ms "
          f"per file (target <= {TARGET_MS:g} ms: {verdict})")
    if args.json is not None:
        from .fs import write_atomically

        payload = json.dumps({"rows": rows, "target_ms": TARGET_MS}, indent=2).encode()
        write_atomically(args.json, lambda handle: handle.write(payload))
    return 0
