"""Word and sentence timings of one chunk, from the model's own predicted durations.

A character of the chunk's text travels to the audio like this, and every step keeps the way back:

1. spoken text: what G2P reads, the lexicon and the normaliser applied ("XII" -> "twelve"), with the map back
   to the written span (:func:`audiobook.speech.speakable`);
2. paragraphs: the engine speaks each paragraph of the spoken text with its whitespace collapsed
   (:class:`Paragraph` keeps where each character came from, through the spoken text, in the chunk's text);
3. G2P tokens: misaki's English G2P gives each token's text and phonemes; the paragraph's phoneme string is their
   phonemes and whitespace joined, so every phoneme character has an owner token (:func:`phoneme_owners`);
4. pieces: :func:`~audiobook.engine.core.split_phonemes` cuts the string at whitespace only, so each piece is a
   run of it (:func:`piece_offsets`); pieces play one after another in the chunk's audio;
5. model input: the vocabulary drops symbols it lacks; each kept character is one token whose predicted
   duration (frames of 600 samples, a boundary token at each end of the piece) says when it sounds
   (:func:`char_frames`).

A word's time runs from its first phoneme's first frame to its last phoneme's last frame; the spaces and
punctuation pauses between words belong to no word. A sentence runs from its first word's start to its last
word's end. Languages whose G2P gives no tokens (espeak's: Spanish, French, Hindi, Italian, Portuguese; Japanese,
Chinese) get sentence times only: each sentence's share of the paragraph's phonemes is taken from its own
phoneme count, and its time from the durations of that share.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..chunker import sentence_spans
from ..errors import SynthesisError
from ..timing import SENTENCE, WORD, ChunkTimings, Sentence, Word
from .base import SAMPLES_PER_FRAME, PieceAudio
from .core import PARAGRAPH_BREAK, Engine, Synthesis, check_speed, count_phonemes, synthesis_of
from .g2p import Token, phonemize, phonemize_tokens
from .voices import VoiceSpec

if TYPE_CHECKING:
    from ..lexicon import Lexicon

log = logging.getLogger(__name__)

Span = tuple[int, int]


class Spoken(Protocol):
    """The text G2P reads for a paragraph, and the way back to the paragraph's own text (the normaliser's
    ``Normalized`` is one)."""

    text: str

    def to_source(self, start: int, end: int) -> Span:
        """The paragraph-text span that spoken ``text[start:end]`` stands for."""


@dataclass(frozen=True)
class Verbatim:
    """A text spoken as written: every span stands for itself."""

    text: str

    def to_source(self, start: int, end: int) -> Span:
        return start, end


@dataclass(frozen=True)
class Paragraph:
    """One paragraph as the engine speaks it, whitespace collapsed, and where each character came from."""

    text: str
    offsets: tuple[int, ...]
    """``offsets[i]`` is the spoken-text index of ``text[i]``; one more entry holds the paragraph's end."""
    spoken: Spoken = Verbatim("")
    """The whole chunk's spoken text, whose ``to_source`` leads back to the chunk's own text."""

    def source(self, start: int, end: int) -> Span:
        """The chunk-text span of ``text[start:end]`` (``end > start``)."""
        return self.spoken.to_source(self.offsets[start], self.offsets[end - 1] + 1)


def paragraphs(text: str, split_pattern: str | None = None, spoken: Spoken | None = None) -> list[Paragraph]:
    """The paragraphs :func:`~audiobook.engine.core.split_paragraphs` gives of ``text``, each with its offsets in
    it; ``spoken`` (whose ``text`` is ``text``) maps those back to the text it was made from."""
    spoken = spoken or Verbatim(text)
    bounds = [0]
    for match in re.finditer(split_pattern or PARAGRAPH_BREAK, text):
        bounds += [match.start(), match.end()]
    bounds.append(len(text))
    out = []
    for start, stop in zip(bounds[::2], bounds[1::2], strict=True):
        chars: list[str] = []
        offsets: list[int] = []
        for i in range(start, stop):
            if not text[i].isspace():
                if chars and text[i - 1].isspace():  # a run of whitespace becomes one space
                    chars.append(" ")
                    offsets.append(i - 1)
                chars.append(text[i])
                offsets.append(i)
        if chars:
            out.append(Paragraph("".join(chars), (*offsets, offsets[-1] + 1), spoken))
    return out


