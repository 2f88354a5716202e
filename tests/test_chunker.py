"""The chunker: unit cases and hypothesis properties (lossless, deterministic, bounded, word-safe)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiobook.book import Book, Chapter, Metadata
from audiobook.chunker import DEFAULT_MAX_CHUNK_CHARS, Chunk, chunk_book, chunk_chapter, split_paragraph


def rejoin(chunks: list[Chunk]) -> str:
    out = ""
    for i, chunk in enumerate(chunks):
        if i:
            out += "\n\n" if chunks[i - 1].ends_paragraph else " "
        out += chunk.text
    return out


def test_short_paragraphs_pack_into_one_chunk():
    chapter = Chapter("T", ["Title.", "One two.", "Three."])
    assert chunk_chapter(7, chapter) == [Chunk("007-0000", 7, 0, "Title.\n\nOne two.\n\nThree.", True)]


def test_paragraphs_start_new_chunk_when_full():
    chapter = Chapter("T", ["a" * 6, "b" * 6, "c" * 6])
    chunks = chunk_chapter(0, chapter, max_chars=14)
    assert [c.text for c in chunks] == ["aaaaaa\n\nbbbbbb", "cccccc"]
    assert all(c.ends_paragraph for c in chunks)


def test_long_paragraph_splits_at_sentences_first():
    para = "First sentence here. Second one, with a clause; and more. Third."
    chunks = chunk_chapter(0, Chapter("T", [para]), max_chars=30)
    assert [c.text for c in chunks] == [
        "First sentence here.",
        "Second one, with a clause;",
        "and more. Third.",
    ]
    assert [c.ends_paragraph for c in chunks] == [False, False, True]


def test_abbreviations_are_not_sentence_ends():
    para = "He met Mr. Holmes today. It rained."
    assert split_paragraph(para, 26) == ["He met Mr. Holmes today.", "It rained."]


def test_word_longer_than_limit_is_kept_whole():
    assert split_paragraph("a " + "x" * 20 + " b", 10) == ["a", "x" * 20, "b"]


def test_ids_are_chapter_and_sequence():
    book = Book(Metadata("t"), [Chapter("A", ["x " * 50]), Chapter("B", ["y."]), Chapter("C", ["z."])])
    chunks = chunk_book(book, [0, 2], max_chars=40)
    assert [c.id for c in chunks] == ["000-0000", "000-0001", "000-0002", "002-0000"]
    assert [c.chapter for c in chunks] == [0, 0, 0, 2]


def test_default_is_a_few_thousand():
    assert 1000 <= DEFAULT_MAX_CHUNK_CHARS <= 5000


def test_bad_limit():
    with pytest.raises(ValueError):
        chunk_chapter(0, Chapter("T", ["x"]), max_chars=0)


WORD = st.text(alphabet="abcdefghij’—-", min_size=1, max_size=12) | st.sampled_from(
    ["Mr.", "end.", "stop!", "why?", "so,", "then;", "“quote.”", "—", "(aside)", "e.g.", "A."]
)
PARAGRAPH = st.lists(WORD, min_size=1, max_size=80).map(" ".join)
CHAPTER = st.lists(PARAGRAPH, min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(paragraphs=CHAPTER, max_chars=st.integers(min_value=12, max_value=400), index=st.integers(0, 999))
def test_properties(paragraphs, max_chars, index):
    chapter = Chapter("T", paragraphs)
    chunks = chunk_chapter(index, chapter, max_chars)
    # Lossless: the chunks joined give back the chapter's text exactly.
    assert rejoin(chunks) == chapter.text
    # Deterministic, with ids from position only.
    assert chunk_chapter(index, chapter, max_chars) == chunks
    assert [c.id for c in chunks] == [f"{index:03d}-{i:04d}" for i in range(len(chunks))]
    assert all(c.chapter == index and c.seq == i for i, c in enumerate(chunks))
    # Limit respected (every generated word is shorter than the smallest limit).
    assert all(len(c.text) <= max_chars for c in chunks)
    # Never inside a word: every chunk starts and ends on a whole word of the source.
    words = set(" ".join(paragraphs).split())
    for chunk in chunks:
        tokens = chunk.text.split()
        assert tokens and tokens[0] in words and tokens[-1] in words
        assert chunk.text == chunk.text.strip()
        assert "\n\n\n" not in chunk.text
    assert chunks[-1].ends_paragraph


@settings(max_examples=50, deadline=None)
@given(chapters=st.lists(CHAPTER, min_size=1, max_size=5), max_chars=st.integers(20, 300))
def test_chunks_never_span_chapters(chapters, max_chars):
    book = Book(Metadata("t"), [Chapter(str(i), paras) for i, paras in enumerate(chapters)])
    chunks = chunk_book(book, list(range(len(chapters))), max_chars)
    for index, chapter in enumerate(book.chapters):
        own = [c for c in chunks if c.chapter == index]
        assert rejoin(own) == chapter.text
    assert [c.chapter for c in chunks] == sorted(c.chapter for c in chunks)
