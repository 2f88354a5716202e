"""Timed text: when each sentence and word is spoken, in one chunk's WAV and in the final audio.

The model is written once, here. The engine makes a :class:`ChunkTimings` per chunk from the model's predicted
durations (see :mod:`audiobook.engine.timed`); the worker stores it beside the chunk's WAV as ``ID.timings.json``.
At export, :func:`book_timings` shifts every chunk by its place in the final audio, pauses included, using
:func:`audiobook.assemble.book_pieces`, the very layout the PCM is streamed from, so the text can never drift
from the audio. Every format (SRT, WebVTT, ``timings.json``, EPUB 3 Media Overlays) is a pure function of
:class:`BookTimings`.

Times are frames at 24 kHz (samples of the mono audio, as everywhere in the job); character spans index the
chunk's text (``chunks/ID.txt``), so a word spoken differently from its spelling ("XII" said "twelve") still
spans the text as written.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audiobook import SAMPLE_RATE
from audiobook.assemble import ChapterAudio, Pauses, Piece, book_pieces
from audiobook.atomic import write_atomic
from audiobook.errors import AudiobookError

log = logging.getLogger(__name__)

SCHEMA = "audiobook-timings"
VERSION = 1
SUFFIX = ".timings.json"
"""A chunk's timings live beside its WAV: ``wav/003-0002.wav`` -> ``wav/003-0002.timings.json``."""
WORD, SENTENCE = "word", "sentence"
"""Levels: English has word times from misaki's tokens; other languages sentence times only."""


@dataclass(frozen=True)
class Word:
    """One spoken word: its text as written and when it is said."""

    text: str
    chars: tuple[int, int]
    """Its span in the chunk's text."""
    start: int
    """First frame of its first phoneme."""
    end: int
    """Frame after its last phoneme (pauses for punctuation and spaces after it are not part of it)."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of the text, by the chunker's rule (see :func:`audiobook.chunker.sentence_spans`)."""

    text: str
    chars: tuple[int, int]
    start: int
    """Its first word's start."""
    end: int
    """Its last word's end."""
    words: tuple[Word, ...] = ()
    """Empty at sentence level."""


