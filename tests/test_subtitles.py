"""SRT and WebVTT from the timing model: golden text, cue limits, karaoke timestamps."""

from __future__ import annotations

import pytest

from audiobook.subtitles import (
    Cue,
    Fragment,
    fragments,
    sentence_cues,
    srt,
    subtitles,
    timestamp,
    webvtt,
    word_cues,
)
from audiobook.timing import ChapterTimings, Sentence, Word

S = 24000


def _timed(text: str, start: int, per_word: int, gap: int = 0, base: int = 0) -> Sentence:
    """A sentence whose words (split at spaces, punctuation stripped) each last ``per_word`` frames."""
    words = []
    at, clock = 0, start
    for raw in text.split(" "):
        core = raw.strip("“”,.!?;:")
        offset = text.index(core, at)
        words.append(Word(core, (base + offset, base + offset + len(core)), clock, clock + per_word))
        at = offset + len(core)
        clock += per_word + gap
    return Sentence(text, (base, base + len(text)), words[0].start, words[-1].end, tuple(words))


HELLO = _timed("“Hello, world,” she said.", S, S // 4)
RAIN = _timed("It rained.", 3 * S, S // 5, base=26)


def test_fragments_keep_punctuation_with_their_words() -> None:
    assert [f.text for f in fragments(HELLO)] == ["“Hello,", "world,”", "she", "said."]
    assert fragments(HELLO)[1] == Fragment("world,”", S + S // 4, S + S // 2)


def test_an_opening_quote_inside_a_sentence_goes_with_the_word_it_opens() -> None:
    said = _timed("She thought, “and hand (them) round.”", 0, S // 4)
    assert [f.text for f in fragments(said)] == ["She", "thought,", "“and", "hand", "(them)", "round.”"]


def test_srt_golden() -> None:
    cues = sentence_cues([HELLO, RAIN])
    assert srt(cues) == (
        "1\n00:00:01,000 --> 00:00:02,000\n“Hello, world,” she said.\n\n"
        "2\n00:00:03,000 --> 00:00:03,400\nIt rained.\n\n"
    )


def test_webvtt_golden_and_escaped() -> None:
    odd = _timed("Fish & chips <2>.", 5 * S, S // 2)
    assert webvtt(sentence_cues([HELLO, odd])) == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n“Hello, world,” she said.\n\n"
        "00:00:05.000 --> 00:00:07.000\nFish &amp; chips &lt;2&gt;.\n"
    )


def test_webvtt_karaoke_golden() -> None:
    assert webvtt(sentence_cues([HELLO]), karaoke=True) == (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n“Hello, <00:00:01.250>world,” <00:00:01.500>she <00:00:01.750>said.\n"
    )


def test_srt_word_cues_golden() -> None:
    assert srt(word_cues([RAIN], offset=2 * S)) == (
        "1\n00:00:01,000 --> 00:00:01,200\nIt\n\n2\n00:00:01,200 --> 00:00:01,400\nrained.\n\n"
    )


def test_long_sentence_is_cut_into_two_line_cues() -> None:
    text = (
        "When the oil was nearly gone, the baker brought a jar of the fat he used for his bread, and the "
        "fisherman's wife brought candle ends."
    )
    sentence = _timed(text, 0, S // 4)
    cues = sentence_cues([sentence])
    assert [c.text for c in cues] == [
        "When the oil was nearly gone, the\nbaker brought a jar of the fat he used",
        "for his bread, and the fisherman's\nwife brought candle ends.",  # two cues of about equal length
    ]
    for cue in cues:
        assert all(len(line) <= 42 for line in cue.text.split("\n")) and cue.text.count("\n") <= 1
        assert cue.end - cue.start <= 7 * S
    assert cues[0].end == cues[1].start  # no gap inside a sentence
    assert " ".join(c.text.replace("\n", " ") for c in cues) == text


def test_a_full_cue_ends_at_a_clause_in_its_second_half() -> None:
    text = "We walked along the shore for an hour or more, and then we sat down on the warm sand to rest."
    cues = sentence_cues([_timed(text, 0, S // 5)])
    assert [c.text for c in cues] == [
        "We walked along the shore\nfor an hour or more,",
        "and then we sat down on\nthe warm sand to rest.",
    ]  # lines balanced


def test_a_sentence_just_over_a_cue_is_cut_in_two_halves_not_a_cue_and_a_stub() -> None:
    text = "To ⸻ But For Whose Sympathy and Encouragement This Book Would Never Have Been Written"
    cues = sentence_cues([_timed(text, 0, S // 4)])
    assert [c.text for c in cues] == [
        "To ⸻ But For Whose Sympathy\nand Encouragement This",
        "Book Would Never Have Been Written",
    ]


def test_slow_sentence_is_cut_at_seven_seconds() -> None:
    sentence = _timed("One two three four five six.", 0, 2 * S)
    cues = sentence_cues([sentence])
    assert [c.text for c in cues] == ["One two three", "four five six."]
    assert all(c.end - c.start <= 7 * S for c in cues)


def test_sentence_without_word_times_is_shared_out_by_characters() -> None:
    plain = Sentence("Uno dos.", (0, 8), 0, 7 * S)
    assert fragments(plain) == [Fragment("Uno", 0, 3 * S), Fragment("dos.", 3 * S, 7 * S)]


def test_timestamps() -> None:
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3723 * S + 24) == "01:02:03.001"
    assert timestamp(S // 2, ",") == "00:00:00,500"


def test_an_empty_cue_is_shown_for_a_millisecond() -> None:
    assert srt([Cue(S, S, (Fragment("Hm.", S, S),))]) == "1\n00:00:01,000 --> 00:00:01,001\nHm.\n\n"


def test_subtitles_per_chapter_move_back_by_its_start() -> None:
    chapter = ChapterTimings(1, "Two", 2 * S, 5 * S, (RAIN,))
    assert subtitles([chapter], "srt", offset=chapter.start).startswith("1\n00:00:01,000 --> 00:00:01,400\n")
    assert subtitles([chapter], "vtt", words=True).startswith("WEBVTT\n\n00:00:03.000 --> 00:00:03.400\nIt ")
    with pytest.raises(ValueError, match="srt, vtt"):
        subtitles([chapter], "ass")
