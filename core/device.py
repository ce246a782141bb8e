"""Choosing the torch device and compute dtype for inference."""

from __future__ import annotations

import torch

from .errors import UsageError

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


class DeviceError(UsageError, ValueError):
    """A requested device does not exist or is not available on this machine (``--device`` is wrong here)."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn a user's device string into a usable ``torch.device``.

    Args:
        name: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``,
            or a ``torch.device``.
    Returns:
        The device.
    Raises:
        DeviceError: the device is unknown or not available here.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = name.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)} (or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("device 'cuda' requested but CUDA is not available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {text!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' requested but Apple MPS is not available on this machine (use --device cpu)")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    return device


def inference_dtype(device: torch.device, half: bool | None = None) -> torch.dtype:
    """The dtype the network runs in: float16 on CUDA unless ``half`` is False; float32 elsewhere.

    Args:
        device: where the network runs.
        half: ``None`` picks automatically; ``True`` forces float16 (CUDA/MPS only); ``False`` forces float32.
    Raises:
        DeviceError: half precision requested on the CPU, where it is slower and poorly supported.
    """
    if half is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if half and device.type == "cpu":
        raise DeviceError("half precision is not supported on the CPU; leave it automatic or use a GPU")
    return torch.float16 if half else torch.float32
