"""HTML, DOCX and FB2 books made at test time from a corpus book's text, read back through read_book."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from format_factory import PNG, book_words, coverage, fb2, make_docx, make_html, source_words, words

from audiobook.errors import BadInputError
from audiobook.readers import read_book

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
BOOK = CORPUS / "love-among-the-chickens-se.epub"
TITLE, AUTHOR = "Love Among the Chickens", "P. G. Wodehouse"


@pytest.fixture(scope="module")
def chapters() -> list[tuple[str, list[str]]]:
    """The first five narrated chapters of a corpus book: (title, paragraphs without the heading)."""
    if not BOOK.exists():
        pytest.skip(f"corpus book {BOOK} not present")
    book = read_book(BOOK)
    narrated = [c for c in book.chapters if not c.skipped and c.title != "Dedication"]
    return [(c.title, c.paragraphs[1:]) for c in narrated[:5]]


def narrated_titles(book) -> list[str]:
    return [c.title for c in book.chapters if not c.skipped]


def reason_for(path: Path) -> str:
    with pytest.raises(BadInputError) as info:
        read_book(path)
    assert "\n" not in info.value.reason
    return info.value.reason


def assert_words(book, chapters, extra_words: str = "") -> None:
    recall, extra = coverage(source_words(TITLE, AUTHOR, chapters) + words(extra_words), book_words(book))
    assert recall >= 0.99 and extra <= 0.005, (recall, extra)


# HTML


def test_html_page_headings_make_the_chapters(tmp_path, chapters):
    book = read_book(make_html(tmp_path / "book.html", TITLE, AUTHOR, chapters))
    assert narrated_titles(book) == [t for t, _ in chapters]
    assert book.metadata.title == TITLE and book.metadata.authors == [AUTHOR] and book.metadata.language == "en"
    assert book.chapters[0].skipped and book.chapters[0].reason == "title page"  # the lone h1
    assert_words(book, chapters)
    heard = book_words(book)
    assert not heard["menu"] and not heard["footer"]  # outside <main>


def test_html_charset_from_the_meta_tag(tmp_path):
    chapters = [("Première partie", ["Le café était très chaud, dit-elle."] * 3), ("Deuxième", ["Voilà."])]
    book = read_book(make_html(tmp_path / "fr.htm", "Un récit", "Ann Author", chapters, charset="windows-1252"))
    assert narrated_titles(book) == ["Un récit", "Première partie", "Deuxième"]  # too short for a title page
    assert book.chapters[1].paragraphs[:2] == ["Première partie.", "Le café était très chaud, dit-elle."]


def test_html_without_headings_is_one_chapter_named_by_its_title(tmp_path):
    path = tmp_path / "article.html"
    path.write_text("<html><head><title>An Article</title></head><body><p>One.</p><p>Two.</p></body></html>")
    book = read_book(path)
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("An Article", ["An Article.", "One.", "Two."])]


def test_html_binary_garbage_is_refused(tmp_path):
    path = tmp_path / "junk.html"
    path.write_bytes(os.urandom(4096))
    assert reason_for(path) == "this is binary data, not HTML"


def test_html_entity_declaration_is_refused(tmp_path):
    path = tmp_path / "e.xhtml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "aaaa">]><html><body><p>&a;</p></body></html>')
    assert "declares XML entities" in reason_for(path)


# DOCX


def test_docx_heading_styles_make_the_chapters(tmp_path, chapters):
    table = [["Breed", "Eggs a week"], ["Leghorn", "Six or so"]]
    book = read_book(make_docx(tmp_path / "book.docx", TITLE, AUTHOR, chapters, table=table))
    assert narrated_titles(book) == [t for t, _ in chapters]
    assert book.metadata.title == TITLE and book.metadata.authors == [AUTHOR]
    assert book.metadata.language == "en-GB" and book.metadata.date
    assert book.chapters[0].reason == "title page"
    assert "Breed; Eggs a week" in book.chapters[1].paragraphs  # tables are read row by row
    assert_words(book, chapters, "Breed Eggs a week Leghorn Six or so")


def test_docx_chapters_at_heading_2_under_one_heading_1(tmp_path, chapters):
    from docx import Document

    document = Document()
    document.add_paragraph(TITLE, style="Title")
    document.add_heading("The Whole Story", level=1)
    for heading, paragraphs in chapters[:3]:
        document.add_heading(heading, level=2)
        for text in paragraphs:
            document.add_paragraph(text)
    path = tmp_path / "h2.docx"
    document.save(str(path))
    book = read_book(path)
    assert [c.title for c in book.chapters] == [TITLE, "The Whole Story", *(t for t, _ in chapters[:3])]
    assert book.chapters[0].paragraphs == [f"{TITLE}."]


def test_docx_footnote_references_are_dropped(tmp_path):
    from docx import Document
    from docx.oxml.ns import qn
    from lxml import etree

    document = Document()
    document.add_heading("Only Chapter", level=1)
    paragraph = document.add_paragraph("A claim")
    run = paragraph.add_run()
    ref = etree.SubElement(run._r, qn("w:footnoteReference"))
    ref.set(qn("w:id"), "1")
    marker = paragraph.add_run("7")
    style = etree.SubElement(marker._r.get_or_add_rPr(), qn("w:rStyle"))
    style.set(qn("w:val"), "FootnoteReference")
    paragraph.add_run(" that needs a note.")
    path = tmp_path / "notes.docx"
    document.save(str(path))
    # python-docx's default template has no FootnoteReference style; a style by that id is what Word writes.
    book = read_book(path)
    assert book.chapters[-1].paragraphs == ["Only Chapter.", "A claim that needs a note."]


def test_docx_zip_bomb_is_refused_before_inflating(tmp_path, chapters):
    path = make_docx(tmp_path / "bomb.docx", TITLE, AUTHOR, chapters[:1])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/media/bomb.bin", b"\0" * (20 << 20))
    assert reason_for(path).startswith("refused: word/media/bomb.bin would inflate to 20 MiB at ")


def test_docx_entity_declaration_is_refused(tmp_path, chapters):
    path = make_docx(tmp_path / "e.docx", TITLE, AUTHOR, chapters[:1])
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    xml = parts["word/document.xml"]
    parts["word/document.xml"] = xml.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY x "xx">]>', 1)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    assert reason_for(path) == "word/document.xml declares XML entities in its DOCTYPE (refused for safety)"


def test_docx_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "fake.docx"
    path.write_text("not a word document")
    assert "not a zip archive" in reason_for(path)


# FB2


def test_fb2_sections_titles_metadata_and_cover(tmp_path, chapters):
    path = tmp_path / "book.fb2"
    path.write_bytes(fb2(TITLE, AUTHOR, chapters))
    book = read_book(path)
    assert narrated_titles(book) == [t for t, _ in chapters]
    meta = book.metadata
    assert (meta.title, meta.authors, meta.language, meta.date) == (TITLE, [AUTHOR], "en", "2024-05-01")
    assert meta.description == "A book written for the tests." and (meta.cover, meta.cover_type) == (PNG, "image/png")
    skipped = [(c.title, c.reason) for c in book.chapters if c.skipped]
    assert skipped == [(f"{AUTHOR}. {TITLE}", "title page"), ("Notes", "endnotes")]
    narrated = " ".join(p for c in book.chapters if not c.skipped for p in c.paragraphs)
    assert "Footnote text" not in narrated and "[1]" not in narrated
    assert_words(
        book,
        chapters,
        "Notes " + " ".join(f"{n + 1} Footnote text number {n + 1} is never narrated." for n in range(len(chapters))),
    )


def test_fb2_parts_split_into_their_chapters(tmp_path, chapters):
    path = tmp_path / "parts.fb2"
    path.write_bytes(fb2(TITLE, AUTHOR, chapters, parts=["Part One", "Part Two"], notes=False))
    book = read_book(path)
    titles = [t for t, _ in chapters]
    # Part One's heading-only chapter stands before the body's first long chapter: a title page, like EPUB's.
    assert [c.title for c in book.chapters] == [f"{AUTHOR}. {TITLE}", "Part One", *titles[:3], "Part Two", *titles[3:]]
    assert narrated_titles(book) == [*titles[:3], "Part Two", *titles[3:]]


def test_fb2_zip(tmp_path, chapters):
    path = tmp_path / "book.fb2.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("book.fb2", fb2(TITLE, AUTHOR, chapters[:2]))
    assert narrated_titles(read_book(path)) == [t for t, _ in chapters[:2]]


def test_fb2_entity_declaration_is_refused(tmp_path, chapters):
    data = fb2(TITLE, AUTHOR, chapters[:1]).replace(b"?>", b'?><!DOCTYPE FictionBook [<!ENTITY x "xx">]>', 1)
    path = tmp_path / "e.fb2"
    path.write_bytes(data)
    assert reason_for(path) == "declares XML entities in its DOCTYPE (refused for safety)"


def test_fb2_external_entity_never_reads_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = tmp_path / "x.fb2"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE FictionBook [<!ENTITY s SYSTEM "{secret.as_uri()}">]>'
        f'<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"><body><section><p>&s;</p></section>'
        "</body></FictionBook>"
    )
    assert "declares XML entities" in reason_for(path)


def test_fb2_that_is_not_xml_is_refused(tmp_path):
    path = tmp_path / "junk.fb2"
    path.write_bytes(os.urandom(2048))
    assert reason_for(path).startswith("not a FictionBook file")
