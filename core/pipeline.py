"""The colorization pipeline and Python API: ``Colorizer``, ``ColorizeOptions`` and ``colorize``.

Stages (timed by ``tinct bench`` through ``core.stages.record_stage_times``):

1. ``lab``: L at full resolution from the pixels (``core.pixel_tensors.luminance_from_pixels``; a
   colour input counts as its L*; integer gray goes through a lookup table).
   ``content``: photo or document (``core.content``): the decode profile of each image.
2. ``network``: the network at a render size: the longer side scaled to ``render_size`` keeping the aspect
   ratio, reflect-padded to the model's stride (``core.geometry``).
3. ``decode``: decoding of the output into ab (``core.decode``; optional ``core.post`` steps).
4. ``upsample``: edge-aware upsampling of ab guided by the full-resolution L (``core.upsample``).
5. ``merge``: the ORIGINAL L with the ab into RGB, reducing chroma where a colour falls outside
   sRGB so that L* stays exactly the input's (``core.pixel_tensors.merge_to_pixels``, with
   ``core.color``'s gamut-keeping conversions).

``Colorizer.colorize_L`` is the one path every caller goes through (CLI, GIMP worker, video); this
module only orchestrates the stages, whose maths lives in the modules named above.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .content import CONTENT_CHOICES, PROFILES, resolve_content
from .decode import DECODE_METHODS, DEFAULT_TEMPERATURE, decode_logits
from .device import inference_dtype, resolve_device
from .geometry import (DEFAULT_RENDER_SIZE, MAX_RENDER_SIZE, MIN_RENDER_SIZE, RenderGeometry, band_rows,
                       hints_for_render, render_from_pixels, render_geometry, render_input, render_size_problem)
from .hints import SparseHints, hint_maps_from_images, sparse_hints
from .options import BATCH_SIZE, POST_STRENGTH, THREADS
from .options import check as check_option
from .pixel_tensors import (ab_from_pixels, hint_tensor, luminance_from_pixels, mask_tensor, merge_to_pixels,
                            quantize_rgb)
from .pixels import check_pixels, convert_depth, join_alpha, split_alpha
from .reference import DEFAULT_STRENGTH
from .stages import record_stage_times, stage
from .threads import cpu_threads
from .upsample import RowUpsampler, apply_coefficients, enlarges, guided_coefficients

DEFAULT_BATCH_SIZE = BATCH_SIZE
# Names this module has always offered; they live in the modules named in the docstring.
__all__ = ["Colorizer", "ColorizeOptions", "colorize", "get_colorizer", "record_stage_times", "RenderGeometry",
           "render_geometry", "render_input", "render_from_pixels", "render_size_problem", "band_rows",
           "DEFAULT_RENDER_SIZE", "MIN_RENDER_SIZE", "MAX_RENDER_SIZE", "DEFAULT_BATCH_SIZE", "DEFAULT_TEMPERATURE",
           "luminance_from_pixels", "merge_to_pixels", "quantize_rgb", "mask_tensor", "split_alpha", "join_alpha"]


# --------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ColorizeOptions:
    """How a :class:`Colorizer` colorizes; defaults and bounds are ``core.options``' (checked when made).

    Attributes:
        temperature: annealed-mean temperature T, in ``core.options``' range (used by ``decode="annealed"``).
        decode: ``"annealed"``, ``"mode"`` or ``"mean"`` (``core.decode``).
        render_size: the network's input size along the longer side, ``MIN_RENDER_SIZE..MAX_RENDER_SIZE``.
        post: ``core.post`` step names (``"crf"``, ``"segments"``, ``"tv"``); empty = none.
        post_strength: in [0, 1], how strongly the post steps act.
        batch_size: images per network call.
        content: ``"photo"``, ``"document"`` or ``"auto"`` (the decode profile, ``core.content``).
        mask_colorize: outside the mask keep the input's own colour.
        reference_strength: exponent of the reference re-weighting, >= 0 (``core.reference``).
        confidence: also compute the confidence map (classification models only).
    Raises:
        ValueError: an unknown decode method or content kind, ``post`` given as one string, a render
            size out of bounds; ``core.options.OptionError`` (a ``ValueError``) for values out of range.
    """

    temperature: float = DEFAULT_TEMPERATURE
    decode: str = "annealed"
    render_size: int = DEFAULT_RENDER_SIZE
    post: tuple[str, ...] = field(default=())
    post_strength: float = POST_STRENGTH
    batch_size: int = BATCH_SIZE
    content: str = "auto"
    mask_colorize: bool = False
    reference_strength: float = DEFAULT_STRENGTH
    confidence: bool = False

    def __post_init__(self) -> None:
        if self.decode not in DECODE_METHODS:
            raise ValueError(f"unknown decode method {self.decode!r}; choose one of {', '.join(DECODE_METHODS)}")
        if self.decode == "annealed":
            check_option("temperature", self.temperature)
        if isinstance(self.post, str):
            raise ValueError(f"post must be a sequence of step names, not the string {self.post!r}")
        object.__setattr__(self, "post", tuple(self.post or ()))
        check_option("post_strength", self.post_strength)
        check_option("batch_size", self.batch_size)
        if self.content not in CONTENT_CHOICES:
            raise ValueError(f"unknown content {self.content!r}; choose one of {', '.join(CONTENT_CHOICES)}")
        render_size = DEFAULT_RENDER_SIZE if self.render_size is None else int(self.render_size)
        problem = render_size_problem(render_size)
        if problem:
            raise ValueError(problem)
        object.__setattr__(self, "render_size", render_size)
        object.__setattr__(self, "mask_colorize", bool(self.mask_colorize))
        object.__setattr__(self, "confidence", bool(self.confidence))

    @classmethod
    def from_opts(cls, opts: Mapping[str, Any]) -> "ColorizeOptions":
        """The options among keyword arguments (``colorize(**opts)``); other keys are ignored here,
        a ``None`` ``render_size`` or ``post`` means the default."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in opts.items() if k in known}
        for key in ("render_size", "post"):
            if values.get(key, 0) is None:
                del values[key]
        return cls(**values)


