"""Cache location per platform and the TINCT_HOME override."""

from __future__ import annotations

import sys
from pathlib import Path, PureWindowsPath

import pytest

from weights_fetch import cache


def test_linux_uses_xdg_cache_home_or_dot_cache():
    home = Path("/home/ada")
    assert cache.default_cache_root("linux", {}, home) == home / ".cache" / "tinct"
    assert cache.default_cache_root("linux", {"XDG_CACHE_HOME": "/var/cache/ada"}, home) == Path("/var/cache/ada/tinct")
    # A relative XDG value is invalid per the spec and ignored.
    assert cache.default_cache_root("linux", {"XDG_CACHE_HOME": "rel"}, home) == home / ".cache" / "tinct"


def test_macos_uses_library_caches():
    assert cache.default_cache_root("darwin", {}, Path("/Users/ada")) == Path("/Users/ada/Library/Caches/tinct")


def test_windows_uses_local_appdata():
    root = cache.default_cache_root("win32", {"LOCALAPPDATA": r"C:\Users\ada\AppData\Local"}, Path("/unused"))
    assert PureWindowsPath(*root.parts) == PureWindowsPath(r"C:\Users\ada\AppData\Local\tinct\Cache")
    fallback = cache.default_cache_root("win32", {}, Path("/home/ada"))
    assert fallback == Path("/home/ada/AppData/Local/tinct/Cache")


def test_tinct_home_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("TINCT_HOME", str(tmp_path / "elsewhere"))
    assert cache.cache_root() == tmp_path / "elsewhere"
    assert cache.weights_dir() == tmp_path / "elsewhere" / "weights"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG applies to Linux")
def test_xdg_cache_home_is_used_without_tinct_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TINCT_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "tinct"


def test_move_into_place_is_the_one_rename_and_cleans_up_on_failure(tmp_path):
    from weights_fetch.errors import CacheError

    final = tmp_path / "model.safetensors"
    tmp = cache.temp_path_for(final)
    tmp.write_bytes(b"weights")
    cache.move_into_place(tmp, final)
    assert final.read_bytes() == b"weights" and not tmp.exists()
    blocked = tmp_path / "a-folder"
    (blocked / "inside").mkdir(parents=True)  # a non-empty folder cannot be replaced by a file
    for keep in (True, False):
        tmp.write_bytes(b"verified download")
        with pytest.raises(CacheError, match="a-folder"):
            cache.move_into_place(tmp, blocked, keep_on_error=keep)
        assert tmp.exists() == keep
    cache.atomic_write_text(final, "text\n")
    assert final.read_text() == "text\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "model.safetensors"]
