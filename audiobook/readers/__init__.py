"""Book files -> :class:`~audiobook.book.Book`: one entry point, :func:`read_book`, for every format.

The format is chosen from the file's content first (a zip with an EPUB ``mimetype`` is an EPUB whatever
its name, a file starting ``%PDF-`` is a PDF) and its suffix second. EPUB, PDF, HTML, DOCX, FB2, plain text
and Markdown are read natively; MOBI, AZW3, LIT, RTF, ODT and the rest go through Calibre's
``ebook-convert`` when it is installed (:mod:`audiobook.readers.calibre`). Every problem with the file
itself raises :class:`~audiobook.errors.BadInputError` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from audiobook.book import Book
from audiobook.errors import BadInputError
from audiobook.readers.calibre import CALIBRE_SUFFIXES, read_converted
from audiobook.readers.docx import read_docx
from audiobook.readers.epub import read_epub
from audiobook.readers.fb2 import read_fb2
from audiobook.readers.html import read_html
from audiobook.readers.pdf import read_pdf
from audiobook.readers.text import read_text

EPUB_SUFFIXES = (".epub",)
PDF_SUFFIXES = (".pdf",)
HTML_SUFFIXES = (".html", ".htm", ".xhtml")
DOCX_SUFFIXES = (".docx",)
FB2_SUFFIXES = (".fb2", ".fb2.zip")
TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
SUPPORTED_SUFFIXES = (
    EPUB_SUFFIXES
    + PDF_SUFFIXES
    + HTML_SUFFIXES
    + DOCX_SUFFIXES
    + FB2_SUFFIXES
    + TEXT_SUFFIXES
    + MARKDOWN_SUFFIXES
    + CALIBRE_SUFFIXES
)
_ZIP_MAGIC = b"PK\x03\x04"


def _plain(path: Path) -> Book:
    return read_text(path, markdown=False)


def _markdown(path: Path) -> Book:
    return read_text(path, markdown=True)


_BY_SUFFIX: list[tuple[tuple[str, ...], Callable[[Path], Book]]] = [
    (EPUB_SUFFIXES, read_epub),
    (PDF_SUFFIXES, read_pdf),
    (HTML_SUFFIXES, read_html),
    (DOCX_SUFFIXES, read_docx),
    (FB2_SUFFIXES, read_fb2),
    (TEXT_SUFFIXES, _plain),
    (MARKDOWN_SUFFIXES, _markdown),
    (CALIBRE_SUFFIXES, read_converted),
]


def read_book(path: Path | str) -> Book:
    """Read a book file of any supported format into chapters; raises BadInputError for bad input."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(path, "no such file")
    if path.is_dir():
        raise BadInputError(path, "is a directory, not a book file")
    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError as e:
        raise BadInputError(path, f"cannot be read ({e.strerror or e})") from e
    name = path.name.lower()
    if head.startswith(_ZIP_MAGIC) and b"mimetypeapplication/epub+zip" in head[:64]:
        return read_epub(path)
    if head.startswith(b"%PDF-"):
        return read_pdf(path)
    for suffixes, reader in _BY_SUFFIX:
        if name.endswith(suffixes):
            return reader(path)
    if b"<FictionBook" in head:
        return read_fb2(path)
    suffix = path.suffix.lower() or "(no suffix)"
    raise BadInputError(path, f"unknown file type {suffix!r}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
