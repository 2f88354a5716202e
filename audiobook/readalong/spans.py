"""Sentences found in a book's own content documents, and wrapped in ``span`` elements without changing the text.

The narrated sentences come from the EPUB reader (:mod:`audiobook.readers.xhtml`), which reads the same documents:
:class:`TextIndex` walks a document by the reader's own rules (what :func:`~audiobook.readers.xhtml.skipped` leaves
out is left out here too) and keeps, for every letter and digit, the text node it sits in. Sentences are matched
on those letters and digits alone, case and accents folded, so the reader's cleaning (NFC, soft hyphens removed,
whitespace collapsed) and the full stop it adds to a heading never stop a match. Each match must start near where
the previous one ended; a sentence the document does not hold (the chapter title the reader makes up when a
chapter has no heading, a chunk edited by hand) is left out rather than matched somewhere further on.

Wrapping (:func:`wrap`): a sentence whose start and end sit at the same level of the tree becomes one ``span``
around it, inline markup included (``<span id="..">He said <em>no</em>.</span>``). A sentence that starts or ends
inside inline markup, e.g. in the middle of an ``<em>``, cannot be one element without moving the markup, so it
becomes several spans, one per level (the part inside the ``<em>``, the part after it): EPUB Media Overlays give
each ``par`` one text element, so each span then gets a ``par`` of its own, timed by the words it holds, one after
another. Block elements (paragraphs, headings inside an ``hgroup``) are never put inside a span.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lxml import etree

from audiobook.readers.xhtml import XHTML_NS, find_body, is_block, localname, skipped

SLACK = 300
"""How far past the previous sentence (in letters and digits) the next one may start: room for text the
narration leaves out inside a chapter, never enough to jump to a later page."""
SPAN = f"{{{XHTML_NS}}}span"

NewId = Callable[[], str]
"""Gives a fresh element id for each span made."""


def keys(text: str) -> Iterator[tuple[str, int]]:
    """The letters and digits of ``text``, case and accents folded, each with the index of its character."""
    for i, char in enumerate(text):
        for key in unicodedata.normalize("NFKD", char).casefold():
            if key.isalnum():
                yield key, i


def key_text(text: str) -> str:
    return "".join(k for k, _ in keys(text))


@dataclass(frozen=True)
class Run:
    """A text node: ``node.text`` (inside ``node``, before its children) or ``node.tail`` (after ``node``)."""

    node: etree._Element
    attr: str

    @property
    def text(self) -> str:
        return getattr(self.node, self.attr) or ""

    @property
    def level(self) -> etree._Element:
        """The element whose children this text sits between."""
        return self.node if self.attr == "text" else self.node.getparent()


@dataclass(frozen=True)
class Point:
    """A place in a document's text: before character ``offset`` of a run."""

    run: Run
    offset: int


