"""EPUB 2 and 3 -> :class:`~audiobook.book.Book`.

Reading order is the OPF spine. Chapter boundaries and titles come from the book's own table of contents:
the EPUB 3 nav document first, the NCX second, and headings only when the book has neither.

The structure rules (anchors, text before the first entry, nested contents, no contents, non-linear
documents) are shared with the other readers and live in :mod:`audiobook.readers.structure`.

Safety: the archive's declared sizes and compression ratios are checked before anything is inflated, XML
is parsed without DTDs, entities or network, and ``META-INF/encryption.xml`` naming content documents (DRM)
is refused; font obfuscation alone is allowed.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag

from lxml import etree

from audiobook.book import Book, Metadata
from audiobook.errors import BadInputError
from audiobook.readers.archive import SafeZip
from audiobook.readers.structure import Entry, anchor_targets, assemble, matter_entries
from audiobook.readers.xhtml import (
    EPUB_TYPE,
    UnsafeXMLError,
    clean,
    epub_types,
    extract,
    localname,
    parse_xhtml,
    parse_xml,
)

log = logging.getLogger(__name__)

_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
_CONTENT_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml", "text/x-oeb1-document"}
_COVER_TYPES = {"image/jpeg", "image/png"}
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_NCX = "{http://www.daisy.org/z3986/2005/ncx/}"


@dataclass
class _Item:
    id: str
    path: str
    media_type: str
    properties: str = ""


def read_epub(path: Path) -> Book:
    """Read an EPUB 2 or 3 file; raises BadInputError for anything that is not a readable, DRM-free EPUB."""
    archive = SafeZip(path, "EPUB")
    with archive.zip:
        opf_path = _find_opf(archive)
        _refuse_drm(archive)
        opf = archive.xml(opf_path)
        base = posixpath.dirname(opf_path)
        manifest = _manifest(opf, base)
        spine = _spine(opf, manifest, archive)
        metadata = _metadata(opf, manifest, archive)
        toc = _read_toc(archive, opf, manifest, base)
        landmarks = _landmarks(archive, opf, manifest, base)
        book = _assemble(archive, spine, toc, landmarks, metadata)
    if not any(c.paragraphs for c in book.chapters):
        raise BadInputError(path, "the book contains no readable text (empty book)")
    return book


def _find_opf(archive: SafeZip) -> str:
    container = "META-INF/container.xml"
    if container not in archive.names:
        raise BadInputError(archive.path, f"not an EPUB: {container} is missing")
    for el in archive.xml(container).iter():
        if localname(el) == "rootfile" and el.get("full-path"):
            opf = el.get("full-path")
            if opf not in archive.names:
                raise BadInputError(archive.path, f"{container} names {opf}, which is not in the archive")
            return opf
    raise BadInputError(archive.path, f"not an EPUB: {container} names no package (OPF) file")


def _refuse_drm(archive: SafeZip) -> None:
    name = "META-INF/encryption.xml"
    if name not in archive.names:
        return
    for data in archive.xml(name).iter():
        if localname(data) != "encrypteddata":
            continue
        parts = {localname(el): el for el in data.iter()}
        algorithm = parts["encryptionmethod"].get("Algorithm", "") if "encryptionmethod" in parts else ""
        uri = parts["cipherreference"].get("URI", "") if "cipherreference" in parts else ""
        if algorithm not in _FONT_OBFUSCATION:
            raise BadInputError(
                archive.path,
                f"the book is DRM-protected ({name} encrypts {uri or 'its content'}); only DRM-free EPUBs can be read",
            )


def _resolve(base: str, href: str) -> tuple[str, str]:
    target, fragment = urldefrag(href)
    return posixpath.normpath(posixpath.join(base, unquote(target))), unquote(fragment)


def _manifest(opf: etree._Element, base: str) -> dict[str, _Item]:
    items = {}
    for el in opf.iter(f"{_OPF}item"):
        if el.get("id") and el.get("href"):
            path, _ = _resolve(base, el.get("href"))
            item = _Item(el.get("id"), path, el.get("media-type", ""), el.get("properties", ""))
            items[item.id] = item
    return items


def _spine(opf: etree._Element, manifest: dict[str, _Item], archive: SafeZip) -> list[tuple[str, bool]]:
    spine = []
    for ref in opf.iter(f"{_OPF}itemref"):
        item = manifest.get(ref.get("idref", ""))
        if item is None or item.media_type not in _CONTENT_TYPES:
            continue
        if item.path not in archive.names:
            log.warning("%s: spine document %s is missing; skipping it", archive.path, item.path)
            continue
        if any(item.path == path for path, _ in spine):
            continue  # listed twice: read once
        spine.append((item.path, ref.get("linear", "yes") != "no"))
    if not spine:
        raise BadInputError(archive.path, "the book contains no readable text (its spine lists no documents)")
    return spine


def _metadata(opf: etree._Element, manifest: dict[str, _Item], archive: SafeZip) -> Metadata:
    def texts(tag: str) -> list[str]:
        return [t for t in (clean("".join(el.itertext())) for el in opf.iter(f"{_DC}{tag}")) if t]

    uid = opf.get("unique-identifier", "")
    ids = [el for el in opf.iter(f"{_DC}identifier")]
    identifier = next((clean(el.text or "") for el in ids if el.get("id") == uid), "") or next(
        iter(texts("identifier")), ""
    )
    title = next(iter(texts("title")), "") or archive.path.stem
    meta = Metadata(
        title=title,
        authors=texts("creator"),
        language=next(iter(texts("language")), "en"),
        identifier=identifier,
        description=clean(_strip_tags(next(iter(texts("description")), ""))),
        date=next(iter(texts("date")), ""),
    )
    cover = _cover_item(opf, manifest)
    if cover is not None and cover.path in archive.names:
        meta.cover, meta.cover_type = archive.read(cover.path), cover.media_type
    return meta


def _strip_tags(text: str) -> str:
    if "<" not in text:
        return text
    try:
        return "".join(parse_xml(f"<x>{text}</x>".encode()).itertext())
    except (etree.XMLSyntaxError, UnsafeXMLError):
        return text


def _cover_item(opf: etree._Element, manifest: dict[str, _Item]) -> _Item | None:
    candidates = [i for i in manifest.values() if "cover-image" in i.properties.split()]
    for meta in opf.iter(f"{_OPF}meta"):
        if meta.get("name") == "cover" and meta.get("content") in manifest:
            candidates.append(manifest[meta.get("content")])
    candidates += [i for i in manifest.values() if "cover" in i.id.lower() or "cover" in i.path.lower()]
    return next((i for i in candidates if i.media_type in _COVER_TYPES), None)


def _nav_item(manifest: dict[str, _Item]) -> _Item | None:
    return next((i for i in manifest.values() if "nav" in i.properties.split()), None)


def _read_toc(archive: SafeZip, opf: etree._Element, manifest: dict[str, _Item], base: str) -> list[Entry]:
    nav = _nav_item(manifest)
    if nav is not None and nav.path in archive.names:
        root = _content_root(archive, nav.path)
        for el in root.iter():
            if localname(el) == "nav" and "toc" in epub_types(el):
                nodes = _nav_list(el, posixpath.dirname(nav.path))
                if nodes:
                    return nodes
    spine = next(opf.iter(f"{_OPF}spine"), None)
    ncx = manifest.get(spine.get("toc", "") if spine is not None else "")
    if ncx is None:
        ncx = next((i for i in manifest.values() if i.media_type == "application/x-dtbncx+xml"), None)
    if ncx is not None and ncx.path in archive.names:
        nav_map = next(archive.xml(ncx.path).iter(f"{_NCX}navMap"), None)
        if nav_map is not None:
            return _ncx_points(nav_map, posixpath.dirname(ncx.path))
    return []


def _content_root(archive: SafeZip, name: str) -> etree._Element:
    try:
        return parse_xhtml(archive.read(name), name)
    except UnsafeXMLError as e:
        raise BadInputError(archive.path, f"{name} {e}") from e


def _nav_list(parent: etree._Element, base: str) -> list[Entry]:
    ol = next((c for c in parent.iterdescendants() if localname(c) in ("ol", "ul")), None)
    if ol is None:
        return []
    nodes = []
    for li in ol:
        if localname(li) != "li":
            continue
        link = next((c for c in li.iterdescendants() if localname(c) in ("a", "span")), None)
        children = _nav_list(li, base)
        if link is None or not link.get("href"):
            nodes.extend(children)  # a heading-only <span> groups its children
            continue
        path, anchor = _resolve(base, link.get("href"))
        nodes.append(Entry(clean("".join(link.itertext())), path, anchor, children))
    return nodes


def _ncx_points(parent: etree._Element, base: str) -> list[Entry]:
    nodes = []
    for point in parent:
        if localname(point) != "navpoint":
            continue
        label = next(point.iter(f"{_NCX}text"), None)
        content = next(point.iter(f"{_NCX}content"), None)
        children = _ncx_points(point, base)
        if content is None or not content.get("src"):
            nodes.extend(children)
            continue
        path, anchor = _resolve(base, content.get("src"))
        title = clean("".join(label.itertext())) if label is not None else ""
        nodes.append(Entry(title, path, anchor, children))
    return nodes


def _landmarks(
    archive: SafeZip, opf: etree._Element, manifest: dict[str, _Item], base: str
) -> dict[tuple[str, str], str]:
    marks: dict[tuple[str, str], str] = {}
    for ref in opf.iter(f"{_OPF}reference"):
        if ref.get("href") and ref.get("type"):
            kind = ref.get("type").lower().replace("title-page", "titlepage")
            marks[_resolve(base, ref.get("href"))] = kind
    nav = _nav_item(manifest)
    if nav is not None and nav.path in archive.names:
        for el in _content_root(archive, nav.path).iter():
            if localname(el) == "nav" and "landmarks" in epub_types(el):
                for link in el.iter():
                    if localname(link) == "a" and link.get("href") and link.get(EPUB_TYPE):
                        key = _resolve(posixpath.dirname(nav.path), link.get("href"))
                        marks[key] = epub_types(link)[0]
    return marks


def _assemble(
    archive: SafeZip,
    spine: list[tuple[str, bool]],
    toc: list[Entry],
    landmarks: dict[tuple[str, str], str],
    metadata: Metadata,
) -> Book:
    toc = toc + matter_entries(toc, landmarks)
    targets = anchor_targets(toc)
    documents = {path: extract(_content_root(archive, path), targets.get(path, set())) for path, _ in spine}
    return assemble(archive.path, spine, documents, toc, metadata, landmarks)