def phoneme_owners(tokens: Sequence[Token]) -> tuple[str, list[int]]:
    """The phoneme string :func:`~audiobook.engine.g2p.phonemize` makes of ``tokens``, and the index of the token
    each character belongs to (-1 for a space between tokens)."""
    raw: list[tuple[str, int]] = []
    for i, token in enumerate(tokens):
        raw += [(c, i) for c in token.phonemes] + [(c, -1) for c in token.whitespace]
    chars: list[str] = []
    owners: list[int] = []
    run: list[int] = []
    for char, owner in raw:
        if char.isspace():
            run.append(owner)
            continue
        if run and chars:  # whitespace collapses to one space, owned only if one token holds all of it
            chars.append(" ")
            owners.append(run[0] if len(set(run)) == 1 else -1)
        run = []
        chars.append(char)
        owners.append(owner)
    return "".join(chars), owners


def piece_offsets(phonemes: str, pieces: Sequence[str]) -> list[int]:
    """Where each piece starts in ``phonemes``; ``SynthesisError`` if they are not runs of it in order."""
    offsets = []
    position = 0
    for piece in pieces:
        while position < len(phonemes) and phonemes[position].isspace() and not phonemes.startswith(piece, position):
            position += 1
        if not phonemes.startswith(piece, position):
            raise SynthesisError(f"piece {len(offsets)} is not found in its paragraph's phonemes")
        offsets.append(position)
        position += len(piece)
    return offsets


def char_frames(phonemes: str, pieces: Sequence[str], timed: Sequence[PieceAudio], start: int) -> list[Span | None]:
    """When each character of ``phonemes`` sounds, in frames of the chunk's audio (None: not fed to the model).

    ``timed`` is each piece's result and ``start`` the frame where the paragraph's first piece begins.
    """
    frames: list[Span | None] = [None] * len(phonemes)
    position = start
    for offset, piece, result in zip(piece_offsets(phonemes, pieces), pieces, timed, strict=True):
        edges = position + SAMPLES_PER_FRAME * np.concatenate(([0], np.cumsum(result.durations)))
        kept = 0
        for i, char in enumerate(piece):
            # ``result.phonemes`` is the piece without the symbols the vocabulary lacks, in order.
            if kept < len(result.phonemes) and char == result.phonemes[kept]:
                frames[offset + i] = (int(edges[kept + 1]), int(edges[kept + 2]))  # token 0 is the boundary
                kept += 1
        position += len(result.audio)
    return frames


def locate_tokens(text: str, tokens: Sequence[Token]) -> list[Span | None]:
    """Each token's span in the text G2P was given (found in order; None for one it rewrote beyond recognition)."""
    spans: list[Span | None] = []
    cursor = 0
    for token in tokens:
        at = text.find(token.text, cursor, cursor + len(token.text) + 16) if token.text else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(token.text)))
        cursor = at + len(token.text)
    return spans


def is_wordlike(text: str) -> bool:
    """Whether a token is (part of) a word: it has a letter, digit or symbol (``$5``), not only punctuation."""
    return any(unicodedata.category(c)[0] in "LNS" for c in text)


def _word_groups(tokens: Sequence[Token], spans: Sequence[Span | None]) -> list[list[int]]:
    """Token indices of each word: wordlike tokens with no whitespace between them (``Don’t``, ``42nd``)."""
    groups: list[list[int]] = []
    joined = False
    for i, (token, span) in enumerate(zip(tokens, spans, strict=True)):
        if span is None or not is_wordlike(token.text):
            joined = False
            continue
        if joined and groups and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
        joined = not token.whitespace
    return groups


