"""The English tagger: finds the spans misaki would misread, parses them, and has them spoken.

Each rule is a function from the text to :class:`~.spans.Edit` candidates of one semiotic class. Rules run
in priority order and a span claimed by an earlier rule is never touched by a later one ("World War II"
before Roman numerals, "$5m" before units). What misaki already reads right (plain numbers with or without
separators, money, percentages, decimals, years, decades, ordinals like 3rd, Mr., No. 5) is left alone, so
the text it receives stays as close to the book as possible.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterator
from fractions import Fraction

from . import context, verbalize
from .numbers import cardinal, fraction, roman_value
from .spans import Edit
from .tables import tables

Rule = Callable[[str], Iterator[Edit]]

_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan\.|Feb\.|Mar\.|Apr\.|Jun\.|Jul\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_AM_PM = r"\s?(?:[ap]\.m\.|[AP]\.M\.|[ap]m\b|[AP]M\b)"
_FRACTION_DENOMINATORS = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 32, 64, 100})
_VULGAR = "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"

# Patterns that could start anywhere open with a lookahead for the one character they need: a cheap first
# test at each position keeps a whole book at about a second.
_WORLD_WAR = re.compile(r"\bWorld War (II|I)\b|\bW\.?W\.? ?(II|I|2|1)\b")
_OLD_MONEY = re.compile(
    r"(?=[£\d½])(?:"
    rf"(?<![\w.])(?:£\s?(?P<l>{_NUMBER})\s+)?(?P<s>\d{{1,2}})s\.?\s+(?P<d>\d{{1,2}})?(?P<h>½)?d\.?(?!\w)"
    rf"|£\s?(?P<l2>{_NUMBER})\s+(?P<s2>\d{{1,2}})s\.?(?!\w)"
    r"|(?<![\w.£])(?P<d3>\d{1,2})?(?P<h3>½)?d\.(?!\w)"
    r"|(?<![\w.£])(?P<s4>1\d|[1-9])s\.(?!\w)"  # 1s. to 19s.: the twenties and thirties are never "20s."
    r")"
)
_MONEY_MAGNITUDE = re.compile(r"(?<=[$£€])(?:\d+(?:\.\d+)?)(?P<mag> ?(?:bn|k|m|b|K|M))(?![\w'’])")
_MONEY_RANGE = re.compile(rf"(?P<cur>[$£€])(?P<a>{_NUMBER}) ?[–-] ?(?P=cur)?(?P<b>{_NUMBER})(?![\d.,]\d|\w)")
_DATE_MONTH_DAY = re.compile(rf"\b(?=[ADFJMNOS])(?P<month>{_MONTH}) (?P<day>\d{{1,2}})\b(?![:\d]|,\d|\.\d)")
_DATE_DAY_MONTH = re.compile(rf"(?<![\w.,])(?P<day>\d{{1,2}})(?:st|nd|rd|th)? (?P<month>{_MONTH})(?!\w)")
_CLOCK = re.compile(rf"(?<![\d:.,])(?P<h>[01]?\d|2[0-3])(?::|\.(?=[0-5]\d{_AM_PM}))(?P<m>[0-5]\d)(?![\d:])")
_AM_PM_AT_END = re.compile(r"(?<![\w.])(?:([ap])\.m\.|([AP])\.M\.)")
_RANGE = re.compile(rf"(?<![\w.,/:–$£€-])(?P<a>{_NUMBER})(?P<dash> ?[–-] ?)(?P<b>{_NUMBER})(?![\d–-]|[.,:/]\d)")
_INCHES = re.compile(r"(?<=\d) ?(?:ft\.?|feet|foot) (?P<n>\d+) ?(?P<unit>in\.?)(?!\w)")
_FRACTION = re.compile(r"(?=\d)(?<![\w/.,])(?:(?P<whole>\d{1,3}) )?(?P<n>\d{1,2})/(?P<d>\d{1,3})(?![\w/]|[.,]\d)")
_VULGAR_FRACTION = re.compile(rf"(?=[\d{_VULGAR}])(?P<whole>\d+)?(?P<frac>[{_VULGAR}])")
_NUMBER_SIGN = re.compile(r"#(?= ?\d)( ?)")
_ROMAN = re.compile(r"(?<![\w'’.])(?:[IVXLCDM]+|[ivxlcdm]+)(?!\w|-(?![IVXLCDMivxlcdm]+\b)|\.\w)")
_DASH = re.compile(r"—|(?<![-–—])--(?![-–—])")
_BRACKET = re.compile(r"[\[\]]")
_CAPS_WORD = re.compile(r"(?<![\w'’])[A-Z][A-Z'’]*[A-Z](?![\w'’]*[a-z])(?!\w)")
_GAP_IN_CAPS = re.compile(r"[^a-z\n]*")
MISAKI_LINK = re.compile(r"\[[^\]\n]+\]\(/[^)\n]*/\)")
"""misaki's ``[word](/phonemes/)``: the word is said as the phonemes."""


