"""An EPUB 3 in memory: read from a book's own file, or generated from a text or Markdown book; written back out.

Only what Media Overlays need is modelled: the members (bytes by archive path), the package document (OPF) as a
tree, and the spine's content documents. Everything else in a book's own EPUB is copied through byte for byte.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urldefrag
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from audiobook.atomic import write_atomic
from audiobook.book import Metadata
from audiobook.errors import AudiobookError
from audiobook.readers.xhtml import check_no_entities, localname

log = logging.getLogger(__name__)

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTAINER = "META-INF/container.xml"
XHTML_TYPE = "application/xhtml+xml"


class NotEpub3(AudiobookError):
    """The book's own EPUB cannot carry Media Overlays as it is (EPUB 2, or unreadable); generate one instead."""


@dataclass
class Publication:
    files: dict[str, bytes]
    """Every member except ``mimetype``, by archive path, in archive order."""
    opf_path: str
    opf: etree._Element
    documents: list[str] = field(default_factory=list)
    """The spine's XHTML content documents, in reading order (archive paths)."""

    @property
    def base(self) -> str:
        return posixpath.dirname(self.opf_path)

    def item(self, path: str) -> etree._Element | None:
        """The manifest ``item`` for an archive path."""
        for item in self.opf.iter(f"{{{OPF_NS}}}item"):
            if item.get("href") and resolve(self.base, item.get("href")) == path:
                return item
        return None

    def add_item(self, path: str, media_type: str, wanted_id: str, properties: str = "") -> str:
        """Add ``path`` to the manifest; returns the item's id (``wanted_id``, made unique)."""
        ids = {el.get("id") for el in self.opf.iter() if el.get("id")}
        item_id, n = wanted_id, 1
        while item_id in ids:
            n += 1
            item_id = f"{wanted_id}-{n}"
        manifest = next(self.opf.iter(f"{{{OPF_NS}}}manifest"))
        item = etree.SubElement(
            manifest,
            f"{{{OPF_NS}}}item",
            id=item_id,
            href=quote(posixpath.relpath(path, self.base or ".")),
            **{"media-type": media_type},
        )
        if properties:
            item.set("properties", properties)
        return item_id

    def metadata(self) -> etree._Element:
        return next(self.opf.iter(f"{{{OPF_NS}}}metadata"))

    def add_meta(self, prop: str, value: str, refines: str = "") -> None:
        meta = etree.SubElement(self.metadata(), f"{{{OPF_NS}}}meta", property=prop)
        if refines:
            meta.set("refines", refines)
        meta.text = value

    def touch(self) -> None:
        """Set ``dcterms:modified`` to now: the publication changed."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for meta in self.metadata().iter(f"{{{OPF_NS}}}meta"):
            if meta.get("property") == "dcterms:modified":
                meta.text = now
                return
        self.add_meta("dcterms:modified", now)


def resolve(base: str, href: str) -> str:
    """The archive path an href (relative to ``base``) points at, fragment dropped."""
    target, _ = urldefrag(href)
    return posixpath.normpath(posixpath.join(base, unquote(target)))


def relative(path: str, start_file: str) -> str:
    """An href from the file ``start_file`` to ``path`` (both archive paths)."""
    return quote(posixpath.relpath(path, posixpath.dirname(start_file) or "."))


def _parser() -> etree.XMLParser:
    # Comments and processing instructions are kept: the documents are written back.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse(data: bytes) -> etree._Element:
    """Parse an XML member to be edited and written back; ``etree.XMLSyntaxError`` or ``ValueError`` if unsafe."""
    check_no_entities(data)
    return etree.fromstring(data, _parser())


def serialize(root: etree._Element) -> bytes:
    """A document with its XML declaration and DOCTYPE, as it came."""
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8")


def open_epub(path: Path) -> Publication:
    """A book's own EPUB 3, ready for overlays; ``NotEpub3`` for an EPUB 2 or one that cannot be edited."""
    try:
        with zipfile.ZipFile(path) as archive:
            files = {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if info.filename != "mimetype" and not info.is_dir()
            }
    except (zipfile.BadZipFile, OSError) as e:
        raise NotEpub3(f"{path}: cannot be read ({e})") from e
    try:
        container = parse(files[CONTAINER])
        opf_path = next(el.get("full-path") for el in container.iter() if localname(el) == "rootfile")
        opf = parse(files[opf_path])
    except (KeyError, StopIteration, ValueError, etree.XMLSyntaxError) as e:
        raise NotEpub3(f"{path}: no readable package document ({e})") from e
    if not opf.get("version", "").startswith("3"):
        raise NotEpub3(f"{path} is EPUB {opf.get('version', '?')}; Media Overlays need EPUB 3")
    publication = Publication(files, opf_path, opf)
    manifest = {item.get("id"): item for item in opf.iter(f"{{{OPF_NS}}}item")}
    for ref in opf.iter(f"{{{OPF_NS}}}itemref"):
        item = manifest.get(ref.get("idref", ""))
        if item is not None and item.get("media-type") == XHTML_TYPE:
            document = resolve(publication.base, item.get("href", ""))
            if document in files and document not in publication.documents:
                publication.documents.append(document)
    return publication


