#!/usr/bin/env python3
"""Tinct for GIMP 3: automatic colorization of black-and-white photos and film frames.

Procedures:

- ``plug-in-tinct-colorize`` (Filters > Colors > Colorize (Tinct)...): colorizes the selected
  layer into a new layer above it, named after the model and temperature, whose lightness is
  the source's; the source is left untouched. One undo step.
- ``plug-in-tinct-colorize-animation`` (Filters > Animation > Colorize Animation (Tinct)...):
  colorizes every top-level layer as the frames of an animation (bottom layer = first frame)
  with temporal consistency, into a new image with the same layer stack.

The pixels go, in the image's own precision, to Tinct's engine worker (the project's virtual
environment, see ``tinct_client.py``), which keeps the model loaded between calls.
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
import tinct_wire  # noqa: E402

PROC_COLORIZE = "plug-in-tinct-colorize"
PROC_ANIMATION = "plug-in-tinct-colorize-animation"
PLUGIN_DIR = Path(__file__).resolve().parent
POST_CHOICES = (("none", "None"), ("segments", "Segments (uniform colour per region)"),
                ("crf", "CRF (edge-aware refinement)"), ("tv", "TV (smooth colour)"))
BLEND_MODES = {"normal": ("Normal layer", Gimp.LayerMode.NORMAL),
               "lch-color": ("LCh Color over the original", Gimp.LayerMode.LCH_COLOR)}


def model_nick(name: str) -> str:
    """GIMP choice identifiers are lowercase words with dashes; model names need not be."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"


def _choice(items: list[tuple[str, str]]) -> Gimp.Choice:
    choice = Gimp.Choice.new()
    for index, (nick, label) in enumerate(items):
        choice.add(nick, index, label, "")
    return choice


class PlugInFailure(Exception):
    """A failure to report to the user in plain words."""


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