def _union(spans: Sequence[Span | None]) -> Span | None:
    present = [s for s in spans if s is not None]
    return (min(s[0] for s in present), max(s[1] for s in present)) if present else None


@dataclass(frozen=True)
class _Word:
    chars: Span
    """In the paragraph's text."""
    frames: Span | None


def _words(paragraph: Paragraph, spoken: Spoken, tokens: Sequence[Token], frames: Sequence[Span | None]) -> list[_Word]:
    phonemes, owners = phoneme_owners(tokens)
    own: list[list[Span]] = [[] for _ in tokens]
    lead: list[Span | None] = [None] * len(tokens)
    for i, (owner, span) in enumerate(zip(owners, frames, strict=True)):
        if owner < 0 or span is None:
            continue
        if not own[owner] and i > 0 and phonemes[i - 1] == " " and owners[i - 1] < 0:
            lead[owner] = frames[i - 1]  # the space before a word is the way into it: its onset is there
        own[owner].append(span)
    token_frames = [_union([lead[i], *own[i]]) if own[i] else None for i in range(len(tokens))]
    spans = locate_tokens(spoken.text, tokens)
    words = []
    for group in _word_groups(tokens, spans):
        start, end = spoken.to_source(spans[group[0]][0], spans[group[-1]][1])
        words.append(_Word((start, end), _union([token_frames[i] for i in group])))
    return words


def _sentence(paragraph: Paragraph, chunk_text: str, span: Span, frames: Span, words: Sequence[Word]) -> Sentence:
    start, end = paragraph.source(*span)
    return Sentence(chunk_text[start:end], (start, end), frames[0], frames[1], tuple(words))


def word_sentences(
    paragraph: Paragraph, chunk_text: str, spoken: Spoken, tokens: Sequence[Token], frames: Sequence[Span | None]
) -> list[Sentence]:
    """The paragraph's sentences with their words, from misaki's tokens and each phoneme's frames (pure)."""
    words = _words(paragraph, spoken, tokens, frames)
    groups: list[tuple[Span, list[_Word]]] = [(span, []) for span in sentence_spans(paragraph.text)]
    for word in words:
        n = max((k for k, (span, _) in enumerate(groups) if span[0] <= word.chars[0]), default=0)
        groups[n][1].append(word)
    groups = _merge_wordless(groups)
    sentences = []
    for span, members in groups:
        timed = _fill_gaps([w.frames for w in members])
        records: list[Word] = []
        for word, (start, end) in zip(members, timed, strict=True):
            a, b = paragraph.source(*word.chars)
            if records and records[-1].chars == (a, b):  # "the eighth" both stand for "VIII": one word
                records[-1] = Word(records[-1].text, (a, b), records[-1].start, end)
                continue
            records.append(Word(chunk_text[a:b], (a, b), start, end))
        sentences.append(_sentence(paragraph, chunk_text, span, (timed[0][0], timed[-1][1]), records))
    return sentences


def _merge_wordless(groups: list[tuple[Span, list[_Word]]]) -> list[tuple[Span, list[_Word]]]:
    """A sentence with no timed word ("* * *", a lone dash) joins the sentence before it, else the one after."""
    merged: list[tuple[Span, list[_Word]]] = []
    waiting: tuple[Span, list[_Word]] | None = None  # wordless sentences before the first timed one
    for span, members in groups:
        if waiting is not None:
            span, members, waiting = (waiting[0][0], span[1]), waiting[1] + members, None
        if any(w.frames is not None for w in members):
            merged.append((span, members))
        elif merged:
            merged[-1] = ((merged[-1][0][0], span[1]), merged[-1][1] + members)
        else:
            waiting = (span, members)
    return merged


