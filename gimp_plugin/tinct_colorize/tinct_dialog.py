"""The plug-in's dialogs: GIMP's procedure dialog with Tinct's own widgets for numbers (needs GimpUi).

Kept apart from ``tinct_colorize.py`` (which hands control to GIMP when imported) so that a
test can build the very same dialog in a GIMP batch session with a display. GimpUi (and with it
GTK) is imported only when a dialog is built: a call from a script or a repeat without a dialog
does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gi.repository import GimpUi

# The options each procedure offers, in dialog order (definitions: core/options.py).
COLORIZE_OPTIONS = ("temperature", "render_size", "post", "post_strength", "content", "use_hints", "hint_layer",
                    "reference_layer", "reference_file", "palette", "reference_strength", "confidence_layer",
                    "selection_mask", "blend", "provenance")
ANIMATION_OPTIONS = ("temperature", "render_size", "post", "post_strength", "content", "temporal", "provenance")


def build_dialog(procedure, config, title: str, names: tuple[str, ...], options: dict) -> GimpUi.ProcedureDialog:
    """The filled dialog for ``procedure`` showing the model and ``names`` (keys of ``options``).

    Numbers get a spin scale with the option's own increments and decimals: the default
    label-spin widget guesses increments that GIMP 3.0's own checks reject
    (``LibGimpWidgets-CRITICAL gimp_label_spin_set_increments``).
    """
    import gi

    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi  # noqa: F811 - the real import; the one above is for type checkers

    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    for name in names:
        option = options[name]
        if option.kind in ("float", "int"):
            widget = dialog.get_spin_scale(option.gimp_name, 1.0)
            widget.set_increments(option.step, option.page)
            widget.set_digits(option.digits)
    dialog.fill(["model", *(options[n].gimp_name for n in names)])
    return dialog
