"""The one atomic-write helper: whole files or none, the user's umask honoured, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from audiobook import atomic
from audiobook.engine.core import write_wav


@pytest.fixture
def umask():  # noqa: ANN201
    """Set a umask for one test and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_honour_the_umask(tmp_path: Path, umask, mask: int, expected: int) -> None:  # noqa: ANN001
    """A library shared with a media server's user must be readable by it: mkstemp would force 0600."""
    umask(mask)
    atomic.write_atomic(tmp_path / "job.json", b"{}")
    write_wav(tmp_path / "chunk.wav", np.zeros(240, np.float32))
    with atomic.atomic_path(tmp_path / "book.m4b") as tmp:
        tmp.write_bytes(b"audio")  # as ffmpeg would: a program that names its own output file
    for name in ("job.json", "chunk.wav", "book.m4b"):
        assert mode(tmp_path / name) == expected, name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "job.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as f:
        f.write(b"half of the ne")
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("ffmpeg failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]


def test_temporary_names_are_hidden_and_keep_the_suffix(tmp_path: Path) -> None:
    name = atomic.temporary_name(tmp_path / "01 - Chapter.mp3")
    assert name.parent == tmp_path and name.name.startswith(".01 - Chapter.") and name.suffix == ".mp3"
    assert atomic.temporary_name(tmp_path / "x.wav") != atomic.temporary_name(tmp_path / "x.wav")
