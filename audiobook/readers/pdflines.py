"""Text lines of PDF pages -> paragraphs: the typesetting undone, as pure functions on :class:`Line` records.

:mod:`audiobook.readers.pdf` gets the lines out of the file (with pdfminer.six); this module decides what
they mean. The rules, in the order they run:

1. **Running heads and page numbers.** Only the two top and two bottom lines of a page are candidates, and
   a candidate no larger than the body text is removed when it is a page number (``12``, ``xii``,
   ``- 12 -``, ``Page 3``, ``Page 3 of 20``), when it is the book's title or a chapter's (except on the
   page where that chapter opens: there it is the heading), or when its text, digits ignored, is also a
   candidate on another page at most :data:`RUNNING_WINDOW` pages away and on at least three pages in all
   (two in a document of four pages or fewer): running heads alternate between the book's title and the
   chapter's, and carry page numbers. A line like "Chapter 3" only goes when it repeats exactly, so short
   chapters keep their headings. A piece of a line that pdfminer split at a wide justified gap is first
   put back (:func:`rejoin_split_lines`).
2. **Columns.** A page's column edges are the x positions at which three or more lines start (an edge
   less than 4 em right of another is an indent, not a column); each line belongs to the nearest edge at
   or left of it, and the column's right edge is where most of its lines end. Lines are read top to
   bottom, column by column, in bands cut by lines that cross a column boundary (a heading over both).
3. **Paragraphs** start at a change of type size; at a line indented more than 0.6 em from the line above
   (a first-line indent, a quotation), or back out to the margin from a quotation's second line on; at a
   second line in a row at the document's usual paragraph indent (one-line paragraphs of dialogue); after
   a short line that ends a sentence; and at a vertical gap over 1.45 times the body's line pitch. Across
   a page or column break a paragraph goes on unless the new line is indented from its column's edge or
   the last one was short. So books set with first-line indents and books with spaced paragraphs both
   come out as paragraphs, not one paragraph per line.
4. **Words broken at line ends.** A soft hyphen always joins. A hyphen after a letter, before a line that
   starts with a lowercase letter, joins the two halves unless the hyphenated form is the usual one: it
   occurs (mid-line) in the document more often than the joined form, or, when the document never uses
   either, the dictionary (the English pronouncing lexicon that the speech model uses) knows the
   hyphenated word, or knows both halves but not the joined word. "won-/derful" -> "wonderful",
   "well-/known" -> "well-known". A hyphen before a capital or a digit ("Anglo-/Saxon", "1914-/1918")
   stays. A line ending in a dash joins without a space.
5. **Ligatures** (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ) become their letters; soft hyphens and other invisible characters go, as
   for every format (:func:`audiobook.readers.xhtml.clean`).
6. **Headings** are paragraphs of at most three lines and 150 characters set larger than the body (1.15x)
   or wholly in bold; their level is the rank of their size. Two headings in a row ("CHAPTER I" / "Down the
   Rabbit-Hole") are one title.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from audiobook.readers.text import chapter_line
from audiobook.readers.xhtml import as_sentence, clean

log = logging.getLogger(__name__)

RUNNING_WINDOW = 4
"""Pages within which a repeated top or bottom line counts as a running head."""
HEADING_RATIO = 1.15
"""Lines this much larger than the body text are headings (and never running heads)."""
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_PAGE_NUMBER = re.compile(
    r"^[\W_]*(page\s+)?(\d{1,4}|[ivxlc]{1,7})(\s*(of|/)\s*\d{1,4})?[\W_]*$|^[\W_]*page\s+[IVXLC]{1,7}[\W_]*$",
    re.IGNORECASE,
)
_UPPER_ROMAN = re.compile(r"^[\W_]*[IVXLC]{1,7}[\W_]*$")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_SENTENCE_END = ".!?:;\"'”’)]…"
_HYPHENS = "-\u2010\u2011"
_DASHES = "\u2014\u2013"


@dataclass
class Line:
    """One line of text on a page, in PDF points (y grows upwards)."""

    page: int
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    bold: bool = False
    col_left: float = 0.0
    col_right: float = 0.0


@dataclass
class Paragraph:
    lines: list[Line]
    text: str = ""
    heading: int = 0
    """Heading level (1 for the largest type), 0 for body text."""
    merged: bool = False
    """A heading that already took in the heading after it."""

    @property
    def page(self) -> int:
        return self.lines[0].page


def body_size(lines: Iterable[Line]) -> float:
    """The type size most of the text is set in."""
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def rejoin_split_lines(lines: list[Line]) -> list[Line]:
    """One page's lines with the pieces of a widely justified line put back together.

    pdfminer ends a line at a gap wider than two characters, which a justified line with few words can
    have. A piece on the same baseline as another line, less than 1.2 em to its right, is the rest of it;
    so is one up to 4 em away that starts at no column edge (nor an indent from one): a gutter between
    columns is wider than 1.2 em and the next column starts at its edge.
    """
    edges = _edges(lines)
    merged: set[int] = set()
    for line in sorted(lines, key=lambda ln: ln.x0):  # left to right, so a line in three pieces rejoins
        at_edge = any(-2 <= line.x0 - e <= 4 * line.size for e in edges)
        reach = 1.2 * line.size if at_edge else 4 * line.size
        host = next(
            (
                m
                for m in lines
                if m is not line
                and id(m) not in merged
                and abs(m.bottom - line.bottom) < 1
                and abs(m.size - line.size) < 0.5
                and 0 <= line.x0 - m.x1 < reach
            ),
            None,
        )
        if host is not None:
            host.text = host.text.rstrip() + " " + line.text.lstrip()
            host.x1 = max(host.x1, line.x1)
            merged.add(id(line))
    return [ln for ln in lines if id(ln) not in merged]


def _edges(lines: list[Line]) -> list[int]:
    """The x positions at which several of a page's lines start: its column edges."""
    if not lines:
        return []
    starts = Counter(round(ln.x0) for ln in lines)
    least = min(3, len(lines))
    return sorted(x for x, n in starts.items() if n >= least) or [round(min(ln.x0 for ln in lines))]


