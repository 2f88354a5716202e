"""Kindle and other Calibre formats: DRM refused first, a clear error without Calibre, real conversions with it."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from epub_factory import chapter, make_epub, xhtml

from audiobook.errors import BadInputError
from audiobook.readers import calibre, read_book

EBOOK_CONVERT = shutil.which("ebook-convert")
needs_calibre = pytest.mark.skipif(
    EBOOK_CONVERT is None, reason="Calibre's ebook-convert is not installed (apt install calibre)"
)
STORY = "The lamp was lit at dusk and burned until the morning came, as it had for forty years."


def mobi_header(encryption: int) -> bytes:
    """A Palm database holding one MOBI record 0 (the fields the DRM check reads, zeros elsewhere)."""
    name = b"A_Test_Book".ljust(32, b"\0")
    header = name + bytes(28) + b"BOOKMOBI" + bytes(8) + struct.pack(">H", 1)
    record0 = len(header) + 8 + 2
    header += struct.pack(">IBBH", record0, 0, 0, 0) + bytes(2)
    palmdoc = struct.pack(">HHIHHHH", 2, 0, 1000, 1, 4096, encryption, 0)
    return header + palmdoc + b"MOBI" + bytes(200)


def reason_for(path: Path) -> str:
    with pytest.raises(BadInputError) as info:
        read_book(path)
    assert "\n" not in info.value.reason
    return info.value.reason


def test_encrypted_kindle_file_is_refused_before_calibre_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ebook-convert: the refusal must come first
    for suffix, encryption in ((".azw", 2), (".mobi", 1), (".azw3", 2)):
        path = tmp_path / f"locked{suffix}"
        path.write_bytes(mobi_header(encryption))
        assert reason_for(path).startswith("the book is DRM-protected (Kindle encryption)")


def test_kfx_drm_container_is_refused(tmp_path):
    path = tmp_path / "book.azw"
    path.write_bytes(b"\xeaDRMION\xee" + bytes(100))
    assert reason_for(path).startswith("the book is DRM-protected")


def test_unencrypted_header_reads_as_zero():
    assert calibre.mobi_encryption(mobi_header(0)) == 0
    assert calibre.mobi_encryption(b"%PDF-1.4" + bytes(100)) is None


def test_without_calibre_the_error_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(calibre.ENV_VAR, raising=False)
    path = tmp_path / "book.mobi"
    path.write_bytes(mobi_header(0))
    reason = reason_for(path)
    assert reason.startswith("reading .mobi files needs Calibre's ebook-convert, which is not installed")
    assert "apt install calibre" in reason


def test_a_wrong_ebook_convert_setting_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(calibre.ENV_VAR, str(tmp_path / "nothing-here"))
    path = tmp_path / "book.rtf"
    path.write_text("{\\rtf1 hello}")
    assert calibre.ENV_VAR in reason_for(path)


@pytest.fixture(scope="module")
def epub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = {
        "ch1.xhtml": xhtml(chapter("The Lamp on the Point", STORY, "The keeper climbed the stair.")),
        "ch2.xhtml": xhtml(chapter("The Winter Without Oil", "No ship came that winter.", STORY)),
        "ch3.xhtml": xhtml(chapter("What the Boats Saw", "The boats saw the light.", STORY)),
    }
    toc = [
        ("The Lamp on the Point", "ch1.xhtml", []),
        ("The Winter Without Oil", "ch2.xhtml", []),
        ("What the Boats Saw", "ch3.xhtml", []),
    ]
    return make_epub(tmp_path_factory.mktemp("calibre") / "keeper.epub", docs, toc, title="The Keeper")


def convert(epub: Path, suffix: str) -> Path:
    out = epub.with_suffix(suffix)
    subprocess.run([EBOOK_CONVERT, str(epub), str(out)], check=True, capture_output=True, timeout=300)
    return out


@needs_calibre
@pytest.mark.parametrize("suffix", [".mobi", ".azw3"])
def test_kindle_formats_are_read_through_calibre(epub, suffix):
    book = read_book(convert(epub, suffix))
    assert book.metadata.title == "The Keeper" and book.metadata.authors == ["Ann Author"]
    titles = [c.title for c in book.chapters if not c.skipped]
    assert titles == ["The Lamp on the Point", "The Winter Without Oil", "What the Boats Saw"]
    narrated = [c for c in book.chapters if not c.skipped]
    assert narrated[-1].paragraphs == ["What the Boats Saw.", "The boats saw the light.", STORY]
    # Calibre's MOBI output appends a table of contents; the guide marks it, so it is skipped.
    assert all(c.reason == "table of contents" for c in book.chapters if c.skipped)


@needs_calibre
def test_rtf_is_read_through_calibre(epub):
    book = read_book(convert(epub, ".rtf"))
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert text.count(STORY) == 3 and "The Winter Without Oil" in text


@needs_calibre
def test_a_real_mobi_with_its_encryption_field_set_is_refused(epub, tmp_path):
    data = bytearray(convert(epub, ".mobi").read_bytes())
    (record0,) = struct.unpack_from(">I", data, 78)
    struct.pack_into(">H", data, record0 + 12, 2)
    path = tmp_path / "locked.mobi"
    path.write_bytes(bytes(data))
    assert reason_for(path).startswith("the book is DRM-protected")


@needs_calibre
def test_a_file_calibre_cannot_convert_is_one_clear_line(tmp_path):
    path = tmp_path / "broken.mobi"
    path.write_bytes(b"BOOKMOBI but not really" + bytes(100))
    assert reason_for(path).startswith("Calibre could not convert it (ebook-convert: ")
