"""The plain-text and Markdown readers: heading markers, paragraphs, decoding, Gutenberg framing."""

from __future__ import annotations

from audiobook.readers import read_book


def write(tmp_path, name: str, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_text_chapters_split_on_chapter_and_part_lines(tmp_path):
    text = (
        "An opening line\nwrapped in two.\n\nCHAPTER I. The Start\n\nIt began.\nIt went on.\n\n"
        "Second paragraph.\n\nPart Two\n\nA part intro.\n\nChapter 2\n\nMore text.\n"
    )
    book = read_book(write(tmp_path, "my-book.txt", text))
    assert book.metadata.title == "my book"
    assert [c.title for c in book.chapters] == ["my book", "CHAPTER I. The Start", "Part Two", "Chapter 2"]
    assert book.chapters[0].paragraphs == ["my book.", "An opening line wrapped in two."]
    assert book.chapters[1].paragraphs == [
        "CHAPTER I. The Start.",
        "It began. It went on.",
        "Second paragraph.",
    ]
    assert book.chapters[1].source == "line 4"
    assert not any(c.skipped for c in book.chapters)


def test_text_without_markers_is_one_chapter(tmp_path):
    book = read_book(write(tmp_path, "note.txt", "Just one paragraph.\n\nAnd a second.\n"))
    assert len(book.chapters) == 1
    assert book.chapters[0].paragraphs == ["note.", "Just one paragraph.", "And a second."]


def test_chapter_word_inside_prose_does_not_split(tmp_path):
    text = (
        "Chapter One\n\nShe read the\nchapter and verse aloud, and\npart of the house was dark.\n\n"
        "Part of the reason was that the lamp had gone out\nand nobody had thought to light it again.\n"
        "It was late.\n\nPart of the reason\nwas the rain.\n"
    )
    book = read_book(write(tmp_path, "b.txt", text))
    assert [c.title for c in book.chapters] == ["Chapter One"]
    assert len(book.chapters[0].paragraphs) == 4


def test_two_line_chapter_heading_block(tmp_path):
    book = read_book(write(tmp_path, "b.txt", "CHAPTER I.\nDown the Rabbit-Hole\n\nAlice was tired.\n"))
    assert [c.title for c in book.chapters] == ["CHAPTER I. Down the Rabbit-Hole"]
    assert book.chapters[0].paragraphs == ["CHAPTER I. Down the Rabbit-Hole.", "Alice was tired."]


def test_bom_crlf_and_nfc(tmp_path):
    data = "\ufeffChapter 1\r\n\r\nCafe\u0301  au\r\nlait.\r\n".encode()
    book = read_book(write(tmp_path, "b.txt", data))
    assert book.chapters[0].paragraphs == ["Chapter 1.", "Café au lait."]


def test_utf16_with_bom(tmp_path):
    book = read_book(write(tmp_path, "b.txt", "Chapter 1\n\nHello.\n".encode("utf-16")))
    assert book.chapters[0].paragraphs == ["Chapter 1.", "Hello."]


def test_markdown_headings_and_inline_markup(tmp_path):
    text = (
        "# My Book\n\nSome *intro* text.\n\n## First Chapter\n\nA [link](http://x) and **bold** and `code`."
        "\n\n### A Section\n\n- item one\n- item two\n\n![pic](a.png)\n\n> quoted words\n\n"
        "Second\n======\n\n```\n# not a heading\n```\n"
    )
    book = read_book(write(tmp_path, "b.md", text))
    assert [c.title for c in book.chapters] == ["My Book", "First Chapter", "Second"]
    assert book.chapters[0].paragraphs == ["My Book.", "Some intro text."]
    assert book.chapters[1].paragraphs == [
        "First Chapter.",
        "A link and bold and code.",
        "A Section.",
        "item one item two",
        "quoted words",
    ]
    assert book.chapters[2].paragraphs == ["Second.", "# not a heading"]


def test_heading_only_entries_are_skipped_not_dropped(tmp_path):
    text = "Intro words.\n\nChapter 1\n\nChapter 2\n\nChapter 1\n\nText one.\n\nChapter 2\n\nText two.\n"
    book = read_book(write(tmp_path, "b.txt", text))
    assert [(c.title, c.skipped) for c in book.chapters] == [
        ("b", False),
        ("Chapter 1", True),
        ("Chapter 2", True),
        ("Chapter 1", False),
        ("Chapter 2", False),
    ]
    assert book.chapters[1].reason == "heading only (a table of contents entry?)"


def test_opening_with_a_contents_list_is_skipped(tmp_path):
    text = "My Tale\n\nby Me\n\nContents\n\nChapter 1\nChapter 2\nChapter 3\n\nChapter 1\n\nText one.\n"
    book = read_book(write(tmp_path, "b.txt", text))
    assert [(c.title, c.reason) for c in book.chapters] == [("b", "table of contents"), ("Chapter 1", "")]
    opening = ["My Tale", "by Me", "Contents", "Chapter 1 Chapter 2 Chapter 3"]
    assert book.chapters[0].paragraphs[1:] == opening


def test_gutenberg_text_header_and_licence_skipped(tmp_path):
    text = (
        "The Project Gutenberg eBook of Tiny\n\nTitle: Tiny Tale\n\nAuthor: Some Body\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK TINY TALE ***\n\nCHAPTER I.\n\nOnce upon a time.\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK TINY TALE ***\n\nSection 1. The licence.\n"
    )
    book = read_book(write(tmp_path, "tiny.txt", text))
    assert (book.metadata.title, book.metadata.authors) == ("Tiny Tale", ["Some Body"])
    assert [(c.title, c.skipped, c.reason) for c in book.chapters] == [
        ("Project Gutenberg header", True, "Project Gutenberg header"),
        ("CHAPTER I.", False, ""),
        ("Project Gutenberg licence", True, "Project Gutenberg licence"),
    ]
    assert book.chapters[1].paragraphs == ["CHAPTER I.", "Once upon a time."]


def test_markdown_title_heading_names_the_book_and_is_not_narrated_alone(tmp_path):
    path = tmp_path / "story-file.md"
    path.write_text("# The Real Title\n\n## One\n\nFirst text.\n\n## Two\n\nSecond text.\n", encoding="utf-8")
    book = read_book(path)
    assert book.metadata.title == "The Real Title"
    assert [(c.title, c.skipped, c.reason) for c in book.chapters] == [
        ("The Real Title", True, "book title"),
        ("One", False, ""),
        ("Two", False, ""),
    ]
    assert book.chapters[1].paragraphs == ["One.", "First text."]
