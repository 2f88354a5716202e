"""The EPUB reader on small generated books: TOC-driven chapters, anchors, nesting, matter, extraction."""

from __future__ import annotations

import logging

from epub_factory import chapter, make_epub, xhtml

from audiobook.readers import read_book, structure


def titles(book):
    return [c.title for c in book.chapters]


def test_epub3_nav_gives_chapters_titles_and_metadata(tmp_path):
    path = make_epub(
        tmp_path / "b.epub",
        cover=b"\xff\xd8\xff fake jpeg",
        description="A <b>fine</b> book.",
        date="1901-02-03",
        language="en-GB",
        authors=("Ann Author", "Bob Writer"),
    )
    book = read_book(path)
    assert titles(book) == ["Chapter One", "Chapter Two"]
    assert book.chapters[0].paragraphs == ["Chapter One.", "It was a dark night.", "The rain fell."]
    assert book.chapters[0].source == "OEBPS/ch1.xhtml"
    meta = book.metadata
    assert (meta.title, meta.authors, meta.language) == ("A Test Book", ["Ann Author", "Bob Writer"], "en-GB")
    assert meta.author == "Ann Author, Bob Writer"
    assert (meta.identifier, meta.date, meta.description) == ("urn:test:1", "1901-02-03", "A fine book.")
    assert (meta.cover, meta.cover_type) == (b"\xff\xd8\xff fake jpeg", "image/jpeg")


def test_epub2_ncx_anchors_split_one_file_into_chapters(tmp_path):
    body = (
        "<p>Preface text before any target.</p>"
        '<h2 id="c1">Chapter 1</h2><p>One.</p><p>More one.</p>'
        '<div id="c2"><h2>Chapter 2</h2><p>Two.</p></div>'
        '<p>Still chapter two.</p><h2><a id="c3"/>Chapter 3</h2><p>Three.</p>'
    )
    toc = [("First", "all.xhtml#c1", []), ("Second", "all.xhtml#c2", []), ("Third", "all.xhtml#c3", [])]
    book = read_book(make_epub(tmp_path / "b.epub", {"all.xhtml": xhtml(body)}, toc, version=2))
    # Text before the first target is its own chapter, titled by the book, and is narrated.
    assert titles(book) == ["A Test Book", "First", "Second", "Third"]
    assert book.chapters[0].paragraphs == ["A Test Book.", "Preface text before any target."]
    assert book.chapters[1].paragraphs == ["Chapter 1.", "One.", "More one."]
    assert book.chapters[2].paragraphs == ["Chapter 2.", "Two.", "Still chapter two."]
    assert book.chapters[3].paragraphs == ["Chapter 3.", "Three."]
    assert book.chapters[3].source == "OEBPS/all.xhtml#c3"
    assert not any(c.skipped for c in book.chapters)


def test_nav_wins_over_ncx_and_headings(tmp_path):
    path = make_epub(tmp_path / "b.epub", toc=[("Nav One", "ch1.xhtml", []), ("Nav Two", "ch2.xhtml", [])])
    assert titles(read_book(path)) == ["Nav One", "Nav Two"]


def test_chapter_without_heading_gets_its_title_as_first_paragraph(tmp_path):
    docs = {"a.xhtml": xhtml("<p>No heading here.</p>")}
    book = read_book(make_epub(tmp_path / "b.epub", docs, [("The Start", "a.xhtml", [])]))
    assert book.chapters[0].paragraphs == ["The Start.", "No heading here."]


def test_nested_entries_in_one_file_stay_in_their_parent(tmp_path):
    story = (
        chapter("A Story", "Intro.")
        + '<section id="p1"><h3>I</h3><p>Part one.</p></section>'
        + ('<section id="p2"><h3>II</h3><p>Part two.</p></section>')
    )
    toc = [
        ("A Story", "s.xhtml", [("I", "s.xhtml#p1", []), ("II", "s.xhtml#p2", [])]),
        ("Next", "n.xhtml", []),
    ]
    docs = {"s.xhtml": xhtml(story), "n.xhtml": xhtml(chapter("Next", "After."))}
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc))
    assert titles(book) == ["A Story", "Next"]
    assert book.chapters[0].paragraphs == ["A Story.", "Intro.", "I.", "Part one.", "II.", "Part two."]


