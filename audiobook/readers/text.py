"""Plain text and Markdown -> :class:`~audiobook.book.Book`.

Chapters start at heading lines: a block of one or two lines after a blank line, beginning with ``Chapter``
or ``Part`` and a number, roman numeral or number word (no indentation, at most 100 characters in all:
"CHAPTER I." / "Down the Rabbit-Hole" is titled "CHAPTER I. Down the Rabbit-Hole"), a Markdown ``#`` or
``##`` heading, or a setext heading (a line underlined with ``===`` or ``---``). Deeper Markdown headings
(``###``...) stay inside their chapter as heading paragraphs. Without any marker the whole text is one
chapter. Text before the first marker is its own chapter, titled by the book's title. Paragraphs are
separated by blank lines; the lines of one paragraph are joined with spaces.

A heading line followed by nothing but another heading (the entries of a plain-text table of contents) is a
chapter with no text of its own: it is kept but skipped ("heading only"). Text before the first marker that
holds a "Contents" line is a title page and table of contents: kept, skipped. A heading alone on the first
line above further chapters (Markdown's ``# Book Title``) names the book and is skipped as "book title".

Decoding: a UTF-8 or UTF-16 byte-order mark is honoured and stripped, otherwise the bytes must be UTF-8.
Anything else (or binary data) is refused with a message naming the fix rather than narrated as mojibake.
"""

from __future__ import annotations

import re
from pathlib import Path

from audiobook.book import Book, Chapter, Metadata
from audiobook.errors import BadInputError
from audiobook.readers import matter
from audiobook.readers.xhtml import as_sentence, clean

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|first|second|"
    "third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|last|final|the"
)
# "Chapter"/"Part" followed by a number, a roman numeral, a number word, or nothing but punctuation, so that
# prose opening with "Part of the reason..." is not taken for a heading.
_CHAPTER_LINE = re.compile(rf"^(chapter|part)(\s+(\d+|[ivxlcdm]+|{_NUMBER_WORDS})\b|\s*[.:—–-]|\s*$)", re.IGNORECASE)
_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"`([^`]*)`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LIST_MARK = re.compile(r"^ {0,3}([-*+]|\d+[.)])\s+")
_QUOTE_MARK = re.compile(r"^ {0,3}>\s?")
_GUTENBERG_FIELD = re.compile(r"^(Title|Author):\s*(.+)$", re.MULTILINE)
_MAX_HEADING_CHARS = 100
_CONTENTS = re.compile(r"^(table of )?contents\.?$", re.IGNORECASE)


def read_text(path: Path, markdown: bool) -> Book:
    """Read a .txt or .md file; raises BadInputError for binary data or undecodable bytes."""
    text = decode(path, path.read_bytes())
    if markdown:
        text = _HTML_COMMENT.sub("", text)
    lines = text.split("\n")
    title, authors = _title_and_authors(text, path)
    chapters = _split(lines, markdown, title)
    if not any(c.paragraphs for c in chapters):
        raise BadInputError(path, "the book contains no readable text (empty file)")
    for chapter in chapters:
        if len(chapter.paragraphs) == 1 and chapter.source != "line 1":
            chapter.skipped, chapter.reason = True, "heading only (a table of contents entry?)"
    first = chapters[0]
    if len(chapters) > 1 and len(first.paragraphs) == 1 and first.source == "line 1":
        # "# Book Title" over "## Chapter" headings: the book's title, not a chapter to narrate alone.
        first.skipped, first.reason = True, "book title"
        if not _GUTENBERG_FIELD.search(text[:20000]):
            title = first.title
    opening = chapters[0]
    has_contents = any(_CONTENTS.match(p) for p in opening.paragraphs)
    if opening.source == "line 1" and len(chapters) > 1 and has_contents:
        opening.skipped, opening.reason = True, "table of contents"
    return Book(Metadata(title=title, authors=authors), matter.split_gutenberg(chapters))


def chapter_line(text: str) -> bool:
    """Whether a line opens a chapter by the plain-text rule ("Chapter 3", "PART TWO.", "Chapter IV: ...")."""
    return bool(_CHAPTER_LINE.match(text.strip()))


def decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise BadInputError(path, f"invalid UTF-16 text ({e.reason} at byte {e.start})") from e
    else:
        if b"\x00" in data[:65536]:
            raise BadInputError(path, "this is binary data, not text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise BadInputError(
                path,
                f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); convert it first, "
                "e.g. `iconv -f windows-1252 -t utf-8`",
            ) from e
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\t\f\v")
    if controls > max(8, len(text[:65536]) // 100):
        raise BadInputError(path, "this is binary data, not text")
    return text


def _title_and_authors(text: str, path: Path) -> tuple[str, list[str]]:
    fields = {k: clean(v) for k, v in _GUTENBERG_FIELD.findall(text[:20000])}
    title = fields.get("Title") or path.stem.replace("_", " ").replace("-", " ").strip() or path.name
    return title, [fields["Author"]] if "Author" in fields else []


def _heading(lines: list[str], i: int, markdown: bool) -> tuple[str, int] | None:
    """(title, lines consumed) when line i starts a chapter, else None."""
    line = lines[i]
    match = _ATX.match(line)
    if match and len(match.group(1)) <= 2:
        return match.group(2), 1
    underlined = markdown and i + 1 < len(lines) and line.strip() and _SETEXT.match(lines[i + 1])
    if underlined and (i == 0 or not lines[i - 1].strip()):
        return line.strip(), 2
    if _CHAPTER_LINE.match(line) and (i == 0 or not lines[i - 1].strip()):
        # The marker must open a short block of its own ("CHAPTER I." / "Down the Rabbit-Hole"), so that
        # a hard-wrapped line of prose that happens to begin with "part of..." starts nothing.
        block = []
        while i + len(block) < len(lines) and lines[i + len(block)].strip():
            block.append(lines[i + len(block)].strip())
        title = " ".join(block)
        if len(block) <= 2 and len(title) <= _MAX_HEADING_CHARS:
            return title, len(block)
    return None


def _split(lines: list[str], markdown: bool, book_title: str) -> list[Chapter]:
    chapters = [Chapter(book_title, [], "line 1")]
    block: list[str] = []
    in_fence = False

    def end_paragraph() -> None:
        text = clean(" ".join(_inline(line, markdown) for line in block))
        block.clear()
        if text:
            chapters[-1].paragraphs.append(text)

    i = 0
    while i < len(lines):
        line = lines[i]
        if markdown and _FENCE.match(line):
            in_fence = not in_fence
            i += 1
            continue
        heading = None if in_fence else _heading(lines, i, markdown)
        if heading is not None:
            end_paragraph()
            title, consumed = heading
            title = clean(_inline(title, markdown))
            chapters.append(Chapter(title, [as_sentence(title)], f"line {i + 1}"))
            i += consumed
            continue
        sub = _ATX.match(line) if markdown and not in_fence else None
        if sub:
            end_paragraph()
            text = clean(_inline(sub.group(2), markdown))
            if text:
                chapters[-1].paragraphs.append(as_sentence(text))
        elif not line.strip():
            end_paragraph()
        else:
            block.append(line)
        i += 1
    end_paragraph()
    opening = chapters[0]
    if opening.paragraphs:
        opening.paragraphs.insert(0, as_sentence(book_title))
    return [c for c in chapters if c.paragraphs]


def _inline(line: str, markdown: bool) -> str:
    if not markdown:
        return line
    line = _QUOTE_MARK.sub("", line)
    line = _LIST_MARK.sub("", line)
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _CODE.sub(r"\1", line)
    return _EMPHASIS.sub(r"\2", line)
