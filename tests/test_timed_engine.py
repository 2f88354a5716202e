"""Word and sentence timings from the model's durations: the pure mapping steps, then the real torch path."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audiobook.engine.base import SAMPLES_PER_FRAME, PieceAudio
from audiobook.engine.core import Engine, split_paragraphs, split_phonemes
from audiobook.engine.g2p import Token, phonemize, phonemize_tokens
from audiobook.engine.timed import (
    Verbatim,
    char_frames,
    locate_tokens,
    paragraphs,
    phoneme_owners,
    piece_offsets,
    synthesize_timed,
    weighted_sentences,
    word_sentences,
)
from audiobook.engine.voices import VoiceSpec
from audiobook.timing import SENTENCE, WORD, Sentence, Word

F = SAMPLES_PER_FRAME
VOICE = VoiceSpec.parse("af_test")


# ---- paragraphs and offsets -----------------------------------------------------------------------------


@given(st.text(alphabet=st.sampled_from(list("ab. \n\t")), max_size=60))
def test_paragraphs_are_the_engines_with_offsets_into_the_text(text: str) -> None:
    found = paragraphs(text)
    assert [p.text for p in found] == split_paragraphs(text)
    for paragraph in found:
        for i, char in enumerate(paragraph.text):
            assert text[paragraph.offsets[i]] == char or (char == " " and text[paragraph.offsets[i]].isspace())


def test_paragraph_source_spans_skip_collapsed_whitespace() -> None:
    text = "One  two\nthree.\n\n  Four."
    first, second = paragraphs(text)
    assert first.text == "One two three."
    start = first.text.index("two three")
    assert text[slice(*first.source(start, start + len("two three")))] == "two\nthree"
    assert second.text == "Four." and text[slice(*second.source(0, 5))] == "Four."


# ---- tokens -> phonemes -> pieces -> frames --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "“Don’t go,” said Mr. Smith — it was 1854, and $5.50 bought a lot.",
        "She said: 'yes' (twice); e.g. 42nd.",
        "Chapter I. Down the Rabbit-Hole.",
    ],
)
def test_owners_rebuild_the_engines_phoneme_string(text: str) -> None:
    raw, tokens = phonemize_tokens(text, "a")
    phonemes, owners = phoneme_owners(tokens)
    assert phonemes == phonemize(text, "a") == " ".join(raw.split())
    assert len(owners) == len(phonemes)
    for i, owner in enumerate(owners):
        assert owner == -1 and phonemes[i] == " " or phonemes[i] in tokens[owner].phonemes


def test_a_token_spoken_as_several_words_owns_its_inner_spaces() -> None:
    tokens = [Token("in", "ɪn", " "), Token("1854", "ˌAtˈin fˈɪfti fˈɔɹ", ""), Token(".", ".", "")]
    phonemes, owners = phoneme_owners(tokens)
    assert phonemes == "ɪn ˌAtˈin fˈɪfti fˈɔɹ."
    assert owners[2] == -1 and owners[phonemes.index(" f")] == 1 and owners[-1] == 2


def test_pieces_are_found_in_order_even_cut_inside_a_word() -> None:
    phonemes = "wˈʌn tˈu, θɹˈi fˈɔɹ. " + "x" * 25 + " fˈIv."
    pieces = split_phonemes(phonemes, limit=12)
    offsets = piece_offsets(phonemes, pieces)
    for offset, piece in zip(offsets, pieces, strict=True):
        assert phonemes[offset : offset + len(piece)] == piece
    assert offsets == sorted(offsets)


def test_char_frames_follow_the_durations_and_skip_dropped_symbols() -> None:
    phonemes = "ab c❓d"
    pieces = ["ab", "c❓d"]
    first = PieceAudio(np.zeros(F * 7, np.float32), "ab", np.array([1, 2, 3, 1]))
    second = PieceAudio(np.zeros(F * 8, np.float32), "cd", np.array([2, 1, 4, 1]))
    frames = char_frames(phonemes, pieces, [first, second], start=100)
    assert frames == [
        (100 + F, 100 + 3 * F),
        (100 + 3 * F, 100 + 6 * F),
        None,
        (100 + 9 * F, 100 + 10 * F),
        None,
        (100 + 10 * F, 100 + 14 * F),
    ]


def test_tokens_are_located_in_order_and_a_rewritten_one_is_skipped() -> None:
    text = "Go, go. Stop"
    tokens = [
        Token("Go", "", ""),
        Token(",", "", " "),
        Token("go", "", ""),
        Token("‼", "", ""),
        Token(".", "", " "),
        Token("Stop", "", ""),
    ]
    assert locate_tokens(text, tokens) == [(0, 2), (2, 3), (4, 6), None, (6, 7), (8, 12)]


# ---- words and sentences (golden) ------------------------------------------------------------------------


def _frames_per_char(phonemes: str, width: int = 2) -> list[tuple[int, int] | None]:
    """Every phoneme character ``width`` frames long, back to back."""
    return [(i * width * F, (i + 1) * width * F) for i in range(len(phonemes))]


def test_words_and_sentences_golden() -> None:
    text = "“Hi,” I said. $5 now!"
    tokens = [
        Token("“", "“", ""),
        Token("Hi", "hI", ""),
        Token(",", ",", ""),
        Token("”", "”", " "),
        Token("I", "I", " "),
        Token("said", "sɛd", ""),
        Token(".", ".", " "),
        Token("$", "", ""),
        Token("5", "fIv dɑləɹz", " "),
        Token("now", "nW", ""),
        Token("!", "!", ""),
    ]
    phonemes, _ = phoneme_owners(tokens)
    assert phonemes == "“hI,” I sɛd. fIv dɑləɹz nW!"
    (paragraph,) = paragraphs(text)
    got = word_sentences(paragraph, text, Verbatim(paragraph.text), tokens, _frames_per_char(phonemes, 1))
    # A word starts at the space before it (the way into it) and ends with its last phoneme.
    assert got == [
        Sentence(
            "“Hi,” I said.",
            (0, 13),
            1 * F,
            11 * F,
            (Word("Hi", (1, 3), 1 * F, 3 * F), Word("I", (6, 7), 5 * F, 7 * F), Word("said", (8, 12), 7 * F, 11 * F)),
        ),
        Sentence(
            "$5 now!",
            (14, 21),
            12 * F,
            26 * F,
            (Word("$5", (14, 16), 12 * F, 23 * F), Word("now", (17, 20), 23 * F, 26 * F)),
        ),
    ]


def test_a_sentence_with_no_spoken_word_joins_its_neighbour() -> None:
    text = "* * * Then it rained."
    tokens = [
        Token("*", "", " "),
        Token("*", "", " "),
        Token("*", "", " "),
        Token("Then", "ðɛn", " "),
        Token("it", "ɪt", " "),
        Token("rained", "ɹAnd", ""),
        Token(".", ".", ""),
    ]
    phonemes, _ = phoneme_owners(tokens)
    (paragraph,) = paragraphs(text)
    got = word_sentences(paragraph, text, Verbatim(paragraph.text), tokens, _frames_per_char(phonemes))
    assert [s.text for s in got] == [text]
    assert [w.text for w in got[0].words] == ["Then", "it", "rained"]


def test_a_word_whose_phonemes_were_all_dropped_gets_an_empty_span_between_its_neighbours() -> None:
    text = "Go ❓ home."
    tokens = [Token("Go", "ɡO", " "), Token("❓", "❓", " "), Token("home", "hOm", ""), Token(".", ".", "")]
    phonemes, _ = phoneme_owners(tokens)
    frames = _frames_per_char(phonemes)
    frames[phonemes.index("❓")] = None
    (paragraph,) = paragraphs(text)
    (sentence,) = word_sentences(paragraph, text, Verbatim(paragraph.text), tokens, frames)
    go, unknown, home = sentence.words
    assert unknown.text == "❓" and unknown.start == unknown.end == go.end <= home.start


def test_sentences_without_tokens_share_the_phonemes_by_count() -> None:
    text = "Uno. Dos tres."
    (paragraph,) = paragraphs(text)
    frames = _frames_per_char("x" * 12, width=1)
    got = weighted_sentences(paragraph, text, frames, [4, 8])
    assert got == [Sentence("Uno.", (0, 4), 0, 4 * F), Sentence("Dos tres.", (5, 14), 4 * F, 12 * F)]


# ---- the real path: misaki, the splitter and kokoro's architecture ---------------------------------------


class Recording:
    """A backend wrapper that keeps every result the engine got."""

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend
        self.results: list[PieceAudio] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.backend, name)

    def infer_batch(self, *args, **kwargs) -> list[PieceAudio]:  # noqa: ANN002, ANN003
        results = self.backend.infer_batch(*args, **kwargs)
        self.results += results
        return results


TEXT = (
    "“Don’t go,” said Mr. Smith. It was 1854, and the night was cold.\n\n"
    "She walked to the station in the rain. " + "The train was late, so she waited. " * 20
)


def test_timed_synthesis_is_the_same_audio_with_sound_timings(torch_backend) -> None:  # noqa: ANN001
    recording = Recording(torch_backend)
    plain = Engine(torch_backend).synthesize(TEXT, VOICE, 1.8, "a", seed=5)
    synthesis, timings = synthesize_timed(Engine(recording), TEXT, VOICE, 1.8, "a", seed=5)
    assert np.array_equal(synthesis.audio, plain.audio)
    assert synthesis.paragraph_ends == plain.paragraph_ends
    assert synthesis.pieces == plain.pieces > 2  # the long paragraph is several model calls

    assert timings.level == WORD and timings.frames == synthesis.frames
    assert timings.problems() == []  # monotonic, inside the audio
    assert sum(int(r.durations.sum()) for r in recording.results) * F == synthesis.frames
    words = [w for s in timings.sentences for w in s.words]
    assert [w.text for w in words] == re.findall(r"Mr\.|[\w’$]+", TEXT)  # misaki keeps the abbreviation whole
    assert all(TEXT[w.chars[0] : w.chars[1]] == w.text for w in words)
    assert [s.text for s in timings.sentences][:3] == [
        "“Don’t go,” said Mr. Smith.",
        "It was 1854, and the night was cold.",
        "She walked to the station in the rain.",
    ]
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    # The second paragraph starts where the first one's audio ends.
    assert timings.sentences[2].start >= synthesis.paragraph_ends[0]


def test_languages_without_tokens_get_sentence_times(torch_backend) -> None:  # noqa: ANN001
    text = "Hola. ¿Cómo estás hoy? Muy bien, gracias."
    synthesis, timings = synthesize_timed(Engine(torch_backend), text, VOICE, 1.0, "e", seed=1)
    assert timings.level == SENTENCE
    assert [s.text for s in timings.sentences] == ["Hola.", "¿Cómo estás hoy?", "Muy bien, gracias."]
    assert all(not s.words for s in timings.sentences)
    assert timings.problems() == [] and timings.sentences[-1].end <= synthesis.frames
