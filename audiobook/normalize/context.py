"""Reading by the neighbours: every decision that depends on the words around a span, in one place.

St. is Saint before a name and Street after one; a Roman numeral is a cardinal after "Chapter", an ordinal
with "the" after "Henry", a heading at the start of a line, and nothing at all when it is the pronoun "I";
an abbreviation's period also ends the sentence when a sentence starts after it. The tagger finds
candidates; these functions say how (or whether) to read them. All look only at the source text.
"""

from __future__ import annotations

import re

from .numbers import roman_value
from .tables import Abbreviation, tables

SENTENCE_STARTERS = frozenset(
    "a an and as at but by for he her here his how i if in it its my no now of on our she so that the their "
    "then there these they this those though to we what when where which while who why with yet you your".split()
)
"""Capitalised words that, after an abbreviation's period, start a new sentence rather than name someone."""

HEADING_MAX_CHARS = 150
"""A line this long or shorter that starts with a numeral and a title is a heading ("IV. The Arrival.")."""

_WORD_BEFORE = re.compile(r"([^\W\d_][\w'’.&-]*|\d[\d,]*|&)[ \t]+$")
_WORD_AFTER = re.compile(r"[ \t]+[\"“‘'(]?([\w'’&-]+\.?)")
_LIST_TOKENS = re.compile(r"[\w'’.]+|[,&–-]")
_CONNECTORS = frozenset({"and", "or", "to", ",", "&", "–", "-"})
_CLOSERS = "\"”’')]"
_SPOKEN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PRONOUN_VERBS = frozenset(
    "am think know said say suppose guess believe mean feel hope want will would shall should can could must "
    "might may do did don't didn't won't can't wish fear dare".split()
)
"""After "Henry I", these make the I a pronoun ("Henry I think not"); "Charles I was beheaded" stays a king."""
_POSSESSIVE = re.compile(r"['’]s\b")


def word_before(text: str, start: int) -> str:
    """The word just before ``start``, separated from it by spaces only (so "Henry, I" has none); or ``""``."""
    words = words_before(text, start, 1)
    return words[0] if words else ""


def words_before(text: str, start: int, count: int) -> list[str]:
    """Up to ``count`` words before ``start``, nearest first, each separated from the next by spaces only."""
    words: list[str] = []
    while len(words) < count:
        match = _WORD_BEFORE.search(text, max(0, start - 40), start)
        if not match:
            break
        words.append(match.group(1))
        start = match.start()
    return words


def word_after(text: str, end: int) -> str:
    """The word just after ``end``, past spaces and an opening quote or bracket; or ``""``."""
    match = _WORD_AFTER.match(text, end)
    return match.group(1) if match else ""


def is_capitalised(word: str) -> bool:
    return bool(word) and word[0].isupper()


def is_name(word: str) -> bool:
    """A capitalised word that is not a common sentence opener (He, The, But...)."""
    return is_capitalised(word) and word.rstrip(".").lower() not in SENTENCE_STARTERS


def sentence_ends_after(text: str, end: int, strict: bool = False) -> bool:
    """Whether the period at ``text[end - 1]`` also ends a sentence.

    It does at the end of the text or a line, and before a capital letter; ``strict`` (after titles like
    "Capt.", which a name follows) asks for a sentence opener (He, The...) rather than any capital.
    """
    if not text[end - 1 : end] == ".":
        return False
    pos = end
    while pos < len(text) and text[pos] in _CLOSERS:
        pos += 1
    rest = text[pos : pos + 40]
    if not rest.strip(" \t") or rest.lstrip(" \t").startswith("\n"):
        return True
    following = word_after(text, pos)
    if not rest[:1].isspace() or not is_capitalised(following):
        return False
    return not strict or not is_name(following)


def abbreviation_reading(text: str, start: int, end: int, abbreviation: Abbreviation) -> str | None:
    """How to read an abbreviation here, or None to leave it to G2P (No. as a word, c. not before a year)."""
    before, after = word_before(text, start), word_after(text, end)
    where = abbreviation.where
    if where == "name_side":
        before_name, after_name = abbreviation.spoken.split("|")
        if is_name(after) and text[end : end + 1] == " ":
            return before_name
        if is_capitalised(before) or before[:1].isdigit():
            return after_name
        return before_name if abbreviation.written.endswith(".") else None  # "'St!" is a hiss
    if where == "after_name":
        return abbreviation.spoken if is_capitalised(before) or before[:1].isdigit() or before == "&" else None
    if where == "before_number":
        bare = after.rstrip(".")
        numeral = roman_value(bare) and (len(bare) > 1 or is_capitalised(abbreviation.written))
        return abbreviation.spoken if after[:1].isdigit() or numeral else None  # not "that naval chap. I fear"
    if where == "near_number":
        near = before[:1].isdigit() or after[:1].isdigit() or _next_to_same_family(text, start, end, abbreviation)
        return abbreviation.spoken if near else None
    return abbreviation.spoken


