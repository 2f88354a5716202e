"""Word documents (``.docx``) -> :class:`~audiobook.book.Book`, with python-docx.

* **Chapters** come from heading styles: ``Heading N`` is level N, and so is a custom style based on one
  or a paragraph with an outline level. The structure rules of :mod:`audiobook.readers.structure` then
  pick the chapter level as for an EPUB without contents: the shallowest of levels 1-3 that occurs at
  least twice. Text before the first heading, the ``Title`` paragraph with it, is a chapter of its own
  (a short one is a title page, skipped). A Word table of contents (``TOC`` styles) is skipped.
* **Text**: paragraphs as Word has them; tabs and line breaks are spaces, non-breaking hyphens hyphens,
  soft hyphens nothing; deleted tracked changes and field codes are left out. Footnote and endnote
  references are dropped (the notes themselves are not narrated, like an EPUB's endnotes). Text boxes are
  read after the paragraph that anchors them.
* **Tables** are read row by row, one paragraph per row with its cells joined by "; ": in documents that
  people narrate, tables are mostly layout or short lists whose words belong to the text, and skipping
  them would silently drop words.
* **Metadata** from the core properties: title (else the ``Title`` paragraph, else the file name),
  author (``;``-separated), language, created date, subject or comments as the description.

Safety: the zip's sizes are checked before anything is inflated (:mod:`audiobook.readers.archive`) and
every XML part is refused if it declares entities, before python-docx (whose parser never resolves them)
opens the file.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

from lxml import etree

from audiobook.book import Book, Metadata
from audiobook.errors import BadInputError
from audiobook.readers.archive import SafeZip
from audiobook.readers.structure import assemble
from audiobook.readers.xhtml import Document, Para, UnsafeXMLError, as_sentence, check_no_entities, clean

log = logging.getLogger(__name__)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_HEADING = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_NOTE_STYLES = re.compile(r"(foot|end)note\s*(reference|anchor)", re.IGNORECASE)
_TOC_STYLE = re.compile(r"^(toc\s*(heading|\d)|contents\s*\d|table of contents)", re.IGNORECASE)
_TEXT_CHARS = {f"{_W}tab": " ", f"{_W}br": " ", f"{_W}cr": " ", f"{_W}noBreakHyphen": "-"}
_SKIPPED = frozenset({f"{_W}pPr", f"{_W}rPr", f"{_W}footnoteReference", f"{_W}endnoteReference", _MC_FALLBACK})


def read_docx(path: Path) -> Book:
    """Read a .docx file; raises BadInputError for anything unreadable, hostile or empty."""
    with SafeZip(path, "Word document") as archive:
        if "word/document.xml" not in archive.names:
            raise BadInputError(path, "not a Word document: word/document.xml is missing")
        for name in sorted(archive.names):
            if name.endswith((".xml", ".rels")):
                try:
                    check_no_entities(archive.read(name))
                except UnsafeXMLError as e:
                    raise BadInputError(path, f"{name} {e}") from e
    # python-docx, imported here so that reading other formats does not pay for it
    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = open_docx(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise BadInputError(path, f"not a readable Word document ({e})") from e
    except etree.XMLSyntaxError as e:
        raise BadInputError(path, f"a part of the document is not well-formed XML ({e})") from e
    styles = _Styles(document)
    paras = list(_body_paras(document.element.body, styles))
    metadata = _metadata(document, _title_paragraph(document.element.body, styles), path)
    doc = Document(paras, metadata.title)
    book = assemble(path, [(path.name, True)], {path.name: doc}, [], metadata)
    if not any(c.paragraphs for c in book.chapters):
        raise BadInputError(path, "the document contains no readable text")
    return book


class _Styles:
    """Heading levels and footnote-reference styles by style id, following ``basedOn`` chains."""

    def __init__(self, document) -> None:
        self.names: dict[str, str] = {}
        self.based_on: dict[str, str] = {}
        self.outline: dict[str, int] = {}
        for style in document.styles.element.findall(f"{_W}style"):
            sid = style.get(f"{_W}styleId", "")
            name = style.find(f"{_W}name")
            self.names[sid] = name.get(f"{_W}val", "") if name is not None else sid
            based = style.find(f"{_W}basedOn")
            if based is not None:
                self.based_on[sid] = based.get(f"{_W}val", "")
            level = style.find(f"{_W}pPr/{_W}outlineLvl")
            if level is not None and level.get(f"{_W}val", "").isdigit():
                self.outline[sid] = int(level.get(f"{_W}val")) + 1
        self.default = next(
            (
                s.get(f"{_W}styleId", "")
                for s in document.styles.element.findall(f"{_W}style")
                if s.get(f"{_W}type") == "paragraph" and s.get(f"{_W}default") in ("1", "true")
            ),
            "",
        )

    def chain(self, sid: str) -> list[str]:
        out = []
        while sid and sid not in out and len(out) < 10:
            out.append(sid)
            sid = self.based_on.get(sid, "")
        return out

    def level(self, sid: str) -> int:
        for s in self.chain(sid or self.default):
            name = self.names.get(s, s)
            match = _HEADING.match(name) or _HEADING.match(s)
            if match:
                return int(match.group(1))
            if name.lower() == "title":
                return 0  # the document's title: its title page, never the level that chapters are cut at
            if s in self.outline and self.outline[s] <= 9:
                return self.outline[s]
        return 0

    def is_title(self, sid: str) -> bool:
        return any(self.names.get(s, s).lower() == "title" for s in self.chain(sid))

    def is_toc(self, sid: str) -> bool:
        return any(_TOC_STYLE.match(self.names.get(s, s)) for s in self.chain(sid))

    def is_note_reference(self, sid: str) -> bool:
        return any(_NOTE_STYLES.search(self.names.get(s, s)) for s in self.chain(sid))


def _body_paras(body: etree._Element, styles: _Styles):
    """Para events for the body's paragraphs and table rows, in document order."""
    for el in body:
        if el.tag == f"{_W}p":
            yield from _paragraph(el, styles)
        elif el.tag == f"{_W}tbl":
            yield from _table(el, styles)
        elif el.tag == f"{_W}sdt":  # a content control: a Word table of contents, a cover page block...
            content = el.find(f"{_W}sdtContent")
            if content is not None:
                yield from _body_paras(content, styles)


