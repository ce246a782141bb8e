#!/usr/bin/env python3
"""Tinct for GIMP 3: automatic colorization of black-and-white photos and film frames.

Procedures:

- ``plug-in-tinct-colorize`` (Filters > Colors > Colorize (Tinct)...): colorizes the selected
  layer into a new layer above it, named after the model and temperature, whose lightness is
  the source's; the source is left untouched. One undo step.
  With a hint layer (chosen, or the layer named ``Tinct hints``) its opaque pixels are colour
  hints; a reference layer, image file or named palette steers the palette; optionally the
  confidence map comes as a hidden layer ``Tinct confidence`` above the result.
- ``plug-in-tinct-add-hint-layer`` (Filters > Colors > Add Tinct Hint Layer): adds an empty,
  transparent layer ``Tinct hints`` above the selected layer and selects it, to paint hints on.
- ``plug-in-tinct-colorize-animation`` (Filters > Animation > Colorize Animation (Tinct)...):
  colorizes every top-level layer as the frames of an animation (bottom layer = first frame)
  with temporal consistency, into a new image with the same layer stack.

GIMP starts this file once, at its own start, as the extension ``plug-in-tinct-extension``, which
installs the procedures above and answers their calls in the same process until GIMP quits, so a
call does not pay for a new Python process. The pixels go, in the image's own precision, to
Tinct's engine worker (the project's virtual environment, see ``tinct_client.py``), which keeps
the model loaded between calls.
Set ``TINCT_PROFILE`` to a file path to have per-stage timings appended to it as JSON lines.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tinct_client  # noqa: E402
import tinct_shared  # noqa: E402
from tinct_dialog import ANIMATION_OPTIONS, COLORIZE_OPTIONS, build_dialog  # noqa: E402

PROC_COLORIZE = "plug-in-tinct-colorize"
PROC_ANIMATION = "plug-in-tinct-colorize-animation"
PROC_HINTS = "plug-in-tinct-add-hint-layer"
PROCEDURES = (PROC_COLORIZE, PROC_HINTS, PROC_ANIMATION)
PROC_EXTENSION = "plug-in-tinct-extension"  # the one real procedure: it provides PROCEDURES
PLUGIN_DIR = Path(__file__).resolve().parent
BLEND_MODES = {"normal": Gimp.LayerMode.NORMAL, "lch-color": Gimp.LayerMode.LCH_COLOR}
ENGINE_OPTIONS = ("temperature", "render_size", "post", "post_strength", "content", "provenance")  # to the worker
CONTROL_OPTIONS = ("palette", "reference_strength")  # also sent to the worker by the colorize procedure
RESULT_PARASITE = "tinct-result"  # on each result (and confidence) layer: JSON {"source": tattoo, "settings": {...}}
CONFIDENCE_LAYER_NAME = "Tinct confidence"
REFERENCE_MAX_SIDE = 256  # a reference is read at most this large: its colour histogram is the same to within noise


options = tinct_shared.load("tinct_options")  # core/options.py
wire = tinct_shared.load("tinct_wire")  # core/worker/wire.py
hint_regions = tinct_shared.load("tinct_hint_regions")  # core/hint_regions.py
OPTIONS = options.OPTIONS
HINT_LAYER_NAME = options.HINT_LAYER_NAME


def model_nick(name: str) -> str:
    """GIMP choice identifiers are lowercase words with dashes; model names need not be."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def _choice(items) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(items):
        choice.add(nick, index, label, "")
    return choice


