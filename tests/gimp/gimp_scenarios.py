"""Batch code run inside GIMP 3 by the GIMP tests and the benchmark (not imported by pytest).

``PARAMS`` (a dict) is defined in front of this text by the caller: ``out_dir`` (where results
go, as GIMP sees it), ``model`` (the model's choice id), ``args`` (procedure arguments for every
case) and ``cases`` (see ``run_case``). It writes ``procedures.json`` (each procedure's image
types and arguments) and, for each case, ``<name>.json`` (statuses, error message, layer stack,
names, modes, masks, visibility; per run the layers it added) and raw pixel dumps
``<name>.src_before`` / ``.src_after`` / ``.new`` and, per run K, ``<name>.runK`` (its result
layer) and ``<name>.runK.confidence`` (its confidence layer, if any) that the host checks with numpy.

Argument values ``{"layer": NAME}`` and ``{"file": PATH}`` become that layer of the image and a
``Gio.File``. Cases may also become RGB first (``rgb``), ``add_layers`` (``[{"path", "name"}]``, loaded from files below the
photo, hidden), run ``add_hint_layer`` first, and ``paint`` rectangles ``[x, y, w, h, [r, g, b]]``
(8-bit, opaque) onto the hint layer.
"""

import json
import os
import time

from gi.repository import Gegl, Gimp, Gio

PDB = Gimp.get_pdb()
OUT = PARAMS["out_dir"]  # noqa: F821 - defined by the caller


def dump(drawable, fmt, path):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    data = drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)
    with open(path, "wb") as handle:
        handle.write(data)


def named_layer(image, name):
    return next((layer for layer in image.get_layers() if layer.get_name() == name), None)


def argument(image, value):
    if isinstance(value, dict) and "layer" in value:
        return named_layer(image, value["layer"])
    if isinstance(value, dict) and "file" in value:
        return Gio.File.new_for_path(value["file"])
    return value


def run_procedure(name, image, drawables, **args):
    procedure = PDB.lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    for key, value in args.items():
        config.set_property(key.replace("_", "-"), argument(image, value))
    started = time.perf_counter()
    result = procedure.run(config)
    return result, time.perf_counter() - started


def error_of(result):
    """The error message of a failed run (GIMP puts it after the status), else None."""
    if result.index(0) == Gimp.PDBStatusType.SUCCESS or result.length() < 2:
        return None
    value = result.index(1)
    return value if isinstance(value, str) else None


def describe(procedure):
    """A procedure's image types and arguments (name, label, tooltip, range/choices, default)."""
    arguments = []
    for spec in procedure.get_arguments():
        entry = {"name": spec.name, "label": spec.get_nick(), "tooltip": spec.get_blurb()}
        kind = type(spec).__name__
        if hasattr(spec, "minimum") and hasattr(spec, "maximum"):
            entry.update(minimum=spec.minimum, maximum=spec.maximum, default=spec.get_default_value())
        elif "Choice" in kind:
            choice = Gimp.param_spec_choice_get_choice(spec)
            entry["choices"] = [[nick, choice.get_label(nick)] for nick in choice.list_nicks()]
            entry["default"] = Gimp.param_spec_choice_get_default(spec)
        elif "Boolean" in kind:
            entry["default"] = spec.get_default_value()
        arguments.append(entry)
    return {"image_types": procedure.get_image_types(), "arguments": arguments}


def layer_info(layer):
    _, x, y = layer.get_offsets()
    return {"name": layer.get_name(), "width": layer.get_width(), "height": layer.get_height(), "x": x, "y": y,
            "mode": layer.get_mode().value_nick, "mask": layer.get_mask() is not None, "alpha": layer.has_alpha(),
            "visible": layer.get_visible()}


def prepare(case):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["path"]))
    layer = image.get_layers()[0]
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    if case.get("alpha_offsets"):
        layer.add_alpha()
        dx, dy = case["alpha_offsets"]
        image.resize(image.get_width() + 2 * dx, image.get_height() + 2 * dy, 0, 0)
        layer.set_offsets(dx, dy)
    if case.get("select"):
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["select"])
    if case.get("group"):
        group = Gimp.GroupLayer.new(image, "frames")
        image.insert_layer(group, None, 0)
        return image, group
    if case.get("indexed"):
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
        layer = image.get_layers()[0]
    if case.get("rgb"):
        image.convert_rgb()
    for extra in case.get("add_layers", []):
        added = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(extra["path"]))
        added.set_name(extra["name"])
        image.insert_layer(added, None, len(image.get_layers()))
        added.set_visible(False)
    if case.get("frames"):
        for index in range(1, case["frames"]):
            frame = layer.copy()
            frame.set_name(f"frame {index + 1}")
            image.insert_layer(frame, None, 0)
            frame.set_offsets(index, 0)
        layer.set_name("frame 1")
    return image, layer


