"""``--backend auto`` with the bundled weights: which way of running them is fastest here, measured once.

The bundled Kokoro-82M v1.0 weights run three ways: the int8 ONNX graph (``onnx``/``bundled``), the float32
graph dequantized from it (``onnx``/``bundled-float32``), and kokoro's torch modules on the converted weights
(``torch``/``bundled``, batched on a GPU). Which is fastest depends on the machine: int8 kernels against float
ones on this CPU, a GPU or none. So the first job that needs the choice speaks one short paragraph with each
way, on the device ``auto`` gives it and with the threads the worker pool would give one worker, and keeps the
result in ``calibration.json`` in the cache (beside the bundled model), keyed by this machine and the model.
Every later job reads it. The choice and its measured speed are shown to the user; a job keeps the way it
started with (it is an audio setting), so a new measurement never changes a job halfway.

``AUDIOBOOK_CALIBRATE=0`` skips the measurement: ``auto`` then takes the int8 graph.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .engine import bundled
from .errors import AudiobookError

log = logging.getLogger(__name__)

CANDIDATES = (("onnx", bundled.BUNDLED), ("onnx", bundled.BUNDLED_FLOAT), ("torch", bundled.BUNDLED))
"""(backend, model) ways to run the bundled weights, the default first."""
CACHE_NAME = "calibration.json"
WARM_UP = "Good evening."
TEXT = (
    "The ferry left the harbour a little after six. Most of the passengers stayed below with their coffee, "
    "but an old man stood at the rail the whole way across, watching the lighthouse grow smaller until it "
    "was only a spark on the grey water."
)
"""What each way speaks: about 230 characters, some 14 seconds of speech, a few seconds on a CPU."""


@dataclass(frozen=True)
class Measurement:
    """How fast one way ran here: characters per second of one worker, or why it could not run."""

    backend: str
    model: str
    device: str = ""
    threads: int = 0
    chars_per_s: float = 0.0
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.backend} {self.model}"


@dataclass(frozen=True)
class Calibration:
    """The measurements of one machine and model, and when they were taken."""

    key: str
    measured_at: str
    results: tuple[Measurement, ...]

    @property
    def best(self) -> Measurement:
        """The fastest way that ran; the default way when none did."""
        ran = [m for m in self.results if not m.error and m.chars_per_s > 0]
        if not ran:
            return Measurement(*CANDIDATES[0])
        return max(ran, key=lambda m: m.chars_per_s)

    def summary(self) -> str:
        """``onnx bundled-float32 on cpu, 27.3 chars/s per worker (others: onnx bundled 24.1, ...)``"""
        best = self.best
        others = ", ".join(
            f"{m.label} {m.chars_per_s:.1f}" if not m.error else f"{m.label}: {m.error}"
            for m in self.results
            if (m.backend, m.model) != (best.backend, best.model)
        )
        text = f"{best.label} on {best.device or 'cpu'}, {best.chars_per_s:.1f} chars/s per worker"
        return f"{text} (others: {others})" if others else text

    def to_dict(self) -> dict:
        return {"measured_at": self.measured_at, "results": [asdict(m) for m in self.results]}

    @classmethod
    def from_dict(cls, key: str, data: dict) -> Calibration:
        return cls(key, str(data["measured_at"]), tuple(Measurement(**m) for m in data["results"]))


def enabled() -> bool:
    """False when ``AUDIOBOOK_CALIBRATE=0``: ``auto`` takes the default way without measuring."""
    return os.environ.get("AUDIOBOOK_CALIBRATE", "1").strip().lower() not in ("0", "no", "false", "off")


def fastest() -> Calibration:
    """This machine's calibration for the bundled weights: from the cache, else measured now and cached."""
    key = machine_key()
    cached = _read_cache().get(key)
    if cached is not None:
        try:
            calibration = Calibration.from_dict(key, cached)
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed calibration in %s; measuring again", cache_path())
        else:
            log.info("auto: %s (measured on this machine %s)", calibration.summary(), calibration.measured_at)
            return calibration
    log.info("auto: measuring which way runs the bundled model fastest on this machine (once)...")
    calibration = Calibration(key, _now(), tuple(measure(backend, model) for backend, model in CANDIDATES))
    _write_cache(key, calibration)
    log.info("auto: %s; saved in %s", calibration.summary(), cache_path())
    return calibration


def measure(backend: str, model: str, text: str = TEXT) -> Measurement:
    """Speak ``text`` once (after a short warm-up) the way a worker would; a failure is a measurement too."""
    from .devices import resolve_device
    from .pool import layout

    try:
        device = resolve_device("auto", backend)
        threads = layout(device).threads
        elapsed = _speak(backend, model, device, threads, text)
    except (AudiobookError, OSError, RuntimeError, ImportError) as e:
        log.info("auto: %s %s cannot run here: %s", backend, model, e)
        return Measurement(backend, model, error=str(e).splitlines()[0][:200])
    finally:
        _release()
    measured = Measurement(backend, model, device, threads, round(len(text) / elapsed, 2))
    log.debug("auto: %s", measured)
    return measured


def _speak(backend: str, model: str, device: str, threads: int, text: str) -> float:
    """Seconds to speak ``text`` with a freshly loaded model, warmed up first."""
    from .engine.core import Engine
    from .engine.loading import ModelSource, load_backend
    from .engine.voices import VoiceSpec

    with _torch_threads(threads):
        engine = Engine(load_backend(ModelSource(backend, model), device, threads))
        voice = VoiceSpec.parse(bundled.DEFAULT_VOICE)
        engine.synthesize(WARM_UP, voice, lang="a")
        started = time.perf_counter()
        engine.synthesize(text, voice, lang="a")
        return time.perf_counter() - started


def machine_key() -> str:
    """What the measurement depends on: the processor, its cores, the GPU, the runtimes, the model."""
    from .devices import machine_devices
    from .pool import cores

    parts = [platform.machine(), _processor(), f"{cores()} cores", "+".join(sorted(machine_devices()))]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    parts += [f"audiobook {__version__}", f"model {bundled.MODEL_SHA256[:16]}"]
    return " | ".join(parts)


def cache_path() -> Path:
    return bundled.cache_dir() / CACHE_NAME


def _processor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, calibration: Calibration) -> None:
    from .atomic import write_atomic

    data = {**_read_cache(), key: calibration.to_dict()}
    try:
        cache_path().parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_path(), (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    except OSError as e:  # a read-only cache costs a measurement per job, nothing else
        log.warning("cannot save the calibration in %s: %s", cache_path(), e)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's thread count as a worker's would be, put back after."""
    try:
        import torch
    except ImportError:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _release() -> None:
    """Free the model just measured before the next one loads."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
