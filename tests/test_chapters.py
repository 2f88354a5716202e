"""Chapter selection specs and the inspect summary."""

from __future__ import annotations

import pytest

from audiobook.book import Book, Chapter, Metadata
from audiobook.chapters import book_summary, estimated_seconds, select_chapters
from audiobook.errors import AudiobookError


@pytest.fixture
def book() -> Book:
    chapters = [
        Chapter("Cover", ["Cover."], skipped=True, reason="cover"),
        Chapter("One", ["One.", "Some words here."]),
        Chapter("Two", ["Two.", "More words."]),
        Chapter("Colophon", ["Colophon.", "Set in type."], skipped=True, reason="colophon"),
        Chapter("Three", ["Three.", "The end."]),
    ]
    return Book(Metadata("Title", ["A. Author", "B. Author"], "en-GB"), chapters)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", [1, 2, 4]),
        ("ALL", [1, 2, 4]),
        ("everything", [0, 1, 2, 3, 4]),
        ("1-3", [1, 2]),  # skipped chapters inside a range stay out
        ("1-3,3", [1, 2, 3]),  # named alone, skipped matter comes back
        ("0", [0]),
        ("4,1,1", [1, 4]),
        ("2-", [2, 4]),
        ("-2", [1, 2]),
        ("all, 0", [0, 1, 2, 4]),
        (" 2 - 4 ", [2, 4]),
    ],
)
def test_select_chapters(book, spec, expected):
    assert select_chapters(book, spec) == expected


def test_default_spec_is_all(book):
    assert select_chapters(book) == [1, 2, 4]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("9", "--chapters '9': there is no chapter 9; this book has chapters 0-4"),
        ("1-9", "--chapters '1-9': there is no chapter 9; this book has chapters 0-4"),
        ("3-1", "--chapters '3-1': range '3-1' runs backwards"),
        (
            "one",
            "--chapters 'one': 'one' is not 'all', 'everything', an index or a range like 1-3,7 "
            "(indices are those `audiobook inspect` prints)",
        ),
        (
            "",
            "--chapters '': '' is not 'all', 'everything', an index or a range like 1-3,7 "
            "(indices are those `audiobook inspect` prints)",
        ),
        (
            "-",
            "--chapters '-': '-' is not 'all', 'everything', an index or a range like 1-3,7 "
            "(indices are those `audiobook inspect` prints)",
        ),
        ("3-3", "--chapters '3-3' selects no chapters to narrate"),
    ],
)
def test_bad_specs(book, spec, message):
    with pytest.raises(AudiobookError) as info:
        select_chapters(book, spec)
    assert str(info.value) == message


def test_estimated_seconds():
    assert estimated_seconds(160) == 60.0
    assert estimated_seconds(0) == 0.0


def test_book_summary(book):
    summary = book_summary(book)
    assert set(summary) == {"title", "author", "language", "chapters"}
    assert (summary["title"], summary["author"], summary["language"]) == (
        "Title",
        "A. Author, B. Author",
        "en-GB",
    )
    assert summary["chapters"][1] == {
        "index": 1,
        "title": "One",
        "chars": len("One.\n\nSome words here."),
        "words": 4,
        "seconds": 1.5,
        "skipped": False,
        "reason": "",
    }
    assert summary["chapters"][0]["reason"] == "cover"
    assert [c["index"] for c in summary["chapters"]] == [0, 1, 2, 3, 4]
