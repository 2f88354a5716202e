"""The real books in ../shared/corpus: TOC titles, skipped matter, no narratable word lost, parse time."""

from __future__ import annotations

import posixpath
import re
import time
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from audiobook.chunker import chunk_book
from audiobook.readers import read_book

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SHERLOCK = CORPUS / "sherlock-holmes-se.epub"
CHICKENS = CORPUS / "love-among-the-chickens-se.epub"
ALICE = CORPUS / "alice-gutenberg.epub"

_cache: dict[Path, object] = {}


def load(path: Path):
    if not path.exists():
        pytest.skip(f"corpus book {path.name} not found in {CORPUS}")
    if path not in _cache:
        _cache[path] = read_book(path)
    return _cache[path]


def narrated(book) -> list[str]:
    return [c.title for c in book.chapters if not c.skipped]


def skipped(book) -> list[tuple[str, str]]:
    return [(c.title, c.reason) for c in book.chapters if c.skipped]


STORIES = [
    "A Scandal in Bohemia",
    "The Redheaded League",
    "A Case of Identity",
    "The Boscombe Valley Mystery",
    "The Five Orange Pips",
    "The Man with the Twisted Lip",
    "The Adventure of the Blue Carbuncle",
    "The Adventure of the Speckled Band",
    "The Adventure of the Engineer’s Thumb",
    "The Adventure of the Noble Bachelor",
    "The Adventure of the Beryl Coronet",
    "The Adventure of the Copper Beeches",
]


def test_sherlock_stories_are_chapters_with_parts_inside():
    book = load(SHERLOCK)
    assert narrated(book) == STORIES
    assert skipped(book) == [
        ("Titlepage", "title page"),
        ("Imprint", "imprint"),
        ("Colophon", "colophon"),
        ("Uncopyright", "copyright page"),
    ]
    scandal = book.chapters[2]
    assert scandal.paragraphs[:2] == ["A Scandal in Bohemia.", "I."]
    assert scandal.paragraphs[2].startswith("To Sherlock Holmes she is always the woman.")
    assert {"II.", "III."} <= set(scandal.paragraphs)
    assert book.metadata.title == "The Adventures of Sherlock Holmes"
    assert book.metadata.authors == ["Arthur Conan Doyle"]
    assert book.metadata.language == "en-GB"


def test_chickens_chapters_and_dedication():
    book = load(CHICKENS)
    titles = narrated(book)
    assert len(titles) == 24
    assert titles[:3] == ["Dedication", "I: A Letter with a Postscript", "II: Mr. and Mrs. S. F. Ukridge"]
    assert titles[6] == "VI: Mr. Garnet’s Narrative—Has to Do with a Reunion"
    assert titles[7] == "VII: The Entente Cordiale Is Sealed"
    assert titles[-1] == "XXIII: After the Storm"
    assert skipped(book) == [
        ("Titlepage", "title page"),
        ("Imprint", "imprint"),
        ("Love Among the Chickens", "half title page"),
        ("Colophon", "colophon"),
        ("Uncopyright", "copyright page"),
    ]
    first = book.chapters[4]
    assert first.paragraphs[0] == "I. A Letter with a Postscript."
    assert first.paragraphs[1].startswith("“A gentleman called to see you when you were out last night, sir,”")


def test_alice_chapters_from_ncx_anchors_and_gutenberg_framing_skipped():
    book = load(ALICE)
    titles = narrated(book)
    assert len(titles) == 12
    assert titles[0] == "CHAPTER I. Down the Rabbit-Hole"
    assert titles[6] == "CHAPTER VII. A Mad Tea-Party"
    assert titles[11] == "CHAPTER XII. Alice’s Evidence"
    assert skipped(book) == [
        ("Project Gutenberg header", "Project Gutenberg header"),
        ("Alice’s Adventures in Wonderland", "title page"),
        ("THE MILLENNIUM FULCRUM EDITION 3.0", "title page"),
        ("Contents", "table of contents"),
        ("Project Gutenberg licence", "Project Gutenberg licence"),
    ]
    last = [c for c in book.chapters if not c.skipped][-1]
    assert last.paragraphs[-1] == "THE END."
    story = " ".join(c.text for c in book.chapters if not c.skipped)
    assert "PROJECT GUTENBERG" not in story.upper()
    assert book.metadata.cover_type == "image/jpeg" and book.metadata.cover[:3] == b"\xff\xd8\xff"


