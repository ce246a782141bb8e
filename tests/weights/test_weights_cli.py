"""The weights commands, through an argparse parser built here and through ``python -m weights_fetch``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import weights_fetch
from core.errors import INPUT, MODEL
from weights_fetch import cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str) -> int:
    """Run ``tinct weights ARGV`` through the ``tinct`` command's frame (which prints the errors)."""
    from core import cli as tinct

    return tinct.main(["weights", *argv])


def test_list_shows_size_licence_and_state(publish, capsys):
    published = publish()
    assert run_cli("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ARCH", "SIZE", "LICENCE", "STATE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["eccv16"] == ["eccv16", "eccv16", "129.0", "MB", "BSD-2-Clause", "missing"]
    assert rows["siggraph17"][2:4] == ["136.8", "MB"]
    assert rows["tinct-small"][-2:] == ["Apache-2.0", rows["tinct-small"][-1]]
    assert rows[published.name][-1] == "missing"
    assert "default = tinct-small" in lines


def test_fetch_path_verify_remove(publish, server, capsys):
    published = publish()
    assert run_cli("fetch", published.name, "--mirror", published.mirror, "--no-progress") == 0
    fetched = capsys.readouterr().out.strip()
    assert Path(fetched).is_file()

    assert run_cli("path", published.name) == 0
    assert capsys.readouterr().out.strip() == fetched
    assert run_cli("verify", published.name) == 0
    assert f"{published.name}: ok" in capsys.readouterr().out
    assert run_cli("verify") == 0  # missing entries are listed, not failures
    assert run_cli("remove", published.name) == 0
    assert "removed test-tiny" in capsys.readouterr().out
    assert len(server.requests) == 1


def test_errors_are_one_line_on_stderr(publish, server, capsys):
    published = publish()
    assert run_cli("path", published.name) == MODEL
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("tinct weights: error: weights 'test-tiny'")

    del server.files[published.file]
    assert run_cli("fetch", published.name, "--mirror", published.mirror, "--no-progress") == MODEL
    assert "HTTP 404" in capsys.readouterr().err

    assert run_cli("fetch", "no-such-model") == MODEL
    assert capsys.readouterr().err.startswith("tinct weights: error: unknown weights 'no-such-model'")

    assert run_cli("verify", published.name) == MODEL
    assert run_cli("remove", "tinct-small") == MODEL


def test_import_command(publish, tmp_path, capsys):
    published = publish()
    file = tmp_path / "hand.pth"
    file.write_bytes(published.data)
    assert run_cli("import", published.name, str(file)) == 0
    assert weights_fetch.state(published.name) == "cached"
    file.write_bytes(published.data[:-1])
    assert run_cli("import", published.name, str(file)) == MODEL
    assert "expected" in capsys.readouterr().err
    assert run_cli("import", published.name, str(tmp_path / "absent.pth")) == INPUT
    assert "no such file" in capsys.readouterr().err


def test_python_dash_m_entry_point(publish, weights_env):
    publish()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "weights_fetch", "path", "test-tiny"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == MODEL
    assert done.stdout == "" and done.stderr.startswith("error: weights 'test-tiny'")
    done = subprocess.run(
        [sys.executable, "-m", "weights_fetch", "list"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and "test-tiny" in done.stdout


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch"])
    assert exited.value.code == 2
