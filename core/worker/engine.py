"""What the worker does with a request: run the colorization engine on raw pixels.

Operations (request ``"op"``):

- ``ping``: ``{"ok", "pid", "protocol"}``; cheap, loads nothing.
- ``models``: ``{"ok", "models": [...]}`` from ``core.loading.list_models()``.
- ``colorize``: arrays ``pixels`` (``[H,W,C]``, C 1..4, u8/u16/f32 0..1) and optionally the hints,
  either ``hint`` (``[H,W,4]`` RGBA in the same dtype; pixels with alpha > 0 are colour hints) or
  ``hint_pixels`` (``[k,4]`` RGBA: the pixels of the painted regions given by the option
  ``hint_regions``, a list of ``[x, y, w, h]``, row by row, one region after the other;
  ``core.hint_regions``) and ``reference``
  (``[h,w,3|4]`` RGB(A), any size and dtype: a photo whose palette steers the colours);
  ``options``: ``model``, ``temperature``, ``decode``, ``render_size``, ``post`` (list of post-processing
  names), ``post_strength``, ``content`` (``auto``/``photo``/``document``), ``palette`` (a named palette,
  used like a reference; ``none``), ``reference_strength``: defaults, ranges and choices as in
  ``core.options`` (missing or null means the default); ``confidence`` (bool), ``provenance`` (bool),
  ``hint_regions`` (with ``hint_pixels``).
  Reply: array ``pixels``, the same dtype, RGB or RGBA (alpha kept), with ``confidence`` also array
  ``confidence`` (``[H,W]`` u8, 255 = confident), ``timing`` ``{"engine_s", "threads"}`` (seconds, the CPU threads it ran on), ``used``
  ``{"hints", "reference", "confidence": bool, "content": "photo"|"document"}`` (what steered this
  result), ``warnings`` (lines for the user: hints, a reference or a confidence map asked of a model
  that cannot use them are skipped) and, with ``provenance``, ``provenance``
  ``{"record": <core.provenance.Record.to_dict()>, "xmp": <XMP packet>}``.
- ``colorize_sequence``: arrays ``frame0`` .. ``frameN-1`` (one dtype; sizes may differ), options as
  above plus ``temporal`` (bool). N replies, one per frame in order, each with ``index``, ``of``
  and array ``pixels``; the first also carries ``provenance`` when asked for.
- ``shutdown``: stops the worker.

A model name is any name ``core.loading.load_model`` knows (the catalog, packaged or extra). Models
stay loaded between requests; the last ``keep_models`` used are kept.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import Iterator

import numpy as np

from core.errors import known_errors, one_line
from core.options import NO_PALETTE, OptionError, checked
from core.pixels import check_pixels
from core.worker.server import Reply, Shutdown
from core.worker import wire

NUMPY_DTYPES = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}
WIRE_DTYPES = {np.dtype(v): k for k, v in NUMPY_DTYPES.items()}


class RequestError(Exception):
    """A request the engine cannot do; the message is shown to the user as is."""


def to_array(spec: dict, data: memoryview) -> np.ndarray:
    """A numpy view of a payload array (no copy)."""
    return np.frombuffer(data, dtype=NUMPY_DTYPES[spec["dtype"]]).reshape(spec["shape"])


def from_array(name: str, array: np.ndarray) -> tuple[dict, memoryview]:
    """A header entry and the bytes of ``array`` for a reply."""
    array = np.ascontiguousarray(array)
    if array.dtype not in WIRE_DTYPES:
        raise RequestError(f"the engine returned {array.dtype} pixels, which the protocol cannot carry")
    return wire.array_spec(name, WIRE_DTYPES[array.dtype], array.shape), memoryview(array).cast("B")


def _hints(arrays: dict, options: dict, size: tuple[int, int]):
    """A request's hints as ``core.hints.SparseHints`` (None when it has none): the dense ``hint``
    layer, or the ``hint_pixels`` of the ``hint_regions``."""
    from core.hints import sparse_hints_from_regions, sparse_hints_from_rgba

    if "hint" in arrays and "hint_pixels" in arrays:
        raise RequestError("send the hints either as 'hint' or as 'hint_pixels' with 'hint_regions', not both")
    if "hint" in arrays:
        hint = to_array(*arrays["hint"])
        if hint.shape != size + (4,):
            raise RequestError(f"the hint layer must be [H, W, 4] like the pixels, got {list(hint.shape)}")
        return sparse_hints_from_rgba(hint)
    if "hint_pixels" in arrays:
        try:
            return sparse_hints_from_regions(options.get("hint_regions"), to_array(*arrays["hint_pixels"]), size)
        except ValueError as exc:
            raise RequestError(str(exc)) from None
    if options.get("hint_regions"):
        raise RequestError("'hint_regions' came without the 'hint_pixels' array")
    return None


def _pixels_3d(spec: dict, data: memoryview) -> np.ndarray:
    array = to_array(spec, data)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[2] <= 4:
        raise RequestError(f"pixels must be [H, W, 1..4], got shape {list(array.shape)}")
    # GIMP's float images may hold values outside 0..1 (and NaN); the engine's one input check.
    try:
        return check_pixels(array)
    except ValueError as exc:
        raise RequestError(str(exc)) from None


def provenance_reply(colorizer: object, opts: dict, options: dict, temporal: bool | None = None,
                     content: str | None = None) -> dict | None:
    """``{"record", "xmp"}`` for a request whose options ask for ``provenance``, else None; ``content``
    is the decode profile the image got (``photo``/``document``)."""
    if not options.get("provenance"):
        return None
    from dataclasses import replace

    from core.provenance import record_from_settings, to_xmp

    record = replace(record_from_settings(colorizer.settings(**opts), temporal=temporal), content=content)
    return {"record": record.to_dict(), "xmp": to_xmp(record).decode("utf-8")}


class EngineHandler:
    """The production request handler: keeps ``Colorizer`` objects warm between requests."""

    def __init__(self, device: str = "auto", keep_models: int = 2):
        self.device = device
        self.keep_models = keep_models
        self._colorizers: OrderedDict[str, object] = OrderedDict()

    def handle(self, header: dict, payload: bytearray) -> Iterator[Reply]:
        """Yield the replies to one request; engine failures become ``{"ok": false}`` replies."""
        op = header.get("op")
        try:
            if op == "ping":
                yield {"ok": True, "pid": os.getpid(), "protocol": wire.PROTOCOL_VERSION}, ()
            elif op == "shutdown":
                raise Shutdown()
            elif op == "models":
                from core.loading import list_models

                yield {"ok": True, "models": list(list_models())}, ()
            elif op == "colorize":
                yield self._colorize(header, payload)
            elif op == "colorize_sequence":
                yield from self._colorize_sequence(header, payload)
            else:
                yield {"ok": False, "error": f"unknown operation {op!r}"}, ()
        except (RequestError, wire.ProtocolError) as exc:
            yield {"ok": False, "error": str(exc)}, ()
        except known_errors() as exc:  # Tinct's own errors (weights missing, a bad reference, ...): their one line
            yield {"ok": False, "error": one_line(exc)}, ()
        except ImportError as exc:
            yield {"ok": False, "error": f"the Tinct engine is not installed completely ({exc})"}, ()
        except (KeyError, ValueError, TypeError, RuntimeError, MemoryError) as exc:
            yield {"ok": False, "error": f"the engine failed: {exc}"}, ()

    def colorizer(self, model: str) -> object:
        """The ``Colorizer`` for ``model``, loading it on first use."""
        if model in self._colorizers:
            self._colorizers.move_to_end(model)
            return self._colorizers[model]
        from core.pipeline import Colorizer

        colorizer = Colorizer(model, self.device)
        self._colorizers[model] = colorizer
        while len(self._colorizers) > self.keep_models:
            self._colorizers.popitem(last=False)
        return colorizer

    @staticmethod
    def _options(header: dict) -> tuple[str, dict]:
        """(model name, ``colorize_array`` keyword options) from a request, checked by ``core.options``."""
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise RequestError("'options' must be an object")
        try:
            opts = checked(options, ("model", "temperature", "decode", "render_size", "post", "post_strength",
                                     "content"))
        except OptionError as exc:
            raise RequestError(str(exc)) from None
        if not opts["post"]:
            del opts["post"], opts["post_strength"]
        return opts.pop("model"), opts

    @staticmethod
    def _control(colorizer, model: str, arrays: dict, options: dict, size: tuple[int, int],
                 opts: dict, warnings: list[str]) -> None:
        """Hints, reference / palette and confidence options into ``opts``; what the model cannot
        use becomes a warning line instead."""
        from core.reference import ReferenceError, histogram_from_pixels

        hints = _hints(arrays, options, size)
        if hints is None or hints.count == 0:
            pass  # no hint layer, or an empty (fully transparent) one: no hints
        elif getattr(colorizer, "accepts_hints", False):
            opts["hints"] = hints
        else:
            warnings.append(f"model {model!r} does not take colour hints; the hint layer was ignored")
        classification = colorizer.model.output == "logits"
        try:
            steering = checked(options, ("palette", "reference_strength"))
        except OptionError as exc:
            raise RequestError(str(exc)) from None
        palette = None if steering["palette"] == NO_PALETTE else steering["palette"]
        confidence = options.get("confidence", False)
        if not isinstance(confidence, bool):
            raise RequestError(f"confidence must be true or false, got {confidence!r}")
        if "reference" in arrays or palette is not None:
            if not classification:
                warnings.append(f"model {model!r} is a regression model: a reference or palette cannot steer it; "
                                f"it was ignored")
            elif "reference" in arrays:
                try:
                    opts["reference"] = histogram_from_pixels(_pixels_3d(*arrays["reference"]))
                except ReferenceError as exc:
                    raise RequestError(f"reference: {exc}") from None
            else:
                opts["reference"] = palette
            if "reference" in opts:
                opts["reference_strength"] = steering["reference_strength"]
        if confidence:
            if classification:
                opts["confidence"] = True
            else:
                warnings.append(f"model {model!r} is a regression model: it has no confidence map")

    def _colorize(self, header: dict, payload: bytearray) -> Reply:
        arrays = wire.split_arrays(header, payload)
        if "pixels" not in arrays:
            raise RequestError("the request has no 'pixels' array")
        pixels = _pixels_3d(*arrays["pixels"])
        model, opts = self._options(header)
        colorizer = self.colorizer(model)
        warnings: list[str] = []
        self._control(colorizer, model, arrays, header.get("options") or {}, pixels.shape[:2], opts, warnings)
        started = time.perf_counter()
        result = colorizer.colorize_array(pixels, **opts)
        specs, parts = [], []
        if opts.get("confidence"):
            from core.confidence import confidence_to_gray8

            result, confidence = result
            spec, data = from_array("confidence", confidence_to_gray8(confidence))
            specs.append(spec)
            parts.append(data)
        spec, data = from_array("pixels", result)
        used = {"hints": "hints" in opts, "reference": "reference" in opts, "confidence": bool(opts.get("confidence")),
                "content": (getattr(colorizer, "last_content", None) or [opts["content"]])[0]}
        reply = {"ok": True, "arrays": [spec, *specs],
                 "timing": {"engine_s": time.perf_counter() - started, "threads": colorizer.last_threads},
                 "used": used}
        if warnings:
            reply["warnings"] = warnings
        record = provenance_reply(colorizer, opts, header.get("options") or {},
                                  content=(colorizer.last_content or [None])[0])
        if record is not None:
            reply["provenance"] = record
        return reply, (data, *parts)

    def _colorize_sequence(self, header: dict, payload: bytearray) -> Iterator[Reply]:
        arrays = wire.split_arrays(header, payload)
        count = len(arrays)
        names = [f"frame{i}" for i in range(count)]
        if count == 0 or sorted(arrays) != sorted(names):
            raise RequestError("a sequence request carries arrays frame0 .. frameN-1")
        frames = [_pixels_3d(*arrays[name]) for name in names]
        if len({f.dtype for f in frames}) != 1:
            raise RequestError("all frames of a sequence must have the same precision")
        model, opts = self._options(header)
        try:
            temporal = checked(header.get("options") or {}, ("temporal",))["temporal"]
        except OptionError as exc:
            raise RequestError(str(exc)) from None
        from core.video.temporal import colorize_sequence

        colorizer = self.colorizer(model)
        record = provenance_reply(colorizer, opts, header.get("options") or {}, temporal=temporal)
        temperature = opts.pop("temperature")
        for index, result in enumerate(colorize_sequence(iter(frames), colorizer, temperature=temperature,
                                                         temporal=temporal, **opts)):
            spec, data = from_array("pixels", result)
            reply = {"ok": True, "index": index, "of": count, "arrays": [spec]}
            if index == 0 and record is not None:
                reply["provenance"] = record
            yield reply, (data,)
