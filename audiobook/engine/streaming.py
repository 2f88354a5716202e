"""Speech as it is made: short pieces, the first shortest, each piece's audio handed on the moment it exists.

A book chunk is synthesized in pieces of up to ``MAX_PHONEMES`` and written whole. A listener waiting for a
reply cannot wait for that: the time to the first sound is the time to synthesize the first piece. So for
streamed speech the first piece is cut short (at a sentence, clause or word boundary within
``FIRST_PIECE_PHONEMES``), and each later piece may be twice as long as the one before, up to
``MAX_PHONEMES``. Where speech is made at least twice as fast as it is spoken, each piece is then ready before
the audio ahead of it has finished playing: the first sound comes early and playback does not stall.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from .. import SAMPLE_RATE
from ..errors import SynthesisError
from .base import MAX_PHONEMES
from .core import (
    _CLAUSE_END,
    _SENTENCE_END,
    Engine,
    Synthesis,
    check_speed,
    count_phonemes,
    limit_peaks,
    piece_seed,
    split_paragraphs,
)
from .g2p import phonemize
from .voices import VoiceSpec, style_for

if TYPE_CHECKING:
    from ..lexicon import Lexicon

FIRST_PIECE_PHONEMES = 12
"""One or two words. Kokoro pads every piece with about 0.75 s of silence that costs as much to make as speech,
so the first piece's compute is that padding plus its words: with the bundled model on one CPU core, about
0.75 s for "the" and 1.2 s for "the keeper" on a busy 2-core machine (measured; see benchmarks/bench_serve.py)."""

JOIN_S = 0.06
"""Silence kept on each side of a cut inside a sentence: a word gap."""
SILENCE_LEVEL = 0.01
"""Below this, a sample of the model's padding counts as silence (speech peaks are near 0.5-1.0)."""

_SPACE = re.compile(r"\s+")
_ENDS_SENTENCE = re.compile(r"[.!?…][\"”’)\]]*$")


def speech_pieces(phonemes: str, first: int = FIRST_PIECE_PHONEMES, limit: int = MAX_PHONEMES) -> Iterator[str]:
    """Cut ``phonemes`` into pieces whose allowed length starts at ``first`` and doubles up to ``limit``.

    Each cut is the last sentence end within the allowed length, else the last clause end (either only when
    it keeps at least half the allowed length), else the last word boundary; a single over-long word is cut.
    Joined with spaces the pieces give back ``phonemes`` (pure; nothing is dropped).
    """
    rest = phonemes.strip()
    allowed = min(first, limit)
    while rest:
        head, rest = _head(rest, allowed)
        if head:
            yield head
        allowed = min(allowed * 2, limit)


def _head(text: str, allowed: int) -> tuple[str, str]:
    if len(text) <= allowed:
        return text, ""
    for boundary, least in ((_SENTENCE_END, allowed // 2), (_CLAUSE_END, allowed // 2), (_SPACE, 1)):
        cuts = [m for m in boundary.finditer(text) if least <= m.start() <= allowed]
        if cuts:
            cut = cuts[-1]
            return text[: cut.start()].strip(), text[cut.end() :].strip()
    return text[:allowed], text[allowed:].lstrip()


def synthesize_streaming(
    engine: Engine,
    text: str,
    voice: VoiceSpec,
    speed: float,
    lang: str,
    seed: int,
    on_piece: Callable[[np.ndarray], None],
    lexicon: Lexicon | None = None,
) -> Synthesis:
    """Speak ``text`` piece by piece, calling ``on_piece`` with each piece's peak-limited audio as soon as it is
    made; returns the whole, as :meth:`Engine.synthesize` does. The same arguments give the same pieces.

    The text is made narration-ready as for a book (:func:`audiobook.speech.speakable`: the lexicon, then the
    normaliser), and phonemized one paragraph at a time, so the first sound never waits for the last paragraph.
    """
    from ..speech import speakable  # speech builds on the engine's splitting: imported when first needed

    check_speed(speed)
    pack = engine.voice_pack(voice)
    started = time.perf_counter()
    normalized = speakable(text, lang, lexicon)
    g2p_s = time.perf_counter() - started
    chunks: list[np.ndarray] = []
    ends: list[int] = []
    frames = fed = expected = index = 0
    synth_s = 0.0
    for paragraph in split_paragraphs(normalized.text):
        started = time.perf_counter()
        phonemes = phonemize(paragraph, lang)
        g2p_s += time.perf_counter() - started
        expected += count_phonemes(phonemes)
        # the allowed length goes on doubling across paragraphs: piece k may have FIRST * 2**k phonemes
        pieces = list(speech_pieces(phonemes, min(FIRST_PIECE_PHONEMES << min(index, 8), MAX_PHONEMES)))
        for n, piece in enumerate(pieces):
            opens = n == 0 or bool(_ENDS_SENTENCE.search(pieces[n - 1]))  # a sentence, not a cut
            closes = n == len(pieces) - 1 or bool(_ENDS_SENTENCE.search(piece))
            started = time.perf_counter()
            audio = engine.backend.infer(piece, style_for(pack, len(piece)), speed, piece_seed(seed, index))
            synth_s += time.perf_counter() - started
            if not np.all(np.isfinite(audio)):
                raise SynthesisError(f"the model returned non-finite audio for piece {index}")
            audio = limit_peaks(audio)  # per piece: a piece already sent cannot be scaled down afterwards
            audio = trim_join(audio, opens, closes)
            on_piece(audio)
            chunks.append(audio)
            frames += len(audio)
            fed += count_phonemes(piece)
            index += 1
        ends.append(frames)
    if fed != expected:  # a bug in the cutter, never the text's fault
        raise SynthesisError(f"fed {fed} of {expected} phonemes to the model")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    paragraph_ends = sorted({end for end in ends[:-1] if 0 < end < frames})
    timings = {"g2p_s": g2p_s, "synth_s": synth_s}
    return Synthesis(audio, paragraph_ends, expected, fed, index, g2p_s, synth_s, timings, normalized)


def trim_join(audio: np.ndarray, starts: bool, ends: bool) -> np.ndarray:
    """Kokoro pads every piece with silence before and after (about 0.4 s each with Kokoro-82M). Between two
    sentences that is the pause a reader makes; inside a sentence, where a short first piece was cut off, it
    would be a gap. So the silence on the side of a cut is shortened to ``JOIN_S``."""
    voiced = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL)
    if not len(voiced):
        return audio
    keep = round(JOIN_S * SAMPLE_RATE)
    start = 0 if starts else max(0, int(voiced[0]) - keep)
    stop = len(audio) if ends else min(len(audio), int(voiced[-1]) + 1 + keep)
    return audio[start:stop]


def pcm16(audio: np.ndarray) -> bytes:
    """float32 audio in [-1, 1] as 16-bit little-endian PCM bytes, converted as libsndfile converts it for a WAV
    (scaled by 32768, rounded down, clipped), so the streamed audio is the WAV's to the last bit."""
    scaled = np.floor(np.asarray(audio, dtype=np.float32) * np.float32(32768.0))
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()