def _add_option(procedure: Gimp.Procedure, name: str) -> None:
    """Declare ``OPTIONS[name]`` as a procedure argument (same default, range and choices)."""
    option, flags = OPTIONS[name], GObject.ParamFlags.READWRITE
    if option.kind == "float":
        procedure.add_double_argument(option.gimp_name, option.label, option.tooltip, option.minimum,
                                      option.maximum, option.default, flags)
    elif option.kind == "int":
        procedure.add_int_argument(option.gimp_name, option.label, option.tooltip, option.minimum,
                                   option.maximum, option.default, flags)
    elif option.kind == "choice":
        procedure.add_choice_argument(option.gimp_name, option.label, option.tooltip,
                                      _choice((c.value, c.label) for c in option.choices), option.default, flags)
    elif option.kind == "steps":  # one step at a time in the dialog, or none
        steps = (options.NO_POST, *option.choices)
        procedure.add_choice_argument(option.gimp_name, option.label, option.tooltip,
                                      _choice((c.value, c.label) for c in steps), options.NO_POST.value, flags)
    elif option.kind == "bool":
        procedure.add_boolean_argument(option.gimp_name, option.label, option.tooltip, option.default, flags)
    elif option.kind == "layer":
        procedure.add_layer_argument(option.gimp_name, option.label, option.tooltip, True, flags)
    elif option.kind == "file":
        procedure.add_file_argument(option.gimp_name, option.label, option.tooltip, Gimp.FileChooserAction.OPEN,
                                    True, None, flags)
    else:
        raise ValueError(f"option {name} of kind {option.kind} has no GIMP argument")


def model_menu(config: tinct_client.EngineConfig) -> list[tuple[str, str, str]]:
    """(choice id, label, model name) for the model menu: installed models, then the others."""
    items = [(model_nick(m), m, m) for m in config.models]
    for name in config.more_models:
        if name not in config.models:
            items.append((model_nick(name), f"{name} (not installed: download it first)", name))
    return items


class PlugInFailure(Exception):
    """A failure to report to the user in plain words (shown once, prefixed with "Tinct: ")."""


def _babl_type(image: Gimp.Image) -> tuple[str, str]:
    """(babl component type, wire dtype) for reading and writing in the image's precision."""
    name = image.get_precision().value_name
    if "_U8_" in name:
        return "u8", "u8"
    if "_U16_" in name:
        return "u16", "u16"
    return "float", "f32"


def _read(drawable: Gimp.Drawable, rect: Gegl.Rectangle, fmt: str) -> bytes:
    return drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)


def _read_hints(hint: Gimp.Layer, x0: int, y0: int, width: int, height: int, babl: str, dtype: str
                ) -> tuple[list[list[int]], tuple[dict, bytes] | None]:
    """The painted part of ``hint`` over a ``width`` x ``height`` photo whose origin is ``(x0, y0)``
    in the hint layer's pixels: (its regions, the ``hint_pixels`` array or None when nothing is
    painted). A few dabs on a 12 MP layer are then a few MB on the wire and in the engine, not
    48 MB (``core/hint_regions.py``). The layer is read once, whole: reading only its alpha
    ("A u8") and then the regions measured slower in GIMP 3.0.4 than one RGBA read."""
    sample = wire.DTYPE_SIZES[dtype]
    rgba = _read(hint, Gegl.Rectangle.new(x0, y0, width, height), f"R'G'B'A {babl}")
    regions = hint_regions.painted_regions(hint_regions.alpha_of_rgba(rgba, sample), width, height)
    if not regions:
        return [], None
    data = hint_regions.region_bytes(rgba, width, regions, 4 * sample)
    spec = wire.array_spec("hint_pixels", dtype, (hint_regions.region_pixels(regions), 4))
    return [list(region) for region in regions], (spec, data)


def _check_layer(image: Gimp.Image, drawables: list) -> Gimp.Layer:
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PlugInFailure("an indexed image cannot be colorized: use Image > Mode > RGB first.")
    if len(drawables) != 1:
        raise PlugInFailure("Select exactly one layer to colorize.")
    layer = drawables[0]
    if not isinstance(layer, Gimp.Layer) or isinstance(layer, Gimp.LayerMask):
        raise PlugInFailure("Select a layer (not a channel or a mask) to colorize.")
    if layer.is_group():
        raise PlugInFailure(f"'{layer.get_name()}' is a layer group; select one of its layers to colorize it.")
    return layer


