"""Book files -> :class:`~audiobook.book.Book`: one entry point, :func:`read_book`, for every format.

The format is chosen from the file's content first (a zip with an EPUB ``mimetype`` is an EPUB whatever
its name) and its suffix second: ``.epub``, ``.txt``/``.text``, ``.md``/``.markdown``. Every problem with
the file itself raises :class:`~audiobook.errors.BadInputError` with a one-line reason.
"""

from __future__ import annotations

from pathlib import Path

from audiobook.book import Book
from audiobook.errors import BadInputError
from audiobook.readers.epub import read_epub
from audiobook.readers.text import read_text

EPUB_SUFFIXES = (".epub",)
TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
_ZIP_MAGIC = b"PK\x03\x04"


def read_book(path: Path | str) -> Book:
    """Read an EPUB, plain-text or Markdown book into chapters; raises BadInputError for bad input."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(path, "no such file")
    if path.is_dir():
        raise BadInputError(path, "is a directory, not a book file")
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise BadInputError(path, f"cannot be read ({e.strerror or e})") from e
    suffix = path.suffix.lower()
    looks_epub = head.startswith(_ZIP_MAGIC) and b"mimetypeapplication/epub+zip" in head
    if suffix in EPUB_SUFFIXES or looks_epub:
        return read_epub(path)
    if suffix in TEXT_SUFFIXES:
        return read_text(path, markdown=False)
    if suffix in MARKDOWN_SUFFIXES:
        return read_text(path, markdown=True)
    supported = ", ".join(EPUB_SUFFIXES + TEXT_SUFFIXES + MARKDOWN_SUFFIXES)
    raise BadInputError(path, f"unknown file type {suffix or '(no suffix)'!r}; supported: {supported}")
