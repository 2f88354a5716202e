"""The audio settings of a job: what the user asked for + what the job recorded + this machine, resolved once.

Two records cross this module's boundary:

- :class:`SettingsRequest`: the flags a user gave. ``None`` means "not given": keep what the job recorded, or,
  for a new job, use the default.
- :class:`Settings`: everything that changes the synthesized audio, concrete and validated: a backend and a
  model (local paths absolute, a hub repo pinned to a commit), a parsed voice that the model has, a kokoro
  language code, a speed in range. job.json stores it; workers are sent it; "did the settings change?" compares
  two of them field by field, so the same command line always matches its own job.

:func:`resolve` is the only place a default is applied. Device, workers and threads are not here: they do not
change the audio (see :mod:`audiobook.devices` and :mod:`audiobook.pool`). For the bundled weights ``auto``
also picks the way to run them that was measured fastest on this machine (:mod:`audiobook.calibrate`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from . import SAMPLE_RATE
from .chunker import DEFAULT_MAX_CHUNK_CHARS
from .engine import bundled, loading
from .engine.core import MAX_SPEED, MIN_SPEED, check_speed
from .engine.g2p import LANG_CODES, lang_code_for
from .engine.voices import VoiceSpec
from .errors import JobError, ModelError
from .lexicon import load_lexicons
from .normalize import NORMALIZER_VERSION

log = logging.getLogger(__name__)

DEFAULT_SPEED = 1.0
DEFAULT_SEED = 0
CHUNK_CHARS_RANGE = (200, 100_000)
"""Smaller chunks spend more time on per-chunk overhead than on speech; larger ones lose more to a crash."""
PER_CHUNK = frozenset({"normalizer", "lexicon"})
"""Settings whose change alters only some chunks, if any: never refused. A new normaliser version is reported
and goes on; a changed lexicon re-synthesizes the chunks whose words it touches (see ``Job.adopt``)."""


@dataclass(frozen=True)
class SettingsRequest:
    """Audio settings as the user gave them (``None``: not given)."""

    backend: str | None = None
    """``auto``, ``torch`` or ``onnx``; ``auto`` on an existing job means "keep its backend"."""
    model: str | None = None
    """A Hugging Face repo id, a local model directory or ``.onnx`` file (relative paths allowed), ``bundled``."""
    voice: str | None = None
    """A voice name, ``.pt``/``.npy`` pack path, or blend ``af_heart*0.7+af_bella*0.3``."""
    speed: float | None = None
    lang: str | None = None
    """A kokoro language code (``a``) or a language tag (``en-GB``)."""
    seed: int | None = None
    max_chunk_chars: int | None = None
    lexicon: str | None = None
    """A pronunciation lexicon file for the job (``--lexicon``; a job's own copy on resume), laid over the
    user's own (``$XDG_CONFIG_HOME/audiobook/lexicon.txt``), which applies in any case."""


@dataclass(frozen=True)
class Settings:
    """Everything that changes a job's audio, resolved. Changing one on resume needs an explicit flag."""

    backend: str
    """``torch`` or ``onnx``."""
    model: str
    """A Hugging Face repo id, an absolute local path, or ``bundled``."""
    voice: VoiceSpec
    speed: float
    lang: str
    """A kokoro language code: one of ``LANG_CODES``."""
    seed: int
    """The job seed; each chunk's decoder noise is seeded from it and the chunk id."""
    max_chunk_chars: int
    """The chunk size limit the plan used."""
    revision: str | None = None
    """For a hub repo: the commit every chunk is made with."""
    sample_rate: int = SAMPLE_RATE
    normalizer: str = NORMALIZER_VERSION
    """The version of the text normaliser (numerals, abbreviations, units...); ``""``: made before there was one."""
    lexicon: str = ""
    """sha256 of the pronunciation lexicon in use (the job's over the user's); ``""``: none."""

    @property
    def source(self) -> loading.ModelSource:
        return loading.ModelSource(self.backend, self.model, revision=self.revision)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["voice"] = str(self.voice)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Read what :meth:`to_dict` wrote (job.json); ``JobError`` if a field is missing or malformed."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("normalizer", "")  # a job from before the normaliser: its audio had none
        try:
            values["voice"] = VoiceSpec.parse(values["voice"], must_exist=False)
            return cls(**values)
        except (KeyError, TypeError, ModelError) as e:
            raise JobError(f"job settings are malformed ({e})") from e


def resolve(request: SettingsRequest, recorded: Settings | None = None, book_language: str = "en") -> Settings:
    """Concrete, validated settings: ``request`` over ``recorded`` (a job's) over the defaults.

    Raises ``ModelError`` or ``JobError`` (one line, naming the fix) for anything that cannot work: an unknown
    language, a voice the model lacks, a speed out of range, a model that is not there. Cheap enough to run
    before any job directory is written: at most one short hub probe and a snapshot of a repo's voices.
    """
    lang = _lang(request, recorded, book_language)  # first: the cheapest check, and it needs no network
    source = _model(request, recorded)
    voice = _voice(request, recorded, source, lang)
    speed = _pick(request.speed, recorded, "speed", DEFAULT_SPEED)
    check_speed(speed)
    max_chunk_chars = _pick(request.max_chunk_chars, recorded, "max_chunk_chars", DEFAULT_MAX_CHUNK_CHARS)
    low, high = CHUNK_CHARS_RANGE
    if not low <= max_chunk_chars <= high:
        raise JobError(f"--max-chunk-chars {max_chunk_chars} is out of range; use {low} to {high}")
    return Settings(
        backend=source.backend,
        model=source.model,
        voice=voice,
        speed=float(speed),
        lang=lang,
        seed=int(_pick(request.seed, recorded, "seed", DEFAULT_SEED)),
        max_chunk_chars=int(max_chunk_chars),
        revision=source.revision,
        lexicon=_lexicon(request),
    )


def changes(old: Settings, new: Settings) -> dict[str, tuple[Any, Any]]:
    """The fields whose values differ, as ``{name: (old, new)}`` in their job.json form."""
    before, after = old.to_dict(), new.to_dict()
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}