def test_nested_entries_across_files_become_chapters(tmp_path):
    long_text = "Many words. " * 300
    docs = {
        "part1.xhtml": xhtml("<h1>Part One</h1><p>The part begins.</p>"),
        "c1.xhtml": xhtml(chapter("Chapter 1", long_text)),
        "c2.xhtml": xhtml(chapter("Chapter 2", long_text)),
    }
    toc = [("Part One", "part1.xhtml", [("Chapter 1", "c1.xhtml", []), ("Chapter 2", "c2.xhtml", [])])]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc))
    assert titles(book) == ["Part One", "Chapter 1", "Chapter 2"]
    assert book.chapters[0].paragraphs == ["Part One.", "The part begins."]


def test_short_nested_entries_across_files_stay_in_their_section(tmp_path):
    # A poetry collection: sections of short poems, one poem per file, become one chapter per section.
    docs = {"s1.xhtml": xhtml("<h2>Songs</h2>")}
    docs |= {f"p{i}.xhtml": xhtml(f"<h3>Poem {i}</h3><p>Roses are red, line {i}.</p>") for i in range(1, 4)}
    docs["s2.xhtml"] = xhtml("<h2>Sonnets</h2>")
    docs |= {f"q{i}.xhtml": xhtml(f"<h3>Sonnet {i}</h3><p>Shall I compare, {i}.</p>") for i in range(1, 3)}
    toc = [
        ("Songs", "s1.xhtml", [(f"Poem {i}", f"p{i}.xhtml", []) for i in range(1, 4)]),
        ("Sonnets", "s2.xhtml", [(f"Sonnet {i}", f"q{i}.xhtml", []) for i in range(1, 3)]),
    ]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc))
    assert titles(book) == ["Songs", "Sonnets"]
    assert book.chapters[1].paragraphs == [
        "Sonnets.",
        "Sonnet 1.",
        "Shall I compare, 1.",
        "Sonnet 2.",
        "Shall I compare, 2.",
    ]


def test_no_toc_falls_back_to_headings(tmp_path):
    docs = {
        "a.xhtml": xhtml("<h1>Book</h1><h2>Alpha</h2><p>A text.</p><h3>Sub</h3><p>More.</p>"),
        "b.xhtml": xhtml("<h2>Beta</h2><p>B text.</p>"),
    }
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc=[]))
    assert titles(book) == ["Book", "Alpha", "Beta"]
    assert book.chapters[1].paragraphs == ["Alpha.", "A text.", "Sub.", "More."]


def test_no_toc_and_no_headings_gives_a_chapter_per_file(tmp_path):
    docs = {"a.xhtml": xhtml("<p>A text.</p>", title="First"), "b.xhtml": xhtml("<p>B text.</p>", title="")}
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc=[]))
    assert titles(book) == ["First", "Section 2"]
    assert book.chapters[1].paragraphs == ["Section 2.", "B text."]


def test_extraction_drops_noterefs_pagebreaks_scripts_and_images(tmp_path):
    body = (
        "<h2>One<br/>The Beginning</h2>"
        '<p>Word<a epub:type="noteref" href="n.xhtml#n1">1</a> and<sup><a href="#n2">2</a></sup> more'
        '<span epub:type="pagebreak" id="p5" title="5">5</span> text.</p>'
        '<script>var x = "no";</script><img src="x.png" alt="A picture"/>'
        "<p>Cafe\u0301   with\n  spaces\u2060—and\u00ad soft “quotes”.</p>"
        "<p>line one<br/>line two</p>"
    )
    book = read_book(make_epub(tmp_path / "b.epub", {"a.xhtml": xhtml(body)}, [("One", "a.xhtml", [])]))
    assert book.chapters[0].paragraphs == [
        "One. The Beginning.",
        "Word and more text.",
        "Café with spaces—and soft “quotes”.",
        "line one line two",
    ]


def test_hgroup_is_one_heading_sentence(tmp_path):
    body = '<section><hgroup><h2>IV</h2><p epub:type="title">The Arrival</p></hgroup><p>Text.</p></section>'
    book = read_book(make_epub(tmp_path / "b.epub", {"a.xhtml": xhtml(body)}, [("IV: The Arrival", "a.xhtml", [])]))
    assert book.chapters[0].paragraphs == ["IV. The Arrival.", "Text."]


