"""Numbers as words: cardinals, ordinals, years, fractions, and Roman numerals read into integers.

Pure functions with no tables beyond the number names. American usage: no "and" inside a number
("one hundred five"), as misaki reads digits, so a number we spell and one misaki spells sound alike.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}

_ROMAN = re.compile(r"M{0,4}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def cardinal(n: int) -> str:
    """``105`` -> ``one hundred five``; ``-3`` -> ``minus three``; ``21`` -> ``twenty-one``."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{cardinal(high)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError(n)  # unreachable: every n >= 100 meets a scale


def ordinal(n: int) -> str:
    """``1`` -> ``first``; ``8`` -> ``eighth``; ``21`` -> ``twenty-first``; ``100`` -> ``one hundredth``."""
    words = cardinal(n)
    head, sep, last = max(words.rpartition(" "), words.rpartition("-"), key=lambda part: len(part[0]))
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """A year as people say it: ``1914`` nineteen fourteen, ``1900`` nineteen hundred, ``1805`` eighteen oh five,
    ``2005`` two thousand five, ``2010`` twenty ten, ``800`` eight hundred."""
    if not 1000 <= n <= 9999 or (2000 <= n <= 2009) or n % 1000 == 0:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {'oh ' + cardinal(low) if low < 10 else cardinal(low)}"


def fraction(numerator: int, denominator: int) -> str:
    """``3, 4`` -> ``three quarters``; ``1, 2`` -> ``one half``; ``5, 8`` -> ``five eighths``."""
    if denominator in _DENOMINATORS:
        one, many = _DENOMINATORS[denominator]
    else:
        one = ordinal(denominator)
        many = one + "s"
    return f"{cardinal(numerator)} {one if numerator == 1 else many}"


def roman_value(numeral: str) -> int | None:
    """The value of a well-formed Roman numeral in either case (``XIV`` -> 14), else None (``IIII``, ``VX``)."""
    upper = numeral.upper()
    if not upper or not _ROMAN.fullmatch(upper):
        return None
    total = 0
    for char, following in zip(upper, upper[1:] + " ", strict=True):
        value = _ROMAN_VALUES[char]
        total += -value if following != " " and _ROMAN_VALUES[following] > value else value
    return total
