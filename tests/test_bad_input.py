"""Every bad input named in the intake issue gets BadInputError with a clear one-line reason."""

from __future__ import annotations

import zipfile

import pytest
from epub_factory import billion_laughs, external_entity, make_epub, xhtml

from audiobook.errors import BadInputError
from audiobook.readers import archive, read_book


def reason_for(path) -> str:
    with pytest.raises(BadInputError) as info:
        read_book(path)
    assert info.value.path == path
    assert "\n" not in info.value.reason
    return info.value.reason


def test_missing_file(tmp_path):
    assert reason_for(tmp_path / "nope.epub") == "no such file"


def test_directory(tmp_path):
    assert "is a directory" in reason_for(tmp_path)


def test_unknown_file_type(tmp_path):
    path = tmp_path / "book.xyz"
    path.write_bytes(b"something")
    reason = reason_for(path)
    assert reason.startswith("unknown file type '.xyz'; supported: .epub, .pdf, .html, .htm, .xhtml, .docx, .fb2")
    assert ".mobi" in reason and ".azw3" in reason


def test_not_a_zip(tmp_path):
    path = tmp_path / "book.epub"
    path.write_text("just some text")
    assert "not a zip archive" in reason_for(path)


def test_truncated_zip(tmp_path):
    path = make_epub(tmp_path / "book.epub")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in reason_for(path)


def test_corrupt_member_data(tmp_path):
    path = make_epub(
        tmp_path / "book.epub",
        {"a.xhtml": xhtml("<p>" + "words and more words " * 400 + "</p>")},
        [("A", "a.xhtml", [])],
    )
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("OEBPS/a.xhtml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    reason = reason_for(path)
    assert "corrupt or truncated archive: cannot read OEBPS/a.xhtml" in reason


def test_no_container(tmp_path):
    assert reason_for(make_epub(tmp_path / "b.epub", with_container=False)) == (
        "not an EPUB: META-INF/container.xml is missing"
    )


def test_no_opf(tmp_path):
    assert reason_for(make_epub(tmp_path / "b.epub", with_opf=False)) == (
        "META-INF/container.xml names OEBPS/content.opf, which is not in the archive"
    )


def test_drm_encryption_of_content_documents(tmp_path):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )
    path = make_epub(tmp_path / "b.epub", extra={"META-INF/encryption.xml": encryption})
    assert reason_for(path) == (
        "the book is DRM-protected (META-INF/encryption.xml encrypts OEBPS/ch1.xhtml); only DRM-free EPUBs can be read"
    )


def test_empty_book(tmp_path):
    docs = {"a.xhtml": xhtml('<img src="x.png" alt="x"/>'), "b.xhtml": xhtml("<p>  </p>")}
    path = make_epub(tmp_path / "b.epub", docs, [("A", "a.xhtml", [])])
    assert reason_for(path) == "the book contains no readable text (empty book)"


def test_empty_spine(tmp_path):
    path = make_epub(tmp_path / "b.epub", {}, [])
    assert "spine lists no documents" in reason_for(path)


def test_zip_bomb_ratio_refused_before_inflating(tmp_path):
    path = make_epub(tmp_path / "b.epub", extra={"OEBPS/bomb.xhtml": b"\0" * (20 << 20)})
    assert "OEBPS/bomb.xhtml would inflate to 20 MiB" in reason_for(path)


def test_zip_bomb_total_size_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1000)
    path = make_epub(tmp_path / "b.epub", extra={"OEBPS/big.css": "x" * 2000})
    assert "zip bomb" in reason_for(path)


def test_entity_expansion_refused(tmp_path):
    path = make_epub(tmp_path / "b.epub", {"a.xhtml": billion_laughs()}, [("A", "a.xhtml", [])])
    assert reason_for(path) == "OEBPS/a.xhtml declares XML entities in its DOCTYPE (refused for safety)"


def test_external_entity_in_opf_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    opf = external_entity(secret.as_uri()).replace("<html", "<package").replace("</html>", "</package>")
    path = make_epub(tmp_path / "b.epub", opf_override=opf)
    assert "content.opf declares XML entities" in reason_for(path)


def test_external_entity_never_read_even_without_declaration_check(tmp_path, monkeypatch):
    # Belt and braces: with the declaration check disabled the parser itself still reads nothing.
    from audiobook.readers import xhtml as xhtml_module

    monkeypatch.setattr(xhtml_module, "check_no_entities", lambda data: None)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    docs = {"a.xhtml": external_entity(secret.as_uri()), "b.xhtml": xhtml("<h1>B</h1><p>Safe.</p>")}
    book = read_book(make_epub(tmp_path / "b.epub", docs, [("A", "a.xhtml", []), ("B", "b.xhtml", [])]))
    assert "TOP SECRET" not in "".join(c.text for c in book.chapters)


def test_binary_garbage_as_text(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes(bytes(range(256)) * 40)
    assert reason_for(path) == "this is binary data, not text"


def test_control_character_garbage_as_text(tmp_path):
    path = tmp_path / "book.md"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16]) * 100)
    assert reason_for(path) == "this is binary data, not text"


def test_non_utf8_text(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes("Caf\u00e9 au lait, na\u00efve.".encode("cp1252"))
    assert reason_for(path) == (
        "not UTF-8 text (byte 0xe9 at offset 3); convert it first, e.g. `iconv -f windows-1252 -t utf-8`"
    )


def test_empty_text_file(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("\n\n  \n")
    assert reason_for(path) == "the book contains no readable text (empty file)"
