"""SRT and WebVTT subtitles: pure functions of the book's timings (:class:`audiobook.timing.BookTimings`).

Sentence cues follow the usual subtitle limits: at most :data:`MAX_LINES` lines of about :data:`MAX_LINE_CHARS`
characters and :data:`MAX_CUE_SECONDS` on screen. A longer sentence is cut between words into as few cues as
the limits allow, of about equal length, at clause punctuation when there is some in the second half of a cue,
and its cues follow one another with no gap. Word cues
(``--subtitle-words``) are WebVTT karaoke: each cue holds a cue timestamp (``<00:00:01.250>``) before each word
after the first, so players that support it highlight the words as they are said; SRT has no such thing, so
there each word is a cue of its own.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audiobook import SAMPLE_RATE
from audiobook.timing import ChapterTimings, Sentence

MAX_LINE_CHARS = 42
"""Netflix's and the BBC's line length for Latin scripts."""
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
"""The longest a cue stays up (the common guideline for a full two-line subtitle)."""
FORMATS = ("srt", "vtt")
_CLAUSE_END = tuple(",;:—–)")
_SHARE_SLACK_CHARS = 8
_SHARE_SLACK_FRAMES = SAMPLE_RATE // 2


@dataclass(frozen=True)
class Fragment:
    """A word with the punctuation around it, as shown (``“Don’t``, ``go,”``), and when it is said."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Cue:
    start: int
    """Frames of the audio file the subtitles go with."""
    end: int
    fragments: tuple[Fragment, ...]
    lines: tuple[int, ...] = ()
    """Indices of the fragments that start a new line (after the first)."""

    @property
    def text(self) -> str:
        return "\n".join(" ".join(f.text for f in line) for line in self.rows())

    def rows(self) -> list[tuple[Fragment, ...]]:
        bounds = [0, *self.lines, len(self.fragments)]
        return [self.fragments[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def fragments(sentence: Sentence) -> list[Fragment]:
    """The sentence cut before each word, punctuation kept with its word; a sentence without word times is cut
    at spaces and timed by its characters' share of the sentence."""
    text, base = sentence.text, sentence.chars[0]
    if not sentence.words:
        return _even_fragments(sentence)
    cuts = [0]
    for before, word in zip(sentence.words, sentence.words[1:], strict=False):
        cuts.append(_word_start(text, before.chars[1] - base, word.chars[0] - base))
    cuts.append(len(text))
    out = []
    for n, word in enumerate(sentence.words):
        piece = " ".join(text[cuts[n] : cuts[n + 1]].split())
        if piece:
            out.append(Fragment(piece, word.start, word.end))
    return out


def _word_start(text: str, previous_end: int, start: int) -> int:
    """Where a word's fragment starts: before the opening quotes and brackets written against it (``“I``)."""
    while start > previous_end and _opens(text[start - 1]):
        start -= 1
    return start


def _opens(char: str) -> bool:
    return unicodedata.category(char) in ("Ps", "Pi") or char in "\"'"


def _even_fragments(sentence: Sentence) -> list[Fragment]:
    words = sentence.text.split()
    total = max(sum(len(w) for w in words), 1)
    span = sentence.end - sentence.start
    out, done = [], 0
    for word in words:
        start = sentence.start + span * done // total
        done += len(word)
        out.append(Fragment(word, start, sentence.start + span * done // total))
    return out


def sentence_cues(
    sentences: Iterable[Sentence],
    offset: int = 0,
    max_chars: int = MAX_LINE_CHARS,
    max_lines: int = MAX_LINES,
    max_seconds: float = MAX_CUE_SECONDS,
) -> list[Cue]:
    """Cues for ``sentences``, their times moved back by ``offset`` frames (a chapter's start, for a chapter's
    own file). Each cue is at most ``max_lines`` lines of about ``max_chars`` (a longer single word overflows)."""
    cues: list[Cue] = []
    for sentence in sentences:
        groups = _pack(fragments(sentence), max_chars * max_lines, round(max_seconds * SAMPLE_RATE))
        for n, group in enumerate(groups):
            # Inside a sentence one cue gives way to the next; the last ends with the sentence's last word.
            end = groups[n + 1][0].start if n + 1 < len(groups) else group[-1].end
            start = group[0].start
            cues.append(Cue(start - offset, max(end, start) - offset, tuple(group), _wrap(group, max_chars)))
    return cues


def _pack(frags: Sequence[Fragment], max_chars: int, max_frames: int) -> list[list[Fragment]]:
    """Fragments into as few cues as the limits allow, of about equal length (not a full cue and a stub)."""
    if not frags:
        return []
    length, duration = _length(frags), frags[-1].end - frags[0].start
    by_chars, by_time = math.ceil(length / max_chars), math.ceil(duration / max_frames)
    # Whichever limit needs more cues sets their size: a little over an equal share, so that rounding never
    # leaves a last cue of one word.
    chars = min(max_chars, math.ceil(length / by_chars) + _SHARE_SLACK_CHARS) if by_chars >= by_time else max_chars
    frames = min(max_frames, math.ceil(duration / by_time) + _SHARE_SLACK_FRAMES) if by_time > by_chars else max_frames
    groups: list[list[Fragment]] = []
    current: list[Fragment] = []
    for frag in frags:
        if current and (_length([*current, frag]) > chars or frag.end - current[0].start > frames):
            keep = _clause_cut(current)
            groups.append(current[:keep])
            current = current[keep:]
        current.append(frag)
    groups.append(current)
    return groups


def _length(frags: Sequence[Fragment]) -> int:
    return sum(len(f.text) for f in frags) + len(frags) - 1


def _clause_cut(current: Sequence[Fragment]) -> int:
    """How many fragments to put in a full cue: up to the last clause end in its second half, else all."""
    for n in range(len(current) - 1, len(current) // 2 - 1, -1):
        if current[n].text.endswith(_CLAUSE_END) and n + 1 < len(current):
            return n + 1
    return len(current)


def _wrap(group: Sequence[Fragment], max_chars: int) -> tuple[int, ...]:
    """Line starts for a cue: none if it fits one line, else the break that makes the longer line shortest."""
    widths = [len(f.text) for f in group]
    if sum(widths) + len(widths) - 1 <= max_chars or len(group) < 2:
        return ()

    def longer(cut: int) -> int:
        return max(sum(widths[:cut]) + cut - 1, sum(widths[cut:]) + len(widths) - cut - 1)

    return (min(range(1, len(group)), key=longer),)


def word_cues(sentences: Iterable[Sentence], offset: int = 0) -> list[Cue]:
    """One cue per word (for SRT): from the word's start to the next word's start, or its end at a sentence's end."""
    cues = []
    for sentence in sentences:
        frags = fragments(sentence)
        for n, frag in enumerate(frags):
            end = frags[n + 1].start if n + 1 < len(frags) else frag.end
            cues.append(Cue(frag.start - offset, max(end, frag.start) - offset, (frag,)))
    return cues


# ---- text formats ---------------------------------------------------------------------------------------


def _milliseconds(frames: int) -> int:
    return round(frames * 1000 / SAMPLE_RATE)


def timestamp(frames: int, separator: str = ".") -> str:
    """``HH:MM:SS.mmm`` (WebVTT) or, with ``separator=","``, ``HH:MM:SS,mmm`` (SRT)."""
    ms = _milliseconds(max(frames, 0))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _cue_times(cue: Cue, separator: str) -> str:
    start, end = _milliseconds(cue.start), _milliseconds(cue.end)
    end_frames = cue.end if end > start else cue.start + SAMPLE_RATE // 1000  # never an empty cue
    return f"{timestamp(cue.start, separator)} --> {timestamp(end_frames, separator)}"


def srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm`` times, a blank line after each."""
    return "".join(f"{n}\n{_cue_times(cue, ',')}\n{cue.text}\n\n" for n, cue in enumerate(cues, start=1))


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: Sequence[Cue], karaoke: bool = False) -> str:
    """WebVTT text; with ``karaoke``, a timestamp tag before each word after a cue's first (WebVTT's own
    word timing: each tag later than the one before, inside the cue's times)."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = _karaoke_text(cue) if karaoke else _vtt_escape(cue.text)
        blocks.append(f"{_cue_times(cue, '.')}\n{text}\n")
    return "\n".join(blocks)


def _karaoke_text(cue: Cue) -> str:
    lines = []
    last = _milliseconds(cue.start)
    for line in cue.rows():
        parts = []
        for frag in line:
            at = _milliseconds(frag.start)
            if last < at < _milliseconds(cue.end):
                parts.append(f"<{timestamp(frag.start)}>{_vtt_escape(frag.text)}")
                last = at
            else:  # the cue's first word, or one said within the same millisecond as the one before
                parts.append(_vtt_escape(frag.text))
        lines.append(" ".join(parts))
    return "\n".join(lines)


def subtitles(chapters: Sequence[ChapterTimings], fmt: str, words: bool = False, offset: int = 0) -> str:
    """The subtitle file for ``chapters`` in ``fmt`` (``srt`` or ``vtt``), sentence cues or, with ``words``,
    word timing; times move back by ``offset`` frames (a chapter's start, for its own file)."""
    sentences = [s for chapter in chapters for s in chapter.sentences]
    if fmt == "srt":
        return srt(word_cues(sentences, offset) if words else sentence_cues(sentences, offset))
    if fmt == "vtt":
        return webvtt(sentence_cues(sentences, offset), karaoke=words)
    raise ValueError(f"unknown subtitle format {fmt!r}; choose one of {', '.join(FORMATS)}")
