"""The PDF reader on PDFs typeset at test time (fpdf2) from corpus books' text, and on broken or hostile PDFs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from format_factory import book_words, coverage, source_words, words
from pdf_typesetter import Style, font_dir, typeset

from audiobook.errors import BadInputError
from audiobook.readers import pdf, read_book
from audiobook.readers.pdflines import Line, Vocabulary, join_lines, remove_running_heads

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
needs_fonts = pytest.mark.skipif(font_dir() is None, reason="no DejaVu fonts (apt install fonts-dejavu-core)")


def corpus(name: str, first: int | None = None) -> tuple[str, str, list[tuple[str, list[str]]]]:
    path = CORPUS / f"{name}.epub"
    if not path.exists():
        pytest.skip(f"corpus book {path} not present")
    book = read_book(path)
    chapters = [(c.title, c.paragraphs[1:]) for c in book.chapters if not c.skipped][:first]
    return book.metadata.title, book.metadata.author, chapters


def assert_reads_back(book, title: str, author: str, chapters: list[tuple[str, list[str]]]) -> tuple[float, float]:
    """The typeset book's chapters and words, with nothing of the running heads or page numbers."""
    assert [c.title for c in book.chapters if not c.skipped] == [t for t, _ in chapters]
    source, got = source_words(title, author, chapters), book_words(book)
    recall, extra = coverage(source, got)
    assert recall >= 0.99 and extra <= 0.005, (recall, extra)
    numbers = Counter({w: n for w, n in got.items() if w.isdigit()})
    assert not numbers - source, numbers - source  # no page numbers
    assert not got["page"] > source["page"]  # nor "Page 3 of 20"
    for heading, _ in chapters[:3]:  # running heads: each title no more often than the book says it
        text = " ".join(p for c in book.chapters for p in c.paragraphs)
        said = " ".join([title] + [t + " " + " ".join(ps) for t, ps in chapters])
        assert text.count(heading) <= said.count(heading) + 1, heading  # +1: the chapter's title, spoken
    return recall, extra


@needs_fonts
def test_outline_running_heads_page_numbers_and_hyphens(tmp_path):
    title, author, chapters = corpus("alice-gutenberg")
    book = read_book(typeset(tmp_path / "alice.pdf", title, author, chapters))
    assert_reads_back(book, title, author, chapters)
    assert (book.metadata.title, book.metadata.authors, book.metadata.language) == (title, [author], "en-GB")
    first = book.chapters[1]
    assert first.source == "page 2" and first.paragraphs[0] == "CHAPTER I. Down the Rabbit-Hole."
    text = " ".join(first.paragraphs)
    assert "ﬁ" not in text and "- " not in text.replace("— ", "")  # ligatures undone, broken words joined
    assert "waistcoat-pocket" in text  # a real compound keeps its hyphen


@needs_fonts
def test_paragraphs_are_rebuilt(tmp_path):
    title, author, chapters = corpus("love-among-the-chickens-se", first=6)
    book = read_book(typeset(tmp_path / "love.pdf", title, author, chapters))
    source = [p for _, ps in chapters for p in ps]
    got = [p for c in book.chapters if not c.skipped for p in c.paragraphs[1:]]
    assert abs(len(got) - len(source)) <= len(source) // 50
    assert len(set(got) & set(source)) >= 0.9 * len(source)


@needs_fonts
def test_without_an_outline_headings_make_the_chapters(tmp_path):
    title, author, chapters = corpus("love-among-the-chickens-se", first=6)
    book = read_book(typeset(tmp_path / "love.pdf", title, author, chapters, Style(outline=False)))
    assert_reads_back(book, title, author, chapters)
    assert book.chapters[0].skipped and book.chapters[0].reason == "title page"


@needs_fonts
def test_two_columns_read_in_order_with_page_n_of_m_footers(tmp_path):
    title, author, chapters = corpus("alice-gutenberg", first=4)
    style = Style(columns=2, page=(595.3, 841.9), page_numbers="Page {n} of {total}", outline=False)
    book = read_book(typeset(tmp_path / "two.pdf", title, author, chapters, style))
    assert_reads_back(book, title, author, chapters)
    source = {p for _, ps in chapters for p in ps}
    got = [p for c in book.chapters for p in c.paragraphs]
    assert len(source.intersection(got)) >= 0.9 * len(source)