@dataclass(frozen=True)
class ChunkTimings:
    """Every sentence of one chunk, in order, in the chunk WAV's frames."""

    frames: int
    """The WAV's length; every time lies in ``0..frames``."""
    level: str
    """``word`` or ``sentence``."""
    sentences: tuple[Sentence, ...]

    def problems(self) -> list[str]:
        """What is wrong with these timings (empty when they are sound): times out of order or outside the audio."""
        found = []
        previous = 0
        for n, sentence in enumerate(self.sentences):
            if not previous <= sentence.start <= sentence.end <= self.frames:
                found.append(
                    f"sentence {n} at {sentence.start}..{sentence.end} after {previous}, of {self.frames} frames"
                )
            for word in sentence.words:
                if not sentence.start <= word.start <= word.end <= sentence.end:
                    found.append(f"word {word.text!r} at {word.start}..{word.end} outside its sentence")
            word_starts = [w.start for w in sentence.words]
            if word_starts != sorted(word_starts):
                found.append(f"sentence {n}: words out of order")
            previous = sentence.end
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "frames": self.frames,
            "level": self.level,
            "sentences": [
                {
                    "text": s.text,
                    "chars": list(s.chars),
                    "start": s.start,
                    "end": s.end,
                    "words": [[w.text, w.chars[0], w.chars[1], w.start, w.end] for w in s.words],
                }
                for s in self.sentences
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkTimings:
        if data.get("schema") != SCHEMA or data.get("version") != VERSION:
            raise ValueError(f"not {SCHEMA} version {VERSION}")
        sentences = tuple(
            Sentence(
                s["text"],
                (int(s["chars"][0]), int(s["chars"][1])),
                int(s["start"]),
                int(s["end"]),
                tuple(Word(str(w[0]), (int(w[1]), int(w[2])), int(w[3]), int(w[4])) for w in s["words"]),
            )
            for s in data["sentences"]
        )
        return cls(int(data["frames"]), str(data["level"]), sentences)


def timings_path(wav: Path) -> Path:
    """Where a chunk WAV's timings are stored."""
    return wav.with_name(wav.stem + SUFFIX)


def save(timings: ChunkTimings, path: Path) -> None:
    """Write ``timings`` atomically (a later export trusts the file)."""
    text = json.dumps(timings.to_dict(), ensure_ascii=False, separators=(",", ":"))
    write_atomic(path, (text + "\n").encode("utf-8"))


def load(path: Path, frames: int) -> ChunkTimings | None:
    """The timings stored at ``path`` for a WAV of ``frames`` frames; None (with the reason logged) when the file
    is missing, unreadable, for another length of audio, or unsound."""
    try:
        timings = ChunkTimings.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        log.warning("%s: unreadable timings (%s); they are ignored", path, e)
        return None
    if timings.frames != frames:
        log.warning("%s: timings for %d frames, but the WAV has %d; they are ignored", path, timings.frames, frames)
        return None
    problems = timings.problems()
    if problems:
        log.warning("%s: unsound timings (%s); they are ignored", path, problems[0])
        return None
    return timings


# ---- the book -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChapterTimings:
    """One chapter's sentences in the final audio's frames."""

    index: int
    title: str
    start: int
    """The chapter's first frame, as the audio's chapter marks have it."""
    end: int
    """The frame after it, the pause before the next chapter included."""
    sentences: tuple[Sentence, ...]
    missing: tuple[str, ...] = ()
    """WAVs of this chapter with no timings: their sentences are absent."""


@dataclass(frozen=True)
class BookTimings:
    chapters: tuple[ChapterTimings, ...]
    frames: int
    """The whole audio's length."""

    @property
    def missing(self) -> list[str]:
        return [wav for chapter in self.chapters for wav in chapter.missing]


def book_timings(
    chapters: Sequence[ChapterAudio], pauses: Pauses, chunk_timings: Mapping[Path, ChunkTimings]
) -> BookTimings:
    """Shift every chunk's sentences to their place in the final audio (pure).

    ``chunk_timings`` maps a segment's WAV path to its timings; a segment without any is named in ``missing``.
    The layout is :func:`~audiobook.assemble.book_pieces`, the same pure function the audio is streamed from.
    """
    out = []
    position = 0
    for chapter, pieces in zip(chapters, book_pieces(chapters, pauses), strict=True):
        clock = _Clock(pieces, position)
        sentences: list[Sentence] = []
        missing = []
        for segment in chapter.segments:
            timings = chunk_timings.get(segment.wav)
            if timings is None:
                missing.append(str(segment.wav))
                continue
            sentences.extend(_shift(s, clock, segment.wav) for s in timings.sentences)
        frames = sum(p.frames for p in pieces)
        out.append(
            ChapterTimings(chapter.index, chapter.title, position, position + frames, tuple(sentences), tuple(missing))
        )
        position += frames
    return BookTimings(tuple(out), position)


class _Clock:
    """Chunk-WAV frames -> final-audio frames for one chapter's pieces."""

    def __init__(self, pieces: Sequence[Piece], start: int) -> None:
        self._spans: dict[Path, list[tuple[int, int, int]]] = {}
        position = start
        for piece in pieces:
            if piece.wav is not None:
                self._spans.setdefault(piece.wav, []).append((piece.start, piece.stop, position))
            position += piece.frames

    def at(self, wav: Path, frame: int, end: bool = False) -> int:
        """Where ``frame`` of ``wav`` plays. A frame at a paragraph end is placed before the pause that follows
        when it ends something (``end``), after it when it starts something."""
        spans = self._spans.get(wav)
        if not spans:
            raise AudiobookError(f"{wav} is not part of this chapter's audio")
        starts = [span[0] for span in spans]
        n = bisect.bisect_left(starts, frame) - 1 if end else bisect.bisect_right(starts, frame) - 1
        first, stop, position = spans[max(n, 0)]
        return position + min(max(frame - first, 0), stop - first)


def _shift(sentence: Sentence, clock: _Clock, wav: Path) -> Sentence:
    def span(start: int, end: int) -> tuple[int, int]:
        begin = clock.at(wav, start)
        return begin, max(begin, clock.at(wav, end, end=True))

    words = tuple(replace(w, start=a, end=b) for w in sentence.words for a, b in [span(w.start, w.end)])
    start, end = span(sentence.start, sentence.end)
    return replace(sentence, start=start, end=end, words=words)


def seconds(frames: int) -> float:
    """Frames as seconds, rounded to the millisecond."""
    return round(frames / SAMPLE_RATE, 3)


def timings_json(book: BookTimings, files: Sequence[str] | None = None) -> dict[str, Any]:
    """``timings.json``: chapters -> sentences -> words, start and end in seconds of the final audio (pure).

    ``files`` names each chapter's audio file when the export is split per chapter; the times are still the
    whole book's, and each chapter's ``start`` says where its file begins.
    """
    chapters = []
    for n, chapter in enumerate(book.chapters):
        entry: dict[str, Any] = {
            "index": chapter.index,
            "title": chapter.title,
            "start": seconds(chapter.start),
            "end": seconds(chapter.end),
        }
        if files is not None:
            entry["file"] = files[n]
        entry["sentences"] = [
            {
                "text": s.text,
                "start": seconds(s.start),
                "end": seconds(s.end),
                "words": [{"text": w.text, "start": seconds(w.start), "end": seconds(w.end)} for w in s.words],
            }
            for s in chapter.sentences
        ]
        if chapter.missing:
            entry["missing"] = list(chapter.missing)
        chapters.append(entry)
    return {
        "schema": "audiobook-book-timings",
        "version": VERSION,
        "duration": seconds(book.frames),
        "chapters": chapters,
    }