def remove_running_heads(
    pages: list[list[Line]], body: float, titles: Mapping[str, set[int]] | None = None
) -> list[list[Line]]:
    """The pages without their running heads, running feet and page numbers (rule 1).

    ``titles`` (the book's and its chapters', each with the pages its chapter opens on) are running heads
    wherever they stand alone at the top or bottom of a page in body-sized type, even on the only page a
    short chapter continues onto, but not on the page where their chapter opens.
    """
    known: dict[str, set[int]] = defaultdict(set)
    for title, opens in (titles or {}).items():
        if title:
            known[_key(title)] |= opens
    candidates: list[list[Line]] = []
    keys: dict[str, list[int]] = defaultdict(list)
    for number, lines in enumerate(pages):
        ordered = sorted(lines, key=lambda ln: -ln.top)
        picked = ordered[:2] + [ln for ln in ordered[-2:] if ln not in ordered[:2]]
        candidates.append(picked)
        for key in {_key(ln.text) for ln in picked}:
            keys[key].append(number)
    least = 2 if len(pages) <= 4 else 3
    exact: dict[str, list[int]] = defaultdict(list)
    for number, picked in enumerate(candidates):
        for text in {clean(ln.text) for ln in picked}:
            exact[text].append(number)
    out = []
    for number, lines in enumerate(pages):
        drop = set()
        for line in candidates[number]:
            if line.size > body * HEADING_RATIO:
                continue
            text = clean(line.text)
            key = _key(text)
            if (
                _is_page_number(text)
                or (key in known and number not in known[key])
                or (
                    _repeats(keys[_key(text)], number, least)
                    and (not chapter_line(text) or _repeats(exact[text], number, 2))
                )
            ):
                drop.add(id(line))
        out.append([ln for ln in lines if id(ln) not in drop])
    return out


