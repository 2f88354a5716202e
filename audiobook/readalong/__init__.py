"""Read-along EPUB 3: the book's own EPUB with Media Overlays, so reading systems highlight each sentence as it is
spoken (Apple Books, Thorium, Kobo, BookFusion...).

Per narrated chapter one audio file; per content document one SMIL file with a ``par`` for each sentence, whose
``text`` points at a ``span`` added around the sentence (its text unchanged, see :mod:`.spans`) and whose
``audio`` clip is the sentence's time in the chapter's audio (from :class:`audiobook.timing.BookTimings`). A
content document usually holds one chapter; one holding several chapters gets one overlay whose clips come from
each chapter's file, and a chapter spread over several documents has its sentences in each one's overlay.
Skipped chapters get no audio and no overlay. A book whose own EPUB cannot carry overlays (EPUB 2, plain text,
Markdown) gets a generated EPUB 3 with the same overlays (:func:`.package.generate`).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from audiobook.readalong import smil
from audiobook.readalong.package import (
    NotEpub3,
    Publication,
    TextChapter,
    generate,
    open_epub,
    parse,
    relative,
    serialize,
    write_epub,
)
from audiobook.readalong.spans import Found, TextIndex, key_text, locate, narrated_text, wrap
from audiobook.readers.xhtml import XHTML_NS, localname
from audiobook.timing import ChapterTimings, Sentence

__all__ = [
    "NarratedChapter",
    "NotEpub3",
    "Report",
    "TextChapter",
    "add_overlays",
    "generate",
    "open_epub",
    "write_epub",
]

log = logging.getLogger(__name__)

FOLDER = "readalong"
"""Where the audio, the overlays and the stylesheet go, beside the package document."""
STYLESHEET = "readalong.css"


@dataclass(frozen=True)
class NarratedChapter:
    timings: ChapterTimings
    """Its sentences, in the final audio's frames; its audio file starts at ``timings.start``."""
    source: str
    """Where it starts in the publication: ``path#anchor`` (archive path), as the reader found it."""
    audio: Path
    """Its audio file (MP3)."""


@dataclass
class Report:
    sentences: int = 0
    placed: int = 0
    """Sentences found in the text and given a ``par``."""
    pars: int = 0
    unplaced: list[str] = field(default_factory=list)
    """Sentences the text does not hold there: made-up titles, chunks edited by hand."""
    overlays: dict[str, list[str]] = field(default_factory=dict)
    """Content document -> the ids of its spans that a ``par`` points at, in order (for checks)."""


def add_overlays(publication: Publication, chapters: Sequence[NarratedChapter], narrator: str = "") -> Report:
    """Add spans, SMIL overlays, the chapters' audio and the package metadata to ``publication``."""
    report = Report()
    roots: dict[str, etree._Element] = {}
    indexes: list[TextIndex] = []
    for document in publication.documents:
        root = _parse_document(publication, document)
        roots[document] = root
        indexes.append(TextIndex(root))
    placed: dict[int, list[tuple[int, int, Found]]] = {}  # document -> (chapter, sentence, place)
    for n, chapter in enumerate(chapters):
        texts = [s.text for s in chapter.timings.sentences]
        report.sentences += len(texts)
        doc, position = _start(publication, indexes, chapter.source)
        if doc is None:
            log.warning(
                "chapter %r starts in %s, which is not in the spine; no overlay for it",
                chapter.timings.title,
                chapter.source,
            )
            report.unplaced += texts
            continue
        for k, found in enumerate(locate(texts, indexes, doc, position)):
            if found is None:
                report.unplaced.append(texts[k])
            else:
                placed.setdefault(found.doc, []).append((n, k, found))
    if report.unplaced:
        log.info(
            "%d of %d sentences are not in the book's text as narrated (made-up chapter titles, edited "
            "chunks) and are not highlighted",
            len(report.unplaced),
            report.sentences,
        )
    overlays = []
    for doc, entries in sorted(placed.items()):
        document = publication.documents[doc]
        smil_path = _member(publication, f"{posixpath.splitext(posixpath.basename(document))[0]}-{doc:03d}.smil")
        pars = _wrap_document(document, smil_path, indexes[doc], chapters, entries, report)
        if pars:
            overlays.append((document, smil_path, pars))
            _link_stylesheet(roots[document], relative(_member(publication, STYLESHEET), document))
            publication.files[document] = serialize(roots[document])
    _add_package_entries(publication, chapters, overlays, narrator)
    return report


def _parse_document(publication: Publication, document: str) -> etree._Element:
    try:
        return parse(publication.files[document])
    except (ValueError, etree.XMLSyntaxError) as e:
        log.warning("%s is not well-formed XHTML (%s); it gets no overlay", document, e)
        return etree.fromstring(f'<html xmlns="{XHTML_NS}"><body/></html>')


def _start(publication: Publication, indexes: Sequence[TextIndex], source: str) -> tuple[int | None, int]:
    path, _, anchor = source.partition("#")
    path = posixpath.normpath(unquote(path))
    if path not in publication.documents:
        return None, 0
    doc = publication.documents.index(path)
    return doc, indexes[doc].anchors.get(anchor, 0) if anchor else 0


