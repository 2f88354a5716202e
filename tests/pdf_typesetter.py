"""A small book typesetter for the PDF reader's tests: real PDFs made with fpdf2, laid out like printed books.

It sets a title page and then each chapter on a new page: the title large and bold, paragraphs justified
with a first-line indent (the first after a heading not indented), words hyphenated at line ends (a word
with a hyphen breaks at it), "fi"/"fl" as ligature characters, a running head (the book's title on even
pages, the chapter's on odd ones), and a page number at the foot; optionally an outline (bookmarks), two
columns, "Page N of M" footers, or a user password. Everything the reader has to undo, with the source text
known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]
VOWELS = set("aeiouyAEIOUY")


def font_dir() -> Path | None:
    """Where DejaVu Serif is (Debian's fonts-dejavu-core), or None."""
    return next((d for d in FONT_DIRS if (d / "DejaVuSerif.ttf").exists()), None)


@dataclass
class Style:
    page: tuple[float, float] = (419.5, 595.3)  # A5 in points
    margin: float = 54.0
    body: float = 10.5
    leading: float = 13.5
    indent: float = 14.0
    heading: float = 17.0
    head: float = 8.0
    columns: int = 1
    gutter: float = 18.0
    outline: bool = True
    running_heads: bool = True
    page_numbers: str = "{n}"
    """Footer format: ``{n}`` is the page number, ``{total}`` the page count."""
    hyphenate: bool = True
    ligatures: bool = True
    user_password: str = ""
    owner_password: str = ""
    """With an owner password alone the PDF is encrypted but opens without asking (copy "protection")."""
    heading_style: str = "B"


@dataclass
class _State:
    pdf: FPDF
    style: Style
    book_title: str
    chapter_title: str = ""
    column: int = 0
    y: float = 0.0
    top: float = 0.0


def typeset(
    path: Path,
    title: str,
    author: str,
    chapters: list[tuple[str, list[str]]],
    style: Style | None = None,
) -> Path:
    """Write ``chapters`` (title, paragraphs) as a PDF book at ``path``; returns ``path``."""
    style = style or Style()
    fonts = font_dir()
    if fonts is None:
        raise FileNotFoundError("DejaVu fonts not found (apt install fonts-dejavu-core)")
    pdf = FPDF(unit="pt", format=style.page)
    pdf.set_auto_page_break(False)
    pdf.add_font("Serif", "", str(fonts / "DejaVuSerif.ttf"))
    pdf.add_font("Serif", "B", str(fonts / "DejaVuSerif-Bold.ttf"))
    pdf.add_font("Serif", "I", str(fonts / "DejaVuSerif-Italic.ttf"))
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_lang("en-GB")
    pdf.alias_nb_pages("{total}")
    if style.user_password or style.owner_password:
        pdf.set_encryption(owner_password=style.owner_password or "owner", user_password=style.user_password)
    state = _State(pdf, style, title)
    _title_page(state, title, author)
    for chapter_title, paragraphs in chapters:
        _chapter(state, chapter_title, paragraphs)
    pdf.output(str(path))
    return path


def _title_page(state: _State, title: str, author: str) -> None:
    pdf, style = state.pdf, state.style
    pdf.add_page()
    pdf.set_font("Serif", "B", 24)
    y = style.page[1] / 3
    for line in _wrap(pdf, title, style.page[0] - 2 * style.margin, hyphenate=False):
        pdf.text((style.page[0] - pdf.get_string_width(line)) / 2, y, line)
        y += 30
    pdf.set_font("Serif", "", 14)
    pdf.text((style.page[0] - pdf.get_string_width(author)) / 2, y + 20, author)


def _column_width(style: Style) -> float:
    width = style.page[0] - 2 * style.margin
    return (width - style.gutter * (style.columns - 1)) / style.columns


def _new_page(state: _State) -> None:
    pdf, style = state.pdf, state.style
    font = (pdf.font_family, pdf.font_style, pdf.font_size_pt)
    pdf.add_page()
    state.column = 0
    state.y = style.margin + style.leading
    number = pdf.page
    if style.running_heads:
        pdf.set_font("Serif", "I", style.head)
        text = state.book_title if number % 2 == 0 else state.chapter_title
        pdf.text((style.page[0] - pdf.get_string_width(text)) / 2, style.margin - 18, text)
    if style.page_numbers:
        pdf.set_font("Serif", "", style.head + 1)
        text = style.page_numbers.format(n=number, total="{total}")
        pdf.text(
            (style.page[0] - pdf.get_string_width(text.replace("{total}", "000"))) / 2,
            style.page[1] - style.margin + 24,
            text,
        )
    if font[0]:
        pdf.set_font(*font)


def _next_line(state: _State) -> tuple[float, float]:
    """(x, baseline) of the next body line, moving to the next column or page when this one is full."""
    style = state.style
    if state.y > style.page[1] - style.margin:
        if state.column + 1 < style.columns:
            state.column += 1
            state.y = state.top
        else:
            _new_page(state)
            state.top = state.y
    x = style.margin + state.column * (_column_width(style) + style.gutter)
    y = state.y
    state.y += style.leading
    return x, y


def _chapter(state: _State, title: str, paragraphs: list[str]) -> None:
    pdf, style = state.pdf, state.style
    state.chapter_title = title
    _new_page(state)
    y = style.margin + 50
    if style.outline:
        pdf.set_y(y - style.heading)
        pdf.start_section(title, level=0)
    pdf.set_font("Serif", style.heading_style, style.heading)
    for line in _wrap(pdf, title, style.page[0] - 2 * style.margin, hyphenate=False):
        pdf.text(style.margin, y, line)
        y += style.heading * 1.3
    state.y = y + style.leading
    state.top = state.y
    for number, paragraph in enumerate(paragraphs):
        _paragraph(state, _ligatures(paragraph) if style.ligatures else paragraph, indent=number > 0)


def _ligatures(text: str) -> str:
    return text.replace("ffi", "\ufb03").replace("fi", "\ufb01").replace("fl", "\ufb02")


def _paragraph(state: _State, text: str, indent: bool) -> None:
    pdf, style = state.pdf, state.style
    pdf.set_font("Serif", "", style.body)
    width = _column_width(style)
    first = style.indent if indent else 0.0
    lines = _wrap(pdf, text, width, style.hyphenate, first)
    for number, line in enumerate(lines):
        x, y = _next_line(state)
        offset = first if number == 0 else 0.0
        last = number == len(lines) - 1
        _set_line(pdf, line, x + offset, y, width - offset, justify=not last)


def _set_line(pdf: FPDF, line: str, x: float, y: float, width: float, justify: bool) -> None:
    words = line.split(" ")
    if not justify or len(words) == 1:
        pdf.text(x, y, line)
        return
    natural = sum(pdf.get_string_width(w) for w in words)
    gap = (width - natural) / (len(words) - 1)
    for word in words:
        pdf.text(x, y, word)
        x += pdf.get_string_width(word) + gap


def _wrap(pdf: FPDF, text: str, width: float, hyphenate: bool, first: float = 0.0) -> list[str]:
    """Greedy line breaking; a word that does not fit is hyphenated when a piece of it does."""
    lines: list[str] = []
    current = ""
    words = text.split()
    i = 0
    while i < len(words):
        word = words[i]
        room = width - (first if not lines else 0.0)
        candidate = f"{current} {word}" if current else word
        if pdf.get_string_width(candidate) <= room:
            current = candidate
            i += 1
            continue
        piece = _break(pdf, current, word, room) if hyphenate else None
        if piece is not None:
            head, tail = piece
            lines.append(f"{current} {head}" if current else head)
            words[i] = tail
            current = ""
            continue
        if not current:  # a single word wider than the line: set it anyway
            lines.append(word)
            i += 1
            continue
        lines.append(current)
        current = ""
    if current:
        lines.append(current)
    return lines


def _break(pdf: FPDF, current: str, word: str, room: float) -> tuple[str, str] | None:
    """(head with its hyphen, tail) for the longest piece of ``word`` that still fits on the line."""
    prefix = f"{current} " if current else ""
    if "-" in word.strip("-"):
        cut = word.rindex("-", 1, len(word) - 1)
        while cut > 0:
            head = word[: cut + 1]
            if word[cut + 1 :] and pdf.get_string_width(prefix + head) <= room:
                return head, word[cut + 1 :]
            cut = word.rfind("-", 0, cut)
        return None
    letters = [k for k, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 6 or not word[0].isalpha():
        return None
    for cut in range(len(word) - 3, 2, -1):
        head, tail = word[:cut], word[cut:]
        if not (head[-1].isalpha() and tail[:2].isalpha() and sum(c.isalpha() for c in tail) >= 3):
            continue
        if (head[-1] in VOWELS) != (tail[0] in VOWELS):  # break between a vowel and a consonant
            if pdf.get_string_width(prefix + head + "-") <= room:
                return head + "-", tail
    return None
