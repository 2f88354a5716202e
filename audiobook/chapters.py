"""Which chapters to narrate (``--chapters SPEC``) and the per-chapter summary ``inspect`` prints.

Chapter indices are 0-based positions in ``book.chapters``, exactly as ``audiobook inspect`` prints them,
skipped chapters included (so the numbering never changes with the selection).

``SPEC`` is a comma-separated list of:

* ``all`` (the default): every chapter that is not skipped;
* ``everything``: every chapter, front and back matter included;
* ``N``: chapter N, even when it is skipped (this is how one piece of skipped matter is brought back);
* ``N-M``: chapters N to M inclusive; skipped chapters inside a range stay out unless named alone;
* ``N-``: chapter N to the last; ``-M``: the first chapter to M.

Items combine: ``all,0`` narrates the book plus its (skipped) chapter 0. The result is in book order,
without duplicates.
"""

from __future__ import annotations

import re

from audiobook.book import Book
from audiobook.errors import AudiobookError

WORDS_PER_MINUTE = 160
"""Kokoro at speed 1.0 narrates English prose at roughly 150-170 words a minute."""

_RANGE = re.compile(r"^(\d*)\s*-\s*(\d*)$")


def select_chapters(book: Book, spec: str = "all") -> list[int]:
    """The chapter indices ``spec`` names, in book order; raises AudiobookError for a bad spec."""
    count = len(book.chapters)
    chosen: set[int] = set()
    for item in (part.strip().lower() for part in spec.split(",")):
        if item == "all":
            chosen.update(i for i, c in enumerate(book.chapters) if not c.skipped)
        elif item == "everything":
            chosen.update(range(count))
        elif item.isdigit():
            chosen.add(_check(int(item), count, spec))
        elif (match := _RANGE.match(item)) and any(match.groups()):
            first = _check(int(match.group(1) or 0), count, spec)
            last = _check(int(match.group(2)) if match.group(2) else count - 1, count, spec)
            if first > last:
                raise AudiobookError(f"--chapters {spec!r}: range {item!r} runs backwards")
            chosen.update(i for i in range(first, last + 1) if not book.chapters[i].skipped)
        else:
            raise AudiobookError(
                f"--chapters {spec!r}: {item!r} is not 'all', 'everything', an index or a range like 1-3,7 "
                "(indices are those `audiobook inspect` prints)"
            )
    if not chosen:
        raise AudiobookError(f"--chapters {spec!r} selects no chapters to narrate")
    return sorted(chosen)


def _check(index: int, count: int, spec: str) -> int:
    if index >= count:
        raise AudiobookError(f"--chapters {spec!r}: there is no chapter {index}; this book has chapters 0-{count - 1}")
    return index


def estimated_seconds(words: int) -> float:
    """Narration time for ``words`` words at :data:`WORDS_PER_MINUTE`."""
    return words * 60.0 / WORDS_PER_MINUTE


def book_summary(book: Book) -> dict:
    """What ``inspect --json`` prints: title, author, language and one entry per chapter."""
    chapters = []
    for index, chapter in enumerate(book.chapters):
        text = chapter.text
        words = len(text.split())
        chapters.append(
            {
                "index": index,
                "title": chapter.title,
                "chars": len(text),
                "words": words,
                "seconds": round(estimated_seconds(words), 1),
                "skipped": chapter.skipped,
                "reason": chapter.reason,
            }
        )
    meta = book.metadata
    return {"title": meta.title, "author": meta.author, "language": meta.language, "chapters": chapters}