# --------------------------------------------------------------------------------- the Colorizer


@dataclass
class _Item:
    """One image (or a batch of same-size ones) going through the pipeline; tensors ``[n|1, C, H, W]``
    on the Colorizer's device.

    Either ``L`` (full-resolution L*, as given to ``colorize_L``) or ``color`` (``[H, W, 1|3]``
    pixels whose L* is computed a band of rows at a time) is set.
    """

    geometry: RenderGeometry
    size: tuple[int, int]
    n: int = 1
    L: Tensor | None = None
    color: np.ndarray | None = None
    render: Tensor | None = None
    mask: Tensor | None = None
    source_ab: Tensor | None = None
    hints: SparseHints | None = None  # the hinted pixels at full resolution
    render_hints: tuple[Tensor, Tensor] | None = None  # the hints at render size (padded), set by _run_renders
    content: str = "auto"  # as asked; ``_predict_low`` resolves "auto" to "photo" or "document" (the decode profile)
    reference_bias: Tensor | None = None  # [Q] logit bias toward a reference's ab histogram
    confidence: Tensor | None = None  # [n, 1, H, W] when asked for

    def L_rows(self, top: int, bottom: int, device: torch.device) -> Tensor:
        """L* of rows ``top:bottom``, ``[n, 1, rows, W]``."""
        if self.L is not None:
            return self.L[:, :, top:bottom]
        with stage("lab", device):
            return luminance_from_pixels(self.color[top:bottom], device)

    def own_ab_rows(self, top: int, bottom: int, device: torch.device) -> Tensor:
        """The input's own ab of rows ``top:bottom`` (gray when it has none), for ``mask_colorize``."""
        if self.source_ab is not None:
            return self.source_ab[:, :, top:bottom]
        if self.color is not None and self.color.shape[2] == 3:
            return ab_from_pixels(self.color[top:bottom], device)
        return torch.zeros(self.n, 2, bottom - top, self.size[1], device=device)


