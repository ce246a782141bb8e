"""Provenance: the record of how a Tinct output was made, and its XMP form.

A colorized historical photo is easily taken for a colour original. Every output Tinct writes
carries a :class:`Record` (Tinct version, model and the SHA-256 of its weights file, the settings,
whether hints / a reference photo / a mask were used, the time), serialised as XMP with

- ``xmp:CreatorTool`` ``"Tinct VERSION"``,
- ``dc:description`` :data:`DESCRIPTION` (after the source's own description, when it had one),
- ``Iptc4xmpExt:DigitalSourceType`` :data:`DIGITAL_SOURCE_TYPE` (IPTC's term for a photo
  combined with the output of a trained model, read by search engines and archives),
- the ``tinct:`` namespace :data:`NAMESPACE` with one property per field of the record.

XMP is written and read with python-exiv2 (the exiv2 library GIMP, darktable and digiKam use),
imported only when a packet is made or parsed. Everything else here is pure.
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from . import __version__

TOOL = "Tinct"
NAMESPACE = "urn:tinct:provenance:1.0/"
PREFIX = "tinct"
DESCRIPTION = "Colorized by Tinct from a black-and-white original"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
# PNG text keyword and GIMP parasite name under which the record travels as JSON.
PARASITE = "tinct-provenance"

# Record field -> tinct: property name (the XMP form).
_PROPERTIES = {
    "version": "Version",
    "model": "Model",
    "weights_sha256": "WeightsSHA256",
    "temperature": "Temperature",
    "decode": "Decode",
    "render_size": "RenderSize",
    "post": "PostSteps",
    "post_strength": "PostStrength",
    "hints": "Hints",
    "reference": "Reference",
    "mask": "Mask",
    "mask_colorize": "MaskColorize",
    "content": "Content",
    "content_choice": "ContentChoice",
    "temporal": "Temporal",
    "time": "Time",
}


@dataclass(frozen=True)
class Record:
    """How one output was made.

    Attributes:
        model: the model's catalog name (``tinct-small``), or the class name of a network given
            as a module.
        weights_sha256: hex SHA-256 of the weights file the model was loaded from; None for a
            network given as a module.
        temperature: annealed-mean temperature T.
        decode: ``annealed``, ``mode`` or ``mean``.
        render_size: the network input's longer side in pixels.
        post: post-processing steps in order (empty: none); ``post_strength`` in [0, 1].
        hints, reference, mask, mask_colorize: whether colour hints, a reference photo or a mask
            were used, and whether the mask limited the colorization itself.
        content: the decode profile the image got, ``photo`` or ``document`` (``core.content``); None
            where it is not known (a record for a whole film, a record written before it existed).
        content_choice: what was asked: ``auto`` (the detector chose ``content``), ``photo`` or ``document``.
        temporal: for video, whether frames were smoothed over time; None for stills.
        time: when the output was made, ISO 8601 UTC (``2026-12-02T03:04:05Z``).
        version: the Tinct version.
        source_description: the input's own description, kept in front of :data:`DESCRIPTION`.
    """

    model: str
    weights_sha256: str | None
    temperature: float
    decode: str
    render_size: int
    post: tuple[str, ...] = ()
    post_strength: float = 1.0
    hints: bool = False
    reference: bool = False
    mask: bool = False
    mask_colorize: bool = False
    content: str | None = None
    content_choice: str | None = None
    temporal: bool | None = None
    time: str = field(default_factory=lambda: utc_now())
    version: str = __version__
    source_description: str | None = None

    @property
    def creator_tool(self) -> str:
        """``"Tinct VERSION"``."""
        return f"{TOOL} {self.version}"

    @property
    def description(self) -> str:
        """The description an output carries (see :func:`description_text`)."""
        return description_text(self.source_description)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``post`` as a list; ``source_description`` left out)."""
        data = asdict(self)
        data["post"] = list(self.post)
        data.pop("source_description")
        return data

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict` (keys in field order)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Record":
        """The inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            ValueError: a required field is missing or of the wrong kind.
        """
        known = {f.name for f in fields(cls)} - {"source_description"}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["post"] = tuple(str(s) for s in values.get("post") or ())
            values["temperature"] = float(values["temperature"])
            values["render_size"] = int(values["render_size"])
            values["post_strength"] = float(values.get("post_strength", 1.0))
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a Tinct provenance record ({exc})") from None

    def with_source_description(self, text: str | None) -> "Record":
        """This record for an input whose own description is ``text``."""
        return Record(**{**asdict(self), "source_description": text or None})


def utc_now() -> str:
    """The current time, ISO 8601 UTC to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def description_text(source_description: str | None) -> str:
    """:data:`DESCRIPTION`, after the source's own description when it had one (once only)."""
    source = (source_description or "").strip()
    if not source:
        return DESCRIPTION
    if DESCRIPTION in source:
        return source
    return f"{source} ({DESCRIPTION})"


def record_from_settings(settings: Mapping[str, Any], *, temporal: bool | None = None,
                         source_description: str | None = None) -> Record:
    """A record from ``Colorizer.settings(...)`` (model, weights_sha256, temperature, decode,
    render_size, post, post_strength, hints, reference, mask, mask_colorize, content_choice)."""
    data = dict(settings)
    data["temporal"] = temporal
    record = Record.from_dict(data)
    return record.with_source_description(source_description) if source_description else record


# --------------------------------------------------------------------------------------------- XMP

_EXIV2_LOCK = threading.Lock()
_exiv2_module = None


def _exiv2():
    """python-exiv2, with the tinct namespace registered and exiv2's own log silenced."""
    global _exiv2_module
    with _EXIV2_LOCK:
        if _exiv2_module is None:
            import exiv2

            exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)
            exiv2.XmpParser.initialize()
            exiv2.XmpProperties.registerNs(NAMESPACE, PREFIX)
            _exiv2_module = exiv2
    return _exiv2_module


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # XMP Boolean
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, tuple)):
        return ",".join(value) if value else "none"
    return str(value)


def to_xmp(record: Record) -> bytes:
    """The record as a complete XMP packet (UTF-8, with the ``<?xpacket?>`` wrapper).

    Fields that are None (``weights_sha256`` for an in-memory network, ``temporal`` for stills)
    are left out.
    """
    exiv2 = _exiv2()
    data = exiv2.XmpData()
    data["Xmp.xmp.CreatorTool"] = record.creator_tool
    data["Xmp.dc.description"] = exiv2.LangAltValue(record.description)
    data["Xmp.iptcExt.DigitalSourceType"] = DIGITAL_SOURCE_TYPE
    for name, prop in _PROPERTIES.items():
        value = getattr(record, name)
        if value is not None:
            data[f"Xmp.{PREFIX}.{prop}"] = _text(value)
    flags = exiv2.XmpParser.XmpFormatFlags.useCompactFormat
    with _EXIV2_LOCK:
        status, packet = exiv2.XmpParser.encode(data, flags, 1)  # 0 would mean the 2 KB default padding
    if status != 0:
        raise RuntimeError(f"exiv2 could not encode the XMP packet (status {status})")
    return packet.encode("utf-8")


def record_from_xmp_values(values: Mapping[str, str]) -> Record | None:
    """A record from XMP properties keyed ``Xmp.tinct.<Property>`` (None when there is none).

    Raises:
        ValueError: a tinct: namespace whose values do not form a record.
    """
    by_property = {prop: name for name, prop in _PROPERTIES.items()}
    data: dict[str, Any] = {}
    prefix = f"Xmp.{PREFIX}."
    for key, text in values.items():
        if key.startswith(prefix) and key[len(prefix):] in by_property:
            data[by_property[key[len(prefix):]]] = text
    if not data:
        return None
    for name in ("hints", "reference", "mask", "mask_colorize", "temporal"):
        if name in data:
            data[name] = data[name].strip().lower() == "true"
    post = data.get("post", "none")
    data["post"] = () if post in ("", "none") else tuple(p.strip() for p in post.split(","))
    data.setdefault("weights_sha256", None)
    return Record.from_dict(data)


def read_xmp_values(source: bytes | str) -> dict[str, str]:
    """All XMP properties of an image file (path) or of a packet (bytes), as ``{key: text}``.

    Language alternatives give their default text. Files without XMP give ``{}``.

    Raises:
        ValueError: the file cannot be read by exiv2 (one line).
    """
    exiv2 = _exiv2()
    try:
        with _EXIV2_LOCK:
            image = exiv2.ImageFactory.open(source)
            image.readMetadata()
            values = {}
            for datum in image.xmpData():
                value = datum.value()
                if datum.typeName() == "LangAlt":
                    text = value.toString(0) if value.count() else ""
                else:
                    text = datum.toString()
                values[datum.key()] = text
    except exiv2.Exiv2Error as exc:
        message = exc.args[-1] if exc.args and isinstance(exc.args[-1], str) else str(exc)
        message = message.split(": ", 1)[1] if isinstance(source, str) and message.startswith(source) else message
        raise ValueError(" ".join(message.split())) from None
    return values


def from_xmp(source: bytes | str) -> Record | None:
    """The record in an image file (path) or an XMP packet (bytes), or None when it has none."""
    return record_from_xmp_values(read_xmp_values(source))


# --------------------------------------------------------------------------------------------- video

def container_tags(record: Record) -> dict[str, str]:
    """Container metadata for a video (MP4/MKV): ``description`` (the sentence) and ``comment``
    (``"tinct-provenance "`` + the record's JSON). libavformat writes its own name into
    ``encoder`` whatever a caller sets, so the tool's name travels in the record."""
    return {"description": record.description, "comment": f"{PARASITE} {record.to_json()}"}


def from_container_tags(tags: Mapping[str, str]) -> Record | None:
    """The record in a video's container metadata (keys compared case-insensitively), or None."""
    for key, value in tags.items():
        if key.lower() == "comment" and value.startswith(PARASITE + " "):
            try:
                return Record.from_dict(json.loads(value[len(PARASITE) + 1:]))
            except json.JSONDecodeError:
                return None
    return None
