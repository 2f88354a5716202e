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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import SAMPLE_RATE
from ..atomic import atomic_file
from ..errors import ModelError, SynthesisError
from .base import MAX_PHONEMES, Backend, PieceAudio, check_timed
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
        started = time.perf_counter()
        prepared = prepare(text, lang, lexicon, split_pattern)
        g2p_s = time.perf_counter() - started
        spoken = self.speak(list(prepared.paragraphs), voice, speed, seed)
        return synthesis_of(spoken, g2p_s, prepared.normalized)

    def speak(
        self, paragraphs: Sequence[str], voice: VoiceSpec, speed: float, seed: int, timed: bool = False
    ) -> SpokenChunk:
        """A chunk's paragraphs (phoneme strings) through the model: cut into pieces, all pieces handed to the
        backend at once (a batching backend runs them together), each result checked and put back in its place.

        With ``timed`` every result carries its durations (``TimingUnavailable`` when the backend has none).
        """
        pack = self.voice_pack(voice)
        split = [split_phonemes(phonemes) for phonemes in paragraphs]
        pieces = [piece for paragraph in split for piece in paragraph]
        started = time.perf_counter()
        results = self.backend.infer_batch(
            pieces,
            [style_for(pack, len(piece)) for piece in pieces],
            [speed] * len(pieces),
            [piece_seed(seed, index) for index in range(len(pieces))],
            timed=timed,
        )
        synth_s = time.perf_counter() - started
        fed = _account(pieces, results, timed)
        phonemes_in = sum(count_phonemes(p) for p in paragraphs)
        if fed != phonemes_in:  # a bug in the splitter, never the text's fault
            raise SynthesisError(f"fed {fed} of {phonemes_in} phonemes to the model")
        out: list[SpokenParagraph] = []
        start = used = 0
        for phonemes, own in zip(paragraphs, split, strict=True):
            mine = tuple(results[used : used + len(own)])
            out.append(SpokenParagraph(phonemes, tuple(own), mine, start))
            start += sum(len(result.audio) for result in mine)
            used += len(own)
        return SpokenChunk(tuple(out), phonemes_in, fed, synth_s)


@dataclass(frozen=True)
class SpokenParagraph:
    """One paragraph as the model spoke it."""

    phonemes: str
    """Its phoneme string, whitespace collapsed."""
    pieces: tuple[str, ...]
    """The runs of ``phonemes`` fed to the model, in order (:func:`split_phonemes`)."""
    results: tuple[PieceAudio, ...]
    """The model's result for each piece."""
    start: int
    """Where its audio starts in the chunk's, in samples."""

    @property
    def end(self) -> int:
        return self.start + sum(len(result.audio) for result in self.results)


@dataclass(frozen=True)
class SpokenChunk:
    """A chunk's paragraphs as the model spoke them (:meth:`Engine.speak`)."""

    paragraphs: tuple[SpokenParagraph, ...]
    phonemes_in: int
    phonemes_fed: int
    synth_s: float

    @property
    def pieces(self) -> int:
        return sum(len(p.pieces) for p in self.paragraphs)


def synthesis_of(spoken: SpokenChunk, g2p_s: float, normalized: Normalized | None) -> Synthesis:
    """The chunk's peak-limited audio, its paragraph ends and its accounting."""
    results = [result.audio for p in spoken.paragraphs for result in p.results]
    audio = limit_peaks(np.concatenate(results) if results else np.zeros(0, dtype=np.float32))
    paragraph_ends = sorted({p.end for p in spoken.paragraphs[:-1] if 0 < p.end < len(audio)})
    return Synthesis(
        audio,
        paragraph_ends,
        spoken.phonemes_in,
        spoken.phonemes_fed,
        spoken.pieces,
        g2p_s,
        spoken.synth_s,
        {"g2p_s": g2p_s, "synth_s": spoken.synth_s},
        normalized,
    )


def _account(pieces: list[str], rows: list[PieceAudio], timed: bool) -> int:
    """Phonemes fed to the model, counted row by row; ``SynthesisError`` if a row is missing, out of order or bad
    (or, when ``timed``, its durations do not account for its tokens and samples).

    A backend may drop characters its vocabulary lacks (and says so), never anything else: each row's phonemes
    must be its own piece's, in order.
    """
    if len(rows) != len(pieces):
        raise SynthesisError(f"the model returned {len(rows)} results for {len(pieces)} pieces")
    fed = 0
    for index, (piece, row) in enumerate(zip(pieces, rows, strict=True)):
        if not _is_subsequence(row.phonemes, piece):
            raise SynthesisError(f"piece {index}: the model's result belongs to another piece")
        if not np.all(np.isfinite(row.audio)):
            raise SynthesisError(f"the model returned non-finite audio for piece {index}")
        if timed:
            check_timed(row)
        fed += count_phonemes(piece)
    return fed


def _is_subsequence(part: str, whole: str) -> bool:
    remaining = iter(whole)
    return all(char in remaining for char in part)


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
