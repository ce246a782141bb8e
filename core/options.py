"""Every user option of Tinct, defined once: name, default, range or choices, words for people.

The command lines (``tinct colorize``, ``tinct video``), the engine worker's request parsing and
both GIMP procedures build their arguments from ``OPTIONS`` and check values with
:func:`check`, so a value one of them offers is a value all of them accept.

Standard library only: the GIMP plug-in runs in GIMP's own Python, so the installer copies this
file beside it as ``tinct_options.py`` (a plug-in run from the checkout loads it from here).

Each option has a plain ``label`` for dialogs (with a GIMP/GTK mnemonic ``_``; the procedure
dialog's own buttons use R, C, O, L, S, H), a technical ``tooltip``, and ``help`` for ``--help``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Iterable

TEMPERATURE = 0.38  # Zhang et al. 2016, §3.3: the annealed mean at T = 0.38
RENDER_SIZE = 256   # longer side of the network's input, in pixels
POST_STRENGTH = 1.0
BATCH_SIZE = 4
THREADS = 0  # CPU threads per call; 0: as many as there are idle cores (core/threads.py)
REFERENCE_STRENGTH = 1.0  # the exponent S of p'(q) ~ p(q) r(q)^S (core/reference.py)
NO_PALETTE = "none"
HINT_LAYER_NAME = "Tinct hints"  # the layer GIMP's "Add Tinct Hint Layer" adds and the colorize procedure looks for


class OptionError(ValueError):
    """A value outside an option's range or choices; the message is one line for the user.

    A usage error of ``core.errors`` (registered there: this file imports nothing of Tinct's)."""

    exit_code = 2  # core.errors.USAGE


@dataclass(frozen=True)
class Choice:
    """One value of a choice option: ``value`` as programs spell it, ``label`` as people read it."""

    value: str
    label: str


@dataclass(frozen=True)
class Option:
    """One user option.

    ``kind``: ``float``/``int`` (``minimum``..``maximum`` inclusive), ``choice`` (one of
    ``choices``), ``steps`` (a list of distinct ``choices``, e.g. post-processing steps),
    ``bool``, ``text``, or ``layer`` / ``file``: a GIMP layer or an image file, chosen in the
    plug-in's dialog (``None`` = none), which the plug-in reads itself; :meth:`check` passes them on. ``step``/``page`` are a dialog's increments and ``digits`` its
    decimals (``step < page < maximum - minimum``, as GIMP's spin widgets require).
    """

    name: str
    kind: str
    default: Any
    label: str
    tooltip: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Choice, ...] = ()
    step: float = 1.0
    page: float = 10.0
    digits: int = 0

    @property
    def flag(self) -> str:
        """The command-line flag, ``--post-strength``."""
        return "--" + self.name.replace("_", "-")

    @property
    def gimp_name(self) -> str:
        """The GIMP procedure argument name, ``post-strength``."""
        return self.name.replace("_", "-")

    @property
    def plain_label(self) -> str:
        """The label without its mnemonic underscore."""
        return self.label.replace("_", "")

    def range_text(self) -> str:
        """``[0.01, 1]`` or ``one of a, b`` for messages."""
        if self.kind in ("float", "int"):
            return f"[{_number(self.minimum)}, {_number(self.maximum)}]"
        return "one of " + ", ".join(c.value for c in self.choices)

    def check(self, value: Any) -> Any:
        """``value`` converted to this option's type; raises ``OptionError`` when it is not allowed."""
        if self.kind in ("float", "int"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise OptionError(f"{self.name} must be a number, got {value!r}") from None
            if self.kind == "int":
                if number != int(number):
                    raise OptionError(f"{self.name} must be a whole number, got {value!r}")
                number = int(number)
            if not (self.minimum <= number <= self.maximum):  # also refuses NaN
                raise OptionError(f"{self.name} must be in {self.range_text()}, got {_number(number)}")
            return number
        if self.kind == "choice":
            if str(value) not in {c.value for c in self.choices}:
                raise OptionError(f"{self.name} must be {self.range_text()}, got {value!r}")
            return str(value)
        if self.kind == "steps":
            # Returned in the order of ``choices``, which is the order the steps are applied in.
            steps = parse_steps(value) if isinstance(value, str) else tuple(str(v).lower() for v in value or ())
            known = [c.value for c in self.choices]
            for index, step in enumerate(steps):
                if step not in known:
                    raise OptionError(f"unknown post-processing step {step!r}; choose from {', '.join(known)}")
                if step in steps[:index]:
                    raise OptionError(f"post-processing step {step!r} is given twice")
            return tuple(step for step in known if step in steps)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.kind in ("layer", "file"):
            return value
        return str(value)


def _number(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_steps(text: str) -> tuple[str, ...]:
    """``"crf, tv"`` -> ``("crf", "tv")`` (``""`` and ``"none"`` -> no steps)."""
    steps = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    return () if steps == ("none",) else steps


OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("model", "text", "default", "_Model",
           "The colorization model (see 'tinct weights list')",
           "model name (see 'tinct weights list'); default: the embedded model"),
    Option("temperature", "float", TEMPERATURE, "Colour so_ftness",
           f"Annealed-mean temperature T ({TEMPERATURE} in Zhang et al. 2016): lower gives bolder, more "
           "saturated colours, 1 the plain mean of the predicted colours (muted)",
           f"annealed-mean temperature T: lower is more vivid, 1 the plain mean (default {TEMPERATURE})",
           minimum=0.01, maximum=1.0, step=0.01, page=0.1, digits=2),
    Option("decode", "choice", "annealed", "Colour pick",
           "How the predicted colour distribution becomes one colour per pixel",
           "how to turn the predicted distribution into a colour (default annealed)",
           choices=(Choice("annealed", "Annealed mean (uses the softness)"), Choice("mode", "Most likely colour"),
                    Choice("mean", "Mean colour"))),
    Option("render_size", "int", RENDER_SIZE, "_Detail of the colour map",
           f"Render size: the longer side, in pixels, of the image the network sees (default {RENDER_SIZE}); "
           "higher gives finer colour detail and takes longer (the models were trained at 256)",
           f"longer side of the network's input in pixels (default {RENDER_SIZE})",
           minimum=32, maximum=512, step=32, page=128),
    Option("post", "steps", (), "Clean-_up of blotchy colours",
           "Post-processing of the predicted colours (segments, crf, tv)",
           "comma-separated post-processing steps: segments, crf, tv (default none)",
           choices=(Choice("crf", "Edge-aware refinement (CRF)"),
                    Choice("segments", "Even colour per region (segments)"), Choice("tv", "Smooth colour (TV)"))),
    Option("post_strength", "float", POST_STRENGTH, "Clean-up stre_ngth",
           "Post-processing strength: 0 leaves the colours as predicted, 1 applies the steps fully",
           f"post-processing strength (default {POST_STRENGTH:g})",
           minimum=0.0, maximum=1.0, step=0.01, page=0.1, digits=2),
    Option("batch_size", "int", BATCH_SIZE, "Batch size",
           "Images whose renders share one network call",
           f"images (or frames) whose renders share a network call (default {BATCH_SIZE})",
           minimum=1, maximum=256),
    Option("threads", "int", THREADS, "CPU _threads",
           "CPU threads the engine uses per call; 0 takes as many as there are idle cores (up to torch's "
           "default), so a busy machine does not slow it down",
           "CPU threads per call (default 0: as many as there are idle cores, up to torch's default; "
           "on macOS and Windows, where that cannot be counted, torch's default)",
           minimum=0, maximum=256),
    Option("blend", "choice", "normal", "_Blend with the original",
           "Layer mode of the new layer: Normal shows the colorized pixels, LCh Color takes only their "
           "colour over the original",
           "how the new layer combines with the original",
           choices=(Choice("normal", "Normal layer"), Choice("lch-color", "LCh Color over the original"))),
    Option("selection_mask", "bool", False, "Selection as layer mas_k",
           "Give the new layer the selection as its layer mask", "use the selection as the layer mask"),
    Option("temporal", "bool", True, "S_teady colours across frames",
           "Temporal consistency: carry colours from frame to frame along the optical flow",
           "flow-guided blending with the previous frame"),
    Option("content", "choice", "auto", "Image cont_ent",
           "What the image shows, which selects the decode profile: a photo, a document (a scanned page: paper "
           "keeps a paper tone, ink stays ink), or Auto (a detector on the lightness decides)",
           "what the images show, which selects the decode profile: photo, document (scanned pages), or auto "
           "(default: a detector on the lightness decides per image)",
           choices=(Choice("auto", "Auto (photo or document, detected)"), Choice("photo", "Photo"),
                    Choice("document", "Document (a scanned page)"))),
    Option("use_hints", "bool", True, "Use colour hin_ts",
           f"Colour hints: the opaque pixels of the hint layer chosen below or, when none is chosen, of the layer "
           f"named '{HINT_LAYER_NAME}' (Filters > Colors > Add Tinct Hint Layer) give the colour there; for "
           f"models that take hints (the default model does)",
           "use colour hints"),
    Option("hint_layer", "layer", None, "Colour hint la_yer",
           f"A layer whose opaque pixels are colour hints (their colour gives the hue and saturation, the "
           f"photo keeps its lightness); none chosen: the layer named '{HINT_LAYER_NAME}', if there is one",
           "the layer of colour hints"),
    Option("reference_layer", "layer", None, "Reference l_ayer",
           "A colour photo (an open layer) whose palette steers the colours: each pixel's predicted colour "
           "distribution is re-weighted toward the reference's colours (classification models only)",
           "a layer whose colours steer the palette"),
    Option("reference_file", "file", None, "Reference ima_ge file",
           "A colour image file whose palette steers the colours, like a reference layer",
           "an image file whose colours steer the palette"),
    Option("palette", "choice", NO_PALETTE, "_Paper palette",
           "A named palette for document scans, used like a reference: the paper and ink colours of real "
           "archive pages (parchment: medieval manuscripts; aged paper: 18th-century letters; white paper: "
           "notarial registers, which are cream too)",
           "a named palette for document scans, used like a reference photo",
           choices=(Choice(NO_PALETTE, "None"), Choice("parchment", "Parchment"),
                    Choice("aged-paper", "Aged paper"), Choice("white-paper", "White paper"))),
    Option("reference_strength", "float", REFERENCE_STRENGTH, "Reference _weight",
           f"Reference strength S: how strongly the reference or palette steers (p'(q) ~ p(q) r(q)^S); 0 not at "
           f"all, {REFERENCE_STRENGTH:g} the default",
           f"how strongly the reference or palette steers (default {REFERENCE_STRENGTH:g})",
           minimum=0.0, maximum=10.0, step=0.1, page=1.0, digits=2),
    Option("confidence_layer", "bool", False, "Confidence layer (h_idden)",
           "Also add the confidence map as a hidden layer 'Tinct confidence': white where the model is sure of "
           "the colour, dark where it is a guess (where a hint helps most); classification models only",
           "add the confidence map as a hidden layer"),
    Option("provenance", "bool", True, "Record pro_venance",
           "Record that the result was colorized by Tinct (model, settings) in the new layer and the image's "
           "metadata, which GIMP's export writes into the file",
           "record that the output was colorized by Tinct (model, settings) in its metadata"),
)}