def tag(text: str) -> list[Edit]:
    """The edits that make ``text`` read as a person reads it, in source order and non-overlapping.

    misaki's own ``[word](/phonemes/)`` links, which a user may write into a chunk's text, are left whole.
    """
    claimed = _Claims()
    for match in MISAKI_LINK.finditer(text):
        claimed.protect(match.start(), match.end())
    for rule in RULES:
        for edit in rule(text):
            claimed.add(edit)
    return claimed.edits()


def world_war(text: str) -> Iterator[Edit]:
    """World War II -> World War two; WWII and WW2 -> World War two."""
    for match in _WORLD_WAR.finditer(text):
        if match.group(1):
            yield Edit(match.start(1), match.end(1), cardinal(roman_value(match.group(1)) or 0), "roman")
        else:
            number = int(match.group(2)) if match.group(2).isdigit() else roman_value(match.group(2)) or 0
            yield Edit(match.start(), match.end(), f"World War {cardinal(number)}", "roman")


def old_money(text: str) -> Iterator[Edit]:
    """Pounds, shillings and pence: £5 10s. 6d., 3s. 6d., £1 1s., 4½d., 8s.; never "20s." (the twenties)."""
    for match in _OLD_MONEY.finditer(text):
        group = match.groupdict()
        pounds = group["l"] or group["l2"]
        shillings = group["s"] or group["s2"] or group["s4"]
        pence = group["d"] or group["d3"]
        half = bool(group["h"] or group["h3"])
        if not (pence or half or shillings):
            continue
        spoken = verbalize.old_money(_int(pounds), _int(shillings), _int(pence), half)
        yield Edit(match.start(), match.end(), _with_period(text, match.end(), spoken), "money")


def money_magnitude(text: str) -> Iterator[Edit]:
    """$5m -> $5 million (misaki then says "five million dollars")."""
    for match in _MONEY_MAGNITUDE.finditer(text):
        yield Edit(match.start("mag"), match.end("mag"), verbalize.magnitude(match.group("mag").strip()), "money")


def money_range(text: str) -> Iterator[Edit]:
    """$5–10 and $5-$10 -> 5 to 10 dollars."""
    names = {"$": "dollars", "£": "pounds", "€": "euros"}
    for match in _MONEY_RANGE.finditer(text):
        spoken = f"{match.group('a')} to {match.group('b')} {names[match.group('cur')]}"
        yield Edit(match.start(), match.end(), spoken, "money")


def dates(text: str) -> Iterator[Edit]:
    """May 5, 1888 -> May fifth, 1888; 5 May 1888 -> the fifth of May 1888 (misaki reads the year, and May 5th)."""
    for match in _DATE_MONTH_DAY.finditer(text):
        day = int(match.group("day"))
        after = text[match.end() : match.end() + 7]
        if not 1 <= day <= 31 or (match.group("month") == "May" and not re.match(r",? \d{4}|[^\w\s]|$", after)):
            continue
        yield Edit(match.start("day"), match.end(), verbalize.day_of_month(day), "date")
    for match in _DATE_DAY_MONTH.finditer(text):
        day = int(match.group("day"))
        if not 1 <= day <= 31:
            continue
        the = "" if context.word_before(text, match.start()).lower() == "the" else "the "
        yield Edit(match.start(), match.start("month"), f"{the}{verbalize.day_of_month(day)} of ", "date")


