"""Edits of a source text and the offset map between the source and the edited text.

An :class:`Edit` replaces ``source[start:end]`` with ``spoken``. :func:`apply_edits` applies a set of
non-overlapping edits and returns a :class:`Normalized`: the new text plus spans that cover both texts end to
end, in order, so any offset in one maps to the other ("XII" spoken "twelve" maps back to "XII").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Edit:
    """``source[start:end]`` is to be read as ``spoken``; ``kind`` names the rule (``roman``, ``unit``...)."""

    start: int
    end: int
    spoken: str
    kind: str = ""


@dataclass(frozen=True)
class Span:
    """``source[src_start:src_end]`` became ``text[out_start:out_end]``; ``changed`` is False where copied."""

    src_start: int
    src_end: int
    out_start: int
    out_end: int
    changed: bool


@dataclass(frozen=True)
class Normalized:
    """The text to speak, and how it maps back to the source text."""

    source: str
    text: str
    """What G2P reads: the source with every edit applied."""
    spans: tuple[Span, ...]
    """Cover ``source`` and ``text`` end to end, in order; unchanged stretches are single spans."""
    edits: tuple[Edit, ...] = field(default=())
    """The edits applied, in source order."""

    def to_source(self, out_start: int, out_end: int) -> tuple[int, int]:
        """The source range that ``text[out_start:out_end]`` was made from.

        Inside an unchanged stretch the offsets map one to one; touching a changed span takes all of its source
        (any word of "the eighth" maps to the whole "VIII").
        """
        if not self.spans:
            return (0, 0)
        ends = [span.out_end for span in self.spans]
        first = self.spans[min(bisect.bisect_right(ends, out_start), len(self.spans) - 1)]
        last = self.spans[min(bisect.bisect_left(ends, out_end), len(self.spans) - 1)]
        start = first.src_start if first.changed else first.src_start + (out_start - first.out_start)
        end = last.src_end if last.changed else last.src_start + (out_end - last.out_start)
        return (min(start, end), max(start, end))


def apply_edits(source: str, edits: Iterable[Edit]) -> Normalized:
    """Apply non-overlapping edits to ``source``; ``ValueError`` if two overlap (a bug in a tagger)."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    parts: list[str] = []
    spans: list[Span] = []
    pos = out = 0
    for edit in ordered:
        if edit.start < pos or edit.end < edit.start or edit.end > len(source):
            raise ValueError(f"edit {edit} overlaps another or falls outside the text")
        if edit.start > pos:
            spans.append(Span(pos, edit.start, out, out + edit.start - pos, False))
            parts.append(source[pos : edit.start])
            out += edit.start - pos
        spans.append(Span(edit.start, edit.end, out, out + len(edit.spoken), True))
        parts.append(edit.spoken)
        out += len(edit.spoken)
        pos = edit.end
    if pos < len(source) or not spans:
        spans.append(Span(pos, len(source), out, out + len(source) - pos, False))
        parts.append(source[pos:])
    return Normalized(source, "".join(parts), tuple(spans), tuple(ordered))