def _layers(container) -> list:
    """Every layer of ``container`` (an image or a layer group), depth first, top first."""
    children = container.get_layers() if isinstance(container, Gimp.Image) else container.get_children()
    found = []
    for layer in children:
        found.append(layer)
        if layer.is_group():
            found.extend(_layers(layer))
    return found


def _siblings(image: Gimp.Image, layer: Gimp.Layer) -> list:
    parent = layer.get_parent()
    return list(parent.get_children()) if parent is not None else list(image.get_layers())


def _named_layer(image: Gimp.Image, name: str):
    """The layer called ``name`` (GIMP keeps layer names unique within an image), or None."""
    return next((layer for layer in _layers(image) if layer.get_name() == name), None)


def _photo_and_hints(image: Gimp.Image, drawables: list, config: Gimp.ProcedureConfig):
    """(the layer to colorize, its hint layer or None) for the colorize procedure.

    The hint layer is the one chosen, else the layer named ``Tinct hints``; none when hints are
    off. When the selected layer is the hint layer itself (the user just painted on it), the
    layer under it is the photo."""
    source = _check_layer(image, drawables)
    if not config.get_property("use-hints"):
        return source, None
    hint = config.get_property("hint-layer") or _named_layer(image, HINT_LAYER_NAME)
    if hint is not None and hint.get_id() == source.get_id():
        siblings = _siblings(image, source)
        below = siblings.index(source) + 1
        if below >= len(siblings) or siblings[below].is_group():
            raise PlugInFailure(f"'{source.get_name()}' is the hint layer; select the photo layer to colorize.")
        source = siblings[below]
    if hint is not None and not hint.has_alpha():
        raise PlugInFailure(f"the hint layer '{hint.get_name()}' has no alpha channel, so every pixel would be a "
                            f"hint: add one (Layer > Transparency > Add Alpha Channel) and paint only the hints.")
    return source, hint


def _read_small(drawable: Gimp.Drawable, max_side: int = REFERENCE_MAX_SIDE) -> tuple[dict, bytes]:
    """``drawable`` as 8-bit RGBA, scaled down (by GEGL) so that its longer side is at most ``max_side``."""
    width, height = drawable.get_width(), drawable.get_height()
    scale = min(1.0, max_side / max(width, height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), scale, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)
    return wire.array_spec("reference", "u8", (h, w, 4)), data


def _reference(config: Gimp.ProcedureConfig, palette: str) -> tuple[tuple[dict, bytes] | None, str | None]:
    """(the reference array or None, a short name for the result layer) from the reference layer or
    image file; a named palette travels as an option. At most one of the three may be given."""
    layer, file = config.get_property("reference-layer"), config.get_property("reference-file")
    given = [what for what, value in (("a reference layer", layer), ("a reference image file", file),
                                      (f"the palette {palette}", palette != options.NO_PALETTE)) if value]
    if len(given) > 1:
        raise PlugInFailure(f"choose one reference, not {' and '.join(given)}.")
    if layer is not None:
        if layer.get_image().get_base_type() != Gimp.ImageBaseType.RGB:
            raise PlugInFailure(f"the reference layer '{layer.get_name()}' has no colours: its image is grayscale. "
                                f"Convert the image first (Image > Mode > RGB) and add the reference photo again, or "
                                f"choose it as a reference image file.")
        return _read_small(layer), layer.get_name()
    if file is None:
        return None, palette if palette != options.NO_PALETTE else None
    path = file.get_path() or file.get_uri()
    try:
        reference = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, file)
    except GLib.Error as exc:
        raise PlugInFailure(f"could not open the reference image {path}: {exc.message}") from None
    if reference is None:
        raise PlugInFailure(f"could not open the reference image {path}")
    try:
        if reference.get_base_type() != Gimp.ImageBaseType.RGB:
            reference.convert_rgb()
        merged = reference.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        return _read_small(merged), Path(path).name
    finally:
        reference.delete()


PROVENANCE_PARASITE = "tinct-provenance"


