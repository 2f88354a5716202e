"""Build examples/the-keeper-of-small-lights.epub from the Markdown story beside this script.

The EPUB is a real EPUB 3 (nav document and NCX, a generated cover, a title page and a copyright page that
the reader should skip) so the README's main command exercises the whole intake path. Run:

    python examples/make_example_epub.py [OUT.epub]
"""

from __future__ import annotations

import html
import re
import struct
import sys
import zlib
from pathlib import Path

from ebooklib import epub

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "the-keeper-of-small-lights.md"


def parse_story(text: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """``# Title`` then ``## Chapter`` sections of blank-line separated paragraphs."""
    title = re.search(r"^# (.+)$", text, re.M).group(1).strip()
    chapters = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
        chapters.append((heading.strip(), paragraphs))
    return title, chapters


def cover_png(width: int = 300, height: int = 450) -> bytes:
    """A night-blue cover with one warm lamp: a PNG written by hand, no imaging library needed."""
    rows = []
    cx, cy, radius = width // 2, height // 3, 38
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            d2 = (x - cx) ** 2 + (y - cy) ** 2
            if d2 < radius * radius:
                row += bytes((255, 214, 120))
            else:
                glow = max(0.0, 1.0 - (d2**0.5 - radius) / 120)
                row += bytes((int(20 + 120 * glow), int(30 + 80 * glow), int(70 + 20 * glow)))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def page(title: str, body: str, epub_type: str) -> str:
    return f'<section epub:type="{epub_type}"><h1>{html.escape(title)}</h1>\n{body}\n</section>'


def make_book(out: Path) -> Path:
    title, chapters = parse_story(SOURCE.read_text(encoding="utf-8"))
    book = epub.EpubBook()
    book.set_identifier("audiobook-example-the-keeper-of-small-lights")
    book.set_title(title)
    book.set_language("en")
    book.add_author("The audiobook project")
    book.add_metadata("DC", "description", "A short story about a lamp, a winter and eleven small lights.")
    book.add_metadata("DC", "date", "2026-11-23")
    book.set_cover("cover.png", cover_png())

    titlepage = epub.EpubHtml(title="Title Page", file_name="titlepage.xhtml", lang="en")
    titlepage.content = page(title, "<p>A story in three chapters</p>", "titlepage")
    copyright_page = epub.EpubHtml(title="Copyright", file_name="copyright.xhtml", lang="en")
    copyright_page.content = page(
        "Copyright",
        "<p>Written for the audiobook project's examples. You may copy, change and share it freely.</p>",
        "copyright-page",
    )
    items = []
    for number, (heading, paragraphs) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"chapter-{number}.xhtml", lang="en")
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        item.content = page(heading, body, "chapter")
        items.append(item)

    for item in [titlepage, copyright_page, *items]:
        book.add_item(item)
    book.toc = [
        epub.Link(i.file_name, i.title, i.file_name.removesuffix(".xhtml")) for i in [titlepage, *items, copyright_page]
    ]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["cover", titlepage, "nav", *items, copyright_page]
    book.guide = [
        {"type": "title-page", "href": "titlepage.xhtml", "title": "Title Page"},
        {"type": "copyright-page", "href": "copyright.xhtml", "title": "Copyright"},
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    epub.write_epub(str(out), book)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "the-keeper-of-small-lights.epub"
    print(make_book(target))