def describe(diff: dict[str, tuple[Any, Any]]) -> str:
    """``voice 'af_test' -> 'bf_test', speed 1.0 -> 1.3``"""
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in diff.items())


def _lexicon(request: SettingsRequest) -> str:
    """The digest of the lexicon in use; a lexicon file that cannot be read fails here, before any work."""
    lexicon = load_lexicons(request.lexicon)
    return lexicon.sha256() if lexicon else ""


def _pick(given: Any, recorded: Settings | None, name: str, default: Any) -> Any:
    if given is not None:
        return given
    return getattr(recorded, name) if recorded is not None else default


def _model(request: SettingsRequest, recorded: Settings | None) -> loading.ModelSource:
    asked = request.model is not None or request.backend not in (None, "auto")
    if recorded is not None and not asked:
        return recorded.source
    chosen = loading.choose_model(request.backend, request.model)
    if recorded is not None and (chosen.backend, chosen.model) == (recorded.backend, recorded.model):
        return recorded.source  # the same model: keep the revision it was pinned to
    if chosen.fallback:
        loading.announce_fallback(chosen)
    if request.backend in (None, "auto") and chosen.model == bundled.BUNDLED:
        chosen = _fastest_way(chosen)
    return loading.pin(chosen)


def _fastest_way(chosen: loading.ModelSource) -> loading.ModelSource:
    """The bundled weights run three ways (int8 graph, float32 graph, torch): ``auto`` takes the one measured
    fastest on this machine (see :mod:`audiobook.calibrate`), unless ``AUDIOBOOK_CALIBRATE=0``."""
    from . import calibrate

    if not calibrate.enabled():
        return chosen
    best = calibrate.fastest().best
    reason = f"measured fastest here: {best.chars_per_s:.1f} chars/s per worker on {best.device or 'cpu'}"
    return dataclasses.replace(chosen, backend=best.backend, model=best.model, reason=reason)


def _lang(request: SettingsRequest, recorded: Settings | None, book_language: str) -> str:
    if request.lang is not None:
        return lang_code_for(request.lang)
    if recorded is not None:
        return recorded.lang
    try:
        return lang_code_for(book_language)
    except ModelError:
        codes = ", ".join(LANG_CODES)
        raise ModelError(
            f"the book's language {book_language!r} is not one kokoro speaks; pass --lang with one "
            f"of {codes} to read it anyway"
        ) from None


def _voice(request: SettingsRequest, recorded: Settings | None, source: loading.ModelSource, lang: str) -> VoiceSpec:
    if request.voice is not None:
        voice = VoiceSpec.parse(request.voice)
    elif recorded is not None:
        voice = recorded.voice
        if source == recorded.source:
            return voice  # checked when it was recorded
    else:
        return VoiceSpec.parse(loading.default_voice(source, lang))
    if voice.names:
        voice.check(loading.model_voices(source))
    return voice


__all__ = ["MAX_SPEED", "MIN_SPEED", "PER_CHUNK", "Settings", "SettingsRequest", "changes", "describe", "resolve"]
