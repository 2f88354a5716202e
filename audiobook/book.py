"""The book model every reader returns: metadata plus an ordered list of chapters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Metadata:
    title: str
    authors: list[str] = field(default_factory=list)
    language: str = "en"
    """BCP 47 / ISO 639 code as the book states it (``en``, ``en-GB``, ``fr``)."""
    identifier: str = ""
    description: str = ""
    date: str = ""
    """Publication date as the book states it; ``date[:4]`` is the year when present."""
    cover: bytes | None = None
    cover_type: str = ""
    """MIME type of ``cover`` (``image/jpeg``, ``image/png``), empty when there is no cover."""

    @property
    def author(self) -> str:
        return ", ".join(self.authors)


@dataclass
class Chapter:
    title: str
    paragraphs: list[str]
    """Narratable text, one string per paragraph; for a narrated chapter the first is its heading."""
    source: str = ""
    """Where it came from: ``file.xhtml#anchor`` for EPUB, ``line N`` for text."""
    skipped: bool = False
    reason: str = ""
    """Why it is skipped (``copyright page``, ``Project Gutenberg licence``...); empty when narrated."""

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass
class Book:
    metadata: Metadata
    chapters: list[Chapter]