class TextIndex:
    """The narrated text of one content document, letter by letter, with the way back to its text nodes."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.runs: list[Run] = []
        self.keys: list[str] = []
        self.where: list[tuple[int, int]] = []
        """For each key: its run and the character's offset in that run's text."""
        self.anchors: dict[str, int] = {}
        """Element id -> the key position where that element starts."""
        body = find_body(root)
        self._add(Run(body, "text"))
        for child in body:
            self._walk(child)

    @property
    def key_string(self) -> str:
        return "".join(self.keys)

    def _walk(self, el: etree._Element) -> None:
        if isinstance(el.tag, str):
            left_out = skipped(el)
            # An id inside a left-out element (a footnote marker's anchor) still marks a place.
            for sub in el.iter() if left_out else [el]:
                if isinstance(sub.tag, str) and sub.get("id"):
                    self.anchors.setdefault(sub.get("id"), len(self.keys))
            if not left_out:
                self._add(Run(el, "text"))
                for child in el:
                    self._walk(child)
        self._add(Run(el, "tail"))

    def _add(self, run: Run) -> None:
        if not run.text:
            return
        self.runs.append(run)
        for key, offset in keys(run.text):
            self.keys.append(key)
            self.where.append((len(self.runs) - 1, offset))

    def points(self, start: int, end: int, sentence: str) -> tuple[Point, Point]:
        """The text between key positions ``start`` and ``end``, moved out of inline markup it fills (so
        ``she <b>said</b>.`` stays one span) and widened to the punctuation ``sentence`` has before its first and
        after its last letter (quotes, a full stop) where the neighbouring text holds it."""
        first_run, first = self.where[start]
        last_run, last = self.where[end - 1]
        lead = next((i for i, c in enumerate(sentence) if c.isalnum()), 0)
        trail = next((i for i, c in enumerate(reversed(sentence)) if c.isalnum()), 0)
        head, lead = _widen_back(Point(self.runs[first_run], first), lead)
        head, _ = _widen_back(_lift_start(head), lead)
        tail, trail = _widen_on(Point(self.runs[last_run], last + 1), trail)
        tail, _ = _widen_on(_lift_end(tail), trail)
        return head, tail


def _widen_back(point: Point, count: int) -> tuple[Point, int]:
    """Move back over up to ``count`` punctuation marks; returns the place and how many are left to find."""
    text, offset = point.run.text, point.offset
    while count and offset > 0 and _is_punctuation(text[offset - 1]):
        offset, count = offset - 1, count - 1
    return Point(point.run, offset), count


def _widen_on(point: Point, count: int) -> tuple[Point, int]:
    text, offset = point.run.text, point.offset
    while count and offset < len(text) and _is_punctuation(text[offset]):
        offset, count = offset + 1, count - 1
    return Point(point.run, offset), count


def _inline(el: etree._Element) -> bool:
    return not is_block(el) and el.getparent() is not None


def _lift_start(point: Point) -> Point:
    """A place at the very start of an inline element is the same place just before it."""
    while point.offset == 0 and point.run.attr == "text" and _inline(point.run.node):
        point = _before(point.run.node)
    return point


def _lift_end(point: Point) -> Point:
    """A place at the very end of an inline element is the same place just after it."""
    while point.offset == len(point.run.text):
        level = point.run.level
        last = point.run.attr == "text" and not len(level) or point.run.attr == "tail" and point.run.node is level[-1]
        if not (last and _inline(level)):
            break
        point = Point(Run(level, "tail"), 0)
    return point


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


@dataclass(frozen=True)
class Found:
    """A sentence's place: document ``doc``, key positions ``start:end``."""

    doc: int
    start: int
    end: int


def locate(sentences: Sequence[str], documents: Sequence[TextIndex], doc: int, position: int) -> list[Found | None]:
    """Where each sentence is, searching forward from key ``position`` of document ``doc``; None for one the
    documents do not hold there (see the module docstring)."""
    strings = [d.key_string for d in documents]
    wanted = [key_text(s) for s in sentences]
    found: list[Found | None] = []
    for n, key in enumerate(wanted):
        here = _search(strings, key, doc, position)
        if here is not None and n + 1 < len(wanted) and wanted[n + 1].startswith(key) and wanted[n + 1] != key:
            # A made-up chapter title that is the first words of the paragraph after it ("The Letter." before
            # "The letter came...") matches that paragraph's start: then the next sentence matches right there.
            after = _search(strings, wanted[n + 1], here.doc, here.start)
            if after == Found(here.doc, here.start, here.start + len(wanted[n + 1])):
                here = None
        found.append(here)
        if here is not None:
            doc, position = here.doc, here.end
    return found


def _search(strings: Sequence[str], key: str, doc: int, position: int) -> Found | None:
    if not key:
        return None
    budget = SLACK
    while doc < len(strings):
        text = strings[doc]
        at = text.find(key, position, position + len(key) + budget)
        if at >= 0:
            return Found(doc, at, at + len(key))
        budget -= max(len(text) - position, 0)  # a chapter may go on in the next document
        if budget < 0:
            return None
        doc, position = doc + 1, 0
    return None


# ---- wrapping -------------------------------------------------------------------------------------------


def wrap(start: Point, end: Point, new_id: NewId) -> list[etree._Element]:
    """Put the text from ``start`` to ``end`` into spans (see the module docstring); returns them in order.

    Call it for a document's sentences from the last to the first: wrapping only ever splits the text after
    ``start``, so places before it stay valid.
    """
    return _wrap_range(start, end, new_id)


def _wrap_range(start: Point, end: Point, new_id: NewId) -> list[etree._Element]:
    top = _common_level(start.run.level, end.run.level)
    left: list[etree._Element] = []
    right: list[etree._Element] = []
    middle_start, middle_end = start, end
    if start.run.level is not top:
        child = _child_towards(top, start.run.level)
        middle_start = Point(Run(child, "tail"), 0)
        left_end = _end_of(child)
    if end.run.level is not top:
        child = _child_towards(top, end.run.level)
        right = _wrap_range(_start_of(child), end, new_id)
        middle_end = _before(child)
    middle = _wrap_level(top, middle_start, middle_end, new_id)
    if start.run.level is not top:
        left = _wrap_range(start, left_end, new_id)
    return left + middle + right