def write_epub(publication: Publication, out: Path) -> None:
    """Write the EPUB: ``mimetype`` first and stored, then every member, to a temporary name renamed into place."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in publication.files.items():
            stored = name.endswith((".mp3", ".m4a", ".jpg", ".jpeg", ".png"))  # already compressed
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    write_atomic(out, buffer.getvalue())


# ---- a generated EPUB 3 for text, Markdown and EPUB 2 books ---------------------------------------------


@dataclass(frozen=True)
class TextChapter:
    title: str
    paragraphs: Sequence[str]
    """As narrated; the first is the chapter's title sentence, shown as its heading."""


def generate(metadata: Metadata, chapters: Sequence[TextChapter]) -> tuple[Publication, list[str]]:
    """An EPUB 3 holding ``chapters`` (one content document each, plus a nav document); returns it and each
    chapter's content document."""
    language = metadata.language or "en"
    files: dict[str, bytes] = {CONTAINER: _CONTAINER_XML.encode()}
    documents = []
    for n, chapter in enumerate(chapters, start=1):
        path = f"OEBPS/text/chapter-{n:03d}.xhtml"
        files[path] = _chapter_xhtml(chapter, language).encode()
        documents.append(path)
    files["OEBPS/nav.xhtml"] = _nav_xhtml(chapters, documents, metadata.title, language).encode()
    cover = _cover_member(metadata)
    if cover:
        files[cover[0]] = metadata.cover or b""
    files["OEBPS/content.opf"] = _package_opf(metadata, documents, cover).encode()
    publication = Publication(files, "OEBPS/content.opf", parse(files["OEBPS/content.opf"]), list(documents))
    return publication, documents


_CONTAINER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""


def _xhtml(title: str, language: str, body: str) -> str:
    lang = quoteattr(language)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
        f"xml:lang={lang} lang={lang}>\n"
        f'<head>\n<meta charset="utf-8"/>\n<title>{escape(title)}</title>\n</head>\n'
        f"<body>\n{body}</body>\n</html>\n"
    )


def _chapter_xhtml(chapter: TextChapter, language: str) -> str:
    heading, *rest = chapter.paragraphs or [chapter.title]
    body = f'<section epub:type="chapter">\n<h1>{escape(heading)}</h1>\n'
    body += "".join(f"<p>{escape(p)}</p>\n" for p in rest) + "</section>\n"
    return _xhtml(chapter.title, language, body)


def _nav_xhtml(chapters: Sequence[TextChapter], documents: Sequence[str], title: str, language: str) -> str:
    items = "".join(
        f'<li><a href="{relative(doc, "OEBPS/nav.xhtml")}">{escape(c.title)}</a></li>\n'
        for c, doc in zip(chapters, documents, strict=True)
    )
    body = f'<nav epub:type="toc" id="toc">\n<h1>{escape(title)}</h1>\n<ol>\n{items}</ol>\n</nav>\n'
    return _xhtml(title, language, body)


def _cover_member(metadata: Metadata) -> tuple[str, str] | None:
    data = metadata.cover or b""
    if data.startswith(b"\xff\xd8\xff"):
        return "OEBPS/cover.jpg", "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "OEBPS/cover.png", "image/png"
    return None


def _package_opf(metadata: Metadata, documents: Sequence[str], cover: tuple[str, str] | None) -> str:
    identifier = metadata.identifier or f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, metadata.title + metadata.author)}"
    creators = "".join(f"    <dc:creator>{escape(a)}</dc:creator>\n" for a in metadata.authors)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = ['    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>']
    items += [
        f'    <item id="c{n:03d}" href="{relative(doc, "OEBPS/content.opf")}" media-type="{XHTML_TYPE}"/>'
        for n, doc in enumerate(documents, start=1)
    ]
    if cover:
        items.append(
            f'    <item id="cover" href="{relative(cover[0], "OEBPS/content.opf")}" '
            f'media-type="{cover[1]}" properties="cover-image"/>'
        )
    spine = "".join(f'    <itemref idref="c{n:03d}"/>\n' for n in range(1, len(documents) + 1))
    lang = quoteattr(metadata.language or "en")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid" xml:lang={lang}>
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="uid">{escape(identifier)}</dc:identifier>
    <dc:title>{escape(metadata.title or "Untitled")}</dc:title>
    <dc:language>{escape(metadata.language or "en")}</dc:language>
{creators}    <meta property="dcterms:modified">{now}</meta>
  </metadata>
  <manifest>
{chr(10).join(items)}
  </manifest>
  <spine>
{spine}  </spine>
</package>
"""