def _check_layer(image: Gimp.Image, drawables: list) -> Gimp.Layer:
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PlugInFailure("Tinct cannot colorize an indexed image: use Image > Mode > RGB first.")
    if len(drawables) != 1:
        raise PlugInFailure("Select exactly one layer to colorize.")
    layer = drawables[0]
    if not isinstance(layer, Gimp.Layer) or isinstance(layer, Gimp.LayerMask):
        raise PlugInFailure("Select a layer (not a channel or a mask) to colorize.")
    if layer.is_group():
        raise PlugInFailure(f"'{layer.get_name()}' is a layer group; select one of its layers to colorize it.")
    return layer


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
    """The Tinct plug-in: declares both procedures and runs them."""

    def do_query_procedures(self) -> list[str]:
        return [PROC_COLORIZE, PROC_ANIMATION]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        try:
            models = tinct_client.load_config(PLUGIN_DIR).models
        except tinct_client.EngineError:
            models = ["default"]
        if name == PROC_COLORIZE:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_colorize, None)
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
            procedure.set_menu_label("Colori_ze (Tinct)...")
            procedure.add_menu_path("<Image>/Filters/Colors")
            procedure.set_documentation(
                "Colorize a black-and-white layer automatically",
                "Predicts the colours of the selected layer with a Tinct model and adds them as a new layer "
                "above it, keeping the layer's own lightness. The original layer is not changed.", name)
        else:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_animation, None)
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                           | Gimp.ProcedureSensitivityMask.DRAWABLES
                                           | Gimp.ProcedureSensitivityMask.NO_DRAWABLES)
            procedure.set_menu_label("Colorize Animation (Tinct)...")
            procedure.add_menu_path("<Image>/Filters/Animation")
            procedure.set_documentation(
                "Colorize every layer as the frames of an animation",
                "Colorizes all top-level layers, bottom layer first, with temporally consistent colours, "
                "into a new image with the same layers.", name)
        procedure.set_image_types("*")
        procedure.set_attribution("Tinct", "Tinct", "2025")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_choice_argument("model", "_Model", "Installed colorization model",
                                      _choice([(model_nick(m), m) for m in models]), model_nick(models[0]), flags)
        procedure.add_double_argument("temperature", "_Temperature",
                                      "Annealed-mean temperature: lower is more saturated (0.38 in the paper)",
                                      0.01, 1.0, 0.38, flags)
        procedure.add_int_argument("render-size", "_Render size",
                                   "Side in pixels the network sees (0: the model's default)", 0, 4096, 0, flags)
        procedure.add_choice_argument("post-process", "_Post-processing", "Clean-up of blotchy colours",
                                      _choice(list(POST_CHOICES)), "none", flags)
        procedure.add_double_argument("post-strength", "Post-processing _strength", "0: off, 1: default, 2: strong",
                                      0.0, 2.0, 1.0, flags)
        procedure.add_boolean_argument("provenance", "Record _provenance",
                                       "Record that the result was colorized by Tinct (model, settings) in the new "
                                       "layer and the image's metadata, which GIMP's export writes into the file",
                                       True, flags)
        if name == PROC_COLORIZE:
            procedure.add_boolean_argument("selection-mask", "Use selection as _mask",
                                           "Give the new layer the selection as its layer mask", False, flags)
            procedure.add_layer_argument("hint-layer", "_Hint layer",
                                         "Optional layer whose opaque pixels are colour hints (for models that "
                                         "take hints)", True, flags)
            procedure.add_choice_argument("blend", "Output _blend", "How the new layer combines with the original",
                                          _choice([(k, v[0]) for k, v in BLEND_MODES.items()]), "normal", flags)
        else:
            procedure.add_boolean_argument("temporal", "_Temporal consistency",
                                           "Carry colours from frame to frame along the motion", True, flags)
            procedure.add_image_return_value("new-image", "New image", "The colorized animation", False, flags)
        return procedure

    # -- shared -------------------------------------------------------------------------------

    @staticmethod
    def _interactive_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str) -> bool:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        GimpUi.init("tinct_colorize")
        dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
        dialog.fill(None)
        accepted = dialog.run()
        dialog.destroy()
        return accepted

    @staticmethod
    def _options(config: Gimp.ProcedureConfig, models: list[str]) -> dict:
        by_nick = {model_nick(m): m for m in models}
        model = by_nick.get(config.get_property("model"), config.get_property("model"))
        post = config.get_property("post-process")
        return {"model": model, "temperature": round(float(config.get_property("temperature")), 4),
                "render_size": int(config.get_property("render-size")),
                "post": [] if post == "none" else [post], "post_strength": float(config.get_property("post-strength"))}

    @staticmethod
    def _failure(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
        Gimp.message(f"Tinct: {message}")
        error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), f"Tinct: {message}", 0)
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)

    def _guarded(self, procedure: Gimp.Procedure, work):
        """Run ``work()``; failures a user should read become an error return value (else ``None``)."""
        try:
            return work(), None
        except (PlugInFailure, tinct_client.EngineError, tinct_wire.ProtocolError) as exc:
            return None, self._failure(procedure, str(exc))
        except OSError as exc:
            return None, self._failure(procedure, f"could not reach the engine: {exc}")
        finally:
            Gimp.progress_end()

    @staticmethod
    def _client() -> tinct_client.WorkerClient:
        return tinct_client.WorkerClient(tinct_client.load_config(PLUGIN_DIR), wait=Gimp.progress_pulse)

    @staticmethod
    def _profile(stages: dict) -> None:
        path = os.environ.get("TINCT_PROFILE")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(stages) + "\n")

    # -- plug-in-tinct-colorize -----------------------------------------------------------------

    def run_colorize(self, procedure, run_mode, image, drawables, config, data):
        if run_mode == Gimp.RunMode.INTERACTIVE and not self._interactive_dialog(procedure, config,
                                                                                 "Colorize (Tinct)"):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        _, failed = self._guarded(procedure, lambda: self._colorize_layer(image, list(drawables), config))
        if failed is not None:
            return failed
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    def _colorize_layer(self, image: Gimp.Image, drawables: list, config: Gimp.ProcedureConfig) -> None:
        source = _check_layer(image, drawables)
        client = self._client()
        options = self._options(config, client.config.models)
        options["provenance"] = bool(config.get_property("provenance"))
        Gimp.progress_init(f"Tinct: colorizing '{source.get_name()}'")
        stages = {}

        started = time.perf_counter()
        babl, dtype = _babl_type(image)
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        alpha = source.has_alpha()
        channels = (1 if gray else 3) + (1 if alpha else 0)
        in_fmt = ("Y'" if gray else "R'G'B'") + ("A" if alpha else "") + f" {babl}"
        width, height = source.get_width(), source.get_height()
        _, off_x, off_y = source.get_offsets()
        pixels = _read(source, Gegl.Rectangle.new(0, 0, width, height), in_fmt)
        arrays = [(tinct_wire.array_spec("pixels", dtype, (height, width, channels)), pixels)]
        hint = config.get_property("hint-layer")
        if hint is not None:
            _, hint_x, hint_y = hint.get_offsets()
            rect = Gegl.Rectangle.new(off_x - hint_x, off_y - hint_y, width, height)
            arrays.append((tinct_wire.array_spec("hint", dtype, (height, width, 4)),
                           _read(hint, rect, f"R'G'B'A {babl}")))
        stages["read_s"] = time.perf_counter() - started
        Gimp.progress_update(0.1)

        started = time.perf_counter()
        reply, payload = client.request("colorize", options, arrays)
        stages["request_s"] = time.perf_counter() - started
        stages["engine_s"] = float(reply.get("timing", {}).get("engine_s", 0.0))
        stages["transfer_s"] = stages["request_s"] - stages["engine_s"]
        for warning in reply.get("warnings", []):
            Gimp.message(f"Tinct: {warning}")
        out_spec = reply["arrays"][0]
        out_channels = out_spec["shape"][2] if len(out_spec["shape"]) == 3 else 1
        if out_spec["shape"][:2] != [height, width] or out_spec["dtype"] != dtype or out_channels not in (3, 4):
            raise PlugInFailure(f"the engine returned an unexpected result {out_spec}")
        Gimp.progress_update(0.9)

        started = time.perf_counter()
        image.undo_group_start()
        try:
            if gray:
                image.convert_rgb()
            name = f"Tinct {options['model']} T={options['temperature']:.2f}"
            layer_type = Gimp.ImageType.RGBA_IMAGE if out_channels == 4 else Gimp.ImageType.RGB_IMAGE
            layer = Gimp.Layer.new(image, name, width, height, layer_type, 100.0,
                                   BLEND_MODES[config.get_property("blend")][1])
            image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
            layer.set_offsets(off_x, off_y)
            out_fmt = ("R'G'B'A" if out_channels == 4 else "R'G'B'") + f" {babl}"
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, width, height), out_fmt, bytes(payload))
            buffer.flush()
            layer.update(0, 0, width, height)
            if config.get_property("selection-mask") and not Gimp.Selection.is_empty(image):
                layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
            attach_provenance(image, [layer], reply.get("provenance"))
        finally:
            image.undo_group_end()
        stages["write_s"] = time.perf_counter() - started
        Gimp.progress_update(1.0)
        Gimp.displays_flush()
        self._profile({"procedure": PROC_COLORIZE, "width": width, "height": height, **stages})

    # -- plug-in-tinct-colorize-animation ---------------------------------------------------------

    def run_animation(self, procedure, run_mode, image, drawables, config, data):
        if run_mode == Gimp.RunMode.INTERACTIVE and not self._interactive_dialog(procedure, config,
                                                                                 "Colorize Animation (Tinct)"):
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
            raise PlugInFailure("Tinct cannot colorize an indexed image: use Image > Mode > RGB first.")
        layers = list(image.get_layers())
        if not layers:
            raise PlugInFailure("the image has no layers to colorize")
        groups = [layer.get_name() for layer in layers if layer.is_group()]
        if groups:
            raise PlugInFailure(f"layer groups cannot be animation frames ({', '.join(groups)}); merge them first")
        frames = list(reversed(layers))  # GIMP's convention: the bottom layer is the first frame
        client = self._client()
        options = self._options(config, client.config.models)
        options["temporal"] = bool(config.get_property("temporal"))
        options["provenance"] = bool(config.get_property("provenance"))
        Gimp.progress_init(f"Tinct: colorizing {len(frames)} frames")
        babl, dtype = _babl_type(image)
        gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
        arrays, geometry = [], []
        for index, layer in enumerate(frames):
            # Every frame travels with alpha so all frames share one channel layout.
            fmt = ("Y'A" if gray else "R'G'B'A") + f" {babl}"
            width, height = layer.get_width(), layer.get_height()
            _, off_x, off_y = layer.get_offsets()
            data = _read(layer, Gegl.Rectangle.new(0, 0, width, height), fmt)
            arrays.append((tinct_wire.array_spec(f"frame{index}", dtype, (height, width, 2 if gray else 4)), data))
            geometry.append((layer, width, height, off_x, off_y))
        Gimp.progress_update(0.05)

        new_image = Gimp.Image.new_with_precision(image.get_width(), image.get_height(), Gimp.ImageBaseType.RGB,
                                                  image.get_precision())
        new_image.undo_disable()
        provenance = None
        try:
            for reply, payload in client.stream("colorize_sequence", options, arrays, replies=len(frames)):
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
            attach_provenance(new_image, list(new_image.get_layers()), provenance)
        except BaseException:
            new_image.delete()
            raise
        new_image.undo_enable()
        return new_image


Gimp.main(TinctColorize.__gtype__, sys.argv)
