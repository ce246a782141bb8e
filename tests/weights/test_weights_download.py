"""Downloads against a real HTTP server on 127.0.0.1: success, resume, retries, errors, timeouts."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import torch

import weights_fetch
from weights_fetch import cache
from weights_fetch.errors import CacheError, DownloadError, OfflineError, VerificationError


def _cached_files(home: Path) -> list[str]:
    """Every file under the cache except lock files (which may stay, by design)."""
    if not home.exists():
        return []
    return sorted(p.name for p in home.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_fetch_downloads_verifies_and_converts(publish, server, weights_env):
    published = publish()
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)

    assert path == weights_env / "weights" / "test-tiny.safetensors"
    assert [r.path for r in server.requests] == [f"/mirror/weights/{published.file}"]
    tensors, metadata = weights_fetch.load_state_dict(path)
    assert tensors.keys() == published.tensors.keys()
    for key, tensor in published.tensors.items():
        assert torch.equal(tensors[key], tensor)
    assert metadata == {
        "arch": "eccv16",
        "name": "test-tiny",
        "license": "BSD-2-Clause",
        "source_sha256": published.sha256,
    }
    # The original download is replaced by the converted file; nothing partial is left.
    assert _cached_files(weights_env) == ["test-tiny.safetensors", "test-tiny.safetensors.sha256"]
    assert weights_fetch.state("test-tiny") == "cached"


def test_second_fetch_and_resolve_use_the_cache(publish, server):
    published = publish()
    first = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert weights_fetch.fetch(published.name, mirror=published.mirror, progress=False) == first
    assert weights_fetch.resolve(published.name) == first
    assert len(server.requests) == 1


def test_mirror_from_environment(publish, server, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_WEIGHTS_MIRROR", server.base_url + "/env-mirror/")
    weights_fetch.resolve(published.name, fetch=True, progress=False)
    assert [r.path for r in server.requests] == [f"/env-mirror/{published.file}"]


def test_invalid_mirror_is_a_clear_error(publish, server):
    published = publish()
    with pytest.raises(weights_fetch.WeightsError, match="invalid mirror URL 'ftp://x'"):
        weights_fetch.fetch(published.name, mirror="ftp://x", progress=False)
    assert server.requests == []


def test_progress_bar_shows_size_and_rate(publish, capsys):
    published = publish()
    weights_fetch.fetch(published.name, mirror=published.mirror, progress=True)
    err = capsys.readouterr().err
    assert published.file in err
    assert "/s" in err and "100%" in err


def test_dropped_connection_is_resumed_with_range_and_if_range(publish, server):
    published = publish()
    server.then("drop", after=30000)
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)

    first, second = server.requests
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=30000-"
    assert second.headers["If-Range"] == server.etag_of(published.data)
    assert second.status == 206
    assert weights_fetch.load_state_dict(path)[1]["source_sha256"] == published.sha256


def test_partial_file_from_a_failed_run_is_resumed_by_the_next(publish, server, weights_env, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_DOWNLOAD_RETRIES", "0")
    server.then("drop", after=30000)
    with pytest.raises(DownloadError, match="connection dropped after"):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    part = weights_env / "downloads" / f"{published.file}.part"
    kept = part.stat().st_size
    assert kept == 30000  # every byte received before the drop is kept
    assert weights_fetch.state(published.name) == "missing"

    weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    resumed = server.requests[1]
    assert resumed.headers["Range"] == f"bytes={kept}-"
    assert resumed.headers["If-Range"] == server.etag_of(published.data)
    assert resumed.status == 206
    assert weights_fetch.verify(published.name).ok
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(publish, server):
    published = publish()
    server.honour_range = False
    server.then("drop", after=30000)
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)

    second = server.requests[1]
    assert second.headers["Range"].startswith("bytes=") and second.status == 200
    tensors, metadata = weights_fetch.load_state_dict(path)
    assert metadata["source_sha256"] == published.sha256
    assert torch.equal(tensors["model1.0.weight"], published.tensors["model1.0.weight"])


def test_wrong_content_is_rejected_and_not_cached(publish, server, weights_env):
    real = publish()
    wrong = bytes(b ^ 0xFF for b in real.data)  # same size, different bytes
    server.files[real.file] = wrong
    with pytest.raises(VerificationError) as error:
        weights_fetch.fetch(real.name, mirror=real.mirror, progress=False)
    message = str(error.value)
    assert real.sha256 in message
    assert hashlib.sha256(wrong).hexdigest() in message
    assert "\n" not in message
    assert _cached_files(weights_env) == []
    assert weights_fetch.state(real.name) == "missing"


def test_oversized_content_is_rejected(publish, server, weights_env):
    real = publish()
    server.files[real.file] = real.data + b"x" * 100_000
    with pytest.raises(VerificationError, match="the server sent more"):
        weights_fetch.fetch(real.name, mirror=real.mirror, progress=False)
    assert _cached_files(weights_env) == []


def test_404_is_not_retried(publish, server):
    published = publish()
    del server.files[published.file]
    with pytest.raises(DownloadError, match=r"HTTP 404 Not Found"):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert len(server.requests) == 1


def test_500_is_retried_then_reported(publish, server):
    published = publish()
    server.then("status", code=500, times=10)
    with pytest.raises(DownloadError, match=r"HTTP 500 Internal Server Error \(3 attempts\)"):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert len(server.requests) == 3  # TINCT_DOWNLOAD_RETRIES=2 in the test environment


def test_transient_500_recovers(publish, server):
    published = publish()
    server.then("status", code=503, times=2)
    path = weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert path.is_file()


def test_stalled_server_hits_the_read_timeout(publish, server, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("TINCT_DOWNLOAD_RETRIES", "0")
    server.then("stall", after=1000)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"no data for 0\.5s .*\(read timeout\)"):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert time.monotonic() - started < 10


def test_refused_connection_is_reported(publish, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_DOWNLOAD_RETRIES", "1")
    # Port 9 on 127.0.0.1: nothing listens there in the test environment.
    with pytest.raises(DownloadError, match=r"connection failed .*\(2 attempts\)"):
        weights_fetch.fetch(published.name, mirror="http://127.0.0.1:9/w", progress=False)


def test_offline_mode_never_connects(publish, server, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_OFFLINE", "1")
    monkeypatch.setenv("TINCT_WEIGHTS_MIRROR", published.mirror)
    with pytest.raises(OfflineError, match=r"`tinct weights import test-tiny FILE`"):
        weights_fetch.resolve(published.name, fetch=True, progress=False)
    with pytest.raises(OfflineError):
        weights_fetch.fetch(published.name, progress=False)
    assert server.requests == []


def test_bad_offline_value_is_a_clear_error(publish, monkeypatch):
    published = publish()
    monkeypatch.setenv("TINCT_OFFLINE", "maybe")
    with pytest.raises(weights_fetch.WeightsError, match="TINCT_OFFLINE must be 0 or 1"):
        weights_fetch.resolve(published.name)


def test_unwritable_cache_is_a_clear_error(publish, server, tmp_path, monkeypatch):
    published = publish()
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TINCT_HOME", str(blocker / "cache"))
    with pytest.raises(CacheError, match=r"cannot create cache folder .*set TINCT_HOME to a writable folder"):
        weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    assert server.requests == []


def test_lock_file_is_in_the_downloads_folder(publish):
    published = publish()
    weights_fetch.fetch(published.name, mirror=published.mirror, progress=False)
    entry = weights_fetch.catalog.get_entry(published.name)
    assert cache.lock_path(entry).parent == cache.downloads_dir()
