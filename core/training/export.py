"""Writing a trained model as a shippable ``safetensors`` file (fp16 weights + metadata)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save

from ..fs import write_atomically
from ..models.tinct_unet import TinctUNet


def export_model(model: TinctUNet, path: Path, *, name: str, license: str, provenance: dict) -> Path:
    """Save ``model`` to ``path`` (atomically) with the metadata :mod:`core.loading` needs.

    Float tensors are stored as fp16 (the bin centres, multiples of 10 up to 110, are exact in fp16);
    BatchNorm's integer counters are dropped.
    """
    tensors = {
        k: (v.half() if v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    metadata = {
        "arch": "tinct_unet",
        "config": json.dumps(model.config),
        "logit_fold": "1.0",
        "name": name,
        "license": license,
        "trained": json.dumps(provenance),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = save(tensors, metadata=metadata)
    write_atomically(path, lambda f: f.write(blob))
    return path
