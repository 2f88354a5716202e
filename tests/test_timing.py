"""The timing model: chunk records on disk, and their shift into the final audio by the assembly's own layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiobook.assemble import ChapterAudio, Pauses, Segment, seconds_to_frames, timeline
from audiobook.timing import (
    WORD,
    BookTimings,
    ChunkTimings,
    Sentence,
    Word,
    book_timings,
    load,
    save,
    timings_json,
    timings_path,
)

S = 24000  # frames per second


def _sentence(text: str, chars: tuple[int, int], start: int, end: int, words: tuple[Word, ...] = ()) -> Sentence:
    return Sentence(text, chars, start, end, words)


def _one_word(text: str, at: int, start: int, end: int) -> Sentence:
    return _sentence(text, (at, at + len(text)), start, end, (Word(text, (at, at + len(text)), start, end),))


def test_chunk_timings_round_trip_and_are_checked_against_the_wav(tmp_path: Path) -> None:
    timings = ChunkTimings(10 * S, WORD, (_one_word("Hello.", 0, S, 2 * S), _one_word("Again.", 7, 3 * S, 4 * S)))
    path = timings_path(tmp_path / "003-0002.wav")
    assert path.name == "003-0002.timings.json"
    save(timings, path)
    assert load(path, 10 * S) == timings
    assert load(path, 10 * S + 1) is None  # another WAV: stale
    assert load(tmp_path / "none.timings.json", 10 * S) is None
    path.write_text("{", encoding="utf-8")
    assert load(path, 10 * S) is None


def test_problems_name_times_out_of_order_or_outside_the_audio() -> None:
    assert ChunkTimings(S, WORD, (_one_word("A.", 0, 0, S // 2),)).problems() == []
    late = ChunkTimings(S, WORD, (_one_word("A.", 0, 0, 2 * S),))
    assert "of 24000 frames" in late.problems()[0]
    backwards = ChunkTimings(S, WORD, (_one_word("A.", 0, S // 2, S // 2 + 1), _one_word("B.", 3, 0, 10)))
    assert backwards.problems()


def _book() -> tuple[list[ChapterAudio], dict[Path, ChunkTimings]]:
    """Two chapters: the first has two chunks, the first of which holds two paragraphs (title, text)."""
    a, b, c = Path("a.wav"), Path("b.wav"), Path("c.wav")
    chapters = [
        ChapterAudio(0, "One", [Segment(a, 3 * S, [S]), Segment(b, 2 * S)]),
        ChapterAudio(1, "Two", [Segment(c, S)]),
    ]
    timings = {
        a: ChunkTimings(3 * S, WORD, (_one_word("One.", 0, S // 10, S), _one_word("Text.", 6, S, 2 * S))),
        b: ChunkTimings(2 * S, WORD, (_one_word("More.", 0, S // 2, S),)),
        c: ChunkTimings(S, WORD, (_one_word("Two.", 0, S // 4, S // 2),)),
    }
    return chapters, timings


def test_book_timings_add_every_pause_of_the_assembly() -> None:
    chapters, chunks = _book()
    pauses = Pauses(paragraph=0.5, title=1.0, chapter=2.0)
    book = book_timings(chapters, pauses, chunks)
    title, text = book.chapters[0].sentences[:2]
    assert (title.start, title.end) == (S // 10, S)  # the title ends where its paragraph ends, before the pause
    assert (text.start, text.end) == (S + S, 2 * S + S)  # after the 1 s title pause
    more = book.chapters[0].sentences[2]
    # chunk b plays after all of chunk a (3 s), the title pause, and the paragraph pause at a's end
    assert more.start == 3 * S + S + S // 2 + S // 2
    assert more.words[0].start == more.start
    two = book.chapters[1].sentences[0]
    marks = timeline(chapters, pauses)
    assert [c.start for c in book.chapters] == [t.start_frame for t in marks]
    assert two.start == marks[1].start_frame + S // 4
    assert book.frames == marks[-1].end_frame
    assert book.missing == []


def test_book_timings_name_chunks_without_timings() -> None:
    chapters, chunks = _book()
    del chunks[Path("b.wav")]
    book = book_timings(chapters, Pauses(), chunks)
    assert book.missing == ["b.wav"]
    assert [s.text for s in book.chapters[0].sentences] == ["One.", "Text."]


def test_a_time_at_a_paragraph_end_ends_before_the_pause_and_starts_after_it() -> None:
    a = Path("a.wav")
    chapters = [ChapterAudio(0, "T", [Segment(a, 2 * S, [S])])]
    chunks = {a: ChunkTimings(2 * S, WORD, (_sentence("T.", (0, 2), 0, S), _sentence("U.", (3, 5), S, 2 * S)))}
    book = book_timings(chapters, Pauses(title=1.5), chunks)
    first, second = book.chapters[0].sentences
    assert first.end == S and second.start == S + seconds_to_frames(1.5)


def test_timings_json_golden() -> None:
    chapters, chunks = _book()
    book = book_timings(chapters[1:], Pauses(), chunks)
    assert json.dumps(timings_json(book, files=["01 - Two.m4b"])) == json.dumps(
        {
            "schema": "audiobook-book-timings",
            "version": 1,
            "duration": 1.0,
            "chapters": [
                {
                    "index": 1,
                    "title": "Two",
                    "start": 0.0,
                    "end": 1.0,
                    "file": "01 - Two.m4b",
                    "sentences": [
                        {
                            "text": "Two.",
                            "start": 0.25,
                            "end": 0.5,
                            "words": [{"text": "Two.", "start": 0.25, "end": 0.5}],
                        }
                    ],
                }
            ],
        }
    )


def test_book_timings_of_nothing() -> None:
    assert book_timings([], Pauses(), {}) == BookTimings((), 0)


@pytest.mark.parametrize("frames", [0, 1])
def test_a_word_at_the_very_end_of_a_chunk_stays_in_it(frames: int) -> None:
    a = Path("a.wav")
    chapters = [ChapterAudio(0, "T", [Segment(a, S)])]
    chunks = {a: ChunkTimings(S, WORD, (_one_word("End.", 0, S - frames, S),))}
    (sentence,) = book_timings(chapters, Pauses(), chunks).chapters[0].sentences
    assert (sentence.start, sentence.end) == (S - frames, S)