def _paragraph(p: etree._Element, styles: _Styles):
    boxes: list[etree._Element] = []
    text = clean("".join(_runs_text(p, styles, boxes)))
    style = p.find(f"{_W}pPr/{_W}pStyle")
    sid = style.get(f"{_W}val", "") if style is not None else ""
    if text:
        own_level = p.find(f"{_W}pPr/{_W}outlineLvl")
        level = styles.level(sid)
        if own_level is not None and own_level.get(f"{_W}val", "").isdigit() and int(own_level.get(f"{_W}val")) < 9:
            level = int(own_level.get(f"{_W}val")) + 1
        types = frozenset({"toc"}) if styles.is_toc(sid) else frozenset()
        heading = min(level, 6)
        yield Para(as_sentence(text) if heading or styles.is_title(sid) else text, heading, types)
    for box in boxes:
        yield from _body_paras(box, styles)


def _runs_text(el: etree._Element, styles: _Styles, boxes: list[etree._Element]):
    for child in el:
        tag = child.tag
        if not isinstance(tag, str) or tag in _SKIPPED:
            continue
        if tag == f"{_W}txbxContent":
            boxes.append(child)
            continue
        if tag == f"{_W}r":
            style = child.find(f"{_W}rPr/{_W}rStyle")
            if style is not None and styles.is_note_reference(style.get(f"{_W}val", "")):
                continue
        if tag == f"{_W}t":
            yield child.text or ""
        elif tag in _TEXT_CHARS:
            yield _TEXT_CHARS[tag]
        else:
            yield from _runs_text(child, styles, boxes)


def _table(tbl: etree._Element, styles: _Styles):
    for row in tbl.iter(f"{_W}tr"):
        if row.getparent() is not tbl:
            continue  # a nested table's rows are read as part of their cell
        cells = []
        for cell in row.findall(f"{_W}tc"):
            boxes: list[etree._Element] = []
            text = clean(" ".join("".join(_runs_text(p, styles, boxes)) for p in cell.iter(f"{_W}p")))
            if text:
                cells.append(text)
        if cells:
            yield Para("; ".join(cells))


def _title_paragraph(body: etree._Element, styles: _Styles) -> str:
    for p in body.iter(f"{_W}p"):
        style = p.find(f"{_W}pPr/{_W}pStyle")
        if style is not None and styles.names.get(style.get(f"{_W}val", ""), "").lower() == "title":
            return clean("".join(_runs_text(p, styles, [])))
    return ""


def _metadata(document, title_paragraph: str, path: Path) -> Metadata:
    core = document.core_properties
    title = clean(core.title or "") or title_paragraph or path.stem.replace("_", " ").replace("-", " ")
    created = core.created
    return Metadata(
        title=title,
        authors=[a.strip() for a in (core.author or "").split(";") if a.strip()],
        language=clean(core.language or "") or "en",
        identifier=clean(core.identifier or ""),
        description=clean(core.subject or core.comments or ""),
        date=created.date().isoformat() if created is not None else "",
    )
