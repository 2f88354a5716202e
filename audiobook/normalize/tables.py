"""The English normaliser's data tables (``data/*.tsv``, ``data/*.txt``), read once per process.

Abbreviations, acronyms, units, regnal names and the words that make a Roman numeral a number live in these
files, not in code, so adding one is a one-line change that the table-driven tests pick up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

WHERE = ("title", "after_name", "before_number", "near_number", "anywhere", "list_end", "name_side")
"""Where an abbreviation is expanded; see ``data/abbreviations.tsv``."""


@dataclass(frozen=True)
class Abbreviation:
    written: str
    spoken: str
    """For ``name_side`` two readings: before a name ``|`` after a name."""
    where: str


@dataclass(frozen=True)
class Unit:
    written: str
    singular: str
    plural: str


@dataclass(frozen=True)
class Tables:
    abbreviations: dict[str, Abbreviation]
    acronyms: dict[str, str]
    """Written form -> ``letters`` or ``word``."""
    units: dict[str, Unit]
    regnal_names: frozenset[str]
    roman_keywords: frozenset[str]
    """Lower-case words after which a Roman numeral is a cardinal (chapter, act...)."""
    titles: frozenset[str]
    """Lower-case titles that make the next name regnal (king, pope...)."""


@functools.cache
def tables() -> Tables:
    """All tables, parsed and checked; a malformed row is a bug in the package, so it raises ``ValueError``."""
    abbreviations = {}
    for fields in _rows("abbreviations.tsv", 3):
        written, spoken, where = fields
        if where not in WHERE or (where == "name_side") != ("|" in spoken):
            raise ValueError(f"abbreviations.tsv: bad row {fields}")
        abbreviations[written] = Abbreviation(written, spoken, where)
    acronyms = {}
    for written, how in _rows("acronyms.tsv", 2):
        if how not in ("letters", "word"):
            raise ValueError(f"acronyms.tsv: bad row {written!r} {how!r}")
        acronyms[written] = how
    units = {fields[0]: Unit(*fields) for fields in _rows("units.tsv", 3)}
    sections = _sections("roman_context.txt")
    return Tables(
        abbreviations,
        acronyms,
        units,
        frozenset(_words("regnal.txt")),
        frozenset(sections["cardinal"]),
        frozenset(sections["title"]),
    )


def _lines(name: str) -> list[str]:
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _rows(name: str, width: int) -> list[list[str]]:
    rows = [line.split("\t") for line in _lines(name)]
    for row in rows:
        if len(row) != width:
            raise ValueError(f"{name}: expected {width} tab-separated fields: {row}")
    return rows


def _words(name: str) -> list[str]:
    return [word for line in _lines(name) for word in line.split()]


def _sections(name: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _lines(name):
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), [])
        else:
            current.extend(line.split())
    return sections
