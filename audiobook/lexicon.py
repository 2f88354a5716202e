"""Pronunciation lexicons: how to say the names (and any other words) that G2P gets wrong.

A lexicon file has one entry a line, ``WRITTEN = SPOKEN``; blank lines and lines starting with ``#`` are
ignored::

    # names in this book
    Hermione = Her-my-oh-nee        a respelling: read by G2P like any other text
    Ukridge = /jˈukɹɪʤ/             phonemes in Kokoro's alphabet, between slashes
    St. John = /sˈɪnʤən/            a phrase: its words match across any spaces or line breaks

**Phonemes** are written in the alphabet misaki (Kokoro's English G2P) uses, the one ``audiobook pronounce``
prints: ``A`` for the vowel of "day", ``I`` "high", ``O`` "go" (``Q`` in British English), ``W`` "how",
``Y`` "boy", ``ʤ`` "judge", ``ʧ`` "church", ``ɹ`` "red", ``ˈ`` and ``ˌ`` before a stressed vowel. They reach
the model exactly as written, through misaki's ``[word](/phonemes/)`` syntax. Phoneme entries are for English
(``--lang a`` or ``b``); in other languages only respellings apply.

**Case.** An entry written in lower case matches the word in any case (``tear`` matches tear, Tear, TEAR).
An entry with a capital letter matches that exact spelling, or the same in all capitals (``Reading`` matches
Reading and READING, never reading).

**Word boundaries.** An entry matches whole words only: ``Ron`` does not touch "Ronald" or "Byron". A
possessive (``Holmes's``, ``Holmes’s``) and a hyphenated compound (``Ukridge-like``) still match; the
possessive is spoken after the entry's phonemes.

**Which lexicon.** The per-user file, ``$XDG_CONFIG_HOME/audiobook/lexicon.txt`` (``~/.config/audiobook/lexicon.txt``;
``%APPDATA%\\audiobook\\lexicon.txt`` on Windows), applies to every book; a job's own file (``--lexicon FILE``)
is laid over it, its entries replacing the user's for the same written form.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import LexiconError
from .normalize import MISAKI_LINK, Edit

log = logging.getLogger(__name__)

USER_LEXICON = "lexicon.txt"

ENGLISH_PHONEMES = frozenset("AIOQTWYabdfhijklmnpstuvwzæðŋɑɒɔəɛɜɡɪɹɾʃʊʌʒʤʧˈˌːθᵊᵻʔ")
"""The symbols misaki's English G2P writes (American and British), which Kokoro's English voices were trained
on; ``T`` is misaki's flap."""

_IPA_HINTS = {
    "eɪ": "A",
    "aɪ": "I",
    "oʊ": "O",
    "əʊ": "Q",
    "aʊ": "W",
    "ɔɪ": "Y",
    "dʒ": "ʤ",
    "tʃ": "ʧ",
    "g": "ɡ",
    "r": "ɹ",
    "ɚ": "əɹ",
    "ɝ": "ɜɹ",
    "'": "ˈ",
    "e": "ɛ (or A)",
    "o": "O (or ɔ)",
    "x": "k",
    "ɐ": "ə",
    "y": "j",
    "c": "k",
    "ɫ": "l",
    ":": "ː",
}
_SIBILANTS = frozenset("szʃʒʧʤ")
_VOICELESS = frozenset("ptkfθ")
_POSSESSIVE = re.compile(r"['’]s\b")


@dataclass(frozen=True)
class Entry:
    """One line of a lexicon."""

    written: str
    spoken: str
    """A respelling, or phonemes when ``phonemes`` is true (without the slashes)."""
    phonemes: bool
    origin: str = ""
    """``file:line``, for messages."""

    @property
    def any_case(self) -> bool:
        return self.written == self.written.lower()

    def matches(self, found: str) -> bool:
        """Whether the text ``found`` (whitespace normalised) is this entry under the case rules."""
        return found.lower() == self.written.lower() if self.any_case else found in (self.written, self.written.upper())

    def line(self) -> str:
        """The entry as a lexicon line, whatever the file's spacing was."""
        return f"{self.written} = {'/' + self.spoken + '/' if self.phonemes else self.spoken}"


