"""FictionBook 2 (``.fb2``, ``.fb2.zip``) -> :class:`~audiobook.book.Book`.

FB2 is one XML file: a ``<description>`` (metadata, the cover's reference), one or more ``<body>`` elements
of nested ``<section>``\\ s with ``<title>``\\ s, and the images as base64 ``<binary>`` elements.

* Each section's own content is rewritten as XHTML (``title`` -> a heading, ``v`` -> a line, ``epigraph``
  and ``cite`` -> quotations, note links dropped) and read by the shared extraction rules of
  :mod:`audiobook.readers.xhtml`, so FB2 text is cleaned exactly as EPUB text is.
* Titled sections are the table of contents, nested as the file nests them; every section counts as a
  document of its own, so the EPUB rule for nested contents (:mod:`audiobook.readers.structure`) splits a
  part into its chapters when they average 500+ words and keeps short sub-sections (poems, scenes) inside
  their chapter. An untitled section joins the chapter before it.
* The main body's own title (the author and book title) is a title page, skipped. A body with a ``name``
  (``notes``, ``comments``) holds footnote texts: kept as one chapter, skipped as endnotes.
* Metadata from ``title-info``: title, authors, language, date, annotation; the identifier from
  ``document-info`` (or the ISBN); the cover from ``coverpage`` when its image is JPEG or PNG.

The file is parsed with the safe parser (no DTD, no entities, no network); a file that is not well-formed
is read leniently with a warning, as FB2 files from the wild often need.
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path

from lxml import etree

from audiobook.book import Book, Metadata
from audiobook.errors import BadInputError
from audiobook.readers.archive import SafeZip
from audiobook.readers.structure import Entry, assemble
from audiobook.readers.xhtml import (
    EPUB_TYPE,
    Document,
    UnsafeXMLError,
    as_sentence,
    clean,
    extract,
    localname,
    parse_xml,
)

log = logging.getLogger(__name__)

MAX_FB2_BYTES = 256 << 20
MAX_COVER_BYTES = 32 << 20
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_COVER_TYPES = {"image/jpeg", "image/png"}
# FB2 element -> the XHTML element that carries the same meaning for the extraction rules.
_AS_XHTML = {
    "p": "p",
    "v": "p",
    "text-author": "p",
    "stanza": "div",
    "poem": "div",
    "epigraph": "blockquote",
    "cite": "blockquote",
    "annotation": "div",
    "table": "table",
    "tr": "tr",
    "td": "td",
    "th": "td",
    "emphasis": "em",
    "strong": "strong",
    "style": "span",
    "strikethrough": "span",
    "sub": "sub",
    "sup": "sup",
    "code": "code",
    "a": "a",
    "date": "p",
}
_DROPPED = frozenset({"image", "binary", "empty-line"})


def read_fb2(path: Path) -> Book:
    """Read an .fb2 or .fb2.zip file; raises BadInputError for anything unreadable or unsafe."""
    root = _parse(path, _load(path))
    if localname(root) != "fictionbook":
        raise BadInputError(path, f"not a FictionBook file (its root element is <{localname(root)}>)")
    metadata = _metadata(root, path)
    spine: list[tuple[str, bool]] = []
    documents: dict[str, Document] = {}
    toc: list[Entry] = []
    bodies = [el for el in root if localname(el) == "body"]
    note_ids = frozenset(el.get("id") for b in bodies if b.get("name") for el in b.iter() if el.get("id"))
    for number, body in enumerate(bodies):
        _read_body(body, number, note_ids, spine, documents, toc)
    if not spine:
        raise BadInputError(path, "the book contains no readable text (no <body>)")
    book = assemble(path, spine, documents, toc, metadata)
    if not any(c.paragraphs for c in book.chapters if not c.skipped):
        raise BadInputError(path, "the book contains no readable text (empty book)")
    return book


def _load(path: Path) -> bytes:
    if not path.name.lower().endswith(".zip"):
        if path.stat().st_size > MAX_FB2_BYTES:
            raise BadInputError(path, f"refused: the file is over {MAX_FB2_BYTES >> 20} MiB")
        return path.read_bytes()
    with SafeZip(path, "FB2 archive") as archive:
        members = sorted(n for n in archive.names if n.lower().endswith(".fb2"))
        if len(members) != 1:
            found = "none" if not members else f"{len(members)}: {', '.join(members[:3])}"
            raise BadInputError(path, f"a .fb2.zip must hold exactly one .fb2 file (found {found})")
        return archive.read(members[0])


def _parse(path: Path, data: bytes) -> etree._Element:
    try:
        return parse_xml(data)
    except UnsafeXMLError as e:
        raise BadInputError(path, str(e)) from e
    except etree.XMLSyntaxError as e:
        log.warning("%s is not well-formed XML (%s); reading it leniently", path, e)
    parser = etree.XMLParser(
        recover=True, resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        root = None
        log.debug("lenient parse failed: %s", e)
    if root is None:
        raise BadInputError(path, "not a FictionBook file: not XML, or damaged beyond reading")
    return root


def _read_body(
    body: etree._Element,
    number: int,
    note_ids: frozenset[str],
    spine: list[tuple[str, bool]],
    documents: dict[str, Document],
    toc: list[Entry],
) -> None:
    """Add one body's sections to the spine and its titled sections to the contents."""
    if body.get("name"):
        # Footnote texts: one document, skipped as endnotes (read only if the user asks for them).
        name = f"notes-{number}"
        wrapper = etree.Element("section")
        wrapper.set(EPUB_TYPE, "endnotes")
        wrapper.extend(_xhtml(child, 1, note_ids) for child in body)
        documents[name] = _extract(wrapper)
        spine.append((name, True))
        toc.append(Entry(_title_text(body) or "Notes", name))
        return
    own = [child for child in body if localname(child) != "section"]
    if own:
        # The body's title is the book's title page ("Author / Title"); its epigraph is narrated.
        name = f"body-{number}"
        wrapper = etree.Element("section")
        for child in own:
            converted = _xhtml(child, 1, note_ids)
            if localname(child) == "title":
                converted = _wrap(converted, "titlepage")
            wrapper.append(converted)
        documents[name] = _extract(wrapper)
        spine.append((name, True))
    for section in body:
        if localname(section) == "section":
            toc.extend(_read_section(section, 1, note_ids, spine, documents))


