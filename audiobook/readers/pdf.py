"""PDF -> :class:`~audiobook.book.Book`, with pdfminer.six (MIT; PyMuPDF is AGPL, so not used).

pdfminer's layout analysis gives each page's text lines in reading order (columns left to right), with
their positions, type sizes and fonts; :mod:`audiobook.readers.pdflines` removes running heads and page
numbers and rebuilds paragraphs and broken words from them. Chapters:

* **From the outline** (bookmarks) when it has at least two entries that point into the document. An entry
  starts its chapter at the first line at or below its target; nested entries follow the structure rules
  shared with EPUB (:mod:`audiobook.readers.structure`), a run of pages that starts with an entry at the top
  of a page counting as a document (so a Part whose chapters start on new pages splits into them, and a
  chapter keeps its sections).
* **Else from headings**: lines the plain-text reader takes for chapter headings ("Chapter 3", "PART TWO")
  when there are two or more, together with headings set at least as large as them; otherwise the
  shallowest heading size that occurs at least twice (the EPUB rule for books without contents).
* Front and back matter are marked as for every format (:mod:`audiobook.readers.matter`).

Metadata: title, author (split at ";"), subject and creation date from the document information, language
from the catalog. A title that is a file name ("Microsoft Word - draft.docx") is replaced by the PDF's name.

Refused with one line: a file that is not a PDF or is truncated (no ``%%EOF`` at its end), an encrypted PDF
that needs a password, a PDF with no text layer (a scan: it needs OCR first), more than :data:`MAX_PAGES`
pages or :data:`MAX_PDF_BYTES` bytes, and a content stream that would inflate past
:data:`MAX_STREAM_BYTES`.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from audiobook.book import Book, Metadata
from audiobook.errors import BadInputError
from audiobook.readers import pdflines
from audiobook.readers.pdflines import Line, Paragraph
from audiobook.readers.structure import Entry, assemble
from audiobook.readers.text import chapter_line
from audiobook.readers.xhtml import Anchor, Document, Para, as_sentence, clean

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 1 << 30
MAX_PAGES = 5000
MAX_STREAM_BYTES = 64 << 20
"""One page's content stream, inflated; a page of dense text is well under 1 MiB."""
MAX_OUTLINE_ENTRIES = 10_000
MIN_CHARS_PER_PAGE = 15
"""Below this many characters of text per page on average, the PDF is a scan without a text layer."""
_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_FILE_TITLE = re.compile(r"^(microsoft (word|powerpoint) - )|\.(docx?|pdf|tex|indd|odt|rtf|txt)$", re.IGNORECASE)
_SUPERSCRIPT_MARKS = set("0123456789*†‡§")
_UNMAPPED = re.compile(r"\(cid:\d+\)")


@dataclass
class _Target:
    level: int
    title: str
    page: int
    top: float | None


def read_pdf(path: Path) -> Book:
    """Read a PDF's text layer into chapters; raises BadInputError for what cannot or should not be read."""
    _check_file(path)
    with path.open("rb") as f:
        document, pages = _open(path, f)
        metadata = _metadata(document, path)
        targets = _outline(document, pages, path)
        raw = [_page_lines(path, page, number) for number, page in enumerate(_interpret(path, pages))]
    _check_text_layer(path, raw)
    paras = _paragraphs(raw, metadata.title, targets)
    if not paras:
        raise BadInputError(path, "the PDF contains no readable text")
    if len(targets) >= 2:
        spine, documents, toc = _by_outline(paras, targets)
    else:
        spine, documents, toc = _by_headings(paras, metadata.title)
    book = assemble(path, spine, documents, toc, metadata)
    for chapter in book.chapters:
        chapter.source = chapter.source.rsplit("#", 1)[-1]
    return book


def _paragraphs(raw: list[list[Line]], title: str, targets: list[_Target]) -> list[Paragraph]:
    """The pages' lines with the typesetting undone (:mod:`audiobook.readers.pdflines`, in rule order)."""
    for lines in raw:
        for line in lines:  # a glyph that no font maps to a letter cannot be spoken
            line.text = _UNMAPPED.sub("", line.text)
    raw = [pdflines.rejoin_split_lines(lines) for lines in raw]
    body = pdflines.body_size(line for lines in raw for line in lines)
    titles: dict[str, set[int]] = defaultdict(set)
    for text in [title, *pdflines.heading_texts(raw, body)]:
        titles.setdefault(text, set())
    for target in targets:  # a chapter's title on its own opening page is its heading
        titles[target.title].add(target.page)
    kept = pdflines.remove_running_heads(raw, body, titles)
    rights = pdflines.right_edges(kept, body)
    kept = [pdflines.columns(lines, body, rights) for lines in kept]
    vocabulary = pdflines.Vocabulary(line.text for lines in kept for line in lines)
    return pdflines.merge_heading_runs(pdflines.paragraphs(kept, body, vocabulary))


