"""Safe XML parsing and XHTML -> narratable paragraphs.

Every XML file of a book (container, OPF, NCX, nav, content documents) goes through :func:`parse_xml`,
which never loads a DTD, never touches the network, never expands entities, and refuses documents that
declare their own entities. Content documents then go through :func:`extract`, which walks the body in
document order and yields :class:`Para` and :class:`Anchor` events: paragraph boundaries are kept,
headings become their own sentences, footnote markers, page numbers, scripts, styles and images are left out.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from lxml import etree, html

log = logging.getLogger(__name__)

XHTML_NS = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
EPUB_TYPE = f"{{{EPUB_NS}}}type"

# An internal DTD subset that declares entities is how both "billion laughs" and external-entity attacks
# start; no real ebook needs one, so it is refused outright rather than parsed carefully.
_ENTITY_DECL = re.compile(rb"<!DOCTYPE[^>\[]*\[[^\]]*<!ENTITY", re.IGNORECASE)

# Soft hyphens, zero-width spaces, word joiners and BOMs are layout hints, not speech; C0 controls are noise.
_INVISIBLE = dict.fromkeys([*map(ord, "\u00ad\u200b\u2060\ufeff"), *range(0, 9), *range(14, 32), 127], None)
_SPACE = re.compile(r"\s+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_TERMINAL = ".!?…:;,—–-\"'”’»)]"

_SKIP_TAGS = frozenset(
    {
        "head",
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "img",
        "image",
        "audio",
        "video",
        "object",
        "embed",
        "iframe",
        "canvas",
        "map",
        "input",
        "button",
        "select",
        "textarea",
    }
)
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "aside",
        "header",
        "footer",
        "nav",
        "main",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "figure",
        "figcaption",
        "hr",
        "address",
        "center",
        "body",
        "details",
        "summary",
        "fieldset",
    }
)
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "hgroup"})
_SKIP_TYPES = frozenset({"noteref", "pagebreak", "page-list"})


class UnsafeXMLError(ValueError):
    """The document declares XML entities (refused: possible expansion or external-entity attack)."""


@dataclass(frozen=True)
class Para:
    text: str
    heading: int = 0
    """Heading level 1-6 when the paragraph is a heading (``hgroup`` counts as its first heading), else 0."""
    types: frozenset[str] = frozenset()
    """Every ``epub:type`` (and ``role``) value on the paragraph's ancestors (``titlepage``, ``colophon``)."""


@dataclass(frozen=True)
class Anchor:
    id: str


@dataclass
class Document:
    events: list[Para | Anchor] = field(default_factory=list)
    title: str = ""
    """The document's ``<title>``, for books with neither a TOC nor headings."""


def _xml_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def check_no_entities(data: bytes) -> None:
    if _ENTITY_DECL.search(data[:65536]):
        raise UnsafeXMLError("declares XML entities in its DOCTYPE (refused for safety)")


def parse_xml(data: bytes) -> etree._Element:
    """Parse trusted-shape XML (container, OPF, NCX); raises ``etree.XMLSyntaxError`` or UnsafeXMLError."""
    check_no_entities(data)
    return etree.fromstring(data, _xml_parser())


def parse_xhtml(data: bytes, name: str) -> etree._Element:
    """Parse a content document, recovering (with a warning) from markup a browser would still show."""
    check_no_entities(data)
    try:
        return etree.fromstring(data, _xml_parser())
    except etree.XMLSyntaxError as e:
        log.warning("%s is not well-formed XHTML (%s); reading it leniently", name, e)
    parser = html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, recover=True)
    try:
        return html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):  # nothing a browser could show either
        return etree.Element("html")


def parse_html(text: str) -> etree._Element:
    """Parse a decoded HTML page (a browser's rules: never fails); raises UnsafeXMLError on entity tricks."""
    check_no_entities(text[:65536].encode("utf-8", "replace"))
    # lxml refuses a str that still carries an XML declaration naming its (former) byte encoding.
    text = _XML_DECL.sub("", text, count=1)
    parser = html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, recover=True)
    try:
        return html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError):
        return etree.Element("html")


