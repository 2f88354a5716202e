"""Pick the torch device: ``auto``, ``cpu``, ``cuda`` (also ROCm builds) or ``mps``."""

from __future__ import annotations

import logging
import os

from ..errors import ModelError

log = logging.getLogger(__name__)

# Ops MPS lacks fall back to the CPU instead of failing; must be in the environment before torch runs one.
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

DEVICES = ("auto", "cpu", "cuda", "rocm", "mps")


def resolve_device(requested: str) -> str:
    """Return ``cpu``, ``cuda``, ``rocm`` or ``mps`` for a requested device; ``ModelError`` if it is absent.

    ``rocm`` is a CUDA device on a ROCm build of torch (torch still calls it ``cuda``; see ``torch_device``).
    """
    import torch

    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise ModelError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    gpu = "rocm" if getattr(torch.version, "hip", None) else "cuda"
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if requested == "auto":
        device = gpu if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    elif requested in ("cuda", "rocm"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"device {requested!r} requested but torch sees no GPU "
                f"(torch {torch.__version__}); use --device cpu or install a GPU build of torch"
            )
        device = gpu
    elif requested == "mps":
        if not has_mps:
            raise ModelError("device 'mps' requested but Apple MPS is not available; use --device cpu")
        device = "mps"
    else:
        device = "cpu"
    log.info("device=%s (requested %s)", device, requested)
    return device


def torch_device(device: str) -> str:
    """The name torch uses for a device from ``resolve_device``."""
    return "cuda" if device == "rocm" else device
