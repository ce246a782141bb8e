"""Safe checkpoint reading and the one-time ``.pth`` -> ``.safetensors`` conversion.

Checkpoints are opened with ``torch.load(weights_only=True)``: only tensors and plain
containers are unpickled, so a file holding any other pickled object is refused before that
object can run code. torch is imported lazily so ``weights list`` stays fast.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import discard, move_into_place, temp_path_for
from .errors import CacheError, CheckpointError, UnsafeCheckpoint

if TYPE_CHECKING:
    from torch import Tensor

# Keys under which training scripts commonly nest the model's state dict, most specific first.
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "params_ema", "params", "generator")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_WEIGHTS_ONLY_FAILED = "Weights only load failed"


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state dict inside a PyTorch checkpoint, loaded on CPU without unpickling objects."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if _WEIGHTS_ONLY_FAILED not in message:
            raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint") from exc
        found = _UNSUPPORTED_GLOBAL.search(message)
        what = f" ({found.group(1)})" if found else ""
        raise UnsafeCheckpoint(
            f"{path.name} holds a pickled object that is not a tensor{what}; refusing to load it "
            "(only checkpoints of plain tensors are accepted)"
        ) from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # torch raises assorted types (KeyError, RuntimeError) on junk
        raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint") from exc
    return unwrap_state_dict(obj, path.name)


def unwrap_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    """Find the ``name -> Tensor`` mapping in a loaded checkpoint.

    Accepts a bare state dict, one nested under a usual key (``{"state_dict": ...}``, also
    several levels deep), or a dict with a single dict value; strips a ``module.`` prefix
    left by ``DataParallel``.
    """
    import torch

    current = obj
    for _ in range(4):
        if not isinstance(current, Mapping):
            break
        if current and all(isinstance(v, torch.Tensor) for v in current.values()):
            return _strip_module_prefix(dict(current), source)
        nested = next((current[k] for k in NESTING_KEYS if isinstance(current.get(k), Mapping)), None)
        if nested is None:
            dict_values = [v for v in current.values() if isinstance(v, Mapping)]
            nested = dict_values[0] if len(dict_values) == 1 else None
        if nested is None:
            break
        current = nested
    if isinstance(current, Mapping) and current:
        bad = next(k for k, v in current.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(
            f"{source}: entry {bad!r} of the state dict is a {type(current[bad]).__name__}, not a tensor"
        )
    raise CheckpointError(f"{source} holds no state dict of tensors")


def _strip_module_prefix(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    if not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{source}: state dict keys must be strings")
    if all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def save_safetensors(tensors: Mapping[str, Tensor], dest: Path, metadata: Mapping[str, str]) -> None:
    """Write ``tensors`` + string ``metadata`` to ``dest`` atomically (temp file, fsync, replace)."""
    from safetensors.torch import save_file

    # safetensors refuses views and tensors sharing storage; private contiguous copies are safe.
    plain = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()}
    tmp = temp_path_for(dest)
    try:
        save_file(plain, str(tmp), metadata=dict(metadata))
        move_into_place(tmp, dest)
    except OSError as exc:
        discard(tmp)
        raise CacheError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        discard(tmp)
        raise


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a ``.safetensors`` file (without reading its tensors)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except FileNotFoundError as exc:
        raise CheckpointError(f"no such file: {path}") from exc
    except Exception as exc:  # safetensors raises SafetensorError for malformed headers
        raise CheckpointError(f"{path.name} is not a valid safetensors file ({_first_line(exc)})") from exc


def load_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a weights file.

    ``.safetensors`` files are read with safetensors; anything else is treated as a PyTorch
    checkpoint, read safely (:func:`read_checkpoint`), with empty metadata.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        return read_checkpoint(path), {}
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path.name} is not a valid safetensors file ({_first_line(exc)})") from exc
    return tensors, metadata


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