@needs_fonts
def test_chapter_lines_in_body_type_start_chapters(tmp_path):
    ordinals = ["first", "second", "third", "fourth"]
    text = "The {0} paragraph of the {1} chapter goes on. " * 8
    chapters = [(f"Chapter {n + 1}", [text.format(ordinals[k], ordinals[n]) for k in range(4)]) for n in range(3)]
    style = Style(outline=False, heading=10.5, heading_style="", running_heads=False)
    book = read_book(typeset(tmp_path / "plain.pdf", "Plain", "Ann Author", chapters, style))
    assert [c.title for c in book.chapters][-3:] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert book.chapters[-1].paragraphs[:2] == ["Chapter 3.", chapters[2][1][0].strip()]


@pytest.mark.slow
@needs_fonts
@pytest.mark.parametrize("name", ["love-among-the-chickens-se", "sherlock-holmes-se", "alice-gutenberg"])
@pytest.mark.parametrize("outline", [True, False], ids=["outline", "headings"])
def test_corpus_books_typeset_as_pdfs(tmp_path, name: str, outline: bool):
    title, author, chapters = corpus(name)
    book = read_book(typeset(tmp_path / f"{name}.pdf", title, author, chapters, Style(outline=outline)))
    assert_reads_back(book, title, author, chapters)


@pytest.mark.skipif(shutil.which("ebook-convert") is None, reason="Calibre not installed (apt install calibre)")
def test_a_pdf_from_another_typesetter(tmp_path):
    """Calibre's PDF output (Chromium's layout, its own running heads and page numbers): a typesetter
    these rules were not written against."""
    epub, out = CORPUS / "alice-gutenberg.epub", tmp_path / "alice.pdf"
    if not epub.exists():
        pytest.skip(f"corpus book {epub} not present")
    header = '<p style="text-align:center; font-size:8pt">_TITLE_ — _SECTION_</p>'
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    command = ["ebook-convert", str(epub), str(out), "--pdf-page-numbers", "--pdf-header-template", header]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    source, book = read_book(epub), read_book(out)
    chapters = [c.title for c in source.chapters if not c.skipped]
    assert [c.title for c in book.chapters if c.title.startswith("CHAPTER")] == chapters
    recall, extra = coverage(book_words(source), book_words(book))
    assert recall >= 0.99 and extra <= 0.005, (recall, extra)
    numbers = Counter({w: n for w, n in book_words(book).items() if w.isdigit()})
    assert sum((numbers - book_words(source)).values()) <= 2, numbers - book_words(source)  # of 70 page numbers


def vocabulary(text: str = "") -> Vocabulary:
    return Vocabulary([text])


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        (["a won-", "derful day"], "a wonderful day"),
        (["a well-", "known man"], "a well-known man"),
        (["Anglo-", "Saxon"], "Anglo-Saxon"),
        (["1914-", "1918"], "1914-1918"),
        (["soft\u00ad", "hyphen"], "softhyphen"),
        (["the ﬁrst ﬂoor, an of-", "ﬁce"], "the first floor, an office"),
        (["a dash—", "and more"], "a dash—and more"),
        (["two", "lines"], "two lines"),
    ],
)
def test_line_ends_are_joined(lines: list[str], joined: str):
    assert join_lines(lines, vocabulary()) == joined


def test_the_documents_own_words_decide_a_hyphen():
    assert join_lines(["the hen-", "house"], vocabulary("the henhouse was red")) == "the henhouse"
    assert join_lines(["the hen-", "house"], vocabulary("the hen-house was red")) == "the hen-house"


WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]


def line(page: int, text: str, top: float, size: float = 10.0) -> Line:
    return Line(page, text, 50, 300, top, top - size, size)