def attach_provenance(image: Gimp.Image, layers: list, provenance: dict | None) -> None:
    """Give ``layers`` the engine's provenance record as a persistent parasite (JSON), and merge
    its XMP packet into the image's metadata, so that GIMP's own export (with "Save XMP data")
    writes it into the file. ``provenance`` is the reply's ``{"record", "xmp"}`` or None.

    The image's own description stays in GIMP's comment, which the export writes as the EXIF
    ImageDescription; XMP dc:description says that the image was colorized (GIMP 3.0 would split
    a merged description at its commas)."""
    if not provenance:
        return
    data = json.dumps(provenance["record"], separators=(",", ":")).encode("utf-8")
    for layer in layers:
        layer.attach_parasite(Gimp.Parasite.new(PROVENANCE_PARASITE,
                                                Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE, data))
    metadata = image.get_metadata() or Gimp.Metadata.new()
    if metadata.set_from_xmp(provenance["xmp"].encode("utf-8")):
        image.set_metadata(metadata)


class TinctColorize(Gimp.PlugIn):
    """The Tinct plug-in: an extension GIMP starts once, which declares the procedures and runs them."""

    def do_query_procedures(self) -> list[str]:
        return [PROC_EXTENSION]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PERSISTENT, self.run_extension, None)
        procedure.set_documentation("Keeps Tinct's procedures ready in one process",
                                    "Started by GIMP at its start; provides " + ", ".join(PROCEDURES) + ".", name)
        procedure.set_attribution("Tinct", "Tinct", "2025")
        return procedure

    def run_extension(self, procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, data) -> None:
        """Install Tinct's procedures and answer their calls, in this process, until GIMP quits.

        A plug-in procedure would start a new Python process for every call (0.15-0.35 s of the call,
        before any pixel moves); an extension with no arguments is started once, with GIMP."""
        for name in PROCEDURES:
            self.add_temp_procedure(self._procedure(name))
        procedure.persistent_ready()
        while True:
            self.persistent_process(0)

    def _procedure(self, name: str) -> Gimp.Procedure:
        if name == PROC_HINTS:
            return self._hint_procedure(name)
        try:
            menu = model_menu(tinct_client.load_config(PLUGIN_DIR))
        except tinct_client.EngineError:
            menu = [("default", "default", "default")]
        if name == PROC_COLORIZE:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.TEMPORARY, self.run_colorize, None)
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            procedure.set_menu_label("Colori_ze (Tinct)...")
            procedure.add_menu_path("<Image>/Filters/Colors")
            procedure.set_documentation(
                "Colorize a black-and-white layer automatically",
                "Predicts the colours of the selected layer with a Tinct model and adds them as a new layer "
                "above it, keeping the layer's own lightness. The original layer is not changed.", name)
        else:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.TEMPORARY, self.run_animation, None)
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.DRAWABLES
                                           | Gimp.ProcedureSensitivityMask.NO_DRAWABLES)
            procedure.set_menu_label("Colorize Animation (Tinct)...")
            procedure.add_menu_path("<Image>/Filters/Animation")
            procedure.set_documentation(
                "Colorize every layer as the frames of an animation",
                "Colorizes all top-level layers, bottom layer first, with temporally consistent colours, "
                "into a new image with the same layers.", name)
        procedure.set_image_types("RGB*, GRAY*")  # GIMP greys the menu item out for indexed images
        procedure.set_attribution("Tinct", "Tinct", "2025")
        model = OPTIONS["model"]
        procedure.add_choice_argument("model", model.label, model.tooltip,
                                      _choice((nick, label) for nick, label, _ in menu), menu[0][0],
                                      GObject.ParamFlags.READWRITE)
        for option in (COLORIZE_OPTIONS if name == PROC_COLORIZE else ANIMATION_OPTIONS):
            _add_option(procedure, option)
        if name == PROC_ANIMATION:
            procedure.add_image_return_value("new-image", "New image", "The colorized animation", False,
                                              GObject.ParamFlags.READWRITE)
        return procedure

    def _hint_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.TEMPORARY, self.run_add_hints, None)
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Add Tinct _Hint Layer")
        procedure.add_menu_path("<Image>/Filters/Colors")
        procedure.set_documentation(
            "Add a layer to paint colour hints on for Colorize (Tinct)",
            f"Adds an empty, transparent layer '{HINT_LAYER_NAME}' above the selected layer and selects it. Paint "
            f"the colours you know on it (a dab is enough: its colour gives the hue and saturation, the photo keeps "
            f"its lightness), then run Colorize (Tinct), which uses it. If the image has that layer already, it is "
            f"selected instead.", name)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_attribution("Tinct", "Tinct", "2025")
        procedure.add_layer_return_value("hint-layer", "Hint layer", "The hint layer", False,
                                         GObject.ParamFlags.READWRITE)
        return procedure

    # -- shared -------------------------------------------------------------------------------

    @staticmethod
    def _interactive_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str,
                            names: tuple[str, ...]) -> bool:
        from gi.repository import GimpUi

        GimpUi.init("tinct_colorize")
        dialog = build_dialog(procedure, config, title, names, OPTIONS)
        accepted = dialog.run()
        dialog.destroy()
        return accepted

    @staticmethod
    def _settings(config: Gimp.ProcedureConfig, engine: tinct_client.EngineConfig, names: tuple[str, ...]) -> dict:
        """The request options from the procedure's arguments, checked against the option table."""
        menu = {nick: model for nick, _, model in model_menu(engine)}
        nick = config.get_property("model")
        model = menu.get(nick, nick)
        if model not in engine.models and model in engine.more_models:
            raise PlugInFailure(f"the model {model} is not installed. Download it with: {engine.command} weights "
                                f"fetch {model} (then restart GIMP)")
        values = {"model": model}
        for name in names:
            value = config.get_property(OPTIONS[name].gimp_name)
            values[name] = () if name == "post" and value == options.NO_POST.value else (
                [value] if name == "post" else value)
        try:
            settings = options.checked(values, ("model", *names))
        except options.OptionError as exc:
            raise PlugInFailure(str(exc)) from None
        settings["post"] = list(settings.get("post", ()))
        return settings

    @staticmethod
    def _failure(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
        # GIMP shows a returned error to the user itself (once); no separate message.
        error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), f"Tinct: {message}", 0)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)

    def _guarded(self, procedure: Gimp.Procedure, work):
        """Run ``work()``; failures a user should read become an error return value (else ``None``)."""
        try:
            return work(), None
        except (PlugInFailure, tinct_client.EngineError, wire.ProtocolError) as exc:
            return None, self._failure(procedure, str(exc))
        except OSError as exc:
            return None, self._failure(procedure, f"could not reach the engine: {exc}")
        finally:
            Gimp.progress_end()

    @staticmethod
    def _client(engine: tinct_client.EngineConfig) -> tinct_client.WorkerClient:
        def waiting() -> None:
            Gimp.progress_set_text("Tinct: starting the engine and loading the model...")
            Gimp.progress_pulse()

        return tinct_client.WorkerClient(engine, wait=waiting)

    @staticmethod
    def _profile(stages: dict) -> None:
        path = os.environ.get("TINCT_PROFILE")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**stages, "plugin_pid": os.getpid()}) + "\n")

    # -- plug-in-tinct-colorize -----------------------------------------------------------------

    def run_colorize(self, procedure, run_mode, image, drawables, config, data):
        if run_mode == Gimp.RunMode.INTERACTIVE and not self._interactive_dialog(procedure, config,
                                                                                 "Colorize (Tinct)", COLORIZE_OPTIONS):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        _, failed = self._guarded(procedure, lambda: self._colorize_layer(image, list(drawables), config))
        if failed is not None:
            return failed
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def _colorize_layer(self, image: Gimp.Image, drawables: list, config: Gimp.ProcedureConfig) -> None:
        entered = time.perf_counter()
        source, hint = _photo_and_hints(image, drawables, config)
        engine = tinct_client.load_config(PLUGIN_DIR)
        settings = self._settings(config, engine, (*ENGINE_OPTIONS, *CONTROL_OPTIONS))
        settings["confidence"] = bool(config.get_property("confidence-layer"))
        reference, reference_name = _reference(config, settings["palette"])
        client = self._client(engine)
        Gimp.progress_init(f"Tinct: colorizing '{source.get_name()}'")
        started = time.perf_counter()
        stages = {"setup_s": started - entered}

        Gimp.progress_set_text("Tinct: reading the layer...")
        babl, dtype = _babl_type(image)
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        alpha = source.has_alpha()
        channels = (1 if gray else 3) + (1 if alpha else 0)
        in_fmt = ("Y'" if gray else "R'G'B'") + ("A" if alpha else "") + f" {babl}"
        width, height = source.get_width(), source.get_height()
        _, off_x, off_y = source.get_offsets()
        pixels = _read(source, Gegl.Rectangle.new(0, 0, width, height), in_fmt)
        arrays = [(wire.array_spec("pixels", dtype, (height, width, channels)), pixels)]
        request_options = dict(settings)
        if hint is not None:  # the part of the hint layer over the photo; transparent (no hint) elsewhere
            _, hint_x, hint_y = hint.get_offsets()
            regions, painted = _read_hints(hint, off_x - hint_x, off_y - hint_y, width, height, babl, dtype)
            if painted is not None:
                arrays.append(painted)
                request_options["hint_regions"] = regions
        if reference is not None:
            arrays.append(reference)
        stages["read_s"] = time.perf_counter() - started
        Gimp.progress_update(0.1)

        started = time.perf_counter()
        Gimp.progress_set_text(f"Tinct: colorizing {width}x{height} pixels with {settings['model']}...")
        reply, payload = client.request("colorize", request_options, arrays)
        stages["request_s"] = time.perf_counter() - started
        stages["engine_s"] = float(reply.get("timing", {}).get("engine_s", 0.0))
        stages["engine_threads"] = reply.get("timing", {}).get("threads")
        stages["transfer_s"] = stages["request_s"] - stages["engine_s"]
        warnings = reply.get("warnings", [])
        if warnings:
            Gimp.message("Tinct: " + " ".join(warnings))
        returned = wire.split_arrays(reply, payload)
        out_spec, out_data = returned.get("pixels", (reply["arrays"][0], payload))
        out_channels = out_spec["shape"][2] if len(out_spec["shape"]) == 3 else 1
        if out_spec["shape"][:2] != [height, width] or out_spec["dtype"] != dtype or out_channels not in (3, 4):
            raise PlugInFailure(f"the engine returned an unexpected result {out_spec}")
        confidence = returned.get("confidence")
        if confidence is not None and (confidence[0]["shape"] != [height, width] or confidence[0]["dtype"] != "u8"):
            raise PlugInFailure(f"the engine returned an unexpected confidence map {confidence[0]}")
        used = reply.get("used", {})  # what steered this result (a model may not take hints or a reference)
        settings.update(hints=bool(used.get("hints")), reference=reference_name if used.get("reference") else None,
                        content_used=used.get("content"))
        Gimp.progress_update(0.9)

        started = time.perf_counter()
        Gimp.progress_set_text("Tinct: adding the colour layer...")
        image.undo_group_start()
        try:
            if gray:
                image.convert_rgb()
            layer_type = Gimp.ImageType.RGBA_IMAGE if out_channels == 4 else Gimp.ImageType.RGB_IMAGE
            layer = Gimp.Layer.new(image, result_name(settings), width, height, layer_type, 100.0,
                                   BLEND_MODES[config.get_property("blend")])
            parent = source.get_parent()
            image.insert_layer(layer, parent, _result_position(image, source, parent))
            marker = Gimp.Parasite.new(RESULT_PARASITE, Gimp.PARASITE_PERSISTENT, json.dumps(
                {"source": source.get_tattoo(), "settings": settings}).encode())
            layer.attach_parasite(marker)
            layer.set_offsets(off_x, off_y)
            out_fmt = ("R'G'B'A" if out_channels == 4 else "R'G'B'") + f" {babl}"
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, width, height), out_fmt, bytes(out_data))
            buffer.flush()
            layer.update(0, 0, width, height)
            if config.get_property("selection-mask") and not Gimp.Selection.is_empty(image):
                layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
            attach_provenance(image, [layer], reply.get("provenance"))
            if confidence is not None:  # hidden, right above the result (the next result goes above both)
                shown = Gimp.Layer.new(image, CONFIDENCE_LAYER_NAME, width, height, Gimp.ImageType.RGB_IMAGE, 100.0,
                                       Gimp.LayerMode.NORMAL)
                image.insert_layer(shown, parent, image.get_item_position(layer))
                shown.attach_parasite(marker)
                shown.set_offsets(off_x, off_y)
                shown.set_visible(False)
                buffer = shown.get_buffer()
                buffer.set(Gegl.Rectangle.new(0, 0, width, height), "Y' u8", bytes(confidence[1]))
                buffer.flush()
        finally:
            image.undo_group_end()
        stages["write_s"] = time.perf_counter() - started
        Gimp.progress_update(1.0)
        Gimp.displays_flush()
        stages["plugin_s"] = time.perf_counter() - entered
        self._profile({"procedure": PROC_COLORIZE, "width": width, "height": height, **stages})

    # -- plug-in-tinct-add-hint-layer -------------------------------------------------------------

    def run_add_hints(self, procedure, run_mode, image, drawables, config, data):
        layer, failed = self._guarded(procedure, lambda: self._add_hint_layer(image, list(drawables)))
        if failed is not None:
            return failed
        Gimp.displays_flush()
        values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
        values.remove(1)
        values.insert(1, GObject.Value(Gimp.Layer, layer))
        return values

    @staticmethod
    def _add_hint_layer(image: Gimp.Image, drawables: list) -> Gimp.Layer:
        """The image's hint layer, selected: an existing one, else a new transparent layer the size and
        place of the selected layer, right above it (a grayscale image becomes RGB, so hints have colour)."""
        existing = _named_layer(image, HINT_LAYER_NAME)
        if existing is not None:
            image.set_selected_layers([existing])
            return existing
        source = _check_layer(image, drawables)
        image.undo_group_start()
        try:
            if image.get_base_type() == Gimp.ImageBaseType.GRAY:
                image.convert_rgb()
            layer = Gimp.Layer.new(image, HINT_LAYER_NAME, source.get_width(), source.get_height(),
                                   Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
            image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
            _, off_x, off_y = source.get_offsets()
            layer.set_offsets(off_x, off_y)
            layer.fill(Gimp.FillType.TRANSPARENT)
            image.set_selected_layers([layer])
        finally:
            image.undo_group_end()
        return layer

    # -- plug-in-tinct-colorize-animation ---------------------------------------------------------

    def run_animation(self, procedure, run_mode, image, drawables, config, data):
        if run_mode == Gimp.RunMode.INTERACTIVE and not self._interactive_dialog(
                procedure, config, "Colorize Animation (Tinct)", ANIMATION_OPTIONS):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        new_image, failed = self._guarded(procedure, lambda: self._colorize_frames(image, config))
        if failed is not None:
            return failed
        if run_mode == Gimp.RunMode.INTERACTIVE:
            Gimp.Display.new(new_image)
        values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
        values.remove(1)
        values.insert(1, GObject.Value(Gimp.Image, new_image))
        return values

    def _colorize_frames(self, image: Gimp.Image, config: Gimp.ProcedureConfig) -> Gimp.Image:
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
            raise PlugInFailure("an indexed image cannot be colorized: use Image > Mode > RGB first.")
        layers = list(image.get_layers())
        if not layers:
            raise PlugInFailure("the image has no layers to colorize")
        groups = [layer.get_name() for layer in layers if layer.is_group()]
        if groups:
            raise PlugInFailure(f"layer groups cannot be animation frames ({', '.join(groups)}); merge them first")
        frames = list(reversed(layers))  # GIMP's convention: the bottom layer is the first frame
        engine = tinct_client.load_config(PLUGIN_DIR)
        settings = self._settings(config, engine, (*ENGINE_OPTIONS, "temporal"))
        client = self._client(engine)
        Gimp.progress_init(f"Tinct: colorizing {len(frames)} frames")
        Gimp.progress_set_text("Tinct: reading the frames...")
        babl, dtype = _babl_type(image)
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        arrays, geometry = [], []
        for index, layer in enumerate(frames):
            # Every frame travels with alpha so all frames share one channel layout.
            fmt = ("Y'A" if gray else "R'G'B'A") + f" {babl}"
            width, height = layer.get_width(), layer.get_height()
            _, off_x, off_y = layer.get_offsets()
            data = _read(layer, Gegl.Rectangle.new(0, 0, width, height), fmt)
            arrays.append((wire.array_spec(f"frame{index}", dtype, (height, width, 2 if gray else 4)), data))
            geometry.append((layer, width, height, off_x, off_y))
        Gimp.progress_update(0.05)

        new_image = Gimp.Image.new_with_precision(image.get_width(), image.get_height(), Gimp.ImageBaseType.RGB,
                                                  image.get_precision())
        new_image.undo_disable()
        provenance = None
        try:
            Gimp.progress_set_text(f"Tinct: colorizing frame 1 of {len(frames)}...")
            for reply, payload in client.stream("colorize_sequence", settings, arrays, replies=len(frames)):
                provenance = reply.get("provenance") or provenance
                index = int(reply["index"])
                source, width, height, off_x, off_y = geometry[index]
                layer = Gimp.Layer.new(new_image, source.get_name(), width, height, Gimp.ImageType.RGBA_IMAGE,
                                       source.get_opacity(), Gimp.LayerMode.NORMAL)
                new_image.insert_layer(layer, None, 0)
                layer.set_offsets(off_x, off_y)
                layer.set_visible(source.get_visible())
                buffer = layer.get_buffer()
                buffer.set(Gegl.Rectangle.new(0, 0, width, height), f"R'G'B'A {babl}", bytes(payload))
                buffer.flush()
                Gimp.progress_update(0.05 + 0.95 * (index + 1) / len(frames))
                if index + 1 < len(frames):
                    Gimp.progress_set_text(f"Tinct: colorizing frame {index + 2} of {len(frames)}...")
            attach_provenance(new_image, list(new_image.get_layers()), provenance)
        except BaseException:
            new_image.delete()
            raise
        new_image.undo_enable()
        return new_image


def result_name(settings: dict) -> str:
    """A result layer's name: the model and every setting that sets it apart from the defaults."""
    parts = [f"Tinct {settings['model']}", f"T={settings['temperature']:.2f}"]
    if settings.get("post"):
        parts.append(f"{'+'.join(settings['post'])} {settings['post_strength']:g}")
    if settings["render_size"] != OPTIONS["render_size"].default:
        parts.append(f"{settings['render_size']}px")
    if settings.get("content_used") == "document":  # chosen, or detected by "auto"
        parts.append("document")
    if settings.get("hints"):
        parts.append("hints")
    if settings.get("reference"):
        strength = settings.get("reference_strength", options.REFERENCE_STRENGTH)
        parts.append(f"ref {settings['reference']}" + (f" {strength:g}" if strength != options.REFERENCE_STRENGTH
                                                       else ""))
    return " ".join(parts)


def _result_position(image: Gimp.Image, source: Gimp.Layer, parent) -> int:
    """Where a new result goes: above the source and above the earlier Tinct results of that source."""
    siblings = list(parent.get_children()) if parent is not None else list(image.get_layers())
    position = image.get_item_position(source)
    for index, layer in enumerate(siblings[:position]):
        parasite = layer.get_parasite(RESULT_PARASITE)
        if parasite is not None:
            try:
                origin = json.loads(bytes(parasite.get_data()).decode()).get("source")
            except (ValueError, UnicodeDecodeError):
                continue
            if origin == source.get_tattoo():
                return index
    return position


Gimp.main(TinctColorize.__gtype__, sys.argv)
