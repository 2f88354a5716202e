"""The words of a book that G2P does not know: what ``audiobook words BOOK`` lists.

misaki looks every word up in its own lexicon (with its rules for capitals, plurals, -ed and -ing); a word it
cannot find goes to espeak-ng's fallback, which is where most mispronounced names come from. Rather than guess
which words those are, we run misaki's own G2P over the book's narration-ready text, with its fallback wrapped
so that every word handed to it is counted, with the phonemes espeak gave it.
"""

from __future__ import annotations

import copy
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from .book import Book
from .engine.core import split_paragraphs
from .engine.g2p import english_g2p, lang_code_for
from .errors import AudiobookError
from .lexicon import Lexicon
from .speech import speakable

log = logging.getLogger(__name__)

_POSSESSIVE = re.compile(r"['’]s$")
_EDGE_PUNCTUATION = "!?.,;:—–-\"“”‘’'()[]… "


@dataclass(frozen=True)
class UnknownWord:
    """A word outside misaki's lexicon."""

    word: str
    count: int
    phonemes: str
    """What espeak-ng's fallback makes of it: what the book will say unless a lexicon entry says otherwise."""

    def to_dict(self) -> dict[str, object]:
        return {"word": self.word, "count": self.count, "phonemes": self.phonemes}


class _RecordingFallback:
    """misaki's fallback, counting the words it is asked for."""

    def __init__(self, fallback: object) -> None:
        self.fallback = fallback
        self.counts: Counter[str] = Counter()
        self.phonemes: dict[str, str] = {}

    def __call__(self, token):  # noqa: ANN001, ANN204 - misaki's MToken in, (phonemes, rating) out
        phonemes, rating = self.fallback(token) if self.fallback is not None else (None, None)
        word = token.text.strip(_EDGE_PUNCTUATION)  # misaki sometimes hands over "Pat!" whole
        if word:
            self.counts[word] += 1
            self.phonemes.setdefault(word, (phonemes or "").strip(_EDGE_PUNCTUATION))
        return phonemes, rating


def unknown_words(texts: Iterable[str], lang: str = "a", lexicon: Lexicon | None = None) -> list[UnknownWord]:
    """Words of ``texts`` that misaki's English lexicon lacks, most frequent first (then alphabetical).

    The texts are read as the engine reads them: lexicon entries applied (a word the lexicon covers is no
    longer unknown), normalised, split into paragraphs. English only (``a`` or ``b``).
    """
    code = lang_code_for(lang)
    if code not in ("a", "b"):
        raise AudiobookError(
            f"`words` lists words outside misaki's English lexicon; language {lang!r} is read by espeak-ng throughout"
        )
    g2p = copy.copy(english_g2p(british=code == "b"))  # a shallow copy: the same spaCy and lexicon
    recorder = _RecordingFallback(g2p.fallback)
    g2p.fallback = recorder
    for text in texts:
        for paragraph in split_paragraphs(speakable(text, code, lexicon).text):
            g2p(paragraph)
    return _ranked(recorder)


def _ranked(recorder: _RecordingFallback) -> list[UnknownWord]:
    """One row per word whatever its capitals ("Curiouser", "curiouser") and with its possessive ("Ukridge's"),
    as a lexicon entry covers them, shown in its most frequent plain form."""
    forms: dict[str, Counter[str]] = {}
    for word, count in recorder.counts.items():
        forms.setdefault(_POSSESSIVE.sub("", word).lower(), Counter())[word] += count
    rows = []
    for spellings in forms.values():
        plain = [form for form in spellings if not _POSSESSIVE.search(form)] or list(spellings)
        shown = min(plain, key=lambda form: (-spellings[form], form))
        rows.append(UnknownWord(shown, sum(spellings.values()), recorder.phonemes[shown]))
    return sorted(rows, key=lambda row: (-row.count, row.word.lower(), row.word))


def book_unknown_words(
    book: Book, chapters: Iterable[int], lang: str, lexicon: Lexicon | None = None
) -> list[UnknownWord]:
    """:func:`unknown_words` over the given chapters of a book."""
    return unknown_words((book.chapters[i].text for i in chapters), lang, lexicon)