def clock_times(text: str) -> Iterator[Edit]:
    """10:15 -> ten fifteen; 6:05 -> six oh five; 7:00 -> seven o'clock; 10.15 p.m. -> ten fifteen p.m."""
    for match in _CLOCK.finditer(text):
        before_am_pm = bool(re.match(_AM_PM, text[match.end() : match.end() + 6]))
        spoken = verbalize.clock(int(match.group("h")), int(match.group("m")), before_am_pm)
        yield Edit(match.start(), match.end(), spoken, "time")


def am_pm_sentence_end(text: str) -> Iterator[Edit]:
    """ "at 9 a.m. The door" -> "at 9 am. The door": misaki reads a.m. right but swallows the sentence's end."""
    for match in _AM_PM_AT_END.finditer(text):
        if context.sentence_ends_after(text, match.end()):
            letter = (match.group(1) or match.group(2)).lower()
            yield Edit(match.start(), match.end(), f"{letter}m.", "time")


def ranges(text: str) -> Iterator[Edit]:
    """1914–1918 -> 1914 to 1918; pages 10-20 -> 10 to 20; 1914-18 -> 1914 to 18. Not 24-7, nor 555-1234."""
    for match in _RANGE.finditer(text):
        a, b = match.group("a"), match.group("b")
        low, high = int(a.replace(",", "")), int(b.replace(",", ""))
        if "-" in match.group("dash"):
            year_tail = len(a) == 4 and len(b) == 2 and high > low % 100
            if not (low < high or year_tail) or (len(a) == 3 and len(b) == 4) or max(len(a), len(b)) > 5:
                continue
        yield Edit(match.start("dash"), match.end("dash"), " to ", "range")


def fractions(text: str) -> Iterator[Edit]:
    """3/4 -> three quarters; 2 1/2 -> 2 and a half; 1/2 a cup -> half a cup; ½, 2½, ¾. Not 9/11 nor 24/7."""
    for match in _FRACTION.finditer(text):
        numerator, denominator = int(match.group("n")), int(match.group("d"))
        if denominator not in _FRACTION_DENOMINATORS or not 0 < numerator < denominator:
            continue
        value = Fraction(numerator, denominator)
        if numerator == 1 and denominator == 2:
            spoken = verbalize.vulgar_fraction(value, bool(match.group("whole")), _before_article(text, match.end()))
        else:
            spoken = ("and " if match.group("whole") else "") + fraction(numerator, denominator)
        start = match.end("whole") + 1 if match.group("whole") else match.start()
        yield Edit(start, match.end(), spoken, "fraction")
    for match in _VULGAR_FRACTION.finditer(text):
        value = Fraction(unicodedata.numeric(match.group("frac"))).limit_denominator(10)
        whole = bool(match.group("whole"))
        spoken = verbalize.vulgar_fraction(value, whole, _before_article(text, match.end()))
        yield Edit(match.start("frac"), match.end(), (" " if whole else "") + spoken, "fraction")


def number_sign(text: str) -> Iterator[Edit]:
    """#1 -> number 1."""
    for match in _NUMBER_SIGN.finditer(text):
        yield Edit(match.start(), match.end(), "number ", "number")


