"""What the model receives: a text's lexicon entries applied, its normalisation, and its phonemes.

One function, :func:`prepare`, turns text into the phoneme strings kokoro is fed, one per paragraph:
``audiobook pronounce`` shows them and the engine speaks them, so what a user checks is what a book gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .engine.core import split_paragraphs, split_phonemes
from .engine.g2p import lang_code_for, phonemize
from .lexicon import Lexicon
from .normalize import Normalized, normalize


@dataclass(frozen=True)
class Prepared:
    """A text on its way to the model."""

    lang: str
    """The kokoro language code."""
    normalized: Normalized
    """The source with lexicon entries and normalisation applied, and the map back to the source."""
    paragraphs: tuple[str, ...]
    """Phonemes per paragraph: exactly what the engine cuts into pieces and feeds the model."""

    @property
    def spoken(self) -> str:
        return self.normalized.text

    @property
    def phonemes(self) -> str:
        """The paragraphs' phonemes, one paragraph a line."""
        return "\n".join(self.paragraphs)

    def pieces(self) -> list[str]:
        """The model calls: each paragraph cut into pieces that fit kokoro's 510-phoneme window."""
        return [piece for paragraph in self.paragraphs for piece in split_phonemes(paragraph)]


def speakable(text: str, lang: str, lexicon: Lexicon | None = None) -> Normalized:
    """``text`` with the lexicon's entries and then the normaliser's rules applied (lexicon spans win)."""
    code = lang_code_for(lang)
    fixed = lexicon.edits(text, code) if lexicon else []
    return normalize(text, code, fixed)


def prepare(text: str, lang: str, lexicon: Lexicon | None = None, split_pattern: str | None = None) -> Prepared:
    """``text`` as the model will receive it: normalised, then split into paragraphs, then phonemized."""
    code = lang_code_for(lang)
    normalized = speakable(text, code, lexicon)
    paragraphs = tuple(phonemize(p, code) for p in split_paragraphs(normalized.text, split_pattern))
    return Prepared(code, normalized, paragraphs)


def speak(
    text: str,
    lang: str,
    lexicon: Lexicon | None,
    out: Path,
    voice: str | None = None,
    model: str | None = None,
    backend: str = "auto",
) -> tuple[float, str]:
    """Speak ``text`` into the WAV file ``out`` on the CPU, as a job would; ``(seconds, voice)``."""
    from .engine.core import Engine, write_wav
    from .engine.loading import choose_model, default_voice, load_backend
    from .engine.voices import VoiceSpec

    code = lang_code_for(lang)
    source = choose_model(backend, model)
    spec = VoiceSpec.parse(voice or default_voice(source, code))
    engine = Engine(load_backend(source, "cpu"))
    synthesis = engine.synthesize(text, spec, lang=code, lexicon=lexicon)
    write_wav(out, synthesis.audio)
    return synthesis.seconds, str(spec)
