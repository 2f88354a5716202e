"""Choose and load a backend: ``auto``, ``torch`` (kokoro's KModel) or ``onnx`` (onnxruntime)."""

from __future__ import annotations

from .base import Backend

DEFAULT_REPO = "hexgrad/Kokoro-82M"


def load_backend(backend: str = "auto", model: str | None = None, device: str = "auto",
                 threads: int | None = None) -> Backend:
    """Load one model once; the caller keeps it for every chunk of the job."""
    if backend == "torch" or (backend == "auto" and not _looks_like_onnx(model)):
        from .torch_backend import TorchBackend

        return TorchBackend.load(model or DEFAULT_REPO, device)
    from .onnx_backend import OnnxBackend

    return OnnxBackend.load(model or "bundled", device, threads)


def _looks_like_onnx(model: str | None) -> bool:
    return model is not None and (model == "bundled" or model.endswith(".onnx"))