def units(text: str) -> Iterator[Edit]:
    """10 km -> 10 kilometers; 1 mph -> 1 mile per hour; 5°C -> 5 degrees Celsius; -5°C -> minus 5 ...

    A four-digit amount (1234 km) is spelled too: misaki would read it as a year.
    """
    for match in _units_pattern().finditer(text):
        number = match.group("num")
        unit = tables().units[match.group("unit")]
        plural = number.lstrip("-−") != "1"
        end = match.end("unit")
        if text[end : end + 1] == "." and not match.group("unit").endswith(".") and re.match(r"\.\s+[a-z]", text[end:]):
            end += 1  # "6 ft. tall": the period belongs to the unit, not to a sentence
        yield Edit(match.start("space"), end, " " + verbalize.unit(unit, plural), "unit")
        digits = number.lstrip("-−").replace(",", "")
        if number[:1] in "-−":
            yield Edit(match.start("num"), match.start("num") + 1, "minus ", "unit")
        if "," not in number and "." not in digits and len(digits) == 4 and int(digits) % 100:
            yield Edit(match.end("num") - 4, match.end("num"), cardinal(int(digits)), "unit")


def inches(text: str) -> Iterator[Edit]:
    """6 ft 2 in -> 6 ft 2 inches: "in" is an inch only after feet (elsewhere it is the word "in")."""
    for match in _INCHES.finditer(text):
        unit = match.group("unit")
        spoken = " inch" if match.group("n") == "1" else " inches"
        if unit.endswith(".") and context.sentence_ends_after(text, match.end("unit")):
            spoken += "."
        yield Edit(match.end("n"), match.end("unit"), spoken, "unit")


def abbreviations(text: str) -> Iterator[Edit]:
    """The abbreviations table, each read as its neighbours say (St. Saint or Street, c. circa before a year)."""
    table = tables().abbreviations
    for match in _abbreviations_pattern().finditer(text):
        abbreviation = table[match.group()]
        spoken = context.abbreviation_reading(text, match.start(), match.end(), abbreviation)
        if spoken is None:
            continue
        if match.group()[0].isupper():  # "Vol. II" -> "Volume two", "vol. ii" -> "volume two"
            spoken = spoken[0].upper() + spoken[1:]
        if match.group().endswith("."):
            # after "Capt." or "e.g." a capital is a name; after "Baker St." or "Jr." a new sentence
            ends_a_phrase = abbreviation.where in ("after_name", "list_end")
            strict = not (ends_a_phrase or spoken == abbreviation.spoken.partition("|")[2])
            if context.sentence_ends_after(text, match.end(), strict=strict):
                spoken += "."
        yield Edit(match.start(), match.end(), spoken, "abbreviation")


def roman_numerals(text: str) -> Iterator[Edit]:
    """Chapter XII -> Chapter twelve; Henry VIII -> Henry the eighth; "IV. The Arrival" at a line's start ->
    Four. The Arrival; Chapters IV–VI -> Chapters four to six. Never the pronoun I, nor mix, vivid or DC."""
    previous_end = -1
    for match in _ROMAN.finditer(text):
        value = roman_value(match.group())
        if value is None or value == 0:
            continue
        reading = context.roman_reading(text, match.start(), match.end())
        if reading is None:
            continue
        if previous_end >= 0 and text[previous_end : match.start()] in ("–", "-"):
            yield Edit(previous_end, match.start(), " to ", "roman")
        yield Edit(match.start(), match.end(), verbalize.roman(value, reading), "roman")
        previous_end = match.end()


def capitals(text: str) -> Iterator[Edit]:
    """All-capital headings and shouts read as words (A SCANDAL IN BOHEMIA -> A Scandal In Bohemia): misaki
    spells out a capitalised word it does not know (H-O-L-M-E-S). Acronyms in the table (FBI, NASA), which
    misaki reads as people do, and words with no vowel (NKVD) stay as written."""
    acronyms = tables().acronyms
    words = [match for match in _CAPS_WORD.finditer(text) if _speakable(match.group())]
    for i, match in enumerate(words):
        word = match.group()
        in_run = _caps_neighbour(text, words, i - 1, i) or _caps_neighbour(text, words, i, i + 1)
        alone_on_line = _alone_on_line(text, match.start(), match.end())
        if word not in acronyms and (in_run or alone_on_line):
            yield Edit(match.start(), match.end(), word[0] + word[1:].lower(), "capitals")


