"""EPUB 2 and 3 -> :class:`~audiobook.book.Book`.

Reading order is the OPF spine. Chapter boundaries and titles come from the book's own table of contents:
the EPUB 3 nav document first, the NCX second, and headings only when the book has neither.

Rules (the README repeats them for users):

* **Anchors.** A TOC entry pointing at ``file.xhtml#id`` starts its chapter at that element, so several
  chapters can share one file. Text between two TOC targets belongs to the earlier one; when two entries
  point at the same place, the later (deeper) entry gets the text. An anchor that cannot be found starts at
  the top of its file.
* **Text before the first TOC target** (a Gutenberg header, an untitled opening) becomes its own chapter,
  one per spine document, titled by its first heading or else by the book's title, and is then classified
  like any other chapter (so a header is skipped and an untitled prologue is narrated). Nothing is dropped.
  A later spine document the TOC leaves out joins the chapter before it, unless its ``epub:type`` or file
  name says it is front or back matter (``copyright.xhtml``); then it is a chapter of its own.
* **Nested TOCs.** Top-level entries are chapters. An entry's children become chapters of their own only
  when the entry spans more than one spine document and its children average at least
  :data:`MIN_SPLIT_CHILD_WORDS` words (a "Part" whose chapters are separate files), or when it holds more
  than :data:`SPLIT_WORDS` words (a Part whose chapters are anchors in one huge file); the entry's own text
  before its first child then becomes a short chapter. Otherwise the children stay inside their parent:
  Sherlock Holmes' stories keep parts I, II and III inside each story, and a poetry collection grouped into
  sections gets one chapter per section (a flat list of 700 poems stays 700 chapters: that is the book's
  own top level). The rule applies again at every level.
* **No TOC.** The shallowest heading level among h1-h3 that occurs at least twice starts chapters (deeper or
  equal headings only at that level); with no headings at all, each spine document is a chapter.
* **Non-linear** spine items become chapters marked skipped ("not in the linear reading order").

Safety: the archive's declared sizes and compression ratios are checked before anything is inflated, XML
is parsed without DTDs, entities or network, and ``META-INF/encryption.xml`` naming content documents (DRM)
is refused; font obfuscation alone is allowed.
"""

from __future__ import annotations

import logging
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag

from lxml import etree

from audiobook.book import Book, Chapter, Metadata
from audiobook.errors import BadInputError
from audiobook.readers import matter
from audiobook.readers.xhtml import (
    EPUB_TYPE,
    Anchor,
    Document,
    Para,
    UnsafeXMLError,
    as_sentence,
    clean,
    epub_types,
    extract,
    localname,
    parse_xhtml,
    parse_xml,
)

log = logging.getLogger(__name__)

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1 << 30
"""Declared uncompressed size of the whole archive; real ebooks, images included, stay far below 1 GiB."""
MAX_MEMBER_BYTES = 256 << 20
MAX_RATIO = 100
"""Deflate rarely beats 20:1 on XHTML; a member over 1 MiB claiming more than 100:1 is a zip bomb."""
SPLIT_WORDS = 20_000
"""A TOC entry longer than this (about two hours of narration) is split at its children."""
MIN_SPLIT_CHILD_WORDS = 500
"""Children shorter than this on average (poems, ~3 minutes) stay in their parent even across files."""

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


@dataclass(eq=False)
class _Node:
    """A TOC entry, or a synthetic one (text before the first target, a heading, a non-linear file)."""

    title: str
    path: str
    anchor: str = ""
    children: list[_Node] = field(default_factory=list)
    paras: list[tuple[int, Para]] = field(default_factory=list)
    """(reading-order sequence number, paragraph) owned directly by this entry."""
    files: set[str] = field(default_factory=set)
    linear: bool = True

    def subtree(self) -> list[_Node]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.subtree())
        return nodes


class _Archive:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise BadInputError(path, f"not a valid EPUB: not a zip archive or truncated ({e})") from e
        self.names = set(self.zip.namelist())
        self._check_sizes()

    def _check_sizes(self) -> None:
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BadInputError(self.path, f"refused: the archive has {len(infos)} members (zip bomb?)")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise BadInputError(self.path, f"refused: it would inflate to {total >> 20} MiB (zip bomb?)")
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_MEMBER_BYTES or (info.file_size > 1 << 20 and ratio > MAX_RATIO):
                raise BadInputError(
                    self.path,
                    f"refused: {info.filename} would inflate to {info.file_size >> 20} MiB "
                    f"at {ratio:.0f}:1 (zip bomb?)",
                )

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except KeyError as e:
            raise BadInputError(self.path, f"{name} is listed but missing from the archive") from e
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            raise BadInputError(self.path, f"corrupt or truncated archive: cannot read {name} ({e})") from e

    def xml(self, name: str) -> etree._Element:
        try:
            return parse_xml(self.read(name))
        except UnsafeXMLError as e:
            raise BadInputError(self.path, f"{name} {e}") from e
        except etree.XMLSyntaxError as e:
            raise BadInputError(self.path, f"{name} is not well-formed XML ({e})") from e


def read_epub(path: Path) -> Book:
    """Read an EPUB 2 or 3 file; raises BadInputError for anything that is not a readable, DRM-free EPUB."""
    archive = _Archive(path)
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


def _find_opf(archive: _Archive) -> str:
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


def _refuse_drm(archive: _Archive) -> None:
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


def _spine(opf: etree._Element, manifest: dict[str, _Item], archive: _Archive) -> list[tuple[str, bool]]:
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


