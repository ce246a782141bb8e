"""Model registry: one module per architecture, registered by name (timm-style).

Every colorization network registered here follows one contract, so the pipeline,
post-processing, video path and GIMP worker treat them alike:

- ``forward(L, hint_ab=None, hint_mask=None) -> Tensor``
    * ``L``: ``[N, 1, H, W]`` float, CIE L* in ``[0, 100]`` (raw, un-normalised; each model
      normalises its own input). ``H`` and ``W`` are multiples of ``model.stride``.
    * ``hint_ab``: ``[N, 2, H, W]`` ab hints in ab units (0 where there is no hint), and
      ``hint_mask``: ``[N, 1, H, W]`` in ``{0, 1}``. Only used where ``model.accepts_hints``;
      other models ignore them.
- ``model.output``: ``"logits"`` -> forward returns class logits ``[N, Q, H/out_stride, W/out_stride]``
  over the bins in ``model.bin_centers`` (``[Q, 2]`` float32, ab units, sorted by (a, b));
  ``"ab"`` -> forward returns ab directly, ``[N, 2, H/out_stride, W/out_stride]`` in ab units.
- ``model.logit_fold``: float. The model's *trained* distribution is ``softmax(logits / logit_fold)``;
  the annealed mean at temperature T is ``softmax(logits / (logit_fold * T))``. 1.0 for our models;
  2.606 for the official ECCV16 PyTorch port, whose Caffe-era "rebalance/reheat" scale was folded
  into the last layer (so the user's T means the same thing for every model).
- ``model.stride`` (input multiple) and ``model.out_stride`` (output downsampling): ints.
- ``model.accepts_hints``: bool.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register an architecture constructor under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def create_model(name: str, **config) -> nn.Module:
    """Build the architecture ``name`` with random (or default) weights."""
    _import_all()
    try:
        ctor = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return ctor(**config)


def list_architectures() -> list[str]:
    """Names of every registered architecture, sorted."""
    _import_all()
    return sorted(_REGISTRY)


def _import_all() -> None:
    # Importing the modules runs their @register_model decorators.
    from . import eccv16, siggraph17, tinct_unet  # noqa: F401
