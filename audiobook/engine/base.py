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

from ..errors import SynthesisError, TimingUnavailable

MAX_PHONEMES = 510
"""Kokoro's context: 512 tokens minus the two padding tokens. Longer input is truncated by kokoro."""

STYLE_DIM = 256
"""A voice pack is an array of shape (N, 1, 256): one style vector per phoneme-count bucket."""

SAMPLES_PER_FRAME = 600
"""Audio samples per duration frame at 24 kHz (25 ms): the unit of kokoro's predicted durations."""


@dataclass(frozen=True)
class PieceAudio:
    """One piece's audio, and the model's predicted duration of every token in it when the backend can say."""

    audio: np.ndarray
    """float32 mono at 24 kHz; not peak-limited. With ``durations``: exactly ``SAMPLES_PER_FRAME *
    durations.sum()`` samples."""
    phonemes: str
    """What the model was fed: the piece, less the symbols its vocabulary lacks when ``durations`` is set."""
    durations: np.ndarray | None = None
    """int64 duration frames per token: the start boundary token, one per character of ``phonemes``, the end
    boundary token, each at least 1 (kokoro rounds and clamps them before building the alignment). None when
    the backend was not asked for them, or cannot give them."""


def check_timed(piece: PieceAudio) -> PieceAudio:
    """``piece`` itself, or ``SynthesisError`` when its durations do not account for every token and sample."""
    if piece.durations is None:
        raise SynthesisError("the model gave no durations for a piece it was asked to time")
    tokens = len(piece.phonemes) + 2
    frames = int(piece.durations.sum()) * SAMPLES_PER_FRAME
    if len(piece.durations) != tokens or frames != len(piece.audio):
        raise SynthesisError(
            f"the model's durations ({len(piece.durations)} tokens, {frames} samples) do not "
            f"match its input ({tokens} tokens) and audio ({len(piece.audio)} samples)"
        )
    return piece


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

    @property
    def gives_durations(self) -> bool:
        """Whether :meth:`infer_timed` works: the model reports the duration of every token it speaks."""
        return False

    def infer_timed(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> PieceAudio:
        """Like :meth:`infer` (bit-identical audio), with the predicted duration of every token.

        Backends that cannot report durations raise ``TimingUnavailable``; timed text then cannot be made.
        """
        raise TimingUnavailable(f"the {self.name} backend cannot report phoneme durations")

    def infer_batch(
        self,
        pieces: Sequence[str],
        styles: Sequence[np.ndarray],
        speeds: Sequence[float],
        seeds: Sequence[int],
        timed: bool = False,
    ) -> list[PieceAudio]:
        """The pieces of one chunk, one result per piece in the order given; with durations when ``timed``.

        This one runs :meth:`infer` (or :meth:`infer_timed`) piece by piece; a backend that can run several
        pieces at once overrides it, and may give durations even when not asked.
        """
        if timed:
            return [self.infer_timed(*args) for args in zip(pieces, styles, speeds, seeds, strict=True)]
        return [
            PieceAudio(self.infer(piece, style, speed, seed), piece)
            for piece, style, speed, seed in zip(pieces, styles, speeds, seeds, strict=True)
        ]
