"""EPUB 3 Media Overlays as text: SMIL documents and the package metadata they need (pure functions).

A Media Overlay Document is a SMIL 3.0 ``body`` holding one ``par`` per sentence (or per part of a sentence,
see :mod:`audiobook.readalong.spans`): a ``text`` element pointing at the sentence's ``span`` in the content
document and an ``audio`` element with the clip of the chapter's audio file where it is spoken. The package
document names each overlay on its content document (``media-overlay``), gives each overlay's duration and their
total (``media:duration``) and the class a reading system adds to the spoken sentence (``media:active-class``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from audiobook import SAMPLE_RATE

ACTIVE_CLASS = "-epub-media-overlay-active"
"""The class name Readium and most reading systems use for the sentence being read."""
STYLESHEET = f""".{ACTIVE_CLASS} {{
  background-color: #fde68a;
  color: #111;
}}
"""
"""The active sentence in a soft yellow, in light and dark reading modes alike (the text colour is set with it)."""


@dataclass(frozen=True)
class Par:
    """One sentence (or part of one) and when it is spoken."""

    text: str
    """``chapter.xhtml#id``, relative to the SMIL file."""
    audio: str
    """The audio file, relative to the SMIL file."""
    begin: int
    """Frames of the audio file."""
    end: int


def clock(frames: int) -> str:
    """A SMIL full clock value, ``H:MM:SS.mmm``."""
    ms = round(frames * 1000 / SAMPLE_RATE)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def duration(pars: Sequence[Par]) -> int:
    """How long an overlay plays: the sum of its clips, in frames (as ``media:duration`` counts it)."""
    return sum(_milliseconds(p.end) - _milliseconds(p.begin) for p in pars) * SAMPLE_RATE // 1000


def _milliseconds(frames: int) -> int:
    return round(frames * 1000 / SAMPLE_RATE)


def smil(pars: Sequence[Par]) -> str:
    """The Media Overlay Document for one content document."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">',
        "  <body>",
    ]
    for n, par in enumerate(pars, start=1):
        lines += [
            f'    <par id="par{n:05d}">',
            f"      <text src={quoteattr(par.text)}/>",
            f'      <audio src={quoteattr(par.audio)} clipBegin="{clock(par.begin)}" clipEnd="{clock(par.end)}"/>',
            "    </par>",
        ]
    lines += ["  </body>", "</smil>", ""]
    return "\n".join(lines)