def punctuation(text: str) -> Iterator[Edit]:
    """Dashes and brackets misaki misreads: "again—before" goes to espeak whole, so the dash gets spaces;
    "word--word" loses its pause, so it becomes a dash; [brackets] become (parentheses), which misaki reads
    (and which cannot be taken for its ``[word](/phonemes/)`` syntax)."""
    for match in _DASH.finditer(text):
        before = match.start() > 0 and not text[match.start() - 1].isspace()
        after = match.end() < len(text) and not text[match.end()].isspace()
        if before or after or match.group() != "—":
            yield Edit(match.start(), match.end(), f"{' ' if before else ''}—{' ' if after else ''}", "punctuation")
    for match in _BRACKET.finditer(text):
        yield Edit(match.start(), match.end(), "(" if match.group() == "[" else ")", "punctuation")


RULES: tuple[Rule, ...] = (
    world_war,
    old_money,
    money_magnitude,
    money_range,
    dates,
    clock_times,
    am_pm_sentence_end,
    ranges,
    fractions,
    number_sign,
    units,
    inches,
    abbreviations,
    roman_numerals,
    capitals,
    punctuation,
)
"""In priority order: a span claimed by an earlier rule is not offered to a later one."""


class _Claims:
    """Accepted edits, kept sorted and non-overlapping."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._edits: list[Edit] = []

    def add(self, edit: Edit) -> bool:
        i = bisect.bisect_right(self._starts, edit.start)
        if i > 0 and self._edits[i - 1].end > edit.start:
            return False
        if i < len(self._edits) and self._edits[i].start < max(edit.end, edit.start + 1):
            return False
        self._starts.insert(i, edit.start)
        self._edits.insert(i, edit)
        return True

    def protect(self, start: int, end: int) -> None:
        """Claim a span for no edit at all."""
        self.add(Edit(start, end, "", "protected"))

    def edits(self) -> list[Edit]:
        return [edit for edit in self._edits if edit.kind != "protected"]


def _int(digits: str | None) -> int | None:
    return int(digits.replace(",", "")) if digits else None


def _with_period(text: str, end: int, spoken: str) -> str:
    """Keep a consumed final period when it also ends the sentence ("He owed £5 10s. He paid.")."""
    return spoken + "." if context.sentence_ends_after(text, end) else spoken


def _before_article(text: str, end: int) -> bool:
    return context.word_after(text, end) in ("a", "an")


def _caps_neighbour(text: str, words: list[re.Match[str]], i: int, j: int) -> bool:
    """Two capitalised words in one run: only spaces, punctuation and numerals between them, no line break."""
    if i < 0 or j >= len(words):
        return False
    return bool(_GAP_IN_CAPS.fullmatch(text, words[i].end(), words[j].start()))


def _alone_on_line(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    return not any(char.isalpha() for char in line[: start - line_start] + line[end - line_start :])


def _speakable(word: str) -> bool:
    """Has a vowel and is not a Roman numeral (those are the numeral rule's to read or leave)."""
    return any(char in "AEIOUY" for char in word) and not set(word) <= set("IVXLCDM'’")


_compiled: dict[str, re.Pattern[str]] = {}


def _abbreviations_pattern() -> re.Pattern[str]:
    if "abbreviations" not in _compiled:
        keys = sorted(tables().abbreviations, key=len, reverse=True)
        alternatives = "|".join(re.escape(key) + ("" if key.endswith(".") else r"(?![.\w])") for key in keys)
        _compiled["abbreviations"] = re.compile(rf"(?<![\w.&'’])(?:{alternatives})(?!\w)")
    return _compiled["abbreviations"]


def _units_pattern() -> re.Pattern[str]:
    if "units" not in _compiled:
        keys = "|".join(re.escape(key) for key in sorted(tables().units, key=len, reverse=True))
        _compiled["units"] = re.compile(
            rf"(?<![\w.,$£€])(?P<num>[-−]?(?:{_NUMBER})(?:\.\d+)?)(?P<space> ?)(?P<unit>{keys})(?![\w/°])"
        )
    return _compiled["units"]
