"""Kindle, LIT, RTF, ODT and the other formats Calibre reads: converted to EPUB by ``ebook-convert``.

:func:`read_converted` refuses DRM-protected Kindle files before anything runs (the encryption field of a
MOBI/AZW/AZW3 header, a Topaz book key, a KFX ``DRMION`` container), finds ``ebook-convert``
(``$AUDIOBOOK_EBOOK_CONVERT``, else ``PATH``, else the macOS application bundle), converts the book into a
temporary directory under a time limit, and reads the result with the EPUB reader. Without Calibre the
error says what to install. This is the one place that runs ``ebook-convert``.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from audiobook.book import Book
from audiobook.errors import BadInputError
from audiobook.readers.epub import read_epub

log = logging.getLogger(__name__)

CALIBRE_SUFFIXES = (
    ".mobi",
    ".azw",
    ".azw3",
    ".azw4",
    ".prc",
    ".pdb",
    ".lit",
    ".rtf",
    ".odt",
    ".lrf",
    ".chm",
    ".snb",
    ".tcr",
    ".pml",
    ".rb",
    ".htmlz",
    ".txtz",
)
ENV_VAR = "AUDIOBOOK_EBOOK_CONVERT"
CONVERT_TIMEOUT_S = 600
"""Calibre converts a long novel in well under a minute; ten minutes means it is stuck."""
_MACOS_BUNDLE = "/Applications/calibre.app/Contents/MacOS/ebook-convert"
_INSTALL_HINT = (
    "install Calibre (Debian/Ubuntu: `sudo apt install calibre`; macOS: `brew install --cask calibre`; "
    f"others: calibre-ebook.com) or point {ENV_VAR} at ebook-convert"
)
_STDERR_LINES = 3


def read_converted(path: Path) -> Book:
    """Convert a Calibre-readable book to EPUB in a temporary directory and read that; BadInputError if not."""
    refuse_drm(path)
    exe = find_ebook_convert(path)
    with tempfile.TemporaryDirectory(prefix="audiobook-calibre-") as tmp:
        # Calibre picks its input plugin from the suffix, so the copy keeps it (and a safe name).
        source = Path(tmp) / f"book{path.suffix.lower()}"
        shutil.copyfile(path, source)
        target = Path(tmp) / "book.epub"
        _convert(exe, path, source, target)
        try:
            return read_epub(target)
        except BadInputError as e:
            raise BadInputError(path, f"after conversion by Calibre: {e.reason}") from e


def find_ebook_convert(path: Path) -> str:
    """The ``ebook-convert`` executable; a BadInputError naming what to install when there is none."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise BadInputError(path, f"{ENV_VAR}={configured!r} is not an executable; fix or unset it")
        return found
    found = shutil.which("ebook-convert") or (_MACOS_BUNDLE if os.access(_MACOS_BUNDLE, os.X_OK) else None)
    if found is None:
        raise BadInputError(
            path,
            f"reading {path.suffix.lower()} files needs Calibre's ebook-convert, which is not installed: "
            + _INSTALL_HINT,
        )
    return found


def _convert(exe: str, original: Path, source: Path, target: Path) -> None:
    cmd = [exe, str(source), str(target), "--no-default-epub-cover"]
    log.debug("running %s", shlex.join(cmd))
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=CONVERT_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise BadInputError(
            original, f"ebook-convert did not finish in {CONVERT_TIMEOUT_S} s; convert it to EPUB yourself"
        ) from e
    except OSError as e:
        raise BadInputError(original, f"cannot run {exe} ({e.strerror or e})") from e
    output = (proc.stderr + proc.stdout).decode("utf-8", "replace")
    if proc.returncode != 0 or not target.exists():
        if "DRM" in output:
            raise BadInputError(original, _drm_message())
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-_STDERR_LINES:])
        raise BadInputError(original, f"Calibre could not convert it (ebook-convert: {tail or 'no output'})")
    log.debug("ebook-convert said: %s", output[-2000:])


def _drm_message() -> str:
    return (
        "the book is DRM-protected (Kindle encryption); only DRM-free books can be read: "
        "download a DRM-free copy from the seller if it offers one"
    )


def refuse_drm(path: Path) -> None:
    """BadInputError for Kindle files whose header says they are encrypted; other files pass."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
    except OSError as e:
        raise BadInputError(path, f"cannot be read ({e.strerror or e})") from e
    if head.startswith(b"\xeaDRMION\xee") or head.startswith(b"TPZ") and b"dkey" in head:
        raise BadInputError(path, _drm_message())
    if mobi_encryption(head) not in (0, None):
        raise BadInputError(path, _drm_message())


def mobi_encryption(head: bytes) -> int | None:
    """The PalmDOC encryption type of a MOBI/AZW/AZW3 file (0: none), or None when it is not one.

    The Palm database header names the type and creator at offset 60 (``BOOKMOBI``) and lists its records
    from offset 78; record 0 starts with the PalmDOC header, whose encryption field is at byte 12
    (1: old Mobipocket, 2: Mobipocket DRM).
    """
    if len(head) < 86 or head[60:68] not in (b"BOOKMOBI", b"TEXtREAd"):
        return None
    (record0,) = struct.unpack_from(">I", head, 78)
    if record0 + 14 > len(head):
        return None
    (encryption,) = struct.unpack_from(">H", head, record0 + 12)
    return encryption