def run_case(case):
    """Run one case; cases colorize one layer unless ``animation`` is set."""
    name, fmt = case["name"], case.get("fmt", "R'G'B'A u8")
    image, source = prepare(case)
    record = {"base_type_before": image.get_base_type().value_nick}
    if case.get("animation"):
        frames = list(reversed(image.get_layers()))
        for index, frame in enumerate(frames):
            dump(frame, fmt, os.path.join(OUT, f"{name}.frame{index}"))
        args = {"model": PARAMS["model"], **PARAMS.get("args", {}), **case.get("args", {})}
        result, seconds = run_procedure("plug-in-tinct-colorize-animation", image, [], **args)
        record["status"] = result.index(0).value_nick
        record["error"] = error_of(result)
        if record["status"] == "success":
            new_image = result.index(1)
            new_frames = list(reversed(new_image.get_layers()))
            record["new_layers"] = [layer_info(layer) for layer in new_frames]
            record["new_base_type"] = new_image.get_base_type().value_nick
            for index, frame in enumerate(new_frames):
                dump(frame, fmt, os.path.join(OUT, f"{name}.newframe{index}"))
        record["layers"] = [layer_info(layer) for layer in image.get_layers()]
    else:
        if not case.get("group"):
            dump(source, fmt, os.path.join(OUT, f"{name}.src_before"))
        if case.get("add_hint_layer"):
            result, _ = run_procedure("plug-in-tinct-add-hint-layer", image, [source])
            record["add_hint_layer"] = [result.index(0).value_nick, error_of(result)]
            if result.index(0) == Gimp.PDBStatusType.SUCCESS:
                record["hint_layer"] = layer_info(result.index(1))
                record["selected"] = [layer.get_name() for layer in image.get_selected_layers()]
                again, _ = run_procedure("plug-in-tinct-add-hint-layer", image, [source])
                record["hint_layer_again"] = again.index(1).get_id() == result.index(1).get_id()
        for x, y, w, h, rgb in case.get("paint", []):
            hints = named_layer(image, "Tinct hints")
            shadow = hints.get_shadow_buffer()
            shadow.set(Gegl.Rectangle.new(x, y, w, h), "R'G'B'A u8", bytes([*rgb, 255]) * (w * h))
            shadow.flush()
            hints.merge_shadow(True)
            hints.update(x, y, w, h)
        before = [layer.get_name() for layer in image.get_layers()]
        args = {"model": PARAMS["model"], **PARAMS.get("args", {}), **case.get("args", {})}
        timings, runs = [], []
        for run_args in [{}, *case.get("then", [])]:  # "then": arguments of later runs on the same layer
            for _ in range(case.get("repeat", 1)):
                known = {layer.get_id() for layer in image.get_layers()}
                result, seconds = run_procedure("plug-in-tinct-colorize", image, [case.get("select_layer") and
                                                named_layer(image, case["select_layer"]) or source],
                                                **{**args, **run_args})
                timings.append(seconds)
                added = [layer for layer in image.get_layers() if layer.get_id() not in known]
                for layer in added if case.get("dump_runs", True) else ():
                    suffix = ".confidence" if layer.get_name().startswith("Tinct confidence") else ""
                    dump(layer, fmt, os.path.join(OUT, f"{name}.run{len(runs)}{suffix}"))
                runs.append({"status": result.index(0).value_nick, "error": error_of(result),
                             "added": [layer_info(layer) for layer in added]})
        record["seconds"] = timings
        record["runs"] = runs
        record["status"] = result.index(0).value_nick
        record["error"] = error_of(result)
        layers = image.get_layers()
        record["layers_before"] = before
        record["layers"] = [layer_info(layer) for layer in layers]
        record["base_type_after"] = image.get_base_type().value_nick
        if record["status"] == "success" and not case.get("group"):
            record["source_index"] = [layer.get_id() for layer in layers].index(source.get_id())
            new = layers[record["source_index"] - 1]
            dump(source, fmt, os.path.join(OUT, f"{name}.src_after"))
            dump(new, fmt, os.path.join(OUT, f"{name}.new"))
    with open(os.path.join(OUT, f"{name}.json"), "w") as handle:
        json.dump(record, handle)
    image.delete()


registered = {name: PDB.lookup_procedure(name) is not None
              for name in ("plug-in-tinct-colorize", "plug-in-tinct-add-hint-layer", "plug-in-tinct-colorize-animation")}
with open(os.path.join(OUT, "registered.json"), "w") as handle:
    json.dump(registered, handle)
with open(os.path.join(OUT, "procedures.json"), "w") as handle:
    json.dump({name: describe(PDB.lookup_procedure(name)) for name, found in registered.items() if found}, handle)
with open(os.path.join(OUT, "visible.json"), "w") as handle:  # which of these paths GIMP's side can see
    json.dump({path: os.path.exists(path) for path in PARAMS.get("probe", [])}, handle)
for case in PARAMS["cases"]:
    run_case(case)
