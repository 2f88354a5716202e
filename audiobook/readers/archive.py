"""Zip containers (EPUB, DOCX, ``.fb2.zip``) opened with their sizes checked before anything is inflated.

A zip bomb is refused from the central directory alone: too many members, a declared total over
:data:`MAX_TOTAL_BYTES`, one member over :data:`MAX_MEMBER_BYTES`, or a member over 1 MiB that claims a
compression ratio above :data:`MAX_RATIO`. XML members are parsed by the safe rules of
:mod:`audiobook.readers.xhtml` (no DTD, no entities, no network).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from lxml import etree

from audiobook.errors import BadInputError
from audiobook.readers.xhtml import UnsafeXMLError, parse_xml

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1 << 30
"""Declared uncompressed size of the whole archive; real ebooks, images included, stay far below 1 GiB."""
MAX_MEMBER_BYTES = 256 << 20
MAX_RATIO = 100
"""Deflate rarely beats 20:1 on XHTML; a member over 1 MiB claiming more than 100:1 is a zip bomb."""


class SafeZip:
    """A zip archive whose declared sizes passed the bomb checks; ``kind`` names the format in errors."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise BadInputError(path, f"not a valid {kind}: not a zip archive or truncated ({e})") from e
        self.names = set(self.zip.namelist())
        self._check_sizes()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def _check_sizes(self) -> None:
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BadInputError(self.path, f"refused: the archive has {len(infos)} members (zip bomb?)")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise BadInputError(self.path, f"refused: it would inflate to {total >> 20} MiB (zip bomb?)")
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_MEMBER_BYTES or (info.file_size > 1 << 20 and ratio > MAX_RATIO):
                raise BadInputError(
                    self.path,
                    f"refused: {info.filename} would inflate to {info.file_size >> 20} MiB "
                    f"at {ratio:.0f}:1 (zip bomb?)",
                )

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except KeyError as e:
            raise BadInputError(self.path, f"{name} is listed but missing from the archive") from e
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            raise BadInputError(self.path, f"corrupt or truncated archive: cannot read {name} ({e})") from e

    def xml(self, name: str) -> etree._Element:
        try:
            return parse_xml(self.read(name))
        except UnsafeXMLError as e:
            raise BadInputError(self.path, f"{name} {e}") from e
        except etree.XMLSyntaxError as e:
            raise BadInputError(self.path, f"{name} is not well-formed XML ({e})") from e
