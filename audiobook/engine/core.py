"""The engine shared by every backend: text -> narration-ready text -> paragraphs -> phonemes -> pieces -> audio.

Nothing is dropped: kokoro truncates any piece over 510 phonemes, so a long sentence is split at clause
punctuation, then at word boundaries, recursively, until every piece fits. The counts in ``Synthesis``
prove it: ``phonemes_synth`` (what the model was fed) equals ``phonemes_in`` (what G2P produced), spaces
aside.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import SAMPLE_RATE
from ..atomic import atomic_file
from ..errors import ModelError, SynthesisError
from .base import MAX_PHONEMES, Backend
from .voices import VoiceSpec, load_voice, style_for

if TYPE_CHECKING:
    from ..lexicon import Lexicon
    from ..normalize import Normalized

log = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.5, 2.0
PEAK_LIMIT = 0.98
"""Peak after limiting: int16 conversion never clips."""
PARAGRAPH_BREAK = r"\n[ \t\r\f\v]*\n"
"""A blank line separates paragraphs."""

_SENTENCE_END = re.compile(r"(?<=[.!?…][\"”’)\]])\s+|(?<=[.!?…])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—…)\"”])\s+|\s+(?=[—(\"“])")


@dataclass
class Synthesis:
    """One chunk's audio and what went into it."""

    audio: np.ndarray
    """float32 mono at 24 kHz, peak-limited to ``PEAK_LIMIT``."""
    paragraph_ends: list[int]
    """Frame offsets where each paragraph ends, the last excluded; strictly increasing, inside the audio."""
    phonemes_in: int
    """Phonemes G2P produced (spaces not counted)."""
    phonemes_synth: int
    """Phonemes fed to the model (spaces not counted); equal to ``phonemes_in`` since nothing is dropped."""
    pieces: int = 0
    """Model calls: pieces of at most ``MAX_PHONEMES`` phonemes."""
    g2p_s: float = 0.0
    """Seconds in G2P."""
    synth_s: float = 0.0
    """Seconds in the model."""
    timings: dict[str, float] = field(default_factory=dict)
    normalized: Normalized | None = None
    """The text as spoken (lexicon and normaliser applied), with its map back to the chunk's own text."""

    @property
    def frames(self) -> int:
        return len(self.audio)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class Engine:
    """G2P, splitting, voices, seeding and peak limiting around one loaded backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._packs: dict[VoiceSpec, np.ndarray] = {}

    def voice_pack(self, voice: VoiceSpec) -> np.ndarray:
        """The (blended) pack for a voice, cached per voice."""
        if voice not in self._packs:
            self._packs[voice] = load_voice(voice, self.backend)
        return self._packs[voice]

    def synthesize(
        self,
        text: str,
        voice: VoiceSpec,
        speed: float = 1.0,
        lang: str = "a",
        seed: int = 0,
        split_pattern: str | None = None,
        lexicon: Lexicon | None = None,
    ) -> Synthesis:
        """Speak ``text``; the same arguments give bit-identical audio on the same machine.

        ``voice`` and ``lang`` (a kokoro language code) come resolved (see :mod:`audiobook.settings`).
        ``split_pattern`` is the paragraph separator (a regex; default: a blank line). The text is made
        narration-ready first, ``lexicon`` applied, by :func:`audiobook.speech.prepare`: what ``audiobook
        pronounce`` shows is what the model is fed.
        """
        from ..speech import prepare  # speech builds on this module's splitting: imported when first needed

        check_speed(speed)
        pack = self.voice_pack(voice)
        started = time.perf_counter()
        prepared = prepare(text, lang, lexicon, split_pattern)
        paragraphs = list(prepared.paragraphs)
        g2p_s = time.perf_counter() - started

        chunks: list[np.ndarray] = []
        ends: list[int] = []
        frames = fed = pieces = 0
        synth_started = time.perf_counter()
        for phonemes in paragraphs:
            for piece in split_phonemes(phonemes):
                style = style_for(pack, len(piece))
                audio = self.backend.infer(piece, style, speed, piece_seed(seed, pieces))
                if not np.all(np.isfinite(audio)):
                    raise SynthesisError(f"the model returned non-finite audio for piece {pieces}")
                chunks.append(audio)
                frames += len(audio)
                fed += count_phonemes(piece)
                pieces += 1
            ends.append(frames)
        synth_s = time.perf_counter() - synth_started

        audio = limit_peaks(np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32))
        phonemes_in = sum(count_phonemes(p) for p in paragraphs)
        if fed != phonemes_in:  # a bug in the splitter, never the text's fault
            raise SynthesisError(f"fed {fed} of {phonemes_in} phonemes to the model")
        paragraph_ends = sorted({end for end in ends[:-1] if 0 < end < frames})
        return Synthesis(
            audio,
            paragraph_ends,
            phonemes_in,
            fed,
            pieces,
            g2p_s,
            synth_s,
            {"g2p_s": g2p_s, "synth_s": synth_s},
            prepared.normalized,
        )


def check_speed(speed: float) -> None:
    """``ModelError`` unless ``MIN_SPEED <= speed <= MAX_SPEED``."""
    if not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise ModelError(f"speed {speed!r} is out of range; use {MIN_SPEED} to {MAX_SPEED} (1.0 is normal)")


def split_paragraphs(text: str, split_pattern: str | None = None) -> list[str]:
    """Non-empty paragraphs of ``text``, each on one line with single spaces."""
    parts = re.split(split_pattern or PARAGRAPH_BREAK, text)
    return [" ".join(part.split()) for part in parts if part.strip()]


def split_phonemes(phonemes: str, limit: int = MAX_PHONEMES) -> list[str]:
    """Pieces of at most ``limit`` phonemes, in order, which joined with spaces give back ``phonemes``.

    Sentences are packed greedily into pieces; a sentence over the limit is split at clause punctuation, then
    at word boundaries, each time near its middle, recursively; a single over-long word is cut.
    """
    segments: list[str] = []
    for sentence in _SENTENCE_END.split(phonemes.strip()):
        segments.extend(_fit(sentence, limit))
    return _pack([s for s in segments if s], limit)


def count_phonemes(phonemes: str) -> int:
    """Phonemes in a string, not counting spaces (which splitting removes at the cut)."""
    return sum(1 for char in phonemes if not char.isspace())


def piece_seed(seed: int, index: int) -> int:
    """The noise seed for the ``index``-th piece of a chunk seeded ``seed``."""
    return (seed * 1_000_003 + index) % (2**63)


def limit_peaks(audio: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale ``audio`` down, as a whole, when its peak is over ``limit``."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio * np.float32(limit / peak) if peak > limit else audio


def write_wav(path: str | os.PathLike, audio: np.ndarray) -> None:
    """Write 24 kHz mono 16-bit PCM, atomically (see :mod:`audiobook.atomic`)."""
    import soundfile

    with atomic_file(path) as out:
        soundfile.write(out, np.asarray(audio, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _fit(text: str, limit: int) -> list[str]:
    text = text.strip()
    if len(text) <= limit:
        return [text]
    for boundary in (_CLAUSE_END, re.compile(r"\s+")):
        cuts = [(m.start(), m.end()) for m in boundary.finditer(text)]
        if cuts:
            start, end = min(cuts, key=lambda cut: abs(cut[0] - len(text) // 2))
            return _fit(text[:start], limit) + _fit(text[end:], limit)
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def _pack(segments: list[str], limit: int) -> list[str]:
    pieces: list[str] = []
    for segment in segments:
        if pieces and len(pieces[-1]) + 1 + len(segment) <= limit:
            pieces[-1] += " " + segment
        else:
            pieces.append(segment)
    return pieces
