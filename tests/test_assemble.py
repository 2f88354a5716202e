"""The timeline and the PCM stream: exact frame arithmetic, pauses where they belong, WAV checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from audiobook.assemble import (
    ChapterAudio,
    Pauses,
    Piece,
    Segment,
    chapter_pieces,
    check_wavs,
    stream_book,
    timeline,
    total_frames,
)
from audiobook.errors import AudiobookError

# Round pauses in frames make the expected numbers readable: 0.5 s = 12000, 1 s = 24000, 2 s = 48000.
PAUSES = Pauses(paragraph=0.5, title=1.0, chapter=2.0)


def seg(frames: int, ends=(), ends_paragraph: bool = True, name: str = "x.wav") -> Segment:
    return Segment(Path(name), frames, list(ends), ends_paragraph)


def write_wav(path: Path, values: np.ndarray, rate: int = 24000, subtype: str = "PCM_16") -> Segment:
    sf.write(str(path), values, rate, subtype=subtype)
    return Segment(path, len(values), [], True)


def test_default_pauses_and_dict_round_trip():
    p = Pauses()
    assert (p.paragraph, p.title, p.chapter) == (0.6, 1.2, 2.0)
    assert Pauses.from_dict(p.to_dict()) == p
    assert Pauses.from_dict({"title": 2, "unknown": 1, "chapter": None}) == Pauses(title=2.0)
    with pytest.raises(AudiobookError, match="pause 'paragraph'"):
        Pauses.from_dict({"paragraph": -1})


def test_title_pause_after_first_paragraph_then_paragraph_pauses():
    chapter = ChapterAudio(0, "One", [seg(1000, [100, 400], name="a"), seg(500, [200], name="b")])
    assert chapter_pieces(chapter, PAUSES, last=False) == [
        Piece(Path("a"), 0, 100),
        Piece(None, 0, 24000),  # title pause
        Piece(Path("a"), 100, 400),
        Piece(None, 0, 12000),
        Piece(Path("a"), 400, 1000),
        Piece(None, 0, 12000),  # the chunk ends a paragraph and is not the chapter's last
        Piece(Path("b"), 0, 200),
        Piece(None, 0, 12000),
        Piece(Path("b"), 200, 500),
        Piece(None, 0, 48000),  # chapter pause
    ]


def test_title_alone_in_first_chunk_and_split_paragraph():
    chapter = ChapterAudio(
        0,
        "One",
        [seg(300, name="title"), seg(1000, ends_paragraph=False, name="p1"), seg(800, [500], name="p2")],
    )
    assert chapter_pieces(chapter, PAUSES, last=True) == [
        Piece(Path("title"), 0, 300),
        Piece(None, 0, 24000),
        Piece(Path("p1"), 0, 1000),  # no pause: the paragraph goes on in the next chunk
        Piece(Path("p2"), 0, 500),
        Piece(None, 0, 12000),
        Piece(Path("p2"), 500, 800),  # last chapter: no chapter pause
    ]


def test_zero_pauses_leave_no_silence():
    chapter = ChapterAudio(0, "One", [seg(300, [100]), seg(200)])
    pieces = chapter_pieces(chapter, Pauses(0, 0, 0), last=False)
    assert all(p.wav is not None for p in pieces)
    assert sum(p.frames for p in pieces) == 500


def test_timeline_is_exact():
    chapters = [
        ChapterAudio(0, "One", [seg(1000, [100, 400]), seg(500, [200])]),
        ChapterAudio(1, "Two", [seg(300)]),
        ChapterAudio(5, "Three", [seg(700, [350])]),
    ]
    timings = timeline(chapters, PAUSES)
    one = 1500 + 24000 + 3 * 12000 + 48000
    two = 300 + 48000
    three = 700 + 24000
    assert [(t.index, t.title, t.start_frame, t.frames) for t in timings] == [
        (0, "One", 0, one),
        (1, "Two", one, two),
        (5, "Three", one + two, three),
    ]
    assert timings[1].start == one / 24000
    assert total_frames(timings) == one + two + three


def test_paragraph_ends_are_validated():
    with pytest.raises(AudiobookError, match="paragraph end 1000"):
        timeline([ChapterAudio(0, "One", [seg(1000, [1000])])], PAUSES)
    with pytest.raises(AudiobookError, match="out of order"):
        timeline([ChapterAudio(0, "One", [seg(1000, [500, 200])])], PAUSES)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(2, 5000), st.booleans(), st.integers(0, 3)), min_size=1, max_size=4),
        min_size=1,
        max_size=4,
    ),
    st.floats(0, 2),
    st.floats(0, 2),
    st.floats(0, 3),
)
def test_timeline_matches_pieces_and_counts_every_pause(spec, paragraph, title, chapter_pause):
    pauses = Pauses(paragraph, title, chapter_pause)
    chapters = []
    for ci, segs in enumerate(spec):
        segments = []
        for frames, ends_paragraph, n_ends in segs:
            ends = sorted(set(np.linspace(0, frames, n_ends + 2, dtype=int)[1:-1]) - {0, frames})
            segments.append(seg(frames, ends, ends_paragraph))
        chapters.append(ChapterAudio(ci, f"c{ci}", segments))
    timings = timeline(chapters, pauses)
    p, t, c = (round(x * 24000) for x in (paragraph, title, chapter_pause))
    start = 0
    for ci, chapter in enumerate(chapters):
        speech = sum(s.frames for s in chapter.segments)
        ends = sum(len(s.paragraph_ends) for s in chapter.segments)
        ends += sum(s.ends_paragraph for s in chapter.segments[:-1])
        expected = speech + (t + (ends - 1) * p if ends else 0) + (c if ci < len(chapters) - 1 else 0)
        assert timings[ci].start_frame == start
        assert timings[ci].frames == expected
        start += expected


def test_stream_book_frames_and_content(tmp_path):
    a = write_wav(tmp_path / "a.wav", np.arange(1, 301, dtype=np.int16))
    a.paragraph_ends = [100]
    b = write_wav(tmp_path / "b.wav", np.full(200, -7, dtype=np.int16))
    chapters = [ChapterAudio(0, "One", [a]), ChapterAudio(1, "Two", [b])]
    pauses = Pauses(paragraph=0.5, title=0.001, chapter=0.002)  # 24 and 48 frames
    data = b"".join(stream_book(chapters, pauses, block_frames=64))
    pcm = np.frombuffer(data, dtype="<i2")
    assert len(pcm) == total_frames(timeline(chapters, pauses)) == 300 + 24 + 48 + 200
    assert list(pcm[:100]) == list(range(1, 101))
    assert not pcm[100:124].any()
    assert list(pcm[124:324]) == list(range(101, 301))
    assert not pcm[324:372].any()
    assert (pcm[372:] == -7).all()


def test_stream_blocks_stay_small(tmp_path):
    a = write_wav(tmp_path / "a.wav", np.zeros(100_000, dtype=np.int16))
    blocks = list(stream_book([ChapterAudio(0, "One", [a, a])], Pauses(0, 0.5, 9), block_frames=4096))
    assert max(len(b) for b in blocks) == 4096 * 2
    assert sum(len(b) for b in blocks) == (200_000 + 12000) * 2  # title pause; one chapter: no chapter pause


def test_stream_notices_a_shortened_wav(tmp_path):
    a = write_wav(tmp_path / "a.wav", np.zeros(100, dtype=np.int16))
    a.frames = 150
    with pytest.raises(AudiobookError, match="a.wav ended early"):
        b"".join(stream_book([ChapterAudio(0, "One", [a])], PAUSES))


def test_check_wavs_accepts_good_files(tmp_path):
    a = write_wav(tmp_path / "a.wav", np.zeros(100, dtype=np.int16))
    check_wavs([ChapterAudio(0, "One", [a, a])])


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "odd.wav is missing"),
        ("garbage", "odd.wav cannot be read"),
        ("rate", "sample rate 22050 Hz"),
        ("stereo", "2 channels, not mono"),
        ("float", "sample format FLOAT, not PCM_16"),
        ("frames", "90 frames, but 100 were recorded"),
    ],
)
def test_check_wavs_names_the_odd_file(tmp_path, kind, message):
    good = write_wav(tmp_path / "good.wav", np.zeros(100, dtype=np.int16))
    odd = tmp_path / "odd.wav"
    if kind == "garbage":
        odd.write_bytes(b"RIFF not really a wav")
    elif kind == "rate":
        write_wav(odd, np.zeros(100, dtype=np.int16), rate=22050)
    elif kind == "stereo":
        write_wav(odd, np.zeros((100, 2), dtype=np.int16))
    elif kind == "float":
        write_wav(odd, np.zeros(100, dtype=np.float32), subtype="FLOAT")
    elif kind == "frames":
        write_wav(odd, np.zeros(90, dtype=np.int16))
    chapters = [ChapterAudio(0, "One", [good]), ChapterAudio(3, "Four", [good, Segment(odd, 100, [], True)])]
    with pytest.raises(AudiobookError, match=message) as info:
        check_wavs(chapters)
    assert "chapter 3 ('Four')" in str(info.value)
    assert str(odd) in str(info.value)
