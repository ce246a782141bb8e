"""Tinct worker protocol, version 4: length-prefixed messages carrying JSON headers and raw pixels.

Version 2 (user control) added to ``colorize`` the optional request array ``reference``, the options
``palette``, ``reference_strength`` and ``confidence``, the reply array ``confidence`` and reply
``warnings``; version 3 adds the option ``content`` (photo, document or auto), the palette ``none``
and the reply's ``used``; version 4 adds hints sent as painted regions, the request array
``hint_pixels`` with the option ``hint_regions`` (``core/hint_regions.py``; see
``core/worker/engine.py``). An older worker would silently ignore what
it does not know, so the client replaces a worker of another version.

Standard library only: the engine worker (the project's virtual environment) imports it as
``core.worker.wire``; the GIMP plug-in (GIMP's Python) loads this same file, which the installer
copies beside it as ``tinct_wire.py`` (``gimp_plugin/tinct_colorize/tinct_shared.py``).

A message is::

    prefix   20 bytes, network order (struct "!4sHHIQ"): magic b"TNCT", u16 protocol version,
             u16 reserved (0), u32 header length, u64 payload length
    header   UTF-8 JSON object
    payload  raw bytes: the arrays listed in header["arrays"], concatenated in order, C order,
             little-endian; each entry is {"name": str, "dtype": "u8"|"u16"|"f32", "shape": [...]}

Requests carry ``"op"`` and the worker's ``"token"``; replies carry ``"ok"`` (and ``"error"``
when false). A peer that sees another magic, another version, a header over ``MAX_HEADER``
bytes or nested deeper than ``MAX_DEPTH``, or a payload over its limit answers with an error
reply and closes the connection. The receiver reads a message in two steps
(:func:`recv_header`, then :func:`recv_payload`) so that it can check the token and the declared
arrays before a single payload byte is read or allocated.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from typing import Iterable, Sequence

MAGIC = b"TNCT"
PROTOCOL_VERSION = 4
PREFIX = struct.Struct("!4sHHIQ")
MAX_HEADER = 1 << 20
MAX_DEPTH = 16  # real headers nest 4 deep; deeper ones are refused before parsing (no RecursionError)
DEFAULT_MAX_PAYLOAD = 2 << 30
MAX_SIDE = 1 << 17
MAX_ELEMENTS = MAX_SIDE * MAX_SIDE
DTYPE_SIZES = {"u8": 1, "u16": 2, "f32": 4}


class ProtocolError(Exception):
    """A message that is malformed, of another version, or over a size limit."""


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version (``peer_version``)."""

    def __init__(self, peer_version: int):
        super().__init__(f"the peer speaks Tinct protocol {peer_version}, this side {PROTOCOL_VERSION}")
        self.peer_version = peer_version


class TooLarge(ProtocolError):
    """A header or payload over the receiver's limit."""


def send_message(sock: socket.socket, header: dict, payload: Sequence[bytes | bytearray | memoryview] = ()) -> None:
    """Send one message; ``payload`` parts are sent as they are, without copying them together."""
    head = json.dumps(header, separators=(",", ":")).encode()
    size = sum(len(memoryview(part).cast("B")) for part in payload)
    sock.sendall(PREFIX.pack(MAGIC, PROTOCOL_VERSION, 0, len(head), size) + head)
    for part in payload:
        sock.sendall(part)


def recv_exact(sock: socket.socket, size: int, into: bytearray | None = None) -> bytearray:
    """Read exactly ``size`` bytes or raise ``ConnectionError`` at end of stream."""
    buf = into if into is not None else bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], min(size - got, 1 << 24))
        if n == 0:
            raise ConnectionError("the connection closed in the middle of a message")
        got += n
    return buf


