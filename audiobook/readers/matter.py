"""Front and back matter: which chapters are not narrated by default, and why.

Nothing here deletes text. A chapter judged to be matter is marked ``skipped`` with a short reason, so
``--chapters`` can bring it back. The evidence, strongest first:

1. ``epub:type`` (or ARIA ``role``) at the chapter's start: ``cover``, ``titlepage``, ``halftitlepage``,
   ``imprint``, ``copyright-page``, ``toc``, ``colophon``, ``index``, ``endnotes``/``footnotes``/
   ``rearnotes``, ``loi``/``lot``. ``dedication``, ``epigraph``, ``preface``, ``introduction``,
   ``foreword``, ``prologue`` (and the like) are narrated, whatever else is said about them.
2. The EPUB 3 landmarks nav or the EPUB 2 guide naming the chapter's target with one of those types.
3. The chapter's title (``Contents``, ``Copyright``, ``Colophon``, ``Index``...) or its file name
   (``titlepage.xhtml``, ``toc.xhtml``, ``copyright.html``...).
4. A short (under 40 words) entry before the first chapter of the body that is none of the narrated kinds
   is a title page (Gutenberg's "Alice's Adventures in Wonderland / by Lewis Carroll" and "THE MILLENNIUM
   FULCRUM EDITION 3.0" entries).
5. Project Gutenberg: everything up to and including the ``*** START OF THE PROJECT GUTENBERG EBOOK ... ***``
   line is the header and everything from the ``*** END OF ... ***`` line on is the licence, even when the
   markers sit inside a chapter: that chapter is split at the marker (:func:`split_gutenberg`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from audiobook.book import Chapter
from audiobook.readers.xhtml import as_sentence

_TYPE_REASONS = {
    "cover": "cover",
    "titlepage": "title page",
    "halftitlepage": "half title page",
    "imprint": "imprint",
    "copyright-page": "copyright page",
    "copyright": "copyright page",
    "toc": "table of contents",
    "landmarks": "table of contents",
    "colophon": "colophon",
    "index": "index",
    "endnotes": "endnotes",
    "rearnotes": "endnotes",
    "footnotes": "endnotes",
    "notes": "endnotes",
    "loi": "list of illustrations",
    "lot": "list of tables",
    "title-page": "title page",
}
NARRATED_TYPES = frozenset(
    {
        "dedication",
        "epigraph",
        "preface",
        "introduction",
        "foreword",
        "prologue",
        "epilogue",
        "afterword",
        "acknowledgments",
        "acknowledgements",
        "preamble",
        "conclusion",
        "chapter",
        "part",
        "bodymatter",
    }
)
_TITLE_REASONS = [
    (re.compile(r"^(the )?cover( page| image)?$"), "cover"),
    (re.compile(r"^(full )?title ?page$"), "title page"),
    (re.compile(r"^half ?title( ?page)?$"), "half title page"),
    (re.compile(r"^imprint$"), "imprint"),
    (re.compile(r"^(un)?copyright( page| notice)?$"), "copyright page"),
    (re.compile(r"^(table of )?contents$|^toc$"), "table of contents"),
    (re.compile(r"^colophon$"), "colophon"),
    (re.compile(r"^(general )?index$"), "index"),
    (re.compile(r"^(end ?notes|foot ?notes|notes)$"), "endnotes"),
    (re.compile(r"^list of illustrations$|^illustrations$"), "list of illustrations"),
]
_NARRATED_TITLE = re.compile(
    r"\b(dedication|epigraph|preface|introduction|foreword|prologue|epilogue|afterword|to the reader)\b"
)
_FILE_REASONS = {
    "cover": "cover",
    "coverpage": "cover",
    "titlepage": "title page",
    "title": "title page",
    "halftitle": "half title page",
    "halftitlepage": "half title page",
    "imprint": "imprint",
    "copyright": "copyright page",
    "uncopyright": "copyright page",
    "toc": "table of contents",
    "contents": "table of contents",
    "colophon": "colophon",
    "index": "index",
    "endnotes": "endnotes",
    "footnotes": "endnotes",
    "notes": "endnotes",
    "loi": "list of illustrations",
}
TITLE_PAGE_WORDS = 40
"""Entries shorter than this before the body, of no narrated kind, are taken for title pages."""
BODY_WORDS = 150
"""The first narrated chapter at least this long is where the body starts."""

GUTENBERG_HEADER = "Project Gutenberg header"
GUTENBERG_LICENCE = "Project Gutenberg licence"
_PG_START = re.compile(r"^\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
_PG_END = re.compile(
    r"^(\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg('s)? (E-?Book|Etext))",
    re.IGNORECASE,
)


@dataclass
class Evidence:
    """What is known about where a chapter starts, beyond its title and text."""

    types: frozenset[str] = field(default_factory=frozenset)
    landmark: str = ""
    filename: str = ""
    linear: bool = True


def _norm_title(title: str) -> str:
    return re.sub(r"[^\w\s-]", "", title.lower()).strip()


def matter_reason(title: str, evidence: Evidence) -> str:
    """The reason a chapter is front or back matter, or "" when it is narrated (rules 1-3 above)."""
    if NARRATED_TYPES.intersection(evidence.types) - {"chapter", "part", "bodymatter"}:
        return ""
    for kind in sorted(evidence.types):
        if kind in _TYPE_REASONS:
            return _TYPE_REASONS[kind]
    landmark = evidence.landmark.lower()
    if landmark in _TYPE_REASONS:
        return _TYPE_REASONS[landmark]
    if NARRATED_TYPES.intersection(evidence.types) or landmark in NARRATED_TYPES:
        return ""
    name = _norm_title(title)
    if _NARRATED_TITLE.search(name):
        return ""
    for pattern, reason in _TITLE_REASONS:
        if pattern.match(name):
            return reason
    stem = re.sub(r"[\W_\d]+", "", evidence.filename.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower())
    if stem in _FILE_REASONS:
        return _FILE_REASONS[stem]
    return "" if evidence.linear else "not in the linear reading order"


def _words(chapter: Chapter) -> int:
    return sum(len(p.split()) for p in chapter.paragraphs)


def mark_matter(chapters: list[Chapter], evidence: list[Evidence]) -> None:
    """Set ``skipped``/``reason`` on front and back matter (rules 1-4), in place."""
    for chapter, ev in zip(chapters, evidence, strict=True):
        reason = matter_reason(chapter.title, ev)
        if reason:
            chapter.skipped, chapter.reason = True, reason
    if not any(not c.skipped and _words(c) >= BODY_WORDS for c in chapters):
        return  # a book of short pieces has no "front" to find
    for chapter, ev in zip(chapters, evidence, strict=True):
        if not chapter.skipped and _words(chapter) >= BODY_WORDS:
            break
        narrated_kind = NARRATED_TYPES.intersection(ev.types) - {"bodymatter"} or _NARRATED_TITLE.search(
            _norm_title(chapter.title)
        )
        if not chapter.skipped and not narrated_kind and _words(chapter) < TITLE_PAGE_WORDS:
            chapter.skipped, chapter.reason = True, "title page"


def split_gutenberg(chapters: list[Chapter]) -> list[Chapter]:
    """Split out and skip the Project Gutenberg header and licence (rule 5); other chapters pass through."""
    start = _find(chapters, _PG_START)
    end = _find(chapters, _PG_END)
    if start is None and end is None:
        return chapters
    out: list[Chapter] = []
    for index, chapter in enumerate(chapters):
        if end is not None and index > end[0]:
            out.append(_skip(chapter, GUTENBERG_LICENCE))
            continue
        if start is not None and index < start[0]:
            out.append(_skip(chapter, GUTENBERG_HEADER))
            continue
        first, last = 0, len(chapter.paragraphs)
        if start is not None and index == start[0]:
            first = start[1] + 1
            out.append(_piece(chapter, 0, first, GUTENBERG_HEADER))
        if end is not None and index == end[0]:
            last = end[1]
        if first < last:
            body = _piece(chapter, first, last, chapter.reason)
            if first > 0 and not body.skipped:
                # What follows the START line is narrated and, like every chapter, opens with its title.
                body.paragraphs.insert(0, as_sentence(chapter.title))
            out.append(body)
        if end is not None and index == end[0]:
            out.append(_piece(chapter, last, len(chapter.paragraphs), GUTENBERG_LICENCE))
    return [c for c in out if c.paragraphs]


def _find(chapters: list[Chapter], pattern: re.Pattern[str]) -> tuple[int, int] | None:
    for ci, chapter in enumerate(chapters):
        for pi, para in enumerate(chapter.paragraphs):
            if pattern.match(para):
                return ci, pi
    return None


def _skip(chapter: Chapter, reason: str) -> Chapter:
    chapter.skipped, chapter.reason = True, reason
    return chapter


def _piece(chapter: Chapter, first: int, last: int, reason: str) -> Chapter:
    title = chapter.title if reason not in (GUTENBERG_HEADER, GUTENBERG_LICENCE) else reason
    return Chapter(title, chapter.paragraphs[first:last], chapter.source, bool(reason), reason)