def test_front_and_back_matter_marked_by_epub_type_title_and_file_name(tmp_path):
    docs = {
        "cover.xhtml": xhtml('<img src="c.jpg" alt="cover"/><p>Cover</p>'),
        "titlepage.xhtml": xhtml('<section epub:type="titlepage"><h1>A Test Book</h1><p>By Ann</p></section>'),
        "dedication.xhtml": xhtml('<section epub:type="dedication"><p>For my mother.</p></section>'),
        "ch1.xhtml": xhtml(chapter("Chapter One", "Long text. " * 100)),
        "toc.xhtml": xhtml("<h2>Contents</h2><p>Chapter One</p>"),
        "copy.xhtml": xhtml('<section epub:type="copyright-page"><p>All rights reserved.</p></section>'),
        "end.xhtml": xhtml("<h2>Colophon</h2><p>Set in Garamond.</p>"),
        "idx.xhtml": xhtml("<p>apples, 3</p>"),
    }
    toc = [
        ("Cover", "cover.xhtml", []),
        ("Title", "titlepage.xhtml", []),
        ("Dedication", "dedication.xhtml", []),
        ("Chapter One", "ch1.xhtml", []),
        ("Contents", "toc.xhtml", []),
        ("Copyright", "copy.xhtml", []),
        ("Colophon", "end.xhtml", []),
        ("Index of Things", "idx.xhtml", []),
    ]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc, landmarks=[("index", "idx.xhtml", "Index")]))
    reasons = {c.title: c.reason for c in book.chapters}
    assert reasons == {
        "Cover": "cover",
        "Title": "title page",
        "Dedication": "",
        "Chapter One": "",
        "Contents": "table of contents",
        "Copyright": "copyright page",
        "Colophon": "colophon",
        "Index of Things": "index",
    }
    assert [c.skipped for c in book.chapters] == [True, True, False, False, True, True, True, True]
    assert book.chapters[1].paragraphs == ["A Test Book.", "By Ann"]  # skipped text is kept


def test_epub2_guide_marks_matter(tmp_path):
    docs = {"a.xhtml": xhtml("<p>Legal words here.</p>"), "b.xhtml": xhtml(chapter("Story", "Words. " * 200))}
    toc = [("Legal", "a.xhtml", []), ("Story", "b.xhtml", [])]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc, version=2, guide=[("copyright-page", "a.xhtml")]))
    assert [(c.title, c.reason) for c in book.chapters] == [("Legal", "copyright page"), ("Story", "")]


def test_non_linear_items_are_skipped(tmp_path):
    docs = {"a.xhtml": xhtml(chapter("Main", "Body.")), "pop.xhtml": xhtml("<p>A popup note.</p>", "Note")}
    book = read_book(make_epub(tmp_path / "b.epub", docs, [("Main", "a.xhtml", [])], non_linear=("pop.xhtml",)))
    assert [(c.title, c.skipped, c.reason) for c in book.chapters] == [
        ("Main", False, ""),
        ("Note", True, "not in the linear reading order"),
    ]


def test_gutenberg_header_and_licence_inside_chapter_files_are_split_off(tmp_path):
    first = (
        "<p>The Project Gutenberg eBook of Test</p><p>*** START OF THE PROJECT GUTENBERG EBOOK TEST ***</p>"
        '<h2 id="c1">Chapter 1</h2><p>Story words.</p>'
    )
    last = (
        '<h2 id="c2">Chapter 2</h2><p>The end.</p>'
        "<p>*** END OF THE PROJECT GUTENBERG EBOOK TEST ***</p><p>Licence terms.</p>"
    )
    docs = {"a.xhtml": xhtml(first), "b.xhtml": xhtml(last)}
    toc = [("Chapter 1", "a.xhtml#c1", []), ("Chapter 2", "b.xhtml#c2", [])]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc, version=2))
    assert [(c.title, c.reason) for c in book.chapters] == [
        ("Project Gutenberg header", "Project Gutenberg header"),
        ("Chapter 1", ""),
        ("Chapter 2", ""),
        ("Project Gutenberg licence", "Project Gutenberg licence"),
    ]
    assert book.chapters[2].paragraphs == ["Chapter 2.", "The end."]
    assert book.chapters[3].paragraphs[-1] == "Licence terms."