def _wrap_document(
    document: str,
    smil_path: str,
    index: TextIndex,
    chapters: Sequence[NarratedChapter],
    entries: list[tuple[int, int, Found]],
    report: Report,
) -> list[smil.Par]:
    """Spans around the sentences of one document (last first, so earlier places stay valid), then its pars."""
    taken = {el.get("id") for el in index.root.iter() if isinstance(el.tag, str) and el.get("id")}
    counter = iter(range(1, 1 << 30))

    def new_id() -> str:
        while True:
            candidate = f"ra-s{next(counter):05d}"
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    spans: dict[tuple[int, int], list[etree._Element]] = {}
    for n, k, found in sorted(entries, key=lambda e: e[2].start, reverse=True):
        sentence = chapters[n].timings.sentences[k]
        start, end = index.points(found.start, found.end, sentence.text)
        spans[(n, k)] = wrap(start, end, new_id)
    pars = []
    ids = report.overlays.setdefault(document, [])
    for n, k, _ in sorted(entries, key=lambda e: e[2].start):
        chapter = chapters[n]
        sentence = chapter.timings.sentences[k]
        weights = [len(key_text(narrated_text(span))) for span in spans[(n, k)]]
        audio = relative(posixpath.join(posixpath.dirname(smil_path), _audio_name(chapter)), smil_path)
        for span, (begin, end) in zip(spans[(n, k)], clips(sentence, weights), strict=True):
            if begin is None:
                continue  # punctuation alone: shown with its neighbours, not a clip of its own
            pars.append(
                smil.Par(
                    f"{relative(document, smil_path)}#{span.get('id')}",
                    audio,
                    begin - chapter.timings.start,
                    end - chapter.timings.start,
                )
            )
            ids.append(span.get("id"))
        report.placed += 1
    report.pars += len(pars)
    return pars


def clips(sentence: Sentence, weights: Sequence[int]) -> list[tuple[int, int] | tuple[None, None]]:
    """The times of a sentence's spans, given how many letters and digits each holds: each span from the word its
    first letter belongs to (by the letters' place in the sentence) to the next timed span's start. A span with no
    letters, or one that starts inside the word the span before it started (a word split by markup), gets no clip:
    its text is shown with the span before it. Without word times the sentence's time is shared out by letters."""
    starts = _key_starts(sentence)
    total = max(sum(weights), 1)
    begins: list[int | None] = []
    done = 0
    for weight in weights:
        begin = None if weight == 0 else _time_at(sentence, starts, done, total)
        previous = [b for b in begins if b is not None]
        begins.append(begin if begin is not None and (not previous or begin > previous[-1]) else None)
        done += weight
    out: list[tuple[int, int] | tuple[None, None]] = []
    for n, begin in enumerate(begins):
        later = [b for b in begins[n + 1 :] if b is not None]
        out.append((None, None) if begin is None else (begin, later[0] if later else sentence.end))
    return out


def _key_starts(sentence: Sentence) -> list[tuple[int, int]]:
    """(letters before the word in the sentence, the word's start) for each word."""
    base = sentence.chars[0]
    return [(len(key_text(sentence.text[: w.chars[0] - base])), w.start) for w in sentence.words]


def _time_at(sentence: Sentence, starts: Sequence[tuple[int, int]], key: int, total: int) -> int:
    if key == 0:
        return sentence.start
    if starts:  # the word the span's first letter belongs to
        return [start for offset, start in starts if offset <= key][-1]
    return sentence.start + (sentence.end - sentence.start) * key // total


def _member(publication: Publication, name: str) -> str:
    return posixpath.join(publication.base, FOLDER, name)


def _audio_name(chapter: NarratedChapter) -> str:
    return f"chapter-{chapter.timings.index:03d}{chapter.audio.suffix}"


_AUDIO_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4"}


def _add_package_entries(
    publication: Publication,
    chapters: Sequence[NarratedChapter],
    overlays: Sequence[tuple[str, str, list[smil.Par]]],
    narrator: str,
) -> None:
    """Audio, overlays and stylesheet as members and manifest items, and the Media Overlays metadata."""
    if not overlays:
        log.warning("no sentence of the narration was found in the book's text; the EPUB has no overlays")
        return
    css = _member(publication, STYLESHEET)
    publication.files[css] = smil.STYLESHEET.encode()
    publication.add_item(css, "text/css", "ra-css")
    for chapter in chapters:
        path = _member(publication, _audio_name(chapter))
        publication.files[path] = chapter.audio.read_bytes()
        publication.add_item(path, _AUDIO_TYPES[chapter.audio.suffix], f"ra-audio-{chapter.timings.index:03d}")
    total = 0
    for document, smil_path, pars in overlays:
        publication.files[smil_path] = smil.smil(pars).encode()
        stem = posixpath.splitext(posixpath.basename(smil_path))[0]
        smil_id = publication.add_item(smil_path, "application/smil+xml", f"ra-smil-{stem}")
        publication.item(document).set("media-overlay", smil_id)
        length = smil.duration(pars)
        total += length
        publication.add_meta("media:duration", smil.clock(length), refines=f"#{smil_id}")
    publication.add_meta("media:duration", smil.clock(total))
    publication.add_meta("media:active-class", smil.ACTIVE_CLASS)
    if narrator:
        publication.add_meta("media:narrator", narrator)
    publication.touch()
    publication.files[publication.opf_path] = serialize(publication.opf)


def _link_stylesheet(root: etree._Element, href: str) -> None:
    head = next((el for el in root.iter() if localname(el) == "head"), None)
    if head is not None:
        etree.SubElement(head, f"{{{XHTML_NS}}}link", rel="stylesheet", type="text/css", href=href)