NO_POST = Choice("none", "None")


def check(name: str, value: Any) -> Any:
    """``OPTIONS[name].check(value)``."""
    return OPTIONS[name].check(value)


def checked(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``names`` taken from ``values`` (their defaults where missing or None), each checked."""
    return {name: check(name, OPTIONS[name].default if values.get(name) is None else values[name]) for name in names}


def add_argument(parser: argparse._ActionsContainer, name: str, **overrides: Any) -> argparse.Action:
    """Add ``OPTIONS[name]`` to an argparse parser (or group): its flag, default and help.

    Values are checked afterwards by :func:`check_arguments`, so that a bad one gets the
    command's own one-line error instead of argparse's usage text.
    """
    option = OPTIONS[name]
    kwargs: dict[str, Any] = {"default": option.default, "help": option.help}
    if option.kind in ("float", "int"):
        kwargs.update(type=float if option.kind == "float" else int, metavar="T" if option.kind == "float" else "N")
        kwargs["help"] = f"{option.help}; {option.range_text()}"
    elif option.kind == "choice":
        kwargs["choices"] = [c.value for c in option.choices]
    elif option.kind == "steps":
        kwargs.update(metavar="STEPS", default="")
    elif option.kind == "bool":
        kwargs.update(action=argparse.BooleanOptionalAction)
    kwargs.update(overrides)
    return parser.add_argument(option.flag, **kwargs)


def check_arguments(args: argparse.Namespace, names: Iterable[str]) -> str | None:
    """Check (and convert, e.g. ``--post`` text to steps) the parsed ``names``; the first problem as one line."""
    for name in names:
        option = OPTIONS[name]
        value = getattr(args, name)
        if value is None:
            continue
        try:
            setattr(args, name, option.check(value))
        except OptionError as error:
            text = str(error)
            return text.replace(name, option.flag, 1) if text.startswith(name) else f"{option.flag}: {text}"
    return None
