"""Small EPUBs built at test time: EPUB 2 with an NCX, EPUB 3 with a nav document, and hostile ones.

``make_epub`` writes a real zip with the given content documents in spine order and a table of contents
built from ``toc`` entries ``(title, href, children)``. Every knob a test needs is a keyword argument;
the defaults give a valid two-chapter EPUB 3.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

Toc = list[tuple[str, str, list]]

XHTML_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">\n'
    "<head><title>{title}</title><style>p {{ color: red }}</style></head>\n"
)


def xhtml(body: str, title: str = "doc", body_type: str = "") -> str:
    """A content document around ``body`` (the inside of <body>)."""
    attr = f' epub:type="{body_type}"' if body_type else ""
    return XHTML_HEAD.format(title=escape(title)) + f"<body{attr}>\n{body}\n</body></html>\n"


def chapter(title: str, *paragraphs: str, section_type: str = "chapter", id: str = "") -> str:
    ident = f' id="{id}"' if id else ""
    paras = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f'<section{ident} epub:type="{section_type}"><h2>{title}</h2>\n{paras}\n</section>'


DEFAULT_DOCS = {
    "ch1.xhtml": xhtml(chapter("Chapter One", "It was a dark night.", "The rain fell.")),
    "ch2.xhtml": xhtml(chapter("Chapter Two", "Morning came at last.")),
}
DEFAULT_TOC: Toc = [("Chapter One", "ch1.xhtml", []), ("Chapter Two", "ch2.xhtml", [])]


def _nav(toc: Toc, landmarks: list[tuple[str, str, str]]) -> str:
    def items(entries: Toc) -> str:
        out = []
        for title, href, children in entries:
            sub = f"<ol>{items(children)}</ol>" if children else ""
            out.append(f'<li><a href="{href}">{escape(title)}</a>{sub}</li>')
        return "".join(out)

    marks = "".join(f'<li><a epub:type="{t}" href="{h}">{escape(n)}</a></li>' for t, h, n in landmarks)
    body = f'<nav epub:type="toc"><h1>Contents</h1><ol>{items(toc)}</ol></nav>'
    if marks:
        body += f'<nav epub:type="landmarks"><ol>{marks}</ol></nav>'
    return xhtml(body, "Contents")


def _ncx(toc: Toc) -> str:
    counter = iter(range(1, 10_000))

    def points(entries: Toc) -> str:
        out = []
        for title, href, children in entries:
            n = next(counter)
            out.append(
                f'<navPoint id="np{n}" playOrder="{n}"><navLabel><text>{escape(title)}</text></navLabel>'
                f'<content src="{href}"/>{points(children)}</navPoint>'
            )
        return "".join(out)

    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<head/><docTitle><text>t</text></docTitle><navMap>{points(toc)}</navMap></ncx>"
    )


def make_epub(
    path: Path,
    docs: dict[str, str] | None = None,
    toc: Toc | None = None,
    *,
    version: int = 3,
    title: str = "A Test Book",
    authors: tuple[str, ...] = ("Ann Author",),
    language: str = "en",
    description: str = "",
    date: str = "",
    cover: bytes | None = None,
    non_linear: tuple[str, ...] = (),
    landmarks: list[tuple[str, str, str]] | None = None,
    guide: list[tuple[str, str]] | None = None,
    extra: dict[str, bytes | str] | None = None,
    with_container: bool = True,
    with_opf: bool = True,
    opf_override: str | None = None,
) -> Path:
    """Write an EPUB to ``path``; ``docs`` maps file names (under ``OEBPS/``) to XHTML in spine order."""
    docs = DEFAULT_DOCS if docs is None else docs
    toc = DEFAULT_TOC if toc is None else toc
    manifest = [f'<item id="d{i}" href="{name}" media-type="application/xhtml+xml"/>' for i, name in enumerate(docs)]
    linear = {name: ' linear="no"' if name in non_linear else "" for name in docs}
    spine = [f'<itemref idref="d{i}"{linear[name]}/>' for i, name in enumerate(docs)]
    files: dict[str, bytes | str] = {f"OEBPS/{name}": body for name, body in docs.items()}
    meta = [
        f"<dc:title>{escape(title)}</dc:title>",
        f"<dc:language>{language}</dc:language>",
        '<dc:identifier id="uid">urn:test:1</dc:identifier>',
    ]
    meta += [f"<dc:creator>{escape(a)}</dc:creator>" for a in authors]
    if description:
        meta.append(f"<dc:description>{escape(description)}</dc:description>")
    if date:
        meta.append(f"<dc:date>{date}</dc:date>")
    if cover is not None:
        props = ' properties="cover-image"' if version == 3 else ""
        manifest.append(f'<item id="cover-img" href="cover.jpg" media-type="image/jpeg"{props}/>')
        meta.append('<meta name="cover" content="cover-img"/>')
        files["OEBPS/cover.jpg"] = cover
    if toc and version == 3:
        manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        files["OEBPS/nav.xhtml"] = _nav(toc, landmarks or [])
    if toc and version == 2:
        manifest.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        files["OEBPS/toc.ncx"] = _ncx(toc)
    guide_xml = "".join(f'<reference type="{t}" title="{t}" href="{h}"/>' for t, h in guide or [])
    spine_toc = ' toc="ncx"' if version == 2 and toc else ""
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<package xmlns="http://www.idpf.org/2007/opf" version="{version}.0" unique-identifier="uid">'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{"".join(meta)}</metadata>'
        f"<manifest>{''.join(manifest)}</manifest>"
        f"<spine{spine_toc}>{''.join(spine)}</spine>"
        f"<guide>{guide_xml}</guide></package>"
    )
    if with_opf:
        files["OEBPS/content.opf"] = opf_override if opf_override is not None else opf
    if with_container:
        files["META-INF/container.xml"] = (
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>"
        )
    files.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def billion_laughs() -> str:
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE html [{lol}]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Boom</h1><p>&lol9;</p></body></html>'
    )


def external_entity(target: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE html [<!ENTITY xxe SYSTEM "{target}">]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Leak</h1><p>&xxe;</p></body></html>'
    )
