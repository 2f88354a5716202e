"""What the service accepts as a path or a name: everything stays inside the library directory.

Pure checks, no I/O beyond resolving links: a path given over the API is taken relative to the library (an
absolute one must point inside it), ``..`` may not climb out, and a symbolic link may not lead out either (the
path is resolved, links followed, before it is compared). Upload names are reduced to a safe base name.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..errors import BadInputError, NotFoundError, OutsideLibraryError

MAX_NAME_CHARS = 120
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def inside(root: Path, given: str) -> Path:
    """The real path of the file ``given`` names inside ``root`` (itself resolved).

    ``OutsideLibraryError`` if it lies outside (``..``, an absolute path elsewhere, a link that leads out),
    ``NotFoundError`` if there is no such file, ``BadInputError`` if it is not a regular file.
    """
    if not given or "\x00" in given:
        raise BadInputError(repr(given), "not a path")
    named = Path(os.path.normpath(root / given))  # ``..`` folded, links not followed yet
    if not named.is_relative_to(root):
        raise OutsideLibraryError(f"{given}: outside the library directory {root}; put the book there or upload it")
    real = named.resolve()
    if not real.is_relative_to(root):
        raise OutsideLibraryError(f"{given}: a symbolic link that leads outside the library directory {root}")
    if not real.exists():
        raise NotFoundError(f"{given}: no such file in the library directory {root}")
    if not real.is_file():
        raise BadInputError(given, "not a regular file")
    return real


def upload_name(filename: str | None) -> str:
    """A safe base name for an uploaded file: no directories, no leading dot, letters, digits, ``._- `` only."""
    base = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE_NAME.sub("_", stem).strip(" ._")[:MAX_NAME_CHARS] or "book"
    suffix = _UNSAFE_NAME.sub("", suffix)[:16]
    return f"{stem}.{suffix}" if suffix else stem


def slug(name: str) -> str:
    """A short lowercase id for a book from its file name: ``The Time Machine.epub`` -> ``the-time-machine``."""
    ascii_name = unicodedata.normalize("NFKD", Path(name).stem).encode("ascii", "ignore").decode()
    return _SLUG_UNSAFE.sub("-", ascii_name.lower()).strip("-")[:40].strip("-") or "book"
