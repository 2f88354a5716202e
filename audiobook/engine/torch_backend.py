"""The torch backend: kokoro's ``KModel`` from a Hugging Face repo id or a local model directory."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from ..devices import torch_device
from ..errors import ModelError, SynthesisError
from . import hub
from .base import MAX_PHONEMES, Backend, TimedAudio, check_timed
from .voices import check_pack, unknown_voice

log = logging.getLogger(__name__)


class TorchBackend(Backend):
    """One ``KModel`` in eval mode on one device, with the voice packs of its model directory."""

    name = "torch"

    def __init__(self, model, model_dir: Path, model_id: str, device: str) -> None:  # noqa: ANN001 - KModel
        self.model = model
        self.model_dir = model_dir
        self.model_id = model_id
        self.device = device
        self._voices: dict[str, np.ndarray] = {}
        self._warned_symbols: set[str] = set()

    @classmethod
    def load(cls, model: str, device: str, revision: str | None = None) -> TorchBackend:
        """Load ``model`` (a local directory, or an HF repo id at ``revision``) once onto ``device``.

        ``device`` is concrete (``cpu``, ``cuda``, ``rocm``, ``mps``): see :mod:`audiobook.devices`.
        """
        local = Path(model).expanduser()
        model_dir = local if local.is_dir() else hub.snapshot(model, revision)
        config_path, weights = _model_files(model_dir)
        config = json.loads(config_path.read_text(encoding="utf-8"))
        return cls(_build_kmodel(model, config, weights, device), model_dir, model, device)

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
        return self._forward(phonemes, style, speed, seed).audio

    def infer_timed(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> TimedAudio:
        return check_timed(self._forward(phonemes, style, speed, seed))

    def _forward(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> TimedAudio:
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
        return TimedAudio(audio, durations, kept)

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