def _next_to_same_family(text: str, start: int, end: int, abbreviation: Abbreviation) -> bool:
    """ "Sat. and Sun.": a day abbreviation beside another (past one connector) is a day too."""
    if abbreviation.spoken not in _SPOKEN_DAYS:
        return False
    window = (
        _LIST_TOKENS.findall(text[max(0, start - 20) : start])[-2:] + _LIST_TOKENS.findall(text[end : end + 20])[:2]
    )
    table = tables().abbreviations
    return any(token in table and table[token].spoken in _SPOKEN_DAYS for token in window)


def roman_reading(text: str, start: int, end: int) -> str | None:
    """How to read the Roman numeral ``text[start:end]``: ``cardinal``, ``heading`` (a cardinal that starts a
    line), ``ordinal`` (with "the": Henry VIII), or None (the pronoun I, a word, letters)."""
    numeral = text[start:end]
    if text[start - 1 : start] == "(" and text[end : end + 1] == ")":
        return "cardinal" if len(numeral) > 1 or numeral in "iIvVxX" else None
    keyword = _keyword_before(text, start)
    if keyword:
        return None if _is_pronoun_after_keyword(text, end, numeral, keyword) else "cardinal"
    if not numeral.isupper():
        return None
    if _is_regnal(text, start, end, numeral):
        return "ordinal"
    return "heading" if _is_heading(text, start, end, numeral) else None


def _keyword_before(text: str, start: int) -> str:
    """The roman-context word ("Chapter", "acts") before a numeral, or before a list of them ("Chapters IV, V
    and VI", "Acts I–III"); never past a comma that follows a plain word ("No, I had a dozen")."""
    if start == 0 or text[start - 1] not in " \t–-":
        return ""
    keywords = tables().roman_keywords
    tokens = _LIST_TOKENS.findall(text[max(0, start - 60) : start])
    i = len(tokens) - 1
    while i >= 1 and tokens[i] in _CONNECTORS and roman_value(tokens[i - 1]):
        i -= 2
    return tokens[i] if i >= 0 and tokens[i].rstrip(".").lower() in keywords else ""


def _is_pronoun_after_keyword(text: str, end: int, numeral: str, keyword: str) -> bool:
    """ "in this chapter I explain": a lower-case keyword, then I, then a lower-case word. And "the letter V"."""
    if len(numeral) > 1 or not keyword[0].islower():
        return False
    if keyword.rstrip(".").lower() == "letter":
        return True
    return numeral == "I" and word_after(text, end)[:1].islower()


def _is_regnal(text: str, start: int, end: int, numeral: str) -> bool:
    """Henry VIII, Pius IX, King John II, HENRY VIII, Henry Ford II; not "Henry, I" nor "Henry I think"."""
    if set(numeral) - set("IVXL") or (roman_value(numeral) or 0) > 50:
        return False
    name, before = (words_before(text, start, 2) + ["", ""])[:2]
    if not is_capitalised(name):
        return False
    table = tables()
    titled = before.rstrip(".").lower() in table.titles
    known = name.capitalize() in table.regnal_names
    if numeral == "I":
        return titled or (known and word_after(text, end).lower() not in _PRONOUN_VERBS)
    if known or titled:
        return True
    return numeral in ("II", "III", "IV") and is_name(before)


def _is_heading(text: str, start: int, end: int, numeral: str) -> bool:
    """A numeral that starts a line and is alone on it ("I."), or heads a short title ("IV. The Arrival.")."""
    if start > 0 and text[start - 1] != "\n":
        return False
    line_end = text.find("\n", end)
    rest = text[end : line_end if line_end >= 0 else len(text)]
    if re.fullmatch(r"[.:]?\s*", rest):
        return True
    if end - start + len(rest) > HEADING_MAX_CHARS or (len(numeral) == 1 and numeral not in "IVX"):
        return False
    title = re.match(r"([.:])?\s+[\"“‘]?([A-Z][\w'’-]*)(\.?)", rest)
    if not title:
        return False
    is_initial = len(title.group(2)) == 1 and title.group(3) == "."  # "V. I. Lenin"
    return not is_initial and (title.group(1) is not None or len(numeral) > 1)


def possessive_after(text: str, end: int) -> bool:
    """Whether ``'s`` follows (Louis XIV's)."""
    return bool(_POSSESSIVE.match(text, end))