def clean(text: str) -> str:
    """NFC, invisible formatting characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return _SPACE.sub(" ", text).strip()


def as_sentence(text: str) -> str:
    """A heading made its own sentence: a full stop unless it already ends in punctuation."""
    return text if not text or text[-1] in _TERMINAL else text + "."


def localname(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def epub_types(el: etree._Element) -> list[str]:
    value = el.get(EPUB_TYPE) or el.get("epub:type") or ""
    role = el.get("role") or ""
    types = value.split() + [r.removeprefix("doc-") for r in role.split()]
    return [t.rsplit(":", 1)[-1].lower() for t in types]


def _is_noteref(el: etree._Element, tag: str) -> bool:
    if tag == "a" and el.get("href", "").find("#") >= 0:
        # A superscript link (or a link holding only a superscript) is a footnote marker.
        if len(el) == 1 and localname(el[0]) == "sup" and not (el.text or "").strip():
            return True
    if tag == "sup" and len(el) == 1 and localname(el[0]) == "a" and "#" in el[0].get("href", ""):
        return not (el.text or "").strip()
    return False


def skipped(el: etree._Element) -> bool:
    """Whether an element and everything inside it is left out of the narration (its tail is not): scripts,
    styles, images, footnote markers, page numbers."""
    tag = localname(el)
    return tag in _SKIP_TAGS or bool(_SKIP_TYPES.intersection(epub_types(el))) or _is_noteref(el, tag)


def is_block(el: etree._Element) -> bool:
    """Whether an element starts a paragraph of its own (a block or a heading), so no sentence crosses it."""
    tag = localname(el)
    return tag in _BLOCK_TAGS or tag in _HEADING_TAGS


class _Walker:
    def __init__(self, anchors: set[str]) -> None:
        self.anchors = anchors
        self.events: list[Para | Anchor] = []
        self.buf: list[str] = []
        self.types: list[list[str]] = []
        self.heading = 0

    def flush(self) -> None:
        if self.heading:
            return
        text = clean("".join(self.buf))
        self.buf.clear()
        if text:
            self.events.append(Para(text, 0, self._types()))

    def _types(self) -> frozenset[str]:
        return frozenset(t for level in self.types for t in level)

    def walk(self, el: etree._Element) -> None:
        tag = localname(el)
        if not tag:  # comment or processing instruction left by the lenient parser
            self._tail(el)
            return
        types = epub_types(el)
        if skipped(el):
            self._anchor_ids_inside(el)
            self._tail(el)
            return
        if el.get("id") in self.anchors and not self.heading:
            self.flush()
            self.events.append(Anchor(el.get("id")))
        if tag in _HEADING_TAGS and not self.heading:
            self._heading(el, tag, types)
            self._tail(el)
            return
        if tag == "br":  # a line break inside a paragraph (verse, addresses); in a heading it parts the title
            self.buf.append("\x00" if self.heading else " ")
            self._tail(el)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self._break()
        self.types.append(types)
        if el.text:
            self.buf.append(el.text)
        for child in el:
            self.walk(child)
        if block:
            self._break()
        self.types.pop()
        self._tail(el)

    def _break(self) -> None:
        # Inside a heading a block boundary separates parts of one title (hgroup's "IV" / "The Arrival").
        if self.heading:
            self.buf.append("\x00")
        else:
            self.flush()

    def _tail(self, el: etree._Element) -> None:
        if el.tail:
            self.buf.append(el.tail)

    def _anchor_ids_inside(self, el: etree._Element) -> None:
        if self.heading:
            return
        for sub in el.iter():
            if isinstance(sub.tag, str) and sub.get("id") in self.anchors:
                self.flush()
                self.events.append(Anchor(sub.get("id")))

    def _heading(self, el: etree._Element, tag: str, types: list[str]) -> None:
        self.flush()
        # A target anchor inside a heading (<h2><a id="chap01"/>CHAPTER I.</h2>) starts the chapter before it.
        for sub in el.iterdescendants():
            if isinstance(sub.tag, str) and sub.get("id") in self.anchors:
                self.events.append(Anchor(sub.get("id")))
        level = int(tag[1]) if tag != "hgroup" else _hgroup_level(el)
        self.heading = level
        self.types.append(types)
        if el.text:
            self.buf.append(el.text)
        for child in el:
            self.walk(child)
        self.types.pop()
        parts = [clean(p) for p in "".join(self.buf).split("\x00")]
        self.buf.clear()
        self.heading = 0
        parts = [p for p in parts if p]
        if parts:
            text = " ".join(as_sentence(p) for p in parts[:-1]) + (" " if len(parts) > 1 else "") + parts[-1]
            self.events.append(Para(as_sentence(text), level, self._types() | frozenset(types)))


def _hgroup_level(el: etree._Element) -> int:
    for sub in el.iterdescendants():
        name = localname(sub)
        if len(name) == 2 and name[0] == "h" and name[1].isdigit():
            return int(name[1])
    return 2


def find_body(root: etree._Element) -> etree._Element:
    for el in root.iter():
        if localname(el) == "body":
            return el
    return root


def document_title(root: etree._Element) -> str:
    for el in root.iter():
        if localname(el) == "title":
            return clean("".join(el.itertext()))
        if localname(el) == "body":
            break
    return ""


def extract(root: etree._Element, anchors: set[str]) -> Document:
    """Paragraph and anchor events of one content document, in reading order.

    ``anchors`` are the ids a table of contents points at; an :class:`Anchor` event is emitted where each
    one occurs so the caller can start a chapter there.
    """
    walker = _Walker(anchors)
    body = find_body(root)
    walker.types.append(epub_types(body))
    if body.text:
        walker.buf.append(body.text)
    for child in body:
        walker.walk(child)
    walker.flush()
    return Document(walker.events, document_title(root))