class Lexicon:
    """Entries keyed by their written form (case folded for lower-case entries), matched longest first."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.entries: dict[str, Entry] = {}
        for entry in entries:
            self.entries[_key(entry.written)] = entry
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def over(self, other: Lexicon) -> Lexicon:
        """This lexicon laid over ``other``: on the same written form, this one's entry wins."""
        return Lexicon([*other.entries.values(), *self.entries.values()])

    def text(self) -> str:
        """The lexicon as a file, entries sorted: what a job directory keeps, and what ``sha256`` digests."""
        return "".join(entry.line() + "\n" for entry in sorted(self.entries.values(), key=lambda e: e.written))

    def sha256(self) -> str:
        return hashlib.sha256(self.text().encode("utf-8")).hexdigest()

    def find(self, text: str) -> list[tuple[int, int, Entry]]:
        """Non-overlapping ``(start, end, entry)`` matches in ``text``, in order; longer entries first."""
        if not self.entries:
            return []
        found = []
        links = [m.span() for m in MISAKI_LINK.finditer(text)]  # a user's own link in a chunk's text wins
        for match in self._compiled().finditer(text):
            if not any(start < match.end() and match.start() < end for start, end in links):
                found.append((match.start(), match.end(), self._entry_for(match.group())))
        return found

    def edits(self, text: str, lang: str = "a") -> list[Edit]:
        """The edits that make ``text`` say every entry found: respellings replace the words, phonemes become
        misaki links (English only; elsewhere they are skipped)."""
        english = lang in ("a", "b")
        edits = []
        for start, end, entry in self.find(text):
            if not entry.phonemes:
                edits.append(Edit(start, end, entry.spoken, "lexicon"))
            elif english:
                phonemes = entry.spoken
                if possessive := _POSSESSIVE.match(text, end):
                    phonemes += _possessive_suffix(phonemes, british=lang == "b")
                    end = possessive.end()
                edits.append(Edit(start, end, f"[{_link_text(text[start:end])}](/{phonemes}/)", "lexicon"))
        return edits

    def touching(self, text: str) -> Lexicon:
        """The entries found in ``text``: all a chunk's synthesis needs of the lexicon, and all it depends on."""
        return Lexicon(entry for _, _, entry in self.find(text))

    def fingerprint(self, text: str) -> str:
        """A stable digest of the entries that touch ``text`` (``""`` when none do): a chunk made under one
        fingerprint needs synthesizing again only when its fingerprint changes."""
        return digest(self.touching(text).text())

    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            entries = sorted(self.entries.values(), key=lambda entry: len(entry.written), reverse=True)
            alternatives = "|".join(_alternative(entry) for entry in entries)
            # not inside a word, nor after an elision (O'Brien) where an apostrophe follows a letter
            self._pattern = re.compile(rf"(?<!\w)(?<!\w['’])(?:{alternatives})(?!\w)")
        return self._pattern

    def _entry_for(self, found: str) -> Entry:
        """The entry a match of :meth:`_compiled` stands for (a cased entry before a lower-case one)."""
        found = " ".join(found.split())
        entry = self.entries.get(found)
        if entry is None or not entry.matches(found):
            entry = next((e for e in self.entries.values() if not e.any_case and e.matches(found)), None)
        return entry or self.entries[found.lower()]


def digest(lines: str) -> str:
    """A short stable digest of lexicon lines (``""`` for none): what a chunk records it was made with."""
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()[:16] if lines else ""