def _toc_labels(path: Path) -> list[str]:
    """Top-level TOC labels read independently of the reader (nav first, NCX second)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        nav = next((n for n in names if n.endswith("toc.xhtml")), None)
        if nav:
            root = etree.fromstring(zf.read(nav))
            ns = {"h": "http://www.w3.org/1999/xhtml"}
            links = root.xpath("//h:nav[@*[local-name()='type']='toc']/h:ol/h:li/h:a", namespaces=ns)
        else:
            root = etree.fromstring(zf.read(next(n for n in names if n.endswith(".ncx"))))
            ns = {"n": "http://www.daisy.org/z3986/2005/ncx/"}
            links = root.xpath("//n:navMap/n:navPoint/n:navLabel/n:text", namespaces=ns)
    return [re.sub(r"\s+", " ", "".join(a.itertext())).strip() for a in links]


@pytest.mark.parametrize("path", [SHERLOCK, CHICKENS, ALICE], ids=lambda p: p.stem)
def test_every_chapter_title_comes_from_the_toc(path):
    book = load(path)
    labels = _toc_labels(path)
    nested = set()
    if path == CHICKENS:  # the half-title entry holds the chapters one level down
        nested = set(re.findall(r"<a href=\"text/chapter-\d+\.xhtml\">(.*?)</a>", _read(path, "epub/toc.xhtml")))
        nested = {re.sub(r"<[^>]+>", "", t) for t in nested}
    for chapter in book.chapters:
        if chapter.reason.startswith("Project Gutenberg"):
            continue
        assert chapter.title in labels or chapter.title in nested, chapter.title


def _read(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name).decode()


_WORD = re.compile(r"\w+")


def _spine_words(path: Path) -> Counter:
    """Words of every spine document's body, extracted independently (plain itertext, no reader code)."""
    with zipfile.ZipFile(path) as zf:
        container = etree.fromstring(zf.read("META-INF/container.xml"))
        opf_name = container.xpath("//*[local-name()='rootfile']/@full-path")[0]
        opf = etree.fromstring(zf.read(opf_name))
        hrefs = {i.get("id"): i.get("href") for i in opf.xpath("//*[local-name()='item']")}
        words: Counter = Counter()
        for idref in opf.xpath("//*[local-name()='itemref']/@idref"):
            name = posixpath.join(posixpath.dirname(opf_name), hrefs[idref])
            root = etree.fromstring(zf.read(name), etree.XMLParser(resolve_entities=False, no_network=True))
            for bad in root.xpath("//*[local-name()='script' or local-name()='style' or local-name()='head']"):
                bad.getparent().remove(bad)
            words.update(_WORD.findall(unicodedata.normalize("NFC", "".join(root.itertext()))))
    return words


@pytest.mark.parametrize(
    ("path", "expected_words"),
    [(SHERLOCK, 105_000), (CHICKENS, 51_000), (ALICE, 27_000)],
    ids=lambda p: str(p),
)
def test_no_narratable_word_lost(path, expected_words):
    book = load(path)
    source = _spine_words(path)
    skipped_words = Counter(w for c in book.chapters if c.skipped for w in _WORD.findall(c.text))
    narrated_words = Counter(w for c in book.chapters if not c.skipped for w in _WORD.findall(c.text))
    lost = source - skipped_words - narrated_words
    # Only footnote markers and page numbers may be left out, and these books have none.
    assert not lost, lost.most_common(20)
    total = sum(narrated_words.values())
    assert abs(total - expected_words) / expected_words < 0.05, total


@pytest.mark.parametrize("path", [SHERLOCK, CHICKENS, ALICE], ids=lambda p: p.stem)
def test_chunks_are_lossless_on_real_books(path):
    book = load(path)
    indices = [i for i, c in enumerate(book.chapters) if not c.skipped]
    chunks = chunk_book(book, indices)
    for index in indices:
        own = [c for c in chunks if c.chapter == index]
        joined = ""
        for i, chunk in enumerate(own):
            joined += ("\n\n" if own[i - 1].ends_paragraph else " ") if i else ""
            joined += chunk.text
        assert joined == book.chapters[index].text
    assert max(len(c.text) for c in chunks) <= 2000


def test_sherlock_parses_well_under_two_seconds():
    if not SHERLOCK.exists():
        pytest.skip(f"corpus book {SHERLOCK.name} not found in {CORPUS}")
    start = time.perf_counter()
    read_book(SHERLOCK)
    assert time.perf_counter() - start < 1.0
