"""`tinct bench-network` times every requested model, shape and thread count and writes its report."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_network_reports_medians_per_shape_and_thread_count(tmp_path):
    out = tmp_path / "net.json"
    res = subprocess.run([sys.executable, "-m", "core.cli", "bench-network", "--shapes", "64x96,96x96",
                          "--threads", "1", "--repeat", "3", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [(r["shape"], r["threads"]) for r in rows] == [("64x96", 1), ("96x96", 1)]
    assert all(0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    assert "tinct-small" in res.stdout and "median" in res.stdout
