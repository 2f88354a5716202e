"""A single HTML page (a saved article, a one-file book) -> :class:`~audiobook.book.Book`.

The page goes through the same extraction rules as an EPUB content document
(:func:`audiobook.readers.xhtml.extract`) and the same structure rules (:mod:`audiobook.readers.structure`)
with no table of contents, so headings make the chapters: the shallowest of h1-h3 that occurs at least
twice. A page with one ``<main>`` (else one ``<article>``) is read from there only, which leaves a saved
article's site menus, sidebars and footers out.

Decoding follows the browser: a byte-order mark first, then the ``<meta charset>`` (or ``http-equiv``) or
XML declaration in the first 4 KiB, then UTF-8, then windows-1252 (HTML's default) with a warning.
Metadata: ``<title>``, ``<meta name="author">`` (or ``dc.creator``), ``description``, ``<html lang>``.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

from lxml import etree

from audiobook.book import Book, Metadata
from audiobook.errors import BadInputError
from audiobook.readers.structure import assemble
from audiobook.readers.xhtml import UnsafeXMLError, clean, document_title, extract, localname, parse_html

log = logging.getLogger(__name__)

MAX_HTML_BYTES = 256 << 20
"""A single page over this (inline images included) is refused rather than parsed into memory."""

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""")
_AUTHOR_NAMES = ("author", "dc.creator", "dcterms.creator", "article:author", "book:author")
_DATE_NAMES = ("date", "dc.date", "dcterms.date", "article:published_time", "citation_publication_date")


def read_html(path: Path) -> Book:
    """Read an .html/.htm/.xhtml page; raises BadInputError for binary data, entity tricks, or no text."""
    if path.stat().st_size > MAX_HTML_BYTES:
        raise BadInputError(path, f"refused: the page is over {MAX_HTML_BYTES >> 20} MiB")
    text = decode_html(path, path.read_bytes())
    try:
        root = parse_html(text)
    except UnsafeXMLError as e:
        raise BadInputError(path, str(e)) from e
    metadata = _metadata(root, path)
    document = extract(_content(root), set())
    document.title = metadata.title
    book = assemble(path, [(path.name, True)], {path.name: document}, [], metadata)
    if not any(c.paragraphs for c in book.chapters):
        raise BadInputError(path, "the page contains no readable text")
    return book


def decode_html(path: Path, data: bytes) -> str:
    """The page's text, decoded as a browser would; refuses binary data."""
    encoding, data = _encoding(path, data)
    if not encoding.startswith("utf-16") and b"\x00" in data[:65536]:
        raise BadInputError(path, "this is binary data, not HTML")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        if encoding == "utf-8":
            log.warning("%s: no charset declared and not UTF-8; reading it as windows-1252", path)
            text = data.decode("windows-1252", errors="replace")
        else:
            log.warning("%s: bytes that are not valid %s were replaced", path, encoding)
            text = data.decode(encoding, errors="replace")
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v")
    if controls > max(8, len(sample) // 100) or sample.count("\ufffd") > max(8, len(sample) // 20):
        raise BadInputError(path, "this is binary data, not HTML")
    return text


def _encoding(path: Path, data: bytes) -> tuple[str, bytes]:
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, data[len(bom) :]
    head = data[:4096]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if not match:
        return "utf-8", data
    declared = match.group(1).decode("ascii", "replace")
    try:
        name = codecs.lookup(declared).name
    except LookupError as e:
        raise BadInputError(path, f"the page declares an unknown charset {declared!r}") from e
    # Browsers read a page labelled latin-1 as windows-1252, a superset: curly quotes survive.
    return ("windows-1252" if name in ("latin-1", "iso8859-1", "ascii") else name), data


def _content(root: etree._Element) -> etree._Element:
    """The page's one ``<main>`` or one ``<article>`` when it has exactly one, else the whole page."""
    for tag in ("main", "article"):
        found = [el for el in root.iter() if localname(el) == tag]
        if len(found) == 1:
            return found[0]
    return root


def _metadata(root: etree._Element, path: Path) -> Metadata:
    metas: dict[str, str] = {}
    for el in root.iter():
        if localname(el) == "meta" and el.get("content"):
            key = (el.get("name") or el.get("property") or "").lower()
            metas.setdefault(key, clean(el.get("content")))
    title = document_title(root) or metas.get("og:title", "") or path.stem.replace("_", " ").replace("-", " ")
    authors = next((metas[k] for k in _AUTHOR_NAMES if metas.get(k)), "")
    return Metadata(
        title=title,
        authors=[a.strip() for a in authors.split(";") if a.strip()],
        language=clean(root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or "") or "en",
        description=metas.get("description", ""),
        date=next((metas[k] for k in _DATE_NAMES if metas.get(k)), ""),
    )
