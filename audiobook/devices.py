"""Where the model runs: the device names, what this machine has, and the one policy when a device is missing.

Names: ``auto``, ``cpu``, ``cuda`` (NVIDIA), ``rocm`` (AMD; torch calls it ``cuda`` too), ``mps`` (Apple; ONNX
Runtime's CoreML provider), ``directml`` (any DirectX 12 GPU on Windows, through onnxruntime-directml: the onnx
backend only).
Every list of device names (click's choices, the worker's arguments, both backends) is ``DEVICE_CHOICES``.

Policy: ``auto`` takes the best device that the chosen backend can use on this machine. A device named
explicitly must be there for that backend; if it is not, that is a ``ModelError`` naming the devices that are,
before any worker starts. Nothing ever falls back to another device silently: a GPU job that quietly runs on
a CPU takes twenty times longer than its owner planned for.
"""

from __future__ import annotations

import functools
import logging
import os

from .errors import ModelError

log = logging.getLogger(__name__)

# Ops MPS lacks fall back to the CPU instead of failing; must be in the environment before torch runs one.
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "rocm", "mps", "directml")
"""What ``--device`` accepts."""
GPUS = ("cuda", "rocm", "mps", "directml")
PREFERENCE = ("cuda", "rocm", "mps", "directml", "cpu")
"""``auto`` takes the first of these that the backend can use."""

ONNX_PROVIDERS = {
    "cuda": ("CUDAExecutionProvider",),
    # MIGraphX is AMD's current provider; ROCm's left ONNX Runtime in 1.23 but may still be installed.
    "rocm": ("MIGraphXExecutionProvider", "ROCMExecutionProvider"),
    "mps": ("CoreMLExecutionProvider",),
    # Windows GPUs of any make; torch does not see them, so only an onnxruntime build with the provider does.
    "directml": ("DmlExecutionProvider",),
    "cpu": ("CPUExecutionProvider",),
}
"""The ONNX Runtime execution providers that run on each device, best first."""


@functools.cache
def machine_devices() -> frozenset[str]:
    """The devices this machine has, as torch sees them (``cpu`` always)."""
    found = {"cpu"}
    try:
        import torch
    except ImportError:  # the onnx backend runs without torch
        return frozenset(found)
    if torch.cuda.is_available():
        found.add("rocm" if getattr(torch.version, "hip", None) else "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.add("mps")
    return frozenset(found)


def onnx_devices() -> frozenset[str]:
    """The devices this onnxruntime build has providers for (``cpu`` always)."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return frozenset(d for d, providers in ONNX_PROVIDERS.items() if d == "cpu" or have & set(providers))


def backend_devices(backend: str) -> list[str]:
    """The devices ``backend`` (``torch`` or ``onnx``) can run on here, best first."""
    usable = machine_devices()
    if backend == "onnx":
        # onnxruntime-gpu lists its CUDA provider even on a machine without a GPU: both must agree. DirectML is
        # the exception: torch cannot see its GPUs, and onnxruntime-directml is only installed where there is one.
        usable = (usable | {"directml"}) & onnx_devices()
    return [d for d in PREFERENCE if d in usable]


def resolve_device(requested: str | None, backend: str) -> str:
    """The concrete device for ``requested`` (``auto`` or a name) on ``backend``; ``ModelError`` if absent."""
    requested = (requested or "auto").lower()
    if requested not in DEVICE_CHOICES:
        raise ModelError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    available = backend_devices(backend)
    if requested == "auto":
        return available[0]
    if requested in available:
        return requested
    raise ModelError(
        f"device {requested!r} is not available to the {backend} backend on this machine "
        f"(available: {', '.join(available)}); {_fix(requested, backend)}"
    )


def torch_device(device: str) -> str:
    """The name torch uses for one of ours (ROCm GPUs are ``cuda`` to torch)."""
    return "cuda" if device == "rocm" else device


def _fix(device: str, backend: str) -> str:
    if device == "directml":
        if backend == "torch":
            return "DirectML runs the onnx backend only: use --backend onnx"
        return (
            "install onnxruntime-directml (Windows): pip uninstall -y onnxruntime && pip install onnxruntime-directml"
        )
    if backend == "onnx" and device in machine_devices():
        if device == "cuda":
            return "for ONNX Runtime on NVIDIA GPUs: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
        return f"install an onnxruntime build with a {device} provider, or use --backend torch"
    return "use --device cpu (or auto), or install the GPU build of torch for this machine"