def parse(text: str, origin: str = "lexicon") -> Lexicon:
    """A lexicon from its file's text; ``LexiconError`` ("origin:line: reason") on the first bad line."""
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{origin}:{number}"
        written, sep, spoken = (part.strip() for part in line.partition("="))
        if not sep:
            raise LexiconError(f"{where}: expected 'WRITTEN = SPOKEN', got {line!r}")
        if not written or not spoken:
            raise LexiconError(f"{where}: {'the written form' if not written else 'the pronunciation'} is empty")
        if not any(char.isalnum() for char in written) or any(char in written for char in "[]()/="):
            raise LexiconError(f"{where}: {written!r} is not a word or phrase")
        written = " ".join(written.split())
        if _key(written) in seen:
            raise LexiconError(f"{where}: {written!r} is already on line {seen[_key(written)]}")
        seen[_key(written)] = number
        phonemes = len(spoken) >= 2 and spoken.startswith("/") and spoken.endswith("/")
        if phonemes:
            spoken = _check_phonemes(spoken[1:-1].strip(), where)
        elif any(char in spoken for char in "[]()/"):
            raise LexiconError(f"{where}: a respelling cannot contain [ ] ( ) or /; for phonemes write /.../")
        entries.append(Entry(written, spoken, phonemes, where))
    return Lexicon(entries)


def load(path: str | os.PathLike[str]) -> Lexicon:
    """Read a lexicon file (UTF-8); ``LexiconError`` if it is missing, unreadable or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise LexiconError(f"{path}: no such lexicon file") from e
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise LexiconError(f"{path}: cannot be read ({e.strerror or e})") from e
    return parse(text, str(path))


def user_lexicon_path() -> Path:
    """The per-user lexicon: ``$XDG_CONFIG_HOME/audiobook/lexicon.txt``, ``%APPDATA%`` on Windows."""
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        base = Path(os.environ["APPDATA"])
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "audiobook" / USER_LEXICON


def load_lexicons(job_lexicon: str | os.PathLike[str] | None = None, user: bool = True) -> Lexicon:
    """The user's lexicon (when ``user`` and the file exists) with ``job_lexicon`` laid over it."""
    combined = Lexicon()
    user_path = user_lexicon_path()
    if user and user_path.is_file():
        combined = load(user_path)
        log.debug("user lexicon %s: %d entries", user_path, len(combined))
    if job_lexicon is not None:
        combined = load(job_lexicon).over(combined)
    return combined


def _alternative(entry: Entry) -> str:
    """The entry as a regex alternative: any case for a lower-case entry; else as written or in capitals."""
    words = entry.written.split()
    if entry.any_case:
        return "(?i:" + r"\s+".join(map(re.escape, words)) + ")"
    forms = (words, [word.upper() for word in words])
    return "(?:" + "|".join(r"\s+".join(map(re.escape, form)) for form in forms) + ")"


def _key(written: str) -> str:
    """Entries are keyed by their text; a lower-case entry also stands for every capitalisation."""
    return " ".join(written.split())


def _check_phonemes(phonemes: str, where: str) -> str:
    if not phonemes:
        raise LexiconError(f"{where}: no phonemes between the slashes")
    unknown = [char for char in phonemes if char not in ENGLISH_PHONEMES and char != " "]  # " ": a phrase
    if unknown:
        char = unknown[0]
        pair = next((p for p in _IPA_HINTS if len(p) > 1 and char in p and p in phonemes), char)
        hint = f"; write {_IPA_HINTS[pair]}" if pair in _IPA_HINTS else ""
        raise LexiconError(
            f"{where}: {pair!r} is not in Kokoro's English phonemes{hint} "
            f"(`audiobook pronounce WORD` shows how words are written)"
        )
    return phonemes


def _possessive_suffix(phonemes: str, british: bool) -> str:
    last = phonemes.rstrip("ˈˌ")[-1:]
    if last in _SIBILANTS:
        return "ɪz" if british else "ᵻz"
    return "s" if last in _VOICELESS else "z"


def _link_text(text: str) -> str:
    """misaki's link syntax cannot hold brackets; the text inside only guides tokenisation."""
    return " ".join(text.replace("[", "(").replace("]", ")").split())