def heading_texts(pages: list[list[Line]], body: float) -> list[str]:
    """The text of every line set larger than the body, and of each run of such lines on a page."""
    texts = []
    for lines in pages:
        run: list[str] = []
        for line in lines + [Line(-1, "", 0, 0, 0, 0, body)]:
            if line.size > body * HEADING_RATIO:
                run.append(clean(line.text))
                texts.append(run[-1])
            elif run:
                texts.append(" ".join(run))
                run = []
    return texts


def _key(text: str) -> str:
    return _DIGITS.sub("#", re.sub(r"\s+", " ", clean(text).lower()))


def _is_page_number(text: str) -> bool:
    return bool(text) and bool(_PAGE_NUMBER.match(text)) and not _UPPER_ROMAN.match(text)


def _repeats(numbers: list[int], number: int, least: int) -> bool:
    return len(numbers) >= least and any(0 < abs(n - number) <= RUNNING_WINDOW for n in numbers)


def right_edges(pages: list[list[Line]], body: float) -> list[float]:
    """Where the document's full body lines end (one value per column position), for sparse pages."""
    ends = Counter(round(ln.x1) for lines in pages for ln in lines if abs(ln.size - body) < 1)
    total = sum(ends.values())
    return sorted(x for x, n in ends.items() if n >= max(3, total // 50))


def columns(lines: list[Line], body: float, rights: list[float] = ()) -> list[Line]:
    """One page's lines with their column edges set, in reading order (rule 2).

    ``rights`` (:func:`right_edges`) give the right edge of a column with too few lines to show its own.
    """
    edges: list[int] = []
    for edge in _edges(lines):
        # Lines starting a little right of an edge are indented paragraphs or quotations, not a column.
        if not edges or edge - edges[-1] > 4 * body:
            edges.append(edge)
    for line in lines:
        fitting = [e for e in edges if e <= line.x0 + 1.5]
        line.col_left = fitting[-1] if fitting else line.x0
    ends: dict[float, list[float]] = defaultdict(list)
    for line in lines:
        if abs(line.size - body) < 1:  # a wide heading is not the column's width
            ends[line.col_left].append(line.x1)
    for line in lines:
        found = sorted(ends.get(line.col_left) or [line.x1])
        line.col_right = found[int(0.9 * (len(found) - 1))]
        if len(found) < 3:
            line.col_right = min((r for r in rights if r >= found[-1] - 1), default=found[-1])
    return _reading_order(lines, edges)


def _reading_order(lines: list[Line], edges: list[int]) -> list[Line]:
    """Top to bottom, column by column; a line across columns (a heading) ends one band of columns."""
    spanning = [ln for ln in lines if any(ln.x0 < e - 2 and ln.x1 > e + 2 for e in edges)]

    def key(line: Line) -> tuple[float, int, float, float]:
        band = sum(1 for s in spanning if s.top > line.top + 0.5)
        if line in spanning:
            return band + 0.5, 0, -line.top, line.x0
        column = sum(1 for e in edges if e <= line.x0 + 1.5)
        return band, column, -round(line.top, 1), line.x0

    return sorted(lines, key=key)


def line_pitch(pages: list[list[Line]], body: float) -> float:
    """The usual baseline-to-baseline distance of body text."""
    deltas = []
    for lines in pages:
        for prev, line in zip(lines, lines[1:], strict=False):
            delta = prev.bottom - line.bottom
            if abs(line.size - body) < 0.5 and 0 < delta < 3 * body and prev.col_left == line.col_left:
                deltas.append(round(delta, 1))
    return statistics.median(deltas) if deltas else body * 1.2


def paragraphs(pages: list[list[Line]], body: float, words: Vocabulary) -> list[Paragraph]:
    """Lines joined into paragraphs (rules 3-5), headings marked (rule 6)."""
    pitch = line_pitch(pages, body)
    indent = paragraph_indent(pages, body)
    paras: list[Paragraph] = []
    prev: Line | None = None
    for lines in pages:
        for line in lines:
            if prev is None or _starts_paragraph(prev, line, body, pitch, indent, len(paras[-1].lines) == 1):
                paras.append(Paragraph([line]))
            else:
                paras[-1].lines.append(line)
            prev = line
    _glue_drop_caps(paras, body)
    for para in paras:
        para.text = join_lines([ln.text for ln in para.lines], words)
    paras = [p for p in paras if p.text]
    _mark_headings(paras, body)
    return paras


def paragraph_indent(pages: list[list[Line]], body: float) -> float | None:
    """The usual first-line indent: how far in a line after a full-margin line most often starts."""
    offsets: Counter[float] = Counter()
    for lines in pages:
        for prev, line in zip(lines, lines[1:], strict=False):
            offset = line.x0 - line.col_left
            if prev.col_left == line.col_left and abs(prev.x0 - prev.col_left) < 1 and 0.6 * body < offset < 4 * body:
                offsets[round(offset)] += 1
    return offsets.most_common(1)[0][0] if offsets else None


def _starts_paragraph(
    prev: Line, line: Line, body: float, pitch: float, indent: float | None, prev_first: bool
) -> bool:
    """Whether ``line`` starts a new paragraph after ``prev`` (``prev_first``: prev started its own)."""
    if _heading_size(prev, body) != _heading_size(line, body) or abs(prev.size - line.size) > 1:
        return True
    same_flow = line.page == prev.page and line.col_left == prev.col_left and line.top < prev.top
    if _heading_size(line, body):  # a centred title's lines start anywhere; only a gap parts them
        return not same_flow or prev.bottom - line.bottom > 1.45 * pitch * line.size / body
    step = body * 0.6
    if same_flow:
        # Indented from the line above (a first-line indent, the start of a quotation), or back out to
        # the margin from a quotation's second line on.
        if line.x0 > prev.x0 + step or (line.x0 < prev.x0 - step and not prev_first):
            return True
        if prev.bottom - line.bottom > 1.45 * pitch:
            return True
    elif line.x0 - line.col_left > step:  # the first line of a new page or column, indented
        return True
    width = max(line.col_right - line.col_left, body)
    short = prev.col_right - prev.x1 > max(2 * body, 0.08 * width)
    at_indent = indent is not None and abs(line.x0 - line.col_left - indent) < 1.5
    if prev_first and abs(line.x0 - prev.x0) < 1 and (at_indent or (short and line.x0 - line.col_left > step)):
        return True  # one-line paragraphs in a row ("Dear Bill—"), each with its indent
    return short and clean(prev.text)[-1:] in _SENTENCE_END


def _heading_size(line: Line, body: float) -> bool:
    return line.size > body * HEADING_RATIO


def _glue_drop_caps(paras: list[Paragraph], body: float) -> None:
    """A large initial letter set apart ("T" + "he night...") rejoins its word."""
    for i in range(len(paras) - 1):
        first = paras[i]
        text = clean(first.lines[0].text)
        if len(first.lines) == 1 and len(text) == 1 and text.isalpha() and first.lines[0].size > 1.6 * body:
            nxt = paras[i + 1]
            nxt.lines[0].text = text + nxt.lines[0].text.lstrip()
            first.lines[0].text = ""


def _mark_headings(paras: list[Paragraph], body: float) -> None:
    styled = []
    for para in paras:
        size = max(ln.size for ln in para.lines)
        is_heading = (
            len(para.lines) <= 3
            and len(para.text) <= 150
            and (size > body * HEADING_RATIO or (all(ln.bold for ln in para.lines) and para.text[-1:] not in ".,;"))
        )
        if is_heading:
            styled.append((para, round(size * 2) / 2))
    sizes = sorted({s for _, s in styled if s > body * HEADING_RATIO}, reverse=True)
    for para, size in styled:
        para.heading = min(sizes.index(size) + 1 if size in sizes else len(sizes) + 1, 6)


class Vocabulary:
    """Word counts of the whole document, for deciding line-end hyphens (rule 4)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.counts: Counter[str] = Counter()
        for text in lines:
            words = _WORD.findall(fix_ligatures(text).lower())
            if text.rstrip().endswith(tuple(_HYPHENS)) and words:
                words = words[:-1]  # the broken half of a word is not a word
            self.counts.update(words)

    def keep_hyphen(self, left: str, right: str) -> bool:
        """Whether ``left-`` at a line end before ``right`` is a real hyphen (``well-known``)."""
        joined, hyphenated = (left + right).lower(), f"{left}-{right}".lower()
        if self.counts[hyphenated] != self.counts[joined]:
            return self.counts[hyphenated] > self.counts[joined]
        lexicon = _lexicon()
        if _known(hyphenated, lexicon):
            return True
        if _known(joined, lexicon):
            return False
        return _known(left.lower(), lexicon) and _known(right.lower(), lexicon) and len(left) > 1 < len(right)


@functools.lru_cache(maxsize=1)
def _lexicon() -> frozenset[str]:
    """The speech model's English pronouncing dictionary as a word list; empty when it is not installed."""
    words: set[str] = set()
    try:
        data = resources.files("misaki") / "data"
        for name in ("us_gold.json", "gb_gold.json"):
            words.update(k.lower() for k in json.loads((data / name).read_text(encoding="utf-8")))
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as e:
        log.debug("no pronouncing dictionary for hyphenation (%s); using the document's own words", e)
    return frozenset(words)


def _known(word: str, lexicon: frozenset[str]) -> bool:
    if word in lexicon:
        return True
    for suffix, replacement in (
        ("s", ""),
        ("es", ""),
        ("ed", ""),
        ("ed", "e"),
        ("ing", ""),
        ("ing", "e"),
        ("ly", ""),
        ("er", ""),
        ("est", ""),
        ("ies", "y"),
        ("ied", "y"),
    ):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and word[: -len(suffix)] + replacement in lexicon:
            return True
    return False


def fix_ligatures(text: str) -> str:
    return text.translate(_LIGATURES)


def join_lines(texts: list[str], words: Vocabulary) -> str:
    """One paragraph's lines as one string, broken words rejoined (rule 4)."""
    out = ""
    soft = False
    for raw in texts:
        raw = fix_ligatures(raw).strip()
        text = clean(raw)
        if not text:
            continue
        hyphen = out[-1:] in _HYPHENS and out[-2:-1].isalnum()
        if not out:
            out = text
        elif soft:  # a soft hyphen marks a break inside a word, by definition
            out += text
        elif hyphen and out[-2].isalpha() and text[0].islower():
            left = _WORD.findall(out[:-1])
            right = _WORD.findall(text)
            keep = bool(left and right) and words.keep_hyphen(left[-1].rsplit("-", 1)[-1], right[0].split("-")[0])
            out = (out if keep else out[:-1]) + text
        elif hyphen or out[-1] in _DASHES:
            out += text  # "Franco-/Prussian", "1914-/1918", "said—/and": the mark stays, with no space after it
        else:
            out += " " + text
        soft = raw.endswith("\u00ad")
    return clean(out)


def merge_heading_runs(paras: list[Paragraph]) -> list[Paragraph]:
    """Two headings in a row, neither longer than 100 characters, become one title ("CHAPTER I. Down...")."""
    out: list[Paragraph] = []
    for para in paras:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.heading
            and para.heading
            and len(prev.text) + len(para.text) <= 120
            and prev.page == para.page
            and not prev.merged
        ):
            prev.text = as_sentence(prev.text) + " " + para.text
            prev.lines += para.lines
            prev.heading = min(prev.heading, para.heading)
            prev.merged = True
            continue
        out.append(para)
    return out
