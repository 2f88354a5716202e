"""Chapters -> chunks: the units of synthesis, scheduling and resume. Pure functions, no I/O.

A chunk never spans two chapters. Inside a chapter whole paragraphs are packed greedily up to
``max_chars``; a paragraph longer than that is split at sentence ends, an over-long sentence at clause
punctuation (``,`` ``;`` ``:`` dashes), and only then at spaces. A split is always at a space, never inside a
word; a single word longer than ``max_chars`` becomes a chunk of its own, over the limit.

Lossless and deterministic: joining a chapter's chunk texts with ``"\\n\\n"`` after a chunk that
``ends_paragraph`` and ``" "`` after one that does not gives back ``chapter.text`` exactly, and ids depend
only on the chapter index and the position in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audiobook.book import Book, Chapter

DEFAULT_MAX_CHUNK_CHARS = 2000
"""About 130 s of speech (Kokoro speaks ~15 characters per second).

A chunk is the unit of work lost on a crash, of load balancing across workers and of per-request overhead.
At ~60 characters/s (int8 on a 2-core CPU) a 2000-character chunk is ~35 s of work, so a crash costs at most
that, and the tail of a chapter spreads well across workers; the old 20000 meant 5+ minutes lost and one
worker finishing a long chunk alone. On a GPU (~100x real time) it is ~1.3 s of work against a few ms of IPC
and one WAV write, under 1% overhead. Smaller chunks buy little: most paragraphs are already shorter than
2000 characters, so chunks mostly end at paragraph ends and Kokoro's own ~510-token windows do the rest.
A typical 500,000-character novel gives ~250 chunk files, still easy to read and edit by hand.
"""

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev hon gen col capt lt sgt mt ft vs etc no vol ch fig p pp e.g i.e".split()
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_CLAUSE_END = re.compile(r"([,;:—–]|--|\))[\"'”’»]*$|^[—–]")


@dataclass(frozen=True)
class Chunk:
    id: str
    """``f"{chapter:03d}-{seq:04d}"``, e.g. ``007-0003``: stable across machines and runs."""
    chapter: int
    """Index into ``book.chapters``."""
    seq: int
    """0-based position within the chapter."""
    text: str
    """Paragraphs joined by ``"\\n\\n"``; no other blank lines inside."""
    ends_paragraph: bool
    """False when an over-long paragraph was split right after this chunk."""


def chunk_book(book: Book, indices: list[int], max_chars: int = DEFAULT_MAX_CHUNK_CHARS) -> list[Chunk]:
    """Chunks of the chapters at ``indices``, in the order given."""
    return [chunk for i in indices for chunk in chunk_chapter(i, book.chapters[i], max_chars)]


def chunk_chapter(index: int, chapter: Chapter, max_chars: int = DEFAULT_MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split one chapter's paragraphs into chunks of at most ``max_chars`` characters."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    pieces: list[tuple[str, bool]] = []
    for paragraph in chapter.paragraphs:
        if not paragraph:
            continue
        parts = split_paragraph(paragraph, max_chars)
        pieces.extend((part, i == len(parts) - 1) for i, part in enumerate(parts))
    texts: list[tuple[str, bool]] = []
    current: list[str] = []
    size = 0
    for piece, ends in pieces:
        if current and size + 2 + len(piece) > max_chars:
            texts.append(("\n\n".join(current), True))
            current, size = [], 0
        if ends:
            current.append(piece)
            size += len(piece) + (2 if len(current) > 1 else 0)
            continue
        # Part of an over-long paragraph: it fills a chunk of its own and the paragraph continues.
        if current:
            texts.append(("\n\n".join(current), True))
            current, size = [], 0
        texts.append((piece, False))
    if current:
        texts.append(("\n\n".join(current), True))
    return [Chunk(f"{index:03d}-{seq:04d}", index, seq, text, ends) for seq, (text, ends) in enumerate(texts)]


def split_paragraph(paragraph: str, max_chars: int) -> list[str]:
    """The paragraph cut at spaces into pieces of at most ``max_chars``, preferring the strongest breaks.

    ``" ".join(pieces) == paragraph`` for a whitespace-collapsed paragraph.
    """
    if len(paragraph) <= max_chars:
        return [paragraph]
    return _pack(paragraph.split(" "), max_chars, level=0)


def sentence_spans(paragraph: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence in ``paragraph``, by the rule chunks are cut at: after a word ending in
    ``.!?…`` (closing quotes and brackets allowed) that is not an abbreviation (``Mr.``, ``e.g.``, ``J.``).

    Spans run from a sentence's first non-space character to its last; the spaces between them belong to none.
    """
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", paragraph)]
    spans: list[tuple[int, int]] = []
    first = 0
    for i, (start, end) in enumerate(words):
        nxt = paragraph[words[i + 1][0] : words[i + 1][1]] if i + 1 < len(words) else ""
        if not nxt or _breaks_after(paragraph[start:end], nxt, 0):
            spans.append((words[first][0], end))
            first = i + 1
    return spans


# Break strength, strongest first: after a sentence, after a clause, anywhere between words.
def _breaks_after(word: str, next_word: str, level: int) -> bool:
    if level == 0:
        return bool(_SENTENCE_END.search(word)) and not _is_abbreviation(word)
    if level == 1:
        return bool(_CLAUSE_END.search(word) or _CLAUSE_END.search(next_word[:1]))
    return True


def _is_abbreviation(word: str) -> bool:
    bare = word.rstrip(".").lstrip("\"'“‘(«").lower()
    return bare in _ABBREVIATIONS or (len(bare) == 1 and bare.isalpha())


def _pack(words: list[str], max_chars: int, level: int) -> list[str]:
    """Group words into runs ending at breaks of ``level``, then pack the runs greedily."""
    runs: list[list[str]] = [[]]
    for i, word in enumerate(words):
        runs[-1].append(word)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if nxt and _breaks_after(word, nxt, level):
            runs.append([])
    pieces: list[str] = []
    current = ""
    for run in runs:
        text = " ".join(run)
        if len(text) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            parts = _pack(run, max_chars, level + 1) if level < 2 else [text]
            # The run's last part may still share a piece with what follows.
            pieces.extend(parts[:-1])
            current = parts[-1]
            continue
        if current and len(current) + 1 + len(text) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current} {text}" if current else text
    if current:
        pieces.append(current)
    return pieces
