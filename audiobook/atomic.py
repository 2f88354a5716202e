"""The one way a file that a later step trusts is written: beside its target, flushed, renamed into place.

A reader (a resume, an export, a media server) sees the old file or the new one, never half of one, even after
a power cut: the data is fsynced before the rename and the directory after it. Temporary names start with a dot
and end in ``.tmp``, so a killed writer's leftovers are easy to recognise and remove.

Files are created with mode 0666 and the user's umask applied by the kernel, like any other program's files (a
library shared with a media server's user must be readable by it); ``tempfile.mkstemp`` would force 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    tmp, fd = _create_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (ffmpeg, a library).

    The file does not exist yet; whatever the block writes there replaces ``path`` when the block succeeds,
    and is removed when it fails. The suffix is kept last, so tools that go by it still recognise the format.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` that keeps its suffix: ``.book.k3j9a2.tmp.m4b``."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}{TMP_SUFFIX}{path.suffix}")


def commit(tmp: Path, path: Path) -> None:
    """Make a finished temporary file durable and rename it over ``path`` (for writers that name files)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _replace(tmp, path)


def _create_beside(path: Path) -> tuple[Path, int]:
    while True:
        tmp = temporary_name(path)
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
