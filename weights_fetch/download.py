"""Streaming HTTP download: timeouts, retries with backoff, resume, progress, verification.

A download goes to ``<dest>.part``; ``<dest>.part.json`` keeps the server's validator (strong
ETag or Last-Modified) so that a later attempt can resume with ``Range`` + ``If-Range``. Only a
file whose size and SHA-256 match is moved to ``dest`` (atomically); a mismatching file is deleted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from http.client import IncompleteRead
from pathlib import Path

import requests
from tqdm import tqdm
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .cache import discard, move_into_place
from .digest import check_file
from .errors import CacheError, DownloadError, VerificationError
from .settings import DownloadSettings

_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


class _Transient(Exception):
    """A failure worth retrying (connection trouble, timeout, HTTP 5xx)."""


class _Permanent(Exception):
    """A failure that retrying the same URL will not fix (HTTP 4xx, odd status)."""


def partial_path(dest: Path) -> Path:
    """The in-progress file of a download to ``dest``."""
    return dest.with_name(dest.name + ".part")


def validator_path(dest: Path) -> Path:
    """Where the resume validator of a download to ``dest`` is kept."""
    return dest.with_name(dest.name + ".part.json")


def download_file(
    urls: Sequence[str],
    dest: Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    settings: DownloadSettings,
    progress: bool = True,
) -> str:
    """Download the first URL that works to ``dest``; return the file's full SHA-256.

    Each URL gets ``settings.retries`` extra attempts on connection errors, timeouts and 5xx,
    with exponential backoff; every attempt resumes what the previous ones left in ``.part``.
    Raises :class:`DownloadError` when no URL succeeded, :class:`VerificationError` when the
    content is wrong (the partial file is then deleted).
    """
    if not urls:
        raise DownloadError(f"no URL to download {dest.name} from")
    failures: list[str] = []
    with requests.Session() as session:
        for url in urls:
            attempts = 0
            for attempt in range(settings.retries + 1):
                if attempt:
                    time.sleep(settings.backoff * 2 ** (attempt - 1))
                attempts += 1
                try:
                    _transfer(session, url, dest, expected_size, settings, progress)
                except _Transient as exc:
                    reason = str(exc)
                    continue
                except _Permanent as exc:
                    reason = str(exc)
                    break
                return _finish(dest, expected_size, expected_sha256)
            tries = f" ({attempts} attempts)" if attempts > 1 else ""
            failures.append(f"{url}: {reason}{tries}")
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(failures))


def _finish(dest: Path, expected_size: int | None, expected_sha256: str | None) -> str:
    part = partial_path(dest)
    try:
        digest = check_file(part, expected_size, expected_sha256, f"downloaded {dest.name}")
    except VerificationError:
        discard(part, validator_path(dest))
        raise
    move_into_place(part, dest, keep_on_error=True)
    discard(validator_path(dest))
    return digest


def _transfer(
    session: requests.Session,
    url: str,
    dest: Path,
    expected_size: int | None,
    settings: DownloadSettings,
    progress: bool,
) -> None:
    """One HTTP request, appending to or restarting ``.part``. Returns when the body is complete."""
    part, meta = partial_path(dest), validator_path(dest)
    offset = part.stat().st_size if part.exists() else 0
    validator = _read_validator(meta) if offset else None
    if offset and (validator is None or (expected_size is not None and offset > expected_size)):
        discard(part, meta)
        offset, validator = 0, None
    if expected_size is not None and offset == expected_size:
        return  # complete from an earlier run; _finish verifies it
    headers = {"Accept-Encoding": "identity"}
    if offset and validator:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    try:
        response = session.get(
            url,
            headers=headers,
            stream=True,
            timeout=(settings.connect_timeout, settings.read_timeout),
        )
    except requests.RequestException as exc:
        raise _Transient(_describe(exc, settings, offset)) from exc
    with response:
        status = response.status_code
        if status == 416 and offset:
            discard(part, meta)
            raise _Transient("server refused to resume (HTTP 416); starting again")
        if status >= 500:
            raise _Transient(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise _Permanent(f"HTTP {status} {response.reason}")
        if status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if not offset or start != offset:
                discard(part, meta)
                raise _Transient("server resumed at the wrong offset; starting again")
            mode = "ab"
        else:
            # A 200 answer to a Range request means the file changed or the server
            # ignores ranges: either way, start over.
            offset, mode = 0, "wb"
            _write_validator(meta, url, _validator_of(response.headers))
        _stream_body(response, dest, mode, offset, expected_size, settings, progress)


def _stream_body(
    response: requests.Response,
    dest: Path,
    mode: str,
    offset: int,
    expected_size: int | None,
    settings: DownloadSettings,
    progress: bool,
) -> None:
    """Write the body to ``dest``'s ``.part`` (``mode`` "wb" or "ab") with a progress bar."""
    part, label = partial_path(dest), dest.name
    length_header = response.headers.get("Content-Length", "")
    length = int(length_header) if length_header.isdigit() else None
    total = expected_size if expected_size is not None else (offset + length if length is not None else None)
    received = 0
    too_big = False
    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not progress,
    )
    try:
        with open(part, mode) as out:
            for chunk in _body_chunks(response):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if expected_size is not None and offset + received > expected_size:
                    too_big = True
                    break
    except (requests.RequestException, Urllib3Error) as exc:
        raise _Transient(_describe(exc, settings, offset + received)) from exc
    except OSError as exc:
        raise CacheError(f"cannot write {part}: {exc.strerror or exc}") from exc
    finally:
        bar.close()
    if too_big:
        discard(part, validator_path(dest))
        raise VerificationError(
            f"downloaded {label}: expected {expected_size:,} bytes, the server sent more"
        )
    if length is not None and "Content-Encoding" not in response.headers and received < length:
        raise _Transient(f"connection closed after {offset + received:,} bytes")


