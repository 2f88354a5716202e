"""Documents plus a table of contents -> chapters: the structure rules every reader shares.

A reader turns its file into an ordered *spine* of documents (EPUB content files, an HTML page, FB2 sections,
PDF page runs), each a list of :class:`~audiobook.readers.xhtml.Para` and ``Anchor`` events, and a table of
contents of :class:`Entry` objects pointing at ``(document, anchor)`` targets. :func:`assemble` applies
the rules below and marks front and back matter (:mod:`audiobook.readers.matter`).

* **Anchors.** An entry pointing at ``doc#id`` starts its chapter at that anchor, so several chapters can
  share one document. Text between two targets belongs to the earlier one; when two entries point at the
  same place, the later (deeper) entry gets the text. An anchor that cannot be found starts at the top of
  its document.
* **Text before the first target** (a Gutenberg header, an untitled opening) becomes its own chapter, one
  per document, titled by its first heading or else by the book's title, and is then classified like any
  other chapter (so a header is skipped and an untitled prologue is narrated). Nothing is dropped. A later
  document the contents leave out joins the chapter before it, unless its types or name say it is front
  or back matter (``copyright.xhtml``); then it is a chapter of its own.
* **Nested contents.** Top-level entries are chapters. An entry's children become chapters of their own
  only when the entry spans more than one document and its children average at least
  :data:`MIN_SPLIT_CHILD_WORDS` words (a "Part" whose chapters are separate files), or when it holds more
  than :data:`SPLIT_WORDS` words (a Part whose chapters are anchors in one huge file); the entry's own text
  before its first child then becomes a short chapter. Otherwise the children stay inside their parent:
  Sherlock Holmes' stories keep parts I, II and III inside each story, and a poetry collection grouped into
  sections gets one chapter per section (a flat list of 700 poems stays 700 chapters: that is the book's
  own top level). The rule applies again at every level.
* **No contents.** The shallowest heading level among h1-h3 that occurs at least twice starts chapters
  (deeper or equal headings only at that level); with no headings at all, each document is a chapter.
* **Non-linear** documents become chapters marked skipped ("not in the linear reading order").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from audiobook.book import Book, Chapter, Metadata
from audiobook.readers import matter
from audiobook.readers.xhtml import Anchor, Document, Para, as_sentence

log = logging.getLogger(__name__)

SPLIT_WORDS = 20_000
"""A contents entry longer than this (about two hours of narration) is split at its children."""
MIN_SPLIT_CHILD_WORDS = 500
"""Children shorter than this on average (poems, ~3 minutes) stay in their parent even across files."""


@dataclass(eq=False)
class Entry:
    """A contents entry, or a synthetic one (text before the first target, a heading, a non-linear file)."""

    title: str
    path: str
    anchor: str = ""
    children: list[Entry] = field(default_factory=list)
    paras: list[tuple[int, Para]] = field(default_factory=list)
    """(reading-order sequence number, paragraph) owned directly by this entry."""
    files: set[str] = field(default_factory=set)
    linear: bool = True

    def subtree(self) -> list[Entry]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.subtree())
        return nodes


def matter_entries(toc: list[Entry], landmarks: dict[tuple[str, str], str]) -> list[Entry]:
    """Entries for front or back matter that a landmark (or guide) points at inside a document but the
    contents leave out, such as the table of contents that Calibre's MOBI output appends to the last
    chapter: each becomes a chapter of its own, so that it can be skipped."""
    listed = {(e.path, e.anchor) for top in toc for e in top.subtree()}
    return [
        Entry("", path, anchor)
        for (path, anchor), kind in landmarks.items()
        if anchor and (path, anchor) not in listed and matter.matter_reason("", matter.Evidence(landmark=kind))
    ]


def anchor_targets(toc: list[Entry]) -> dict[str, set[str]]:
    """The anchor ids the contents point at, per document: what extraction must report as it meets them."""
    targets: dict[str, set[str]] = {}
    for top in toc:
        for entry in top.subtree():
            if entry.anchor:
                targets.setdefault(entry.path, set()).add(entry.anchor)
    return targets


def assemble(
    source: Path,
    spine: list[tuple[str, bool]],
    documents: dict[str, Document],
    toc: list[Entry],
    metadata: Metadata,
    landmarks: dict[tuple[str, str], str] | None = None,
) -> Book:
    """Chapters from a spine of extracted documents and a contents tree (rules in the module docstring).

    ``spine`` is ``(document name, linear)`` in reading order; ``landmarks`` maps a target to a matter
    type (``copyright-page``) when the book says so outside its text (EPUB landmarks and guide).
    """
    landmarks = landmarks or {}
    spine_files = {path for path, _ in spine}
    starts: dict[tuple[str, str], Entry] = {}
    for top in toc:
        for entry in top.subtree():  # the later (deeper) entry wins a shared target
            if entry.path in spine_files:
                starts[(entry.path, entry.anchor)] = entry
    found = {(path, e.id) for path, doc in documents.items() for e in doc.events if isinstance(e, Anchor)}
    for (path, anchor), entry in list(starts.items()):
        if anchor and (path, anchor) not in found:
            log.debug("%s: contents target %s#%s not found; using the top of the file", source, path, anchor)
            del starts[(path, anchor)]
            starts.setdefault((path, ""), entry)

    if not starts:
        toc = _heading_entries(spine, documents)
    untitled = _distribute(spine, documents, starts)
    groups: list[tuple[Entry, list[tuple[int, Para]]]] = [(n, n.paras) for n in untitled]
    for top in toc:
        groups.extend(_chapters_of(top))
    groups = [(n, sorted(p, key=lambda sp: sp[0])) for n, p in groups if p]
    groups.sort(key=lambda g: g[1][0][0])

    chapters, evidence = [], []
    for entry, paras in groups:
        chapter, ev = _chapter(entry, [p for _, p in paras], metadata, landmarks)
        chapters.append(chapter)
        evidence.append(ev)
    matter.mark_matter(chapters, evidence)
    return Book(metadata, matter.split_gutenberg(chapters))


def _distribute(
    spine: list[tuple[str, bool]], documents: dict[str, Document], starts: dict[tuple[str, str], Entry]
) -> list[Entry]:
    """Hand every paragraph, in reading order, to the TOC entry whose target last preceded it.

    Returns the synthetic entries made on the way: text before the first target, matter documents the TOC
    leaves out, and non-linear documents.
    """
    untitled: list[Entry] = []
    owner: Entry | None = None
    seq = 0
    for path, linear in spine:
        doc = documents[path]
        current = owner
        if not linear:
            current = Entry(doc.title, path, linear=False)
            untitled.append(current)
        elif (path, "") in starts:
            current = starts[(path, "")]
        elif current is None or current in untitled or _looks_like_matter(doc, path):
            # Before the first target, and for a matter document the TOC leaves out, each file is a chapter.
            current = Entry("", path)
            untitled.append(current)
        for event in doc.events:
            if isinstance(event, Anchor):
                if linear and (path, event.id) in starts:
                    current = starts[(path, event.id)]
                continue
            if isinstance(event, _HeadingStart):
                current = event.node
                continue
            current.paras.append((seq, event))
            current.files.add(path)
            seq += 1
        if linear:
            owner = current
    return untitled


def _looks_like_matter(doc: Document, path: str) -> bool:
    first = next((e for e in doc.events if isinstance(e, Para)), None)
    types = first.types if first is not None else frozenset()
    return bool(matter.matter_reason("", matter.Evidence(types, "", path)))


@dataclass(frozen=True)
class _HeadingStart:
    node: Entry


def _heading_entries(spine: list[tuple[str, bool]], documents: dict[str, Document]) -> list[Entry]:
    """Synthetic TOC for a book with none: heading events become chapter starts (see module docstring)."""
    levels = [e.heading for p, lin in spine if lin for e in documents[p].events if isinstance(e, Para)]
    level = next((lv for lv in (1, 2, 3) if levels.count(lv) >= 2), 0)
    nodes: list[Entry] = []
    for path, linear in spine:
        doc = documents[path]
        if not linear:
            continue
        events: list = []
        if not level:
            node = Entry(doc.title or f"Section {len(nodes) + 1}", path)
            nodes.append(node)
            events.append(_HeadingStart(node))
        for event in doc.events:
            if isinstance(event, Para) and 0 < event.heading <= level:
                node = Entry(event.text.rstrip("."), path)
                nodes.append(node)
                events.append(_HeadingStart(node))
            events.append(event)
        doc.events = events
    return nodes


def _chapters_of(node: Entry) -> list[tuple[Entry, list[tuple[int, Para]]]]:
    """The level rule: split an entry at its children only when it spans files or is very long."""
    subtree = node.subtree()
    if not node.children:
        return [(node, node.paras)]
    files = set().union(*(n.files for n in subtree))
    words = sum(len(p.text.split()) for n in subtree for _, p in n.paras)
    child_words = words - sum(len(p.text.split()) for _, p in node.paras)
    if (len(files) > 1 and child_words / len(node.children) >= MIN_SPLIT_CHILD_WORDS) or words > SPLIT_WORDS:
        out = [(node, node.paras)]
        for child in node.children:
            out.extend(_chapters_of(child))
        return out
    return [(node, [p for n in subtree for p in n.paras])]


def _same_words(a: str, b: str) -> bool:
    return a.casefold().rstrip(".:") == b.casefold().rstrip(".:")


def _chapter(
    node: Entry, paras: list[Para], metadata: Metadata, landmarks: dict[tuple[str, str], str]
) -> tuple[Chapter, matter.Evidence]:
    first_heading = next((p.text.rstrip(".") for p in paras if p.heading), "")
    title = node.title or first_heading or metadata.title
    texts = [p.text for p in paras]
    if paras[0].heading:
        pass
    elif _same_words(paras[0].text, title):  # a title set as a plain paragraph: spoken once, as a heading
        texts[0] = as_sentence(texts[0])
    else:
        texts.insert(0, as_sentence(title))
    types = frozenset().union(*(p.types for p in paras[:3]))
    landmark = landmarks.get((node.path, node.anchor), "")
    source = f"{node.path}#{node.anchor}" if node.anchor else node.path
    evidence = matter.Evidence(types, landmark, node.path, node.linear)
    return Chapter(title, texts, source), evidence