def _check_file(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_PDF_BYTES:
        raise BadInputError(path, f"refused: the PDF is over {MAX_PDF_BYTES >> 20} MiB")
    with path.open("rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - 2048))
        tail = f.read()
    if b"%PDF-" not in head:
        raise BadInputError(path, "not a PDF (no %PDF- header)")
    if b"%%EOF" not in tail:
        raise BadInputError(path, "the PDF is truncated (it does not end with %%EOF); download or save it again")


def _open(path: Path, f: BinaryIO) -> tuple[Any, list[Any]]:
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    try:
        document = PDFDocument(PDFParser(f), password="")
        pages = list(islice(PDFPage.create_pages(document), MAX_PAGES + 1))
    except PDFPasswordIncorrect as e:
        raise BadInputError(path, "the PDF is encrypted and needs a password; save a copy without one") from e
    except PDFEncryptionError as e:
        raise BadInputError(path, f"the PDF's encryption is not supported ({e}); save a copy without it") from e
    except Exception as e:  # pdfminer raises many types (PSEOF, PDFSyntaxError, KeyError, TypeError) on damage
        raise BadInputError(path, f"not a readable PDF: damaged or truncated ({type(e).__name__}: {e})") from e
    if len(pages) > MAX_PAGES:
        raise BadInputError(path, f"refused: the PDF has more than {MAX_PAGES} pages")
    if not pages:
        raise BadInputError(path, "the PDF has no pages")
    return document, pages


def _interpret(path: Path, pages: list[Any]):
    """Each page's layout (pdfminer's ``LTPage``), in order."""
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager

    manager = PDFResourceManager(caching=True)
    device = PDFPageAggregator(manager, laparams=LAParams(all_texts=True))
    interpreter = PDFPageInterpreter(manager, device)
    for number, page in enumerate(pages):
        _check_streams(path, page, number)
        try:
            interpreter.process_page(page)
        except Exception as e:  # a damaged page: say which, like any other damage
            raise BadInputError(path, f"page {number + 1} cannot be read ({type(e).__name__}: {e})") from e
        yield device.get_result()


def _check_streams(path: Path, page: Any, number: int) -> None:
    """Refuse a page whose Flate content stream would inflate past MAX_STREAM_BYTES (a decompression bomb)."""
    from pdfminer.pdftypes import resolve1

    contents = resolve1(page.attrs.get("Contents"))
    streams = contents if isinstance(contents, list) else [contents]
    for stream in streams:
        stream = resolve1(stream)
        raw = getattr(stream, "rawdata", None)
        if not raw or "FlateDecode" not in str(stream.get("Filter", "")):
            continue
        inflater = zlib.decompressobj()
        try:
            inflater.decompress(raw, MAX_STREAM_BYTES)
        except zlib.error:
            continue  # pdfminer reports the damage itself
        if inflater.unconsumed_tail:
            raise BadInputError(
                path, f"refused: page {number + 1}'s content would inflate past {MAX_STREAM_BYTES >> 20} MiB"
            )


def _page_lines(path: Path, layout: Any, number: int) -> list[Line]:
    from pdfminer.layout import LTChar, LTTextLine

    lines: list[Line] = []

    def walk(item: Any) -> None:
        if isinstance(item, LTTextLine):
            line = _line(item, number, LTChar)
            if line is not None:
                lines.append(line)
            return
        if hasattr(item, "__iter__"):
            for child in item:
                walk(child)

    walk(layout)
    return lines


def _line(item: Any, number: int, char_type: type) -> Line | None:
    chars = [c for c in item if isinstance(c, char_type) and c.get_text().strip()]
    if not chars:
        return None
    sizes = sorted(c.size for c in chars)
    size = sizes[len(sizes) // 2]
    baseline = min(c.y0 for c in chars if c.size >= size * 0.9)
    parts = []
    for obj in item:
        text = obj.get_text()
        if isinstance(obj, char_type) and text in _SUPERSCRIPT_MARKS and _superscript(obj, size, baseline):
            continue  # a footnote marker set small and raised
        parts.append(text)
    text = "".join(parts).replace("\n", " ")
    bold = sum(1 for c in chars if _BOLD.search(c.fontname)) > 0.8 * len(chars)
    return Line(number, text, item.x0, item.x1, item.y1, item.y0, size, bold)


def _superscript(char: Any, size: float, baseline: float) -> bool:
    return char.size < 0.8 * size and char.y0 > baseline + 0.25 * size


def _check_text_layer(path: Path, pages: list[list[Line]]) -> None:
    text = "".join(line.text for lines in pages for line in lines)
    chars = sum(1 for ch in text if not ch.isspace())
    unmapped = len(_UNMAPPED.findall(text))
    if chars < MIN_CHARS_PER_PAGE * len(pages) or unmapped * 8 > chars:
        kind = "no text layer" if unmapped * 8 <= chars else "no usable text layer (its fonts map no letters)"
        raise BadInputError(
            path, f"the PDF has {kind}, so it is probably a scan: it needs OCR first (e.g. `ocrmypdf in.pdf out.pdf`)"
        )


def _text(value: Any) -> str:
    from pdfminer.pdftypes import resolve1
    from pdfminer.utils import decode_text

    value = resolve1(value)
    if isinstance(value, bytes):
        return clean(decode_text(value))
    return clean(value) if isinstance(value, str) else ""


def _metadata(document: Any, path: Path) -> Metadata:
    info: dict[str, Any] = {}
    for entry in document.info:
        info.update(entry)
    title = _text(info.get("Title"))
    if not title or _FILE_TITLE.search(title) or title.lower() in ("untitled", "title"):
        title = path.stem.replace("_", " ").replace("-", " ")
    date = _text(info.get("CreationDate"))
    match = re.match(r"^D?:?(\d{4})(\d{2})?(\d{2})?", date)
    if match:
        date = "-".join(g for g in match.groups() if g)
    return Metadata(
        title=title,
        authors=[a.strip() for a in _text(info.get("Author")).split(";") if a.strip()],
        language=_text(document.catalog.get("Lang")) or "en",
        description=_text(info.get("Subject")),
        date=date if match else "",
    )


def _outline(document: Any, pages: list[Any], path: Path) -> list[_Target]:
    """The outline's entries that point at a page of this document, in outline order."""
    from pdfminer.pdfdocument import PDFNoOutlines

    page_index = {page.pageid: number for number, page in enumerate(pages)}
    targets = []
    try:
        for level, title, dest, action, _ in islice(document.get_outlines(), MAX_OUTLINE_ENTRIES):
            target = _destination(document, dest, action, page_index)
            if target is not None and clean(title):
                targets.append(_Target(level, clean(title), *target))
    except PDFNoOutlines:
        return []
    except Exception as e:  # a damaged or cyclic outline: fall back to headings
        log.warning("%s: the outline cannot be read (%s); finding chapters from headings", path, e)
        return []
    return targets


def _destination(document: Any, dest: Any, action: Any, page_index: dict[int, int]) -> tuple[int, float | None] | None:
    from pdfminer.pdftypes import PDFObjRef, resolve1
    from pdfminer.psparser import PSLiteral

    action = resolve1(action)
    if dest is None and isinstance(action, dict) and getattr(resolve1(action.get("S")), "name", "") == "GoTo":
        dest = action.get("D")
    dest = resolve1(dest)
    if isinstance(dest, (str, bytes, PSLiteral)):
        name = dest.name if isinstance(dest, PSLiteral) else dest
        try:
            dest = resolve1(document.get_dest(name))
        except Exception:
            return None
    if isinstance(dest, dict):
        dest = resolve1(dest.get("D"))
    if not isinstance(dest, list) or not dest or not isinstance(dest[0], PDFObjRef):
        return None
    page = page_index.get(dest[0].objid)
    if page is None:
        return None
    kind = dest[1].name if len(dest) > 1 and isinstance(dest[1], PSLiteral) else ""
    top = None
    if kind == "XYZ" and len(dest) > 3:
        top = resolve1(dest[3])
    elif kind in ("FitH", "FitBH") and len(dest) > 2:
        top = resolve1(dest[2])
    return page, float(top) if isinstance(top, (int, float)) else None


def _anchor_name(para: Paragraph, used: set[str]) -> str:
    """``page 7``, or ``page 7 (2)`` for the second chapter starting on that page: what ``inspect`` shows."""
    name = f"page {para.page + 1}"
    count = 1
    while name in used:
        count += 1
        name = f"page {para.page + 1} ({count})"
    return name


def _para_event(para: Paragraph, starts_chapter: bool = False) -> Para:
    """A chapter's opening line is spoken as its heading even when set in body type ("Chapter 3")."""
    heading = para.heading or (1 if starts_chapter else 0)
    return Para(as_sentence(para.text) if heading else para.text, heading)


def _first_para_at(paras: list[Paragraph], target: _Target) -> int | None:
    for index, para in enumerate(paras):
        if para.page > target.page:
            return index
        if para.page == target.page:
            tops = [ln.top for ln in para.lines if ln.page == target.page]
            if target.top is None or any(top <= target.top + 2 for top in tops):
                return index
    return None


def _by_outline(
    paras: list[Paragraph], targets: list[_Target]
) -> tuple[list[tuple[str, bool]], dict[str, Document], list[Entry]]:
    """Documents and contents from the outline (see the module docstring)."""
    starts = [(t, _first_para_at(paras, t)) for t in targets]
    page_first = {}
    for index, para in enumerate(paras):
        page_first.setdefault(para.page, index)
    # A new document begins where an entry targets the first paragraph of a page.
    doc_starts = sorted({0} | {i for _, i in starts if i is not None and page_first.get(paras[i].page) == i})
    names = {i: f"page {paras[i].page + 1}" for i in doc_starts}
    anchors: dict[int, str] = {}
    roots: list[Entry] = []
    stack: list[tuple[int, Entry]] = []
    for target, index in starts:
        if index is None:
            continue
        doc = names[max(i for i in doc_starts if i <= index)]
        anchor = ""
        if index not in names:
            anchor = anchors.setdefault(index, _anchor_name(paras[index], set(anchors.values())))
        entry = Entry(target.title, doc, anchor)
        while stack and stack[-1][0] >= target.level:
            stack.pop()
        (stack[-1][1].children if stack else roots).append(entry)
        stack.append((target.level, entry))
    spine, documents = [], {}
    for number, first in enumerate(doc_starts):
        last = doc_starts[number + 1] if number + 1 < len(doc_starts) else len(paras)
        events: list[Para | Anchor] = []
        for index in range(first, last):
            if index in anchors:
                events.append(Anchor(anchors[index]))
            events.append(_para_event(paras[index]))
        documents[names[first]] = Document(events)
        spine.append((names[first], True))
    return spine, documents, roots


def chapter_starts(paras: list[Paragraph]) -> list[int]:
    """Paragraph indexes that start chapters when the PDF has no outline (see the module docstring)."""
    marked = [
        i
        for i, p in enumerate(paras)
        if len(p.text) <= 100
        and (p.heading or (len(p.lines) == 1 and len(p.text.split()) <= 8))
        and chapter_line(p.text)
    ]
    if len(marked) >= 2:
        levels = Counter(paras[i].heading for i in marked if paras[i].heading)
        top = levels.most_common(1)[0][0] if levels else 0
        return sorted(set(marked) | {i for i, p in enumerate(paras) if top and 0 < p.heading <= top})
    levels = [p.heading for p in paras if p.heading]
    level = next((lv for lv in (1, 2, 3) if levels.count(lv) >= 2), 0)
    return [i for i, p in enumerate(paras) if 0 < p.heading <= level]


def _by_headings(paras: list[Paragraph], title: str) -> tuple[list[tuple[str, bool]], dict[str, Document], list[Entry]]:
    name = "page 1"
    starts = chapter_starts(paras)
    events: list[Para | Anchor] = []
    toc = []
    used: set[str] = set()
    for index, para in enumerate(paras):
        if index in starts:
            anchor = _anchor_name(para, used)
            used.add(anchor)
            events.append(Anchor(anchor))
            toc.append(Entry(para.text.rstrip("."), name, anchor))
        events.append(_para_event(para, index in starts))
    return [(name, True)], {name: Document(events, title)}, toc
