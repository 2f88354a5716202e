"""Word times from an offline recognizer (pocketsphinx), matched to our own word timings.

pocketsphinx either recognizes freely (its own words, with its own errors) or aligns the known text (forced
alignment: the words we spoke, placed where it hears them). Both give word start times at 10 ms; our words are
matched to its words in order (difflib on normalised spellings), and only words that normalise to one
recognizer word (not "1854", which it hears as four) are compared.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
from test_intelligibility import normalize, to_16k_int16

from audiobook.timing import ChunkTimings

FRAMES_PER_SECOND = 100


@dataclass(frozen=True)
class Offsets:
    """Our start time minus the recognizer's, in seconds, for matched words and for sentence-first words."""

    words: list[float]
    sentences: list[float]


def recognized_words(decoder, audio: np.ndarray, align_text: str | None = None) -> list[tuple[str, float]]:  # noqa: ANN001
    """(word, start seconds) as pocketsphinx hears ``audio`` (24 kHz float); ``align_text`` aligns that text."""
    if align_text is not None:
        decoder.set_align_text(align_text)
    else:
        decoder.activate_search("_default")
    decoder.start_utt()
    decoder.process_raw(to_16k_int16(audio), full_utt=True)
    decoder.end_utt()
    words = []
    for segment in decoder.seg():
        word = re.sub(r"\(\d+\)$", "", segment.word)
        if not word.startswith(("<", "[")):
            words.append((word, segment.start_frame / FRAMES_PER_SECOND))
    return words


def offsets(timings: ChunkTimings, heard: list[tuple[str, float]], rate: int = 24000) -> Offsets:
    """Start offsets of the words both sides agree on (see the module docstring)."""
    ours = []
    for sentence in timings.sentences:
        for n, word in enumerate(sentence.words):
            spelled = normalize(word.text)
            ours.append((spelled[0] if len(spelled) == 1 else "#", word.start / rate, n == 0))
    matcher = difflib.SequenceMatcher(a=[w for w, _, _ in ours], b=[w for w, _ in heard], autojunk=False)
    words, sentences = [], []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            _, ours_start, first = ours[block.a + k]
            delta = ours_start - heard[block.b + k][1]
            words.append(delta)
            if first:
                sentences.append(delta)
    return Offsets(words, sentences)


def summary(values: list[float]) -> dict[str, float | int]:
    """Count, median signed offset, median and 95th percentile of the absolute offset, in milliseconds."""
    data = np.asarray(values, dtype=float) * 1000
    if not len(data):
        return {"n": 0}
    return {
        "n": int(len(data)),
        "median_ms": round(float(np.median(data)), 1),
        "median_abs_ms": round(float(np.median(np.abs(data))), 1),
        "p95_abs_ms": round(float(np.percentile(np.abs(data), 95)), 1),
    }
