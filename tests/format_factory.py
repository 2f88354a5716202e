"""Books in HTML, DOCX and FB2 made at test time with real writers (lxml, python-docx), from known text."""

from __future__ import annotations

import base64
import re
import unicodedata
from collections import Counter
from pathlib import Path

from docx import Document
from lxml import etree

Chapters = list[tuple[str, list[str]]]
"""(title, paragraphs) per chapter."""

FB2_NS = "http://www.gribuser.ru/xml/fictionbook/2.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
# The smallest valid PNG (1x1, grey), for covers.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg==")


def words(text: str) -> Counter[str]:
    """Words as a listener hears them: case, curly quotes and ligatures folded."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'").lower()
    return Counter(re.findall(r"\w+(?:['\-]\w+)*", text))


def coverage(source: Counter[str], got: Counter[str]) -> tuple[float, float]:
    """(share of the source's words found, extra words as a share of the source's)."""
    common = sum((source & got).values())
    total = sum(source.values())
    return common / total, (sum(got.values()) - common) / total


def source_words(title: str, author: str, chapters: Chapters) -> Counter[str]:
    counted = words(f"{title} {author}")
    for heading, paragraphs in chapters:
        counted.update(words(heading + " " + " ".join(paragraphs)))
    return counted


def book_words(book) -> Counter[str]:
    counted: Counter[str] = Counter()
    for chapter in book.chapters:
        counted.update(words(" ".join(chapter.paragraphs)))
    return counted


def make_html(path: Path, title: str, author: str, chapters: Chapters, charset: str = "utf-8") -> Path:
    html = etree.Element("html", lang="en")
    head = etree.SubElement(html, "head")
    etree.SubElement(head, "meta", charset=charset)
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "meta", name="author", content=author)
    body = etree.SubElement(html, "body")
    nav = etree.SubElement(body, "nav")
    etree.SubElement(nav, "a", href="/").text = "Home of the site menu"
    main = etree.SubElement(body, "main")
    etree.SubElement(main, "h1").text = title
    for heading, paragraphs in chapters:
        section = etree.SubElement(main, "section")
        etree.SubElement(section, "h2").text = heading
        for text in paragraphs:
            etree.SubElement(section, "p").text = text
    etree.SubElement(body, "footer").text = "Copyright of the site footer"
    data = b"<!DOCTYPE html>\n" + etree.tostring(html, method="html", encoding=charset)
    path.write_bytes(data)
    return path


def make_docx(path: Path, title: str, author: str, chapters: Chapters, table: list[list[str]] | None = None) -> Path:
    document = Document()
    document.core_properties.title = title
    document.core_properties.author = author
    document.core_properties.language = "en-GB"
    document.add_paragraph(title, style="Title")
    for number, (heading, paragraphs) in enumerate(chapters):
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
        if table and number == 0:
            grid = document.add_table(rows=len(table), cols=len(table[0]))
            for r, row in enumerate(table):
                for c, cell in enumerate(row):
                    grid.cell(r, c).text = cell
    document.save(str(path))
    return path


def fb2(title: str, author: str, chapters: Chapters, parts: list[str] | None = None, notes: bool = True) -> bytes:
    """An FB2 document; with ``parts``, the chapters are split evenly into nested part sections."""
    E = f"{{{FB2_NS}}}"
    root = etree.Element(f"{E}FictionBook", nsmap={None: FB2_NS, "l": XLINK_NS})
    info = etree.SubElement(etree.SubElement(root, f"{E}description"), f"{E}title-info")
    etree.SubElement(info, f"{E}genre").text = "prose"
    person = etree.SubElement(info, f"{E}author")
    first, last = author.rsplit(" ", 1)
    etree.SubElement(person, f"{E}first-name").text = first
    etree.SubElement(person, f"{E}last-name").text = last
    etree.SubElement(info, f"{E}book-title").text = title
    annotation = etree.SubElement(info, f"{E}annotation")
    etree.SubElement(annotation, f"{E}p").text = "A book written for the tests."
    etree.SubElement(info, f"{E}date", value="2024-05-01").text = "2024"
    cover = etree.SubElement(etree.SubElement(info, f"{E}coverpage"), f"{E}image")
    cover.set(f"{{{XLINK_NS}}}href", "#cover.png")
    etree.SubElement(info, f"{E}lang").text = "en"
    body = etree.SubElement(root, f"{E}body")
    body_title = etree.SubElement(body, f"{E}title")
    etree.SubElement(body_title, f"{E}p").text = author
    etree.SubElement(body_title, f"{E}p").text = title
    containers = [body]
    if parts:
        containers = []
        for name in parts:
            part = etree.SubElement(body, f"{E}section")
            etree.SubElement(etree.SubElement(part, f"{E}title"), f"{E}p").text = name
            containers.append(part)
    per_part = -(-len(chapters) // len(containers))
    for number, (heading, paragraphs) in enumerate(chapters):
        section = etree.SubElement(containers[number // per_part], f"{E}section")
        etree.SubElement(etree.SubElement(section, f"{E}title"), f"{E}p").text = heading
        for index, text in enumerate(paragraphs):
            p = etree.SubElement(section, f"{E}p")
            p.text = text
            if notes and index == 0:
                link = etree.SubElement(p, f"{E}a", type="note")
                link.set(f"{{{XLINK_NS}}}href", f"#n{number}")
                link.text = f"[{number + 1}]"
    if notes:
        notes_body = etree.SubElement(root, f"{E}body", name="notes")
        etree.SubElement(etree.SubElement(notes_body, f"{E}title"), f"{E}p").text = "Notes"
        for number in range(len(chapters)):
            note = etree.SubElement(notes_body, f"{E}section", id=f"n{number}")
            etree.SubElement(etree.SubElement(note, f"{E}title"), f"{E}p").text = str(number + 1)
            etree.SubElement(note, f"{E}p").text = f"Footnote text number {number + 1} is never narrated."
    binary = etree.SubElement(root, f"{E}binary", id="cover.png")
    binary.set("content-type", "image/png")
    binary.text = base64.b64encode(PNG).decode()
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")