def test_running_heads_and_page_numbers_go_and_text_stays():
    pages = []
    for n in range(8):
        head = "A Book Title" if n % 2 else f"The Chapter {n // 4 + 1}"
        foot = ["12", "xiii", "- 14 -", "Page 15", "Page 16 of 20", "17", "18", "19"][n]
        first, last = f"It was the {WORDS[n]} day.", f"Nothing happened on day {WORDS[n]}."
        pages.append(
            [
                line(n, head, 580, 8),
                line(n, first, 540),
                line(n, "A middle line.", 300),
                line(n, last, 80),
                line(n, foot, 40, 9),
            ]
        )
    pages[5].insert(1, line(5, "Chapter 6", 560, 16))  # a heading at a page top stays
    kept = remove_running_heads(pages, 10.0)
    assert [ln.text for ln in kept[0]] == ["It was the first day.", "A middle line.", "Nothing happened on day first."]
    assert "Chapter 6" in [ln.text for ln in kept[5]]
    assert all(len(k) == 3 + (n == 5) for n, k in enumerate(kept))


def reason_for(path: Path) -> str:
    with pytest.raises(BadInputError) as info:
        read_book(path)
    assert "\n" not in info.value.reason
    return info.value.reason


@pytest.fixture
def small_pdf(tmp_path) -> Path:
    if font_dir() is None:
        pytest.skip("DejaVu fonts not installed")
    chapters = [("One", ["Some words here. " * 40]), ("Two", ["More words there. " * 40])]
    return typeset(tmp_path / "small.pdf", "Small", "Ann Author", chapters)


def test_truncated_pdf(small_pdf):
    data = small_pdf.read_bytes()
    small_pdf.write_bytes(data[: len(data) // 2])
    assert "truncated" in reason_for(small_pdf)


def test_damaged_pdf(small_pdf):
    data = bytearray(small_pdf.read_bytes())
    data[20:-40] = b"\x00" * (len(data) - 60)
    small_pdf.write_bytes(bytes(data))
    assert reason_for(small_pdf).startswith(("not a readable PDF", "the PDF has no pages", "page 1 cannot"))


@needs_fonts
def test_encrypted_pdf_needs_its_password(tmp_path):
    chapters = [("One", ["Secret words. " * 40])]
    path = typeset(tmp_path / "locked.pdf", "Locked", "Ann Author", chapters, Style(user_password="secret"))
    assert reason_for(path) == "the PDF is encrypted and needs a password; save a copy without one"


@needs_fonts
def test_owner_password_only_is_read(tmp_path):
    chapters = [("One", ["Open words. " * 40]), ("Two", ["More open words. " * 40])]
    path = typeset(tmp_path / "owner.pdf", "Owner", "Ann Author", chapters, Style(owner_password="owner"))
    assert b"/Encrypt" in path.read_bytes()
    assert [c.title for c in read_book(path).chapters][-2:] == ["One", "Two"]


def test_pdf_without_a_text_layer_needs_ocr(tmp_path):
    from fpdf import FPDF
    from PIL import Image

    scan = tmp_path / "scan.png"
    Image.effect_noise((300, 400), 60).convert("L").save(scan)
    document = FPDF()
    for _ in range(3):
        document.add_page()
        document.image(str(scan), x=10, y=10, w=180)
    path = tmp_path / "scan.pdf"
    document.output(str(path))
    reason = reason_for(path)
    assert "no text layer" in reason and "OCR" in reason


def test_not_a_pdf(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    assert reason_for(path) == "not a PDF (no %PDF- header)"


def test_page_limit(small_pdf, monkeypatch):
    monkeypatch.setattr(pdf, "MAX_PAGES", 2)
    assert reason_for(small_pdf) == "refused: the PDF has more than 2 pages"


def test_a_content_stream_that_inflates_too_far_is_refused(small_pdf, monkeypatch):
    monkeypatch.setattr(pdf, "MAX_STREAM_BYTES", 200)
    reason = reason_for(small_pdf)
    assert reason.startswith("refused: page ") and "content would inflate past" in reason


def test_words_counts_fold_quotes_and_ligatures():
    assert words("“Don’t” ﬁnd") == Counter({"don't": 1, "find": 1})
