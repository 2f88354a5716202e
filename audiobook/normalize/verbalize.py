"""Speaking each semiotic class: parsed values in, the words a person says out.

The tagger (:mod:`.english`) finds and parses spans; these functions only say them. Digits that misaki
reads right are kept as digits by the tagger; what is spelled here is what misaki would misread.
"""

from __future__ import annotations

from fractions import Fraction

from .numbers import cardinal, fraction, ordinal
from .tables import Unit

_PENCE = {
    1: "a penny",
    2: "twopence",
    3: "threepence",
    4: "fourpence",
    5: "fivepence",
    6: "sixpence",
    7: "sevenpence",
    8: "eightpence",
    9: "ninepence",
    10: "tenpence",
    11: "elevenpence",
}


def roman(value: int, reading: str) -> str:
    """``12, cardinal`` twelve; ``12, heading`` Twelve; ``8, ordinal`` the eighth."""
    if reading == "ordinal":
        return "the " + ordinal(value)
    words = cardinal(value)
    return words.capitalize() if reading == "heading" else words


def clock(hour: int, minute: int, before_am_pm: bool) -> str:
    """``10:15`` ten fifteen; ``6:05`` six oh five; ``7:00`` seven o'clock (seven, before p.m.)."""
    if minute == 0:
        return cardinal(hour) if before_am_pm else f"{cardinal(hour)} o'clock"
    return f"{cardinal(hour)} {'oh ' if minute < 10 else ''}{cardinal(minute)}"


def day_of_month(day: int) -> str:
    return ordinal(day)


def vulgar_fraction(value: Fraction, whole: bool, before_article: bool) -> str:
    """``½`` one half, or half before "a" (½ a mile); after a whole number "and a half" (2½)."""
    if value == Fraction(1, 2) and before_article and not whole:
        return "half"
    if whole:
        return "and " + (
            "a half"
            if value == Fraction(1, 2)
            else "a quarter"
            if value == Fraction(1, 4)
            else fraction(value.numerator, value.denominator)
        )
    return fraction(value.numerator, value.denominator)


def unit(written: Unit, plural: bool) -> str:
    return written.plural if plural else written.singular


def old_money(pounds: int | None, shillings: int | None, pence: int | None, halfpenny: bool) -> str:
    """£ s. d.: ``5, 10, 6`` five pounds ten shillings and sixpence; ``None, 3, 6`` three shillings and sixpence."""
    parts = []
    if pounds is not None:
        parts.append(f"{cardinal(pounds)} {'pound' if pounds == 1 else 'pounds'}")
    if shillings is not None:
        parts.append(f"{cardinal(shillings)} {'shilling' if shillings == 1 else 'shillings'}")
    if pence is not None or halfpenny:
        parts.append(_pence(pence or 0, halfpenny))
    if len(parts) > 1 and (pence is not None or halfpenny):
        return " ".join(parts[:-1]) + " and " + parts[-1]
    return " ".join(parts)


def _pence(pence: int, halfpenny: bool) -> str:
    if pence == 0:
        return "a halfpenny"
    words = _PENCE.get(pence) or f"{cardinal(pence)} pence"
    return f"{words} halfpenny" if halfpenny else words


def magnitude(suffix: str) -> str:
    """``$5m``: the ``m`` is " million"."""
    return {"k": " thousand", "m": " million", "bn": " billion", "b": " billion"}[suffix.lower()]
