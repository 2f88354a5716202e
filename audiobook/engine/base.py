"""The small interface every synthesis backend implements.

A backend turns one phoneme string (at most ``MAX_PHONEMES`` long) plus a style vector into audio. Everything
around it (G2P, splitting text so nothing is truncated, voices and blends, seeding, peak limiting, WAV output)
lives in the shared engine, so the torch and ONNX backends behave the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

MAX_PHONEMES = 510
"""Kokoro's context: 512 tokens minus the two padding tokens. Longer input is truncated by kokoro."""

STYLE_DIM = 256
"""A voice pack is an array of shape (N, 1, 256): one style vector per phoneme-count bucket."""


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