class Colorizer:
    """A model on a device, ready to colorize; reuse it for many images.

    Args:
        model: a model name (``core.loading.load_model``; ``"default"`` is the embedded model)
            or a network following the contract of ``core.models``.
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda[:N]"``, ``"mps"``.
        half: float16 network; ``None`` = on CUDA only.
        fetch, mirror: passed to ``load_model`` for weights that are not present yet.
        threads: CPU threads per call (the ``threads`` option of ``core.options``): 0 = as many as
            there are idle cores, up to torch's pool (``core.threads``); N = exactly N.
    """

    def __init__(
        self,
        model: str | nn.Module = "default",
        device: str | torch.device = "auto",
        half: bool | None = None,
        *,
        fetch: bool = False,
        mirror: str | None = None,
        threads: int = THREADS,
    ):
        self.device = resolve_device(device)
        self.threads = check_option("threads", threads)
        self.last_threads: int | None = None  # the CPU threads the last call ended on (None: no call yet)
        self._call_threads = None  # the running call's core.threads.CallThreads
        self.dtype = inference_dtype(self.device, half)
        if isinstance(model, str):
            self.name = model
            from .loading import load_model

            self.model = load_model(model, device=str(self.device), dtype=self.dtype, fetch=fetch, mirror=mirror)
        elif isinstance(model, nn.Module):
            self.name = type(model).__name__
            self.model = model.eval().to(device=self.device, dtype=self.dtype)
        else:
            raise TypeError(f"model must be a name or an nn.Module, got {type(model).__name__}")
        for attribute in ("output", "stride", "out_stride"):
            if not hasattr(self.model, attribute):
                raise TypeError(f"model {self.name!r} does not follow the model contract (no .{attribute})")
        if self.model.output not in ("logits", "ab"):
            raise TypeError(f"model {self.name!r} has unknown output kind {self.model.output!r}")
        self.stride = int(self.model.stride)
        self.out_stride = int(self.model.out_stride)
        self.accepts_hints = bool(getattr(self.model, "accepts_hints", False))
        self.logit_fold = float(getattr(self.model, "logit_fold", 1.0))
        centers = getattr(self.model, "bin_centers", None)
        self.bin_centers = centers.detach().to(self.device, torch.float32) if centers is not None else None
        self.last_content: list[str] = []  # what ``colorize_L`` chose per image on its last call
        if self.model.output == "logits" and self.bin_centers is None:
            raise TypeError(f"model {self.name!r} outputs logits but has no bin_centers")

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """One call's torch threads: ``core.threads.cpu_threads`` (no more than the idle cores);
        :meth:`_recount_threads` counts again between bands."""
        with cpu_threads(self.device, self.threads) as call:
            self._call_threads = call
            try:
                yield
            finally:
                self.last_threads = call.threads
                self._call_threads = None

    def _recount_threads(self) -> None:
        if self._call_threads is not None:
            self._call_threads.recount()

    # ----------------------------------------------------------------- what the provenance record needs

    @property
    def model_name(self) -> str:
        """The model's catalog name (``tinct-small`` for ``"default"``), else the name given."""
        return str(getattr(self.model, "name", None) or self.name)

    @property
    def weights_sha256(self) -> str | None:
        """Hex SHA-256 of the weights file the model was loaded from (hashed once per file and
        process); None for a network given as a module."""
        path = getattr(self.model, "weights_path", None)
        if path is None:
            return None
        from .loading import weights_sha256

        return weights_sha256(path)

    def settings(self, **opts: Any) -> dict[str, Any]:
        """What a run with these :meth:`colorize_L` / :meth:`colorize_array` options is, for the
        provenance record (``core.provenance.record_from_settings``): model, weights_sha256,
        temperature, decode, render_size, post, post_strength, whether hints, a reference photo,
        a mask (and ``mask_colorize``) were used, and the content asked for (``content_choice``; the
        content each image got is :attr:`last_content` after the call)."""

        def used(value: Any) -> bool:
            if isinstance(value, (list, tuple)):
                return any(v is not None for v in value)
            return value is not None

        return {
            "model": self.model_name,
            "weights_sha256": self.weights_sha256,
            "temperature": float(opts.get("temperature", DEFAULT_TEMPERATURE)),
            "decode": str(opts.get("decode", "annealed")),
            "render_size": int(opts.get("render_size") or DEFAULT_RENDER_SIZE),
            "post": [str(step) for step in opts.get("post") or ()],
            "post_strength": float(opts.get("post_strength", 1.0)),
            "hints": used(opts.get("hints")) or used(opts.get("hint_ab")) or used(opts.get("hint_mask")),
            "reference": used(opts.get("reference")),
            "mask": used(opts.get("mask")),
            "mask_colorize": bool(opts.get("mask_colorize")),
            "content_choice": str(opts.get("content", "auto")),
        }

    # ----------------------------------------------------------------- the one path

    def colorize_L(
        self,
        L: Tensor | Sequence[Tensor],
        *,
        temperature: float = DEFAULT_TEMPERATURE,
        decode: str = "annealed",
        render_size: int | None = None,
        post: Sequence[str] = (),
        post_strength: float = 1.0,
        mask: Any = None,
        mask_colorize: bool = False,
        source_ab: Tensor | Sequence[Tensor | None] | None = None,
        hint_ab: Tensor | Sequence[Tensor | None] | None = None,
        hint_mask: Tensor | Sequence[Tensor | None] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        content: str = "auto",
        reference: Any = None,
        reference_strength: float = DEFAULT_STRENGTH,
        confidence: bool = False,
    ) -> Tensor | list[Tensor] | tuple[Tensor, Tensor] | tuple[list[Tensor], list[Tensor]]:
        """Predict full-resolution ab for full-resolution L.

        Args:
            L: ``[N, 1, H, W]`` float32 L* in [0, 100] (any device), or a list of ``[1, 1, Hi, Wi]``
                tensors of different sizes (images whose renders have the same size share a batch).
            temperature: annealed-mean temperature T > 0 (``decode="annealed"``).
            decode: ``"annealed"``, ``"mode"`` or ``"mean"``.
            render_size: the network's input size along the longer side (default
                ``DEFAULT_RENDER_SIZE``).
            post: ``core.post`` step names (``"crf"``, ``"segments"``, ``"tv"``); empty = none.
            post_strength: in [0, 1], how strongly the post steps act.
            mask: where post-processing (and with ``mask_colorize`` the colorization itself) acts:
                ``[H, W]`` float in [0, 1], a PIL "L" image, or ``[N|1, 1, H, W]``; one per image in list form.
            mask_colorize: outside the mask keep the input's own colour (``source_ab``, default
                gray); soft mask values blend.
            source_ab: ``[N, 2, H, W]`` the input's own ab, used with ``mask_colorize``.
            hint_ab, hint_mask: ``[N, 2, H, W]`` ab hints (ab units) and ``[N, 1, H, W]`` {0, 1}
                for models with ``accepts_hints`` (ignored by others).
            batch_size: images per network call.
            content: ``"photo"``, ``"document"`` or ``"auto"`` (``core.content.document_score`` decides per image on
                its render; an ``[N, ...]`` tensor gets one choice); selects the decode profile of
                ``core.content.PROFILES``.
                The choices made are recorded in :attr:`last_content`, one per image (tensor or list entry).
            reference: steer the palette toward a reference's ab histogram (classification models
                only; ``core.reference``): a palette name, a PIL image, an ``[H, W, 3|4]`` pixel
                array or a ``[23, 23]`` grid histogram; in list form also a list, one per image (None = none).
            reference_strength: exponent of the re-weighting, >= 0 (0 = off, 1 = default).
            confidence: also return the confidence map (classification models only,
                ``core.confidence``), upsampled like ab.
        Returns:
            ``[N, 2, H, W]`` float32 ab on L's device (a list of ``[1, 2, Hi, Wi]`` for list input);
            with ``confidence``, the pair (ab, confidence ``[N, 1, H, W]`` float32 in [0, 1], 1 = confident).
        """
        options = ColorizeOptions(temperature=temperature, decode=decode, render_size=render_size, post=post,
                                  post_strength=post_strength, batch_size=batch_size, content=content,
                                  mask_colorize=mask_colorize, reference_strength=reference_strength,
                                  confidence=confidence)
        if confidence:
            self._require_distribution("has no confidence map")
        as_list = not isinstance(L, Tensor)
        Ls = list(L) if as_list else [L]
        if not Ls:
            return []
        for L_i in Ls:
            if not isinstance(L_i, Tensor) or L_i.dim() != 4 or L_i.shape[1] != 1 or L_i.shape[0] < 1:
                shape = list(L_i.shape) if isinstance(L_i, Tensor) else type(L_i).__name__
                raise ValueError(f"L must be [N,1,H,W] float L* in [0,100], got {shape}")
        out_devices = [x.device for x in Ls]
        with torch.no_grad(), self._threads():
            hints = self._dense_hints(Ls, hint_ab, hint_mask, as_list)
            items = self._make_items(Ls, options, mask, source_ab, hints, as_list)
            for item in items:
                item.content = content
            self._set_references(items, reference, options.reference_strength, as_list)
            results = [torch.empty(item.n, 2, *item.size, device=self.device) for item in items]

            def keep(index: int, top: int, bottom: int, L_rows: Tensor, ab_rows: Tensor) -> None:
                results[index][:, :, top:bottom] = ab_rows

            self._full_resolution(items, options, keep)
        results = [ab.to(device) for ab, device in zip(results, out_devices)]
        if confidence:
            maps = [item.confidence.to(device) for item, device in zip(items, out_devices)]
            return (results, maps) if as_list else (results[0], maps[0])
        return results if as_list else results[0]

    def _require_distribution(self, what: str) -> None:
        if self.model.output != "logits":
            raise ValueError(f"model {self.name!r} is a regression model: it predicts one colour per pixel, "
                             f"not a distribution, so it {what}")

    def _set_references(self, items: list[_Item], reference: Any, strength: float, as_list: bool) -> None:
        """Map the reference(s) to per-item logit biases over this model's bins."""
        per_image = list(reference) if as_list and isinstance(reference, (list, tuple)) else [reference] * len(items)
        if len(per_image) != len(items):
            raise ValueError(f"reference: expected one entry per image ({len(items)}), got {len(per_image)}")
        if all(r is None for r in per_image):
            return
        self._require_distribution("cannot be steered by a reference or palette")
        from .reference import histogram_on_bins, reference_logit_bias, resolve_reference

        for item, ref in zip(items, per_image):
            if ref is not None:
                probs = histogram_on_bins(resolve_reference(ref), self.bin_centers)
                item.reference_bias = reference_logit_bias(probs, strength, self.logit_fold)

    def _full_resolution(self, items: list[_Item], options: ColorizeOptions,
                         emit: Callable[[int, int, int, Tensor, Tensor], None]) -> None:
        """Network and decoding at low resolution, then upsampled ab for every band of rows of every
        item, handed to ``emit(index, top, bottom, L_rows, ab_rows)`` (the caller keeps or merges it).
        With ``confidence``, each item's ``confidence`` is filled too (upsampled like ab)."""
        confidence = options.confidence
        ab_low, guide_low, conf_low = self._predict_low(items, options)
        for index, (item, (plain, processed), guide) in enumerate(zip(items, ab_low, guide_low)):
            with stage("upsample", self.device):
                models = [self._guided_model(ab, guide, item.size) for ab in (plain, processed) if ab is not None]
                conf_model = self._guided_model(conf_low[index], guide, item.size) if confidence else None
            if confidence:
                item.confidence = torch.empty(item.n, 1, *item.size, device=self.device)
            height, width = item.size
            banded = isinstance(models[0][0], RowUpsampler)
            rows = band_rows(width) if banded else height  # a grid finer than the image: one band
            for top in range(0, height, rows):
                self._recount_threads()  # a long call follows the load between its bands
                bottom = min(height, top + rows)
                L_rows = item.L_rows(top, bottom, self.device)
                with stage("upsample", self.device):
                    ab_rows = self._ab_rows(item, models, L_rows, top, bottom, processed is not None,
                                            options.mask_colorize)
                    if conf_model is not None:
                        item.confidence[:, :, top:bottom] = apply_coefficients(*conf_model, L_rows, top).clamp_(0.0, 1.0)
                emit(index, top, bottom, L_rows, ab_rows)

    @staticmethod
    def _guided_model(ab_low: Tensor, guide: Tensor, size: tuple[int, int]) -> tuple[Any, Any]:
        A, B = guided_coefficients(ab_low, guide)
        if enlarges(tuple(ab_low.shape[-2:]), size):
            return RowUpsampler.for_maps(A, size), RowUpsampler.for_maps(B, size)
        return A, B

    def _ab_rows(self, item: _Item, models: list, L_rows: Tensor, top: int, bottom: int, has_post: bool,
                 mask_colorize: bool) -> Tensor:
        """Full-resolution ab of rows ``top:bottom``: guided upsampling of the plain (and post-processed)
        prediction, the post-processing mask and ``mask_colorize`` applied."""
        mask_rows = item.mask[:, :, top:bottom] if item.mask is not None else None
        if not has_post:
            ab = apply_coefficients(*models[0], L_rows, top)
        elif mask_rows is None:
            ab = apply_coefficients(*models[1], L_rows, top)
        else:
            from .post import blend_with_mask

            ab = blend_with_mask(apply_coefficients(*models[0], L_rows, top),
                                 apply_coefficients(*models[1], L_rows, top), mask_rows)
        if mask_colorize:
            ab = torch.lerp(item.own_ab_rows(top, bottom, self.device), ab, mask_rows)
        return ab

    def _make_items(self, Ls: list, options: ColorizeOptions, mask: Any, source_ab: Any,
                    hints: list[SparseHints | None] | None, as_list: bool) -> list[_Item]:
        """One :class:`_Item` per image: its render geometry and its per-image inputs on the device
        (``hints``: one entry per image, as :meth:`_dense_hints` or ``core.hints.hint_maps_from_images`` give)."""
        render_size = options.render_size
        items = []
        zipped = zip(Ls, _per_image(mask, "mask", len(Ls), as_list),
                     _per_image(source_ab, "source_ab", len(Ls), as_list), hints or [None] * len(Ls))
        for source, m, src, h in zipped:
            # ``source``: L* [N, 1, H, W] (colorize_L) or pixels [H, W, 1|3] (colorize_arrays)
            if isinstance(source, Tensor):
                n, _, height, width = source.shape
                item = _Item(geometry=render_geometry(height, width, render_size, self.stride, self.out_stride),
                             size=(height, width), n=n, L=source.to(device=self.device, dtype=torch.float32))
            else:
                n, (height, width) = 1, source.shape[:2]
                item = _Item(geometry=render_geometry(height, width, render_size, self.stride, self.out_stride),
                             size=(height, width), color=source)
            if m is not None:
                item.mask = mask_tensor(m, (height, width), self.device)
            if options.mask_colorize and item.mask is None:
                raise ValueError("mask_colorize needs a mask")
            if src is not None:
                item.source_ab = self._full_res(src, n, 2, (height, width), "source_ab")
            if h is not None:
                item.hints = h.expand(n)
            items.append(item)
        return items

    def _dense_hints(self, Ls: list, hint_ab: Any, hint_mask: Any, as_list: bool) -> list[SparseHints | None] | None:
        """Dense ``hint_ab`` ``[N|1, 2, H, W]`` / ``hint_mask`` ``[N|1, 1, H, W]`` (one pair, or lists
        of them in list form) -> each image's hinted pixels; None when there are none."""
        if hint_ab is None and hint_mask is None:
            return None
        found = []
        for L_i, h_ab, h_mask in zip(Ls, _per_image(hint_ab, "hint_ab", len(Ls), as_list),
                                     _per_image(hint_mask, "hint_mask", len(Ls), as_list)):
            if h_ab is None and h_mask is None:
                found.append(None)
                continue
            if h_ab is None or h_mask is None:
                raise ValueError("hint_ab and hint_mask must be given together")
            n, size = (L_i.shape[0], tuple(L_i.shape[-2:])) if isinstance(L_i, Tensor) else (1, L_i.shape[:2])
            found.append(sparse_hints(self._full_res(h_ab, n, 2, size, "hint_ab"),
                                      self._full_res(h_mask, n, 1, size, "hint_mask")))
        return found

    def _full_res(self, value: Tensor, n: int, channels: int, size: tuple[int, int], name: str) -> Tensor:
        if not isinstance(value, Tensor) or value.dim() != 4 or value.shape[1] != channels \
                or value.shape[0] not in (1, n) or tuple(value.shape[-2:]) != tuple(size):
            shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name} must be [{n},{channels},{size[0]},{size[1]}], got {shape}")
        return value.to(device=self.device, dtype=torch.float32).expand(n, -1, -1, -1)

    def _predict_low(self, items: list[_Item], options: ColorizeOptions) -> tuple[list, list, list | None]:
        """Network + decode at output resolution, batching renders of equal padded size.

        Returns per item: (ab without post, ab with post or None) ``[n, 2, oh, ow]``, the
        guide L ``[n, 1, oh, ow]`` the network saw, pooled to the output grid, and (with
        ``confidence``, else None) the confidence ``[n, 1, oh, ow]`` of the (re-weighted) distribution.
        """
        with stage("network", self.device):
            renders, raw_out = self._run_renders(items, options.batch_size)
        with stage("content", self.device):
            self._choose_content(items, renders)
        ab_low, guide_low, conf_low = [], [], []
        with stage("decode", self.device):
            for item, render, out in zip(items, renders, raw_out):
                if item.reference_bias is not None:
                    from .reference import reweight_logits

                    out = reweight_logits(out, item.reference_bias)
                g = item.geometry
                guide = F.avg_pool2d(render[:, :, : g.height, : g.width], self.out_stride)
                if item.render_hints is not None and self.model.output == "logits":
                    out = out + self.logit_fold * self._hint_bias(item, guide)
                profile = PROFILES[item.content]
                t = options.temperature * profile.temperature_scale
                plain = self.decode_output(out, temperature=t, decode=options.decode)
                if options.confidence:
                    from .confidence import confidence_from_logits

                    conf_low.append(confidence_from_logits(out, plain, self.bin_centers, self.logit_fold))
                processed = None
                if options.post:
                    processed = self.post_process(out, guide, options.post, temperature=t, decode=options.decode,
                                                  strength=options.post_strength)
                if profile.chroma_scale != 1.0:
                    plain = plain * profile.chroma_scale
                    processed = None if processed is None else processed * profile.chroma_scale
                ab_low.append((plain, processed))
                guide_low.append(guide)
        return ab_low, guide_low, (conf_low if options.confidence else None)

    def _choose_content(self, items: list[_Item], renders: list[Tensor]) -> None:
        """Resolve each item's ``content``; ``auto`` is decided on the render (L* at render size, its
        padding cropped), which costs no pass over the full-resolution image."""
        for item, render in zip(items, renders):
            g = item.geometry
            item.content = resolve_content(item.content, render[:, :, : g.height, : g.width])
        self.last_content = [item.content for item in items]

    def _run_renders(self, items: list[_Item], batch_size: int) -> tuple[list[Tensor], list[Tensor]]:
        """Render inputs and raw network outputs (cropped to the image's cells) per item."""
        renders = [item.render if item.render is not None else render_input(item.L, item.geometry) for item in items]
        for item in items:
            if item.hints is not None:
                item.render_hints = hints_for_render(item.hints, item.geometry, self.device)
        hints = [item.render_hints for item in items]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, render in enumerate(renders):
            groups.setdefault(tuple(render.shape[-2:]), []).append(index)
        raw_out: list[Tensor | None] = [None] * len(items)
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                output = self.run_network(
                    torch.cat([renders[i] for i in chunk]),
                    self._batch_hints([hints[i] for i in chunk], [renders[i] for i in chunk]),
                )
                offset = 0
                for i in chunk:
                    count = renders[i].shape[0]
                    geometry = items[i].geometry
                    raw_out[i] = output[offset : offset + count, :, : geometry.out_height, : geometry.out_width]
                    offset += count
        return renders, raw_out

    def _hint_bias(self, item: _Item, guide: Tensor) -> Tensor:
        """``core.hint_spread.hint_log_bias`` for one item's render hints on its output grid ``[n, Q, oh, ow]``;
        ``guide`` is the render's L* pooled to that grid."""
        from .hint_spread import hint_log_bias, hints_on_grid

        g = item.geometry
        ab, mask = item.render_hints
        ab, hinted = hints_on_grid(ab[:, :, : g.height, : g.width].to(self.device),
                                   mask[:, :, : g.height, : g.width].to(self.device), self.out_stride)
        return hint_log_bias(guide.float(), ab, hinted, self.bin_centers)

    def _batch_hints(self, hints: list, renders: list[Tensor]) -> tuple[Tensor, Tensor] | None:
        if not self.accepts_hints or all(h is None for h in hints):
            return None
        abs_, masks = [], []
        for h, render in zip(hints, renders):
            if h is None:
                shape = render.shape
                h = (render.new_zeros(shape[0], 2, *shape[-2:]), render.new_zeros(shape[0], 1, *shape[-2:]))
            abs_.append(h[0])
            masks.append(h[1])
        return torch.cat(abs_), torch.cat(masks)

    # ----------------------------------------------------------------- stages (also timed by the bench)

    def run_network(self, L_render: Tensor, hints: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """The network on ``[B, 1, Hp, Wp]`` L* renders -> its raw output (logits or ab), float32,
        at output resolution including the padded cells."""
        with torch.inference_mode():
            x = L_render.to(device=self.device, dtype=self.dtype)
            if hints is not None and self.accepts_hints:
                out = self.model(x, hints[0].to(x.dtype), hints[1].to(x.dtype))
            else:
                out = self.model(x)
        return out.float()

    def decode_output(self, output: Tensor, *, temperature: float = DEFAULT_TEMPERATURE,
                      decode: str = "annealed") -> Tensor:
        """Raw network output ``[N, Q|2, h, w]`` -> ab ``[N, 2, h, w]`` float32."""
        if self.model.output == "ab":
            return output.float()
        return decode_logits(output, self.bin_centers, logit_fold=self.logit_fold, method=decode,
                             temperature=temperature)

    def post_process(self, output: Tensor, guide: Tensor, steps: Sequence[str], *, temperature: float,
                     decode: str, strength: float) -> Tensor:
        """Decode with ``core.post`` steps at output resolution; ``guide`` is L ``[N, 1, h, w]``."""
        from .post import apply_post

        is_logits = self.model.output == "logits"
        return apply_post(
            tuple(steps),
            logits=output if is_logits else None,
            ab=None if is_logits else output,
            L=guide,
            bin_centers=self.bin_centers,
            logit_fold=self.logit_fold,
            temperature=temperature,
            decode=decode,
            strength=strength,
        )

    # ----------------------------------------------------------------- arrays and images

    def colorize_array(self, pixels: np.ndarray, options: ColorizeOptions | None = None, **opts: Any) -> np.ndarray:
        """Colorize pixels.

        Args:
            pixels: ``[H, W]`` or ``[H, W, 1..4]`` (gray, gray+alpha, RGB, RGBA), uint8 | uint16 |
                float32 in [0, 1]; a colour input is treated as its L*.
            options: the settings as one :class:`ColorizeOptions`; then ``opts`` hold only the
                per-image inputs (``mask``, ``hints``, ``hint_ab``, ``hint_mask``, ``reference``).
            **opts: as :meth:`colorize_L`; ``mask`` is ``[H, W]``; ``hint_ab`` ``[H, W, 2]`` and
                ``hint_mask`` ``[H, W]`` arrays are accepted too, and ``hints``: an RGBA hint image
                ``[H, W, 4]`` (or PIL image) whose pixels with alpha > 0 are colour hints, or the
                hinted pixels as ``core.hints.SparseHints`` (the model must accept hints).
        Returns:
            ``[H, W, 3|4]`` RGB(A) of the input's dtype, alpha unchanged; its L* equals the input's
            up to the output's rounding. With ``mask_colorize``, pixels where the mask is 0 are
            the input's own. With ``confidence=True`` the pair (pixels, ``[H, W]`` float32
            confidence in [0, 1]).
        """
        for key in _PER_IMAGE_OPTIONS:
            if opts.get(key) is not None:
                opts[key] = [opts[key]]
        return self.colorize_arrays([pixels], options, **opts)[0]

    def colorize_arrays(self, images: Sequence[np.ndarray], options: ColorizeOptions | None = None,
                        **opts: Any) -> list[np.ndarray]:
        """:meth:`colorize_array` for several images in one go (same-size renders share a batch).

        The per-image options ``mask``, ``hints``, ``hint_ab`` and ``hint_mask`` are lists, one
        entry per image (None = none); ``reference`` is one for all or a list. With
        ``confidence=True`` returns a list of (pixels, confidence) pairs.
        """
        images = [check_pixels(p) for p in images]
        parts = [split_alpha(p) for p in images]
        hints = self._array_hints(opts, [color for color, _ in parts])
        if options is None:
            if opts.get("confidence", False):
                self._require_distribution("has no confidence map")
            options = ColorizeOptions.from_opts(opts)
        else:
            given_twice = sorted(set(opts) & _OPTION_FIELDS)
            if given_twice:
                raise TypeError(f"{', '.join(given_twice)}: give settings either in options or as keywords, not both")
            if options.confidence:
                self._require_distribution("has no confidence map")
        unknown = set(opts) - _ARRAY_OPTIONS
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}")
        mask_colorize, confidence = options.mask_colorize, options.confidence
        with torch.no_grad(), self._threads():
            items = self._make_items([color for color, _ in parts], options, opts.get("mask"), None, hints, True)
            self._set_references(items, opts.get("reference"), options.reference_strength, True)
            with stage("lab", self.device):
                for item in items:
                    item.render = render_from_pixels(item.color, item.geometry, self.device)
                    item.content = options.content
            outputs = []
            for (color, alpha), item in zip(parts, items):
                out = np.empty((*item.size, 3 if alpha is None else 4), dtype=color.dtype)
                if alpha is not None:
                    out[:, :, 3] = alpha
                outputs.append(out)

            def merge(index: int, top: int, bottom: int, L_rows: Tensor, ab_rows: Tensor) -> None:
                with stage("merge", self.device):
                    rgb = outputs[index][top:bottom, :, :3]
                    merge_to_pixels(L_rows, ab_rows, rgb.dtype, out=rgb)
                    item, color = items[index], parts[index][0]
                    if mask_colorize and color.shape[2] == 3:
                        untouched = (item.mask[0, 0, top:bottom] == 0).cpu().numpy()
                        rgb[untouched] = color[top:bottom][untouched]

            self._full_resolution(items, options, merge)
        if confidence:
            return [(out, item.confidence[0, 0].cpu().numpy()) for out, item in zip(outputs, items)]
        return outputs

    def _array_hints(self, opts: dict, colors: list[np.ndarray]) -> list[SparseHints | None] | None:
        """Take the per-image hint options out of ``opts`` (in place) -> each image's hinted pixels.

        ``hints``: per image an RGBA hint image or :class:`~core.hints.SparseHints` (the model must
        take hints); or ``hint_ab`` ``[H, W, 2]`` and ``hint_mask`` ``[H, W]`` arrays per image.
        """
        hints, hint_ab, hint_mask = opts.pop("hints", None), opts.pop("hint_ab", None), opts.pop("hint_mask", None)
        sizes = [color.shape[:2] for color in colors]
        if hints is not None:
            hints = list(hints)
            if len(hints) != len(sizes):
                raise ValueError(f"hints: expected one entry per image ({len(sizes)}), got {len(hints)}")
            if hint_ab is not None or hint_mask is not None:
                raise ValueError("give either hints (an RGBA image) or hint_ab and hint_mask, not both")
            if any(h is not None for h in hints) and not self.accepts_hints:
                raise ValueError(f"model {self.name!r} does not take colour hints; choose a model that does "
                                 f"(such as siggraph17)")
            return hint_maps_from_images(hints, sizes)
        if hint_ab is None and hint_mask is None:
            return None
        dense = [[hint_tensor(h, channels) for h in (value or [None] * len(colors))]
                 for value, channels in ((hint_ab, 2), (hint_mask, 1))]
        return self._dense_hints(colors, *dense, True)

    def colorize_image(self, image: Image.Image, *, provenance: bool = True, **opts: Any) -> Image.Image:
        """Colorize a PIL image; returns RGB (or RGBA when it has alpha), 8 bits per channel
        (Pillow has no 16-bit RGB mode; use :meth:`colorize_array` or ``core.imageio`` for that).
        The ICC profile (when RGB) is kept in ``info``; with ``provenance`` (the default) the
        record's XMP packet is ``info["xmp"]`` (pass it on with ``save(..., xmp=out.info["xmp"])``)."""
        from .imageio import pil_to_pixels, rgb_profile_or_none

        image.load()
        pixels, icc = pil_to_pixels(image, image.info.get("icc_profile"))
        out = self.colorize_array(pixels, **opts)
        confidence_map = None
        if opts.get("confidence"):
            from .confidence import confidence_to_gray8

            out, confidence_map = out
            confidence_map = Image.fromarray(confidence_to_gray8(confidence_map), "L")
        out = convert_depth(out, np.uint8)
        result = Image.fromarray(out, "RGBA" if out.shape[2] == 4 else "RGB")
        profile = rgb_profile_or_none(icc)
        if profile:
            result.info["icc_profile"] = profile
        if provenance:
            from .provenance import record_from_settings, to_xmp

            result.info["xmp"] = to_xmp(record_from_settings(self.settings(**opts)))
        return (result, confidence_map) if confidence_map is not None else result