def test_missing_anchor_starts_at_top_of_file(tmp_path):
    docs = {"a.xhtml": xhtml(chapter("One", "Text one.")), "b.xhtml": xhtml(chapter("Two", "Text two."))}
    toc = [("One", "a.xhtml", []), ("Two", "b.xhtml#nowhere", [])]
    book = read_book(make_epub(tmp_path / "b.epub", docs, toc))
    assert titles(book) == ["One", "Two"]
    assert book.chapters[1].paragraphs == ["Two.", "Text two."]


def test_malformed_xhtml_is_read_with_a_warning(tmp_path, caplog):
    bad = "<html><body><h2>Broken</h2><p>Unclosed paragraph &nbsp;here<p>Second <b>bold</p></body>"
    docs = {"bad.xhtml": bad, "ok.xhtml": xhtml(chapter("Fine", "Good."))}
    with caplog.at_level(logging.WARNING):
        book = read_book(make_epub(tmp_path / "b.epub", docs, [("Broken", "bad.xhtml", []), ("Fine", "ok.xhtml", [])]))
    assert book.chapters[0].paragraphs == ["Broken.", "Unclosed paragraph here", "Second bold"]
    assert "bad.xhtml is not well-formed XHTML" in caplog.text


def test_font_obfuscation_alone_is_not_drm(tmp_path):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/font.otf"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = make_epub(tmp_path / "b.epub", extra={"META-INF/encryption.xml": encryption, "OEBPS/font.otf": b"x"})
    assert titles(read_book(path)) == ["Chapter One", "Chapter Two"]


def test_epub_detected_by_content_whatever_its_name(tmp_path):
    path = make_epub(tmp_path / "book.zip")
    assert titles(read_book(path)) == ["Chapter One", "Chapter Two"]


def test_untargeted_files_before_the_toc_and_matter_files_left_out_of_it(tmp_path):
    docs = {
        "cover.xhtml": xhtml("<p>Cover art.</p>"),
        "intro.xhtml": xhtml("<p>An untitled opening.</p>"),
        "ch1.xhtml": xhtml(chapter("Chapter One", "Text.")),
        "ch1b.xhtml": xhtml("<p>Chapter one, continued.</p>"),
        "copyright.xhtml": xhtml("<p>Copyright 2020.</p>"),
    }
    book = read_book(make_epub(tmp_path / "b.epub", docs, [("Chapter One", "ch1.xhtml", [])]))
    assert [(c.title, c.reason) for c in book.chapters] == [
        ("A Test Book", "cover"),
        ("A Test Book", ""),
        ("Chapter One", ""),
        ("A Test Book", "copyright page"),
    ]
    assert book.chapters[2].paragraphs == ["Chapter One.", "Text.", "Chapter one, continued."]


def test_long_nested_entry_in_one_file_is_split_at_its_children(tmp_path, monkeypatch):
    monkeypatch.setattr(structure, "SPLIT_WORDS", 10)
    body = (
        '<h1 id="p1">Part One</h1><p>Part intro.</p>'
        '<h2 id="c1">Chapter 1</h2><p>Many words in the first chapter here.</p>'
        '<h2 id="c2">Chapter 2</h2><p>Many words in the second chapter here.</p>'
    )
    toc = [("Part One", "a.xhtml#p1", [("Chapter 1", "a.xhtml#c1", []), ("Chapter 2", "a.xhtml#c2", [])])]
    book = read_book(make_epub(tmp_path / "b.epub", {"a.xhtml": xhtml(body)}, toc))
    assert titles(book) == ["Part One", "Chapter 1", "Chapter 2"]
    assert book.chapters[0].paragraphs == ["Part One.", "Part intro."]


def test_empty_and_garbage_documents_are_read_as_empty(tmp_path, caplog):
    docs = {
        "empty.xhtml": "",
        "junk.xhtml": "\x00\x01 not markup <<<",
        "ok.xhtml": xhtml(chapter("Fine", "Good.")),
    }
    toc = [("Empty", "empty.xhtml", []), ("Junk", "junk.xhtml", []), ("Fine", "ok.xhtml", [])]
    with caplog.at_level(logging.WARNING):
        book = read_book(make_epub(tmp_path / "b.epub", docs, toc))
    assert titles(book)[-1] == "Fine"
    assert "empty.xhtml is not well-formed XHTML" in caplog.text