def _read_section(
    section: etree._Element,
    depth: int,
    note_ids: frozenset[str],
    spine: list[tuple[str, bool]],
    documents: dict[str, Document],
) -> list[Entry]:
    """The section's contents entries (itself when titled, else its titled descendants)."""
    name = f"section-{len(spine) + 1}"
    wrapper = etree.Element("section")
    wrapper.extend(_xhtml(child, depth, note_ids) for child in section if localname(child) != "section")
    documents[name] = _extract(wrapper)
    spine.append((name, True))
    children: list[Entry] = []
    for child in section:
        if localname(child) == "section":
            children.extend(_read_section(child, depth + 1, note_ids, spine, documents))
    title = _title_text(section)
    if not title:
        return children
    return [Entry(title, name, "", children)]


def _extract(wrapper: etree._Element) -> Document:
    html = etree.Element("html")
    body = etree.SubElement(html, "body")
    body.append(wrapper)
    return extract(html, set())


def _wrap(el: etree._Element, kind: str) -> etree._Element:
    wrapper = etree.Element("section")
    wrapper.set(EPUB_TYPE, kind)
    wrapper.append(el)
    return wrapper


def _xhtml(el: etree._Element, depth: int, note_ids: frozenset[str]) -> etree._Element:
    """A copy of an FB2 element as XHTML; ``title`` becomes a heading of the section's depth."""
    tag = localname(el)
    href = el.get(_XLINK_HREF) or el.get("href") or ""
    if tag == "title":
        out = etree.Element(f"h{min(depth, 6)}")
    elif tag == "subtitle":
        out = etree.Element(f"h{min(depth + 1, 6)}")
    elif tag in _DROPPED or (tag == "a" and (el.get("type") == "note" or href[1:] in note_ids)):
        out = etree.Element("span")  # footnote link or image: nothing spoken, but the tail text stays
        out.tail = el.tail
        return out
    else:
        out = etree.Element(_AS_XHTML.get(tag, "div"))
    if el.get("id"):
        out.set("id", el.get("id"))
    if tag == "a" and href:
        out.set("href", href)
    out.text = el.text
    out.tail = el.tail
    for child in el:
        if isinstance(child.tag, str):
            out.append(_xhtml(child, depth, note_ids))
    return out


def _title_text(el: etree._Element) -> str:
    title = next((c for c in el if localname(c) == "title"), None)
    if title is None:
        return ""
    parts = [clean("".join(p.itertext())) for p in title if localname(p) == "p"]
    parts = [p for p in parts if p] or [clean("".join(title.itertext()))]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return " ".join([as_sentence(p) for p in parts[:-1]] + [parts[-1]])


def _child(el: etree._Element | None, *names: str) -> etree._Element | None:
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if localname(c) == name), None)
    return el


def _text(el: etree._Element | None) -> str:
    return clean("".join(el.itertext())) if el is not None else ""


def _metadata(root: etree._Element, path: Path) -> Metadata:
    info = _child(root, "description", "title-info")
    authors = []
    for author in (c for c in (info if info is not None else []) if localname(c) == "author"):
        names = [_text(_child(author, part)) for part in ("first-name", "middle-name", "last-name")]
        full = " ".join(n for n in names if n) or _text(_child(author, "nickname"))
        if full:
            authors.append(full)
    date = _child(info, "date")
    identifier = _text(_child(root, "description", "document-info", "id")) or _text(
        _child(root, "description", "publish-info", "isbn")
    )
    annotation = _child(info, "annotation")
    metadata = Metadata(
        title=_text(_child(info, "book-title")) or path.name.split(".")[0],
        authors=authors,
        language=_text(_child(info, "lang")) or "en",
        identifier=identifier,
        description=" ".join(_text(p) for p in annotation if localname(p) == "p") if annotation is not None else "",
        date=(date.get("value") or _text(date)) if date is not None else "",
    )
    metadata.cover, metadata.cover_type = _cover(root, info, path)
    return metadata


def _cover(root: etree._Element, info: etree._Element | None, path: Path) -> tuple[bytes | None, str]:
    image = _child(info, "coverpage", "image")
    href = (image.get(_XLINK_HREF) or image.get("href") or "") if image is not None else ""
    if not href.startswith("#"):
        return None, ""
    for binary in root:
        if localname(binary) != "binary" or binary.get("id") != href[1:]:
            continue
        kind = binary.get("content-type", "")
        data = "".join(binary.itertext())
        if kind not in _COVER_TYPES or len(data) > MAX_COVER_BYTES * 4 // 3 + 4:
            log.info("%s: cover %s skipped (%s, %d base64 characters)", path, href, kind, len(data))
            return None, ""
        try:
            return base64.b64decode("".join(data.split())), kind
        except (binascii.Error, ValueError):
            log.warning("%s: the cover image %s is not valid base64; no cover", path, href)
            return None, ""
    return None, ""
