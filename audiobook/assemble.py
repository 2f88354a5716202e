"""The book's timeline: chunk WAVs plus the pauses between them, and a flat-memory PCM stream of it.

Pauses are not in the chunk WAVs; they are inserted here, at assembly time, so changing one never
re-synthesizes anything. One pure function, :func:`chapter_pieces`, lays out each chapter as audio spans and
silences; both the exact timeline (chapter starts in frames) and the PCM stream are derived from it, so the
chapter marks can never drift from the audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from audiobook import SAMPLE_RATE
from audiobook.errors import AudiobookError

BLOCK_FRAMES = 65536
"""Frames per block of the PCM stream: 128 KiB of int16, small for flat memory, big enough to be fast."""

BYTES_PER_FRAME = 2


@dataclass
class Segment:
    """One synthesized chunk: a 24 kHz mono PCM_16 WAV and where its paragraphs end."""

    wav: Path
    frames: int
    paragraph_ends: list[int] = field(default_factory=list)
    """Frame offsets in the WAV where a paragraph ends, excluding the chunk's last paragraph."""
    ends_paragraph: bool = True
    """Whether the chunk's end is a paragraph end (False when a long paragraph was split across chunks)."""


@dataclass
class ChapterAudio:
    """A narrated chapter: its segments in order; the first paragraph is the chapter's title."""

    index: int
    title: str
    segments: list[Segment]


@dataclass
class Pauses:
    """Silences inserted at assembly time, in seconds."""

    paragraph: float = 0.6
    """After each paragraph: a narrator's breath and beat (human audiobook reads use about 0.5-1 s)."""
    title: float = 1.2
    """After a chapter's title (its first paragraph): a longer beat that sets the heading apart."""
    chapter: float = 2.0
    """Between chapters: long enough to hear the break; ACX asks for 1-5 s of room tone at a chapter's end."""

    @classmethod
    def from_dict(cls, data: dict) -> Pauses:
        known = {f.name for f in fields(cls)}
        values = {k: float(v) for k, v in data.items() if k in known and v is not None}
        pauses = cls(**values)
        for name, value in asdict(pauses).items():
            if not 0 <= value <= 60:
                raise AudiobookError(f"pause '{name}' must be between 0 and 60 seconds, got {value}")
        return pauses

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Piece:
    """A span of the timeline: frames ``start:stop`` of ``wav``, or ``stop - start`` frames of silence."""

    wav: Path | None
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ChapterTiming:
    index: int
    title: str
    start_frame: int
    frames: int
    """The chapter's length including the chapter pause after it (none after the last chapter)."""

    @property
    def start(self) -> float:
        return self.start_frame / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return self.frames / SAMPLE_RATE

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.frames