def _metadata(opf: etree._Element, manifest: dict[str, _Item], archive: _Archive) -> Metadata:
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


def _read_toc(archive: _Archive, opf: etree._Element, manifest: dict[str, _Item], base: str) -> list[_Node]:
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


def _content_root(archive: _Archive, name: str) -> etree._Element:
    try:
        return parse_xhtml(archive.read(name), name)
    except UnsafeXMLError as e:
        raise BadInputError(archive.path, f"{name} {e}") from e


def _nav_list(parent: etree._Element, base: str) -> list[_Node]:
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
        nodes.append(_Node(clean("".join(link.itertext())), path, anchor, children))
    return nodes


def _ncx_points(parent: etree._Element, base: str) -> list[_Node]:
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
        nodes.append(_Node(title, path, anchor, children))
    return nodes


def _landmarks(
    archive: _Archive, opf: etree._Element, manifest: dict[str, _Item], base: str
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
    archive: _Archive,
    spine: list[tuple[str, bool]],
    toc: list[_Node],
    landmarks: dict[tuple[str, str], str],
    metadata: Metadata,
) -> Book:
    spine_files = {path for path, _ in spine}
    nodes = [n for top in toc for n in top.subtree() if n.path in spine_files]
    starts: dict[tuple[str, str], _Node] = {}
    for node in nodes:  # the later (deeper) entry wins a shared target
        starts[(node.path, node.anchor)] = node
    documents = {}
    for path, _linear in spine:
        anchors = {a for (p, a) in starts if p == path and a}
        documents[path] = extract(_content_root(archive, path), anchors)
    found = {(path, e.id) for path, doc in documents.items() for e in doc.events if isinstance(e, Anchor)}
    for (path, anchor), node in list(starts.items()):
        if anchor and (path, anchor) not in found:
            log.debug("%s: TOC target %s#%s not found; using the top of the file", archive.path, path, anchor)
            del starts[(path, anchor)]
            starts.setdefault((path, ""), node)

    if not starts:
        toc = _heading_nodes(spine, documents)
        starts = {}
    untitled = _distribute(spine, documents, starts)
    groups: list[tuple[_Node, list[tuple[int, Para]]]] = [(n, n.paras) for n in untitled]
    for top in toc:
        groups.extend(_chapters_of(top))
    groups = [(n, sorted(p, key=lambda sp: sp[0])) for n, p in groups if p]
    groups.sort(key=lambda g: g[1][0][0])

    chapters, evidence = [], []
    for node, paras in groups:
        chapter, ev = _chapter(node, [p for _, p in paras], metadata, landmarks)
        chapters.append(chapter)
        evidence.append(ev)
    matter.mark_matter(chapters, evidence)
    return Book(metadata, matter.split_gutenberg(chapters))


def _distribute(
    spine: list[tuple[str, bool]], documents: dict[str, Document], starts: dict[tuple[str, str], _Node]
) -> list[_Node]:
    """Hand every paragraph, in reading order, to the TOC entry whose target last preceded it.

    Returns the synthetic entries made on the way: text before the first target, matter documents the TOC
    leaves out, and non-linear documents.
    """
    untitled: list[_Node] = []
    owner: _Node | None = None
    seq = 0
    for path, linear in spine:
        doc = documents[path]
        current = owner
        if not linear:
            current = _Node(doc.title, path, linear=False)
            untitled.append(current)
        elif (path, "") in starts:
            current = starts[(path, "")]
        elif current is None or current in untitled or _looks_like_matter(doc, path):
            # Before the first target, and for a matter document the TOC leaves out, each file is a chapter.
            current = _Node("", path)
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
    node: _Node


def _heading_nodes(spine: list[tuple[str, bool]], documents: dict[str, Document]) -> list[_Node]:
    """Synthetic TOC for a book with none: heading events become chapter starts (see module docstring)."""
    levels = [e.heading for p, lin in spine if lin for e in documents[p].events if isinstance(e, Para)]
    level = next((lv for lv in (1, 2, 3) if levels.count(lv) >= 2), 0)
    nodes: list[_Node] = []
    for path, linear in spine:
        doc = documents[path]
        if not linear:
            continue
        events: list = []
        if not level:
            node = _Node(doc.title or f"Section {len(nodes) + 1}", path)
            nodes.append(node)
            events.append(_HeadingStart(node))
        for event in doc.events:
            if isinstance(event, Para) and 0 < event.heading <= level:
                node = _Node(event.text.rstrip("."), path)
                nodes.append(node)
                events.append(_HeadingStart(node))
            events.append(event)
        doc.events = events
    return nodes


def _chapters_of(node: _Node) -> list[tuple[_Node, list[tuple[int, Para]]]]:
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


def _chapter(
    node: _Node, paras: list[Para], metadata: Metadata, landmarks: dict[tuple[str, str], str]
) -> tuple[Chapter, matter.Evidence]:
    first_heading = next((p.text.rstrip(".") for p in paras if p.heading), "")
    title = node.title or first_heading or metadata.title
    texts = [p.text for p in paras]
    if not paras[0].heading:
        texts.insert(0, as_sentence(title))
    types = frozenset().union(*(p.types for p in paras[:3]))
    landmark = landmarks.get((node.path, node.anchor), "")
    source = f"{node.path}#{node.anchor}" if node.anchor else node.path
    evidence = matter.Evidence(types, landmark, node.path, node.linear)
    return Chapter(title, texts, source), evidence