def _body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body in chunks, yielding every byte received before a connection breaks.

    ``iter_content`` reads fixed-size blocks and loses a block cut short by a dropped
    connection; urllib3's ``read1`` returns what has arrived, so a resume loses nothing.
    """
    raw = response.raw
    if not hasattr(raw, "read1"):  # urllib3 < 2
        yield from response.iter_content(_CHUNK)
        return
    while chunk := raw.read1(_CHUNK, decode_content=True):
        yield chunk


def _describe(exc: Exception, settings: DownloadSettings, position: int) -> str:
    """A short, single-line reason for a network failure (requests or urllib3 exception)."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"could not connect within {settings.connect_timeout:g}s (connect timeout)"
    if isinstance(exc, (requests.ReadTimeout, ReadTimeoutError)) or (
        exc.args and isinstance(exc.args[0], ReadTimeoutError)
    ):
        return f"no data for {settings.read_timeout:g}s after {position:,} bytes (read timeout)"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, ProtocolError, IncompleteRead)):
        return f"connection dropped after {position:,} bytes"
    if isinstance(exc, requests.ConnectionError):
        match = _ERRNO.search(str(exc))
        return f"connection failed ({match.group(0).strip() if match else type(exc).__name__})"
    return f"request failed ({type(exc).__name__})"


def _validator_of(headers: requests.structures.CaseInsensitiveDict) -> str | None:
    """A validator usable in If-Range: a strong ETag, else Last-Modified."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _range_start(content_range: str) -> int | None:
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    return int(match.group(1)) if match else None


def _read_validator(meta: Path) -> str | None:
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    validator = record.get("validator") if isinstance(record, dict) else None
    return validator if isinstance(validator, str) and validator else None


def _write_validator(meta: Path, url: str, validator: str | None) -> None:
    if validator is None:
        discard(meta)
        return
    try:
        meta.write_text(json.dumps({"url": url, "validator": validator}), encoding="utf-8")
    except OSError as exc:
        raise CacheError(f"cannot write {meta}: {exc.strerror or exc}") from exc
