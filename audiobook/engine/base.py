"""The small interface every synthesis backend implements.

A backend turns one phoneme string (at most ``MAX_PHONEMES`` long) plus a style vector into audio. Everything
around it (G2P, splitting text so nothing is truncated, voices and blends, seeding, peak limiting, WAV output)
lives in the shared engine, so the torch and ONNX backends behave the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_PHONEMES = 510
"""Kokoro's context: 512 tokens minus the two padding tokens. Longer input is truncated by kokoro."""

STYLE_DIM = 256
"""A voice pack is an array of shape (N, 1, 256): one style vector per phoneme-count bucket."""

SAMPLES_PER_FRAME = 600
"""Audio samples per duration frame at 24 kHz (25 ms): kokoro's ``pred_dur`` counts these frames."""


@dataclass(frozen=True)
class BatchRow:
    """One piece's audio, and its timing when the backend knows it."""

    audio: np.ndarray
    """float32 mono at 24 kHz; not peak-limited."""
    phonemes: str
    """What the model was fed: the piece, less any characters its vocabulary lacks when ``durations`` is set."""
    durations: np.ndarray | None = None
    """int64 frames (``SAMPLES_PER_FRAME`` samples) per token: the start boundary token, one per character of
    ``phonemes``, the end boundary token (kokoro's ``pred_dur``); each at least 1, summing to the audio's
    frames. ``None`` when the backend cannot say (the bundled ONNX graph returns audio only)."""

    @property
    def frames(self) -> int:
        """Duration frames in this row's audio."""
        return len(self.audio) // SAMPLES_PER_FRAME


class Backend(ABC):
    """One loaded model on one device. Created once per worker process, used for many chunks."""

    name: str
    """``torch`` or ``onnx``."""
    device: str
    """Where it runs: ``cpu``, ``cuda``, ``rocm``, ``mps``."""
    model_id: str
    """What was loaded: a Hugging Face repo id, a local path, or ``bundled``."""

    @abstractmethod
    def voice_names(self) -> list[str]:
        """The voices this model offers, sorted."""

    @abstractmethod
    def voice_pack(self, name: str) -> np.ndarray:
        """The float32 pack of shape (N, 1, 256) for a voice name; ``ModelError`` listing voices if unknown."""

    @abstractmethod
    def infer(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> np.ndarray:
        """Synthesize one phoneme string (len <= MAX_PHONEMES) to float32 mono audio at 24 kHz.

        ``style`` has shape (1, 256). The same arguments give bit-identical audio on the same machine:
        ``seed`` fixes the decoder's noise.
        """

    def infer_batch(
        self, pieces: Sequence[str], styles: Sequence[np.ndarray], speeds: Sequence[float], seeds: Sequence[int]
    ) -> list[BatchRow]:
        """Synthesize the pieces of one chunk: one row per piece, in the order given.

        This one calls ``infer`` piece by piece; a backend that can run several pieces at once overrides it.
        """
        return [
            BatchRow(self.infer(piece, style, speed, seed), piece)
            for piece, style, speed, seed in zip(pieces, styles, speeds, seeds, strict=True)
        ]