def _fill_gaps(frames: Sequence[Span | None]) -> list[Span]:
    """Give an untimed word (every phoneme dropped) an empty span where the words around it meet."""
    out: list[Span] = []
    for n, span in enumerate(frames):
        if span is None:
            later = next((s[0] for s in frames[n + 1 :] if s is not None), None)
            at = out[-1][1] if out else later
            span = (at, at)
        out.append(span)
    return out


def weighted_sentences(
    paragraph: Paragraph, chunk_text: str, frames: Sequence[Span | None], weights: Sequence[int]
) -> list[Sentence]:
    """Sentence times with no tokens: the paragraph's timed phonemes shared out by each sentence's phoneme count
    (``weights``, one per :func:`~audiobook.chunker.sentence_spans` span), then timed by their durations."""
    spans = sentence_spans(paragraph.text)
    timed = [f for f in frames if f is not None]
    if not timed:
        return []
    total = max(sum(weights), 1)
    sentences = []
    done = 0
    for n, (span, weight) in enumerate(zip(spans, weights, strict=True)):
        first = min(round(done * len(timed) / total), len(timed) - 1)
        done += weight
        last = len(timed) if n == len(spans) - 1 else max(round(done * len(timed) / total), first + 1)
        share = timed[first:last] or timed[first : first + 1]
        sentences.append(_sentence(paragraph, chunk_text, span, (share[0][0], share[-1][1]), ()))
    return sentences


# ---- synthesis ------------------------------------------------------------------------------------------


def synthesize_timed(
    engine: Engine,
    text: str,
    voice: VoiceSpec,
    speed: float = 1.0,
    lang: str = "a",
    seed: int = 0,
    split_pattern: str | None = None,
    lexicon: Lexicon | None = None,
) -> tuple[Synthesis, ChunkTimings]:
    """:meth:`Engine.synthesize` (bit-identical audio) plus the timings of every sentence and, in English, word.

    ``voice`` and ``lang`` come resolved, as for :meth:`Engine.synthesize`; the text is made narration-ready the
    same way (the lexicon, then the normaliser), and timings point back at the chunk's own words.
    """
    from ..speech import speakable  # speech builds on the engine's splitting: imported when first needed

    check_speed(speed)
    started = time.perf_counter()
    normalized = speakable(text, lang, lexicon)
    heard: list[tuple[Paragraph, str, list[Token] | None]] = []
    for paragraph in paragraphs(normalized.text, split_pattern, normalized):
        raw, tokens = phonemize_tokens(paragraph.text, lang)  # G2P reads the paragraph as it is
        heard.append((paragraph, " ".join(raw.split()), tokens))
    g2p_s = time.perf_counter() - started
    spoken = engine.speak([phonemes for _, phonemes, _ in heard], voice, speed, seed, timed=True)
    sentences: list[Sentence] = []
    level = WORD
    for (paragraph, phonemes, tokens), said in zip(heard, spoken.paragraphs, strict=True):
        times = char_frames(phonemes, said.pieces, said.results, said.start)
        if tokens is not None and phoneme_owners(tokens)[0] != phonemes:
            log.warning("G2P's tokens do not make up its phonemes for %r; timing it per sentence", paragraph.text)
            tokens = None
        if tokens is None:
            level = SENTENCE
            weights = [count_phonemes(phonemize(paragraph.text[a:b], lang)) for a, b in sentence_spans(paragraph.text)]
            sentences += weighted_sentences(paragraph, text, times, weights)
        else:
            sentences += word_sentences(paragraph, text, Verbatim(paragraph.text), tokens, times)
    if level == SENTENCE:
        log.info("no per-word phonemes for language %s: timings are per sentence, shared out by phoneme count", lang)
    synthesis = synthesis_of(spoken, g2p_s, normalized)
    return synthesis, ChunkTimings(len(synthesis.audio), level, tuple(sentences))