# --------------------------------------------------------------------------------- module-level API

def _per_image(value: Any, name: str, count: int, as_list: bool) -> list:
    """A per-image input as one entry per image: the list itself in list form (checked to have
    ``count`` entries), else ``[value]``; None -> ``[None] * count``."""
    if value is None:
        return [None] * count
    if as_list:
        values = list(value)
        if len(values) != count:
            raise ValueError(f"{name}: expected one entry per image ({count}), got {len(values)}")
        return values
    return [value]


_PER_IMAGE_OPTIONS = ("mask", "hints", "hint_ab", "hint_mask")
_OPTION_FIELDS = frozenset(f.name for f in fields(ColorizeOptions))
_ARRAY_OPTIONS = _OPTION_FIELDS | {"mask", "reference"}  # after the hint options were taken out
_COLORIZERS: dict[tuple[str, str, Any], Colorizer] = {}


def get_colorizer(model: str | nn.Module = "default", device: str = "auto", half: bool | None = None,
                  **load: Any) -> Colorizer:
    """A process-wide ``Colorizer`` per (model, device, half), created on first use."""
    if not isinstance(model, str):
        return Colorizer(model, device, half, **load)
    key = (model, str(resolve_device(device)), half)
    if key not in _COLORIZERS:
        _COLORIZERS[key] = Colorizer(model, device, half, **load)
    return _COLORIZERS[key]