def seconds_to_frames(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def _silence(frames: int) -> list[Piece]:
    return [Piece(None, 0, frames)] if frames > 0 else []


def chapter_pieces(chapter: ChapterAudio, pauses: Pauses, last: bool) -> list[Piece]:
    """Lay out one chapter as audio spans and silences (pure); ``last`` drops the trailing chapter pause."""
    paragraph = seconds_to_frames(pauses.paragraph)
    title = seconds_to_frames(pauses.title)
    pieces: list[Piece] = []
    title_done = False
    for n, seg in enumerate(chapter.segments):
        _check_ends(chapter, seg)
        ends = list(seg.paragraph_ends)
        if seg.ends_paragraph and n < len(chapter.segments) - 1:
            ends.append(seg.frames)
        position = 0
        for end in ends:
            pieces.append(Piece(seg.wav, position, end))
            pieces += _silence(paragraph if title_done else title)
            title_done = True
            position = end
        if position < seg.frames:
            pieces.append(Piece(seg.wav, position, seg.frames))
    if not last:
        pieces += _silence(seconds_to_frames(pauses.chapter))
    return pieces


def _check_ends(chapter: ChapterAudio, seg: Segment) -> None:
    previous = 0
    for end in seg.paragraph_ends:
        if not previous < end < seg.frames:
            raise AudiobookError(
                f"chapter {chapter.index} ({chapter.title!r}): {seg.wav} has paragraph end {end} outside "
                f"1..{seg.frames - 1} or out of order; re-synthesize that chunk"
            )
        previous = end


def book_pieces(chapters: Sequence[ChapterAudio], pauses: Pauses) -> list[list[Piece]]:
    """Every chapter's pieces, in order."""
    return [chapter_pieces(ch, pauses, last=n == len(chapters) - 1) for n, ch in enumerate(chapters)]


def timeline(chapters: Sequence[ChapterAudio], pauses: Pauses) -> list[ChapterTiming]:
    """Exact chapter starts and lengths in frames, from the segments' frame counts and the pauses (pure)."""
    timings = []
    position = 0
    for chapter, pieces in zip(chapters, book_pieces(chapters, pauses), strict=True):
        frames = sum(p.frames for p in pieces)
        timings.append(ChapterTiming(chapter.index, chapter.title, position, frames))
        position += frames
    return timings


def stream_pieces(pieces: Sequence[Piece], block_frames: int = BLOCK_FRAMES) -> Iterator[bytes]:
    """The PCM of ``pieces`` as int16 little-endian bytes in blocks of at most ``block_frames`` frames.

    Reads each WAV from disk a block at a time, so memory stays flat however long the book is.
    """
    silence = bytes(block_frames * BYTES_PER_FRAME)
    open_path: Path | None = None
    handle: sf.SoundFile | None = None
    try:
        for piece in pieces:
            if piece.wav is None:
                remaining = piece.frames
                while remaining > 0:
                    n = min(remaining, block_frames)
                    yield silence[: n * BYTES_PER_FRAME]
                    remaining -= n
                continue
            if piece.wav != open_path:
                if handle is not None:
                    handle.close()
                handle = _open_wav(piece.wav)
                open_path = piece.wav
            assert handle is not None
            yield from _read_span(handle, piece, block_frames)
    finally:
        if handle is not None:
            handle.close()


def _open_wav(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except (OSError, RuntimeError) as e:
        raise AudiobookError(f"cannot read chunk WAV {path}: {e}") from e


def _read_span(handle: sf.SoundFile, piece: Piece, block_frames: int) -> Iterator[bytes]:
    handle.seek(piece.start)
    remaining = piece.frames
    while remaining > 0:
        block = handle.read(min(remaining, block_frames), dtype="int16", always_2d=False)
        if len(block) == 0:
            raise AudiobookError(
                f"chunk WAV {piece.wav} ended early: wanted frames {piece.start}..{piece.stop}; "
                "the file changed since it was recorded, re-synthesize it"
            )
        remaining -= len(block)
        yield np.ascontiguousarray(block, dtype="<i2").tobytes()


def stream_book(chapters: Sequence[ChapterAudio], pauses: Pauses, block_frames: int = BLOCK_FRAMES) -> Iterator[bytes]:
    """The whole book's PCM (24 kHz mono int16 bytes), pauses included, in flat memory."""
    for pieces in book_pieces(chapters, pauses):
        yield from stream_pieces(pieces, block_frames)


def total_frames(timings: Sequence[ChapterTiming]) -> int:
    return timings[-1].end_frame if timings else 0


def check_wavs(chapters: Sequence[ChapterAudio]) -> None:
    """Check every chunk WAV exists, parses, is 24 kHz mono PCM_16 and has its recorded frame count."""
    for chapter in chapters:
        for seg in chapter.segments:
            _check_wav(chapter, seg)


def _check_wav(chapter: ChapterAudio, seg: Segment) -> None:
    where = f"chapter {chapter.index} ({chapter.title!r}): chunk WAV {seg.wav}"
    fix = "re-synthesize that chunk (`audiobook resume` redoes chunks whose WAV is bad)"
    if not Path(seg.wav).is_file():
        raise AudiobookError(f"{where} is missing; {fix}")
    try:
        info = sf.info(str(seg.wav))
    except (OSError, RuntimeError) as e:
        raise AudiobookError(f"{where} cannot be read ({e}); {fix}") from e
    problems = []
    if info.format != "WAV":
        problems.append(f"format {info.format}, not WAV")
    if info.samplerate != SAMPLE_RATE:
        problems.append(f"sample rate {info.samplerate} Hz, not {SAMPLE_RATE}")
    if info.channels != 1:
        problems.append(f"{info.channels} channels, not mono")
    if info.subtype != "PCM_16":
        problems.append(f"sample format {info.subtype}, not PCM_16")
    if info.frames != seg.frames:
        problems.append(f"{info.frames} frames, but {seg.frames} were recorded")
    if problems:
        raise AudiobookError(f"{where} has {', '.join(problems)}; {fix}")