def _common_level(a: etree._Element, b: etree._Element) -> etree._Element:
    # Compared by identity while every proxy is alive: lxml makes a new Python object for a node once the old
    # one is gone, so an id() kept past its object's life can name another element.
    ancestors = [a, *a.iterancestors()]
    return next(x for x in [b, *b.iterancestors()] if any(x is y for y in ancestors))


def _child_towards(top: etree._Element, inner: etree._Element) -> etree._Element:
    return next(x for x in [inner, *inner.iterancestors()] if x.getparent() is top)


def _start_of(el: etree._Element) -> Point:
    return Point(Run(el, "text"), 0)


def _end_of(el: etree._Element) -> Point:
    if len(el):
        return Point(Run(el[-1], "tail"), len(el[-1].tail or ""))
    return Point(Run(el, "text"), len(el.text or ""))


def _before(el: etree._Element) -> Point:
    previous = el.getprevious()
    if previous is None:
        parent = el.getparent()
        return Point(Run(parent, "text"), len(parent.text or ""))
    return Point(Run(previous, "tail"), len(previous.tail or ""))


def _wrap_level(top: etree._Element, start: Point, end: Point, new_id: NewId) -> list[etree._Element]:
    """Wrap text and children of ``top`` between two places at its own level, block children excepted."""
    first = 0 if start.run.attr == "text" else top.index(start.run.node) + 1
    last = -1 if end.run.attr == "text" else top.index(end.run.node)  # the last child inside the range
    blocks = [i for i in range(first, last + 1) if is_block(top[i])]
    if not blocks:
        return _surround(top, start, end, new_id)
    spans: list[etree._Element] = []
    # From the last block backwards: the text after it, then inside it; the part before the first block last.
    pieces: list[tuple[Point, Point] | etree._Element] = []
    cursor = start
    for i in blocks:
        block = top[i]
        pieces.append((cursor, _before(block)))
        pieces.append(block)
        cursor = Point(Run(block, "tail"), 0)
    pieces.append((cursor, end))
    for piece in reversed(pieces):
        if isinstance(piece, tuple):
            spans[:0] = _surround(top, piece[0], piece[1], new_id)
        else:
            spans[:0] = _wrap_range(_start_of(piece), _end_of(piece), new_id)
    return spans


def _surround(top: etree._Element, start: Point, end: Point, new_id: NewId) -> list[etree._Element]:
    """One span around the text and inline children of ``top`` between two places at its level."""
    same = start.run == end.run
    head = start.run.text
    first = 0 if start.run.attr == "text" else top.index(start.run.node) + 1
    if same and not head[start.offset : end.offset].strip():
        return []
    if not same and not _holds_text(top, start, end, first):
        return []
    span = etree.Element(SPAN, id=new_id())
    if same:
        span.text, span.tail = head[start.offset : end.offset], head[end.offset :]
        setattr(start.run.node, start.run.attr, head[: start.offset] or None)
        top.insert(first, span)
        return [span]
    setattr(start.run.node, start.run.attr, head[: start.offset] or None)
    span.text = head[start.offset :] or None
    last = top.index(end.run.node)
    moved = list(top)[first : last + 1]
    tail = end.run.text
    end.run.node.tail = tail[: end.offset] or None
    span.tail = tail[end.offset :] or None
    for child in moved:
        span.append(child)  # lxml moves a child with its tail
    top.insert(first, span)
    return [span]


def _holds_text(top: etree._Element, start: Point, end: Point, first: int) -> bool:
    if start.run.text[start.offset :].strip() or end.run.text[: end.offset].strip():
        return True
    return any(key_text(narrated_text(child)) for child in list(top)[first : top.index(end.run.node) + 1])


def narrated_text(el: etree._Element) -> str:
    """The text inside ``el`` that the reader narrates (skipped elements left out, their tails kept)."""
    if skipped(el):
        return ""
    parts = [el.text or ""]
    for child in el:
        parts.append(narrated_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def is_span(el: etree._Element) -> bool:
    return localname(el) == "span"