def recv_prefix(sock: socket.socket, max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[int, int]:
    """Read and check a prefix; returns (header length, payload length)."""
    first = sock.recv(PREFIX.size)
    if not first:
        raise EOFError("the connection closed before a message")
    raw = first + bytes(recv_exact(sock, PREFIX.size - len(first))) if len(first) < PREFIX.size else first
    magic, version, _reserved, head_len, payload_len = PREFIX.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError("not a Tinct message (bad magic)")
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(version)
    if head_len > MAX_HEADER:
        raise TooLarge(f"header of {head_len} bytes is over the {MAX_HEADER}-byte limit")
    if payload_len > max_payload:
        raise TooLarge(f"payload of {payload_len} bytes is over the {max_payload}-byte limit")
    return head_len, payload_len


_JSON_TOKENS = re.compile(r'"(?:[^"\\]+|\\.)*"|[\[\]{}]')


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deeply ``text``'s JSON arrays and objects nest, counted without parsing (brackets inside
    strings do not count); stops counting once past ``limit``."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token in "]}":
            depth -= 1
    return deepest


def parse_header(data: bytes) -> dict:
    """A header's bytes -> its JSON object; raises ``ProtocolError`` for anything else (invalid
    UTF-8 or JSON, nested deeper than ``MAX_DEPTH``, not an object)."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"the message header is not valid UTF-8: {exc}") from None
    if json_depth(text) > MAX_DEPTH:
        raise ProtocolError(f"the message header nests deeper than {MAX_DEPTH} levels")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"the message header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("the message header is not a JSON object")
    return header


def recv_header(sock: socket.socket, max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[dict, int]:
    """Read a message's prefix and header (not its payload): (header dict, payload length).

    Raises ``EOFError`` at a clean end of stream, ``ProtocolError`` or ``ConnectionError``.
    """
    head_len, payload_len = recv_prefix(sock, max_payload)
    return parse_header(bytes(recv_exact(sock, head_len))), payload_len


def recv_payload(sock: socket.socket, header: dict, payload_len: int) -> bytearray:
    """Check the header's arrays against ``payload_len`` (before allocating anything), then read the payload."""
    check_arrays(header.get("arrays", []), payload_len)
    return recv_exact(sock, payload_len)


def recv_message(sock: socket.socket, max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[dict, bytearray]:
    """Read one message: (header dict, payload bytes). Raises ``ProtocolError`` or ``ConnectionError``."""
    header, payload_len = recv_header(sock, max_payload)
    return header, recv_payload(sock, header, payload_len)


def array_spec(name: str, dtype: str, shape: Iterable[int]) -> dict:
    """A header entry describing one array of the payload."""
    return {"name": name, "dtype": dtype, "shape": [int(s) for s in shape]}


def array_nbytes(spec: dict) -> int:
    """Bytes taken by an array entry, after checking it is well formed."""
    if not isinstance(spec, dict) or spec.get("dtype") not in DTYPE_SIZES or not isinstance(spec.get("name"), str):
        raise ProtocolError(f"malformed array entry: {spec!r}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s for s in shape):
        raise ProtocolError(f"malformed array shape in {spec!r}")
    elements = 1
    for side in shape:
        elements *= side
    # An image is [H, W, C] with H, W <= MAX_SIDE; a list of pixels ([k, 4] hint pixels) may be longer.
    if elements > MAX_ELEMENTS or (len(shape) == 3 and max(shape[:2]) > MAX_SIDE):
        raise ProtocolError(f"array too large in {spec!r}")
    return elements * DTYPE_SIZES[spec["dtype"]]


def check_arrays(specs: object, payload_len: int) -> None:
    """Check that the array entries are well formed and add up to the payload length."""
    if not isinstance(specs, list):
        raise ProtocolError("'arrays' must be a list")
    total = sum(array_nbytes(spec) for spec in specs)
    if total != payload_len:
        raise ProtocolError(f"the arrays take {total} bytes but the payload has {payload_len}")


def split_arrays(header: dict, payload: bytearray) -> dict[str, tuple[dict, memoryview]]:
    """Map each array name to (its entry, a view of its bytes in the payload)."""
    view = memoryview(payload)
    out, offset = {}, 0
    for spec in header.get("arrays", []):
        size = array_nbytes(spec)
        out[spec["name"]] = (spec, view[offset:offset + size])
        offset += size
    return out