def colorize(image: Image.Image | np.ndarray, model: str | nn.Module = "default", *, device: str = "auto",
             half: bool | None = None, provenance: bool = True, **opts: Any) -> Image.Image | np.ndarray:
    """Colorize a PIL image or a pixel array with a cached ``Colorizer``; same kind out as in.

    ``opts`` are those of :meth:`Colorizer.colorize_L` (temperature, decode, render_size, post,
    post_strength, mask, mask_colorize, hint_ab, hint_mask, content, reference, reference_strength,
    confidence) plus ``hints``, an RGBA hint image (PIL or ``[H, W, 4]``) for models that take hints.
    With ``confidence=True`` returns (image, confidence): a PIL "L" image (white = confident) for
    PIL input, a ``[H, W]`` float32 array in [0, 1] for array input.
    A PIL result carries the provenance record's XMP in ``info["xmp"]`` unless ``provenance`` is False
    (an array carries nothing).
    """
    colorizer = get_colorizer(model, device, half)
    if isinstance(image, Image.Image):
        return colorizer.colorize_image(image, provenance=provenance, **opts)
    if isinstance(image, np.ndarray):
        return colorizer.colorize_array(image, **opts)
    raise TypeError(f"colorize() takes a PIL image or a numpy array, got {type(image).__name__}")
