"""Narration-ready text: what a book says, written so that G2P reads it as a person would.

``normalize(text, lang)`` returns a :class:`Normalized`: the text to speak ("Chapter twelve", "Henry the
eighth", "10 kilometers") and spans mapping every part of it back to the source ("twelve" came from "XII"),
so timed text can point at the book's own words. English rules only, for now; other languages pass through
unchanged. Pure functions: no I/O beyond the package's own data tables, no G2P.

The English rules follow NeMo's split: a tagger (:mod:`.english`) marks spans with a semiotic class, a
verbalizer (:mod:`.verbalize`) speaks them, data tables (``data/``) hold abbreviations, acronyms, units and
regnal names, and :mod:`.context` decides every ambiguity by the neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable

from .english import MISAKI_LINK, tag
from .spans import Edit, Normalized, Span, apply_edits

NORMALIZER_VERSION = "1"
"""Bump when a rule changes what is spoken: jobs record it, and a resume under another version says so."""

ENGLISH = frozenset({"a", "b"})
"""Kokoro language codes the English rules serve (American and British English)."""

__all__ = ["MISAKI_LINK", "NORMALIZER_VERSION", "Edit", "Normalized", "Span", "normalize"]


def normalize(text: str, lang: str = "a", fixed: Iterable[Edit] = ()) -> Normalized:
    """``text`` made narration-ready for kokoro language ``lang`` (``a``, ``b``...; or a tag like ``en-GB``).

    ``fixed`` edits (a pronunciation lexicon's) take precedence: the rules do not touch their spans.
    """
    fixed = list(fixed)
    if _language(lang) not in ENGLISH:
        return apply_edits(text, fixed)
    taken = [(edit.start, edit.end) for edit in fixed]
    edits = fixed + [edit for edit in tag(text) if not _overlaps(edit, taken)]
    return apply_edits(text, edits)


def _language(lang: str) -> str:
    """``a``/``b`` for English (kokoro codes or tags like ``en-GB``), else the tag as given."""
    tag_ = (lang or "").strip().lower().replace("_", "-")
    return "a" if tag_.split("-")[0] == "en" else tag_


def _overlaps(edit: Edit, taken: list[tuple[int, int]]) -> bool:
    return any(edit.start < end and start < edit.end for start, end in taken)
