"""Export to every format from small generated chunk WAVs, then read the files back."""

from __future__ import annotations

import json
import stat
import struct
import zlib
from pathlib import Path

import imageio_ffmpeg
import mutagen
import numpy as np
import pytest
import soundfile as sf

from audiobook import ffmpeg as ff
from audiobook.assemble import ChapterAudio, Pauses, Segment, stream_book, timeline
from audiobook.book import Metadata
from audiobook.errors import AudiobookError, FFmpegError
from audiobook.outputs import (
    OutputOptions,
    book_tags,
    chapter_file_names,
    iso639_2,
    safe_name,
    write_outputs,
)

RATE = 24000
TITLES = ["Chapter 1: Loomings", "Chapter 2 = The Carpet-Bag; #2", "Épilogue / Fin"]
EXTRA = {"synthesis_wall_s": 12.5, "real_time_factor": 0.25, "device": "cpu", "voice": "af_heart"}


def png(width: int = 4, height: int = 4) -> bytes:
    """A small valid RGB PNG, so the cover path is real without shipping a file."""

    def block(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + block(b"IHDR", header) + block(b"IDAT", zlib.compress(rows)) + block(b"IEND", b"")


def tone(path: Path, seconds: float, freq: float) -> Segment:
    t = np.arange(round(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))  # speech-like wobble
    sf.write(str(path), (x * 32767).astype(np.int16), RATE, subtype="PCM_16")
    return Segment(path, len(t), [], True)


@pytest.fixture(scope="module")
def chapters(tmp_path_factory) -> list[ChapterAudio]:
    d = tmp_path_factory.mktemp("chunks")
    layout = [(0.8, 1.5), (0.7, 1.2, 1.0), (0.9, 0.6)]
    result = []
    for ci, lengths in enumerate(layout):
        segments = [tone(d / f"{ci}-{si}.wav", s, 200 + 90 * ci + 40 * si) for si, s in enumerate(lengths)]
        segments[1].paragraph_ends = [segments[1].frames // 2]
        result.append(ChapterAudio(ci + 1, TITLES[ci], segments))
    return result


@pytest.fixture(scope="module")
def metadata() -> Metadata:
    return Metadata(
        title="Moby-Dick; or, The Whale",
        authors=["Herman Melville"],
        language="en",
        description="A sailor's narrative.\nSecond line.",
        date="1851-10-18",
        cover=png(),
        cover_type="image/png",
    )


@pytest.fixture(autouse=True)
def real_ffmpeg(monkeypatch):
    monkeypatch.delenv("AUDIOBOOK_FFMPEG", raising=False)


def quiet(fmt: str, **kw) -> OutputOptions:
    return OutputOptions(format=fmt, loudnorm=False, **kw)


def expected_starts(chapters, pauses=None) -> list[float]:
    return [t.start for t in timeline(chapters, pauses or Pauses())]


@pytest.mark.parametrize("fmt", ["m4b", "mp3", "opus", "flac"])
def test_export_reads_back_with_chapters_tags_and_cover(tmp_path, chapters, metadata, fmt):
    out = tmp_path / f"book.{fmt}"
    result = write_outputs(chapters, metadata, out, quiet(fmt), EXTRA)
    assert result.files == [out] and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "output.json"])

    probe = ff.probe(out)
    assert probe.duration == pytest.approx(result.duration_s, abs=0.05)
    assert [c.title for c in probe.chapters] == TITLES
    for got, want in zip(probe.chapters, expected_starts(chapters), strict=True):
        assert got.start == pytest.approx(want, abs=0.05)
    tags = {k.lower(): v for k, v in probe.tags.items()}
    assert tags["title"] == tags["album"] == metadata.title
    assert tags["artist"] == "Herman Melville"
    assert tags["genre"] == "Audiobook"
    assert tags["date"] == "1851"
    assert any(s.attached_pic for s in probe.streams), "cover stream missing"
    assert [s.kind for s in probe.streams].count("Audio") == 1


def test_m4b_is_an_audiobook_for_players(tmp_path, chapters, metadata):
    out = tmp_path / "book.m4b"
    write_outputs(chapters, metadata, out, quiet("m4b"), {})
    mp4 = mutagen.File(out)
    assert mp4.info.codec.startswith("mp4a") and mp4.info.sample_rate == RATE and mp4.info.channels == 1
    assert mp4.tags["stik"] == [2]  # iTunes media kind: Audiobook
    assert mp4.tags["aART"] == ["Herman Melville"] and mp4.tags["©alb"] == [metadata.title]
    assert mp4.tags["desc"] == [metadata.description]
    assert bytes(mp4.tags["covr"][0]) == metadata.cover
    assert [c.title for c in mp4.chapters] == TITLES
    for got, want in zip(mp4.chapters, expected_starts(chapters), strict=True):
        assert got.start == pytest.approx(want, abs=0.05)
    assert ff.probe(out).streams[0].language == "eng"


def test_mp3_has_id3_chapters_and_cover(tmp_path, chapters, metadata):
    out = tmp_path / "book.mp3"
    write_outputs(chapters, metadata, out, quiet("mp3"), {})
    id3 = mutagen.File(out).tags
    assert id3.version[:2] == (2, 3)
    chaps = sorted(id3.getall("CHAP"), key=lambda c: c.start_time)
    assert [c.sub_frames["TIT2"].text[0] for c in chaps] == TITLES
    for got, want in zip(chaps, expected_starts(chapters), strict=True):
        assert got.start_time / 1000 == pytest.approx(want, abs=0.05)
    assert len(id3.getall("CTOC")) == 1
    assert id3.getall("APIC")[0].data == metadata.cover
    assert id3["TPE2"].text == ["Herman Melville"] and id3["TLAN"].text == ["eng"]


@pytest.mark.parametrize("fmt", ["opus", "flac"])
def test_vorbis_comment_chapters_and_picture(tmp_path, chapters, metadata, fmt):
    out = tmp_path / f"book.{fmt}"
    write_outputs(chapters, metadata, out, quiet(fmt), {})
    audio = mutagen.File(out)
    starts = expected_starts(chapters)
    for n, title in enumerate(TITLES):
        assert audio[f"CHAPTER{n:03d}NAME"] == [title]
        assert audio[f"CHAPTER{n:03d}"] == [ff.clock(starts[n])]
    if fmt == "opus":
        import base64

        from mutagen.flac import Picture

        picture = Picture(base64.b64decode(audio["METADATA_BLOCK_PICTURE"][0]))
        assert picture.type == 3 and picture.data == metadata.cover
    else:
        assert audio.pictures[0].data == metadata.cover
    assert audio.info.length == pytest.approx(timeline(chapters, Pauses())[-1].end_frame / RATE, abs=0.05)


def test_wav_is_sample_exact(tmp_path, chapters, metadata):
    out = tmp_path / "book.wav"
    pauses = Pauses(paragraph=0.25, title=0.5, chapter=1.0)
    result = write_outputs(chapters, metadata, out, quiet("wav", pauses=pauses), {})
    data, rate = sf.read(str(out), dtype="int16")
    assert rate == RATE and data.ndim == 1
    assert len(data) == result.frames == timeline(chapters, pauses)[-1].end_frame
    expected = np.frombuffer(b"".join(stream_book(chapters, pauses)), dtype="<i2")
    assert np.array_equal(data, expected)


def test_output_json(tmp_path, chapters, metadata):
    out = tmp_path / "book.m4b"
    result = write_outputs(chapters, metadata, out, quiet("m4b"), EXTRA)
    data = json.loads((tmp_path / "output.json").read_text())
    assert result.manifest == tmp_path / "output.json"
    assert data["format"] == "m4b" and data["files"] == ["book.m4b"]
    assert result.path == out and result.files == [out]
    assert data["duration_s"] == pytest.approx(result.duration_s)
    assert data["frames"] == result.frames == sum(c["frames"] for c in data["chapters"])
    assert [c["title"] for c in data["chapters"]] == TITLES
    assert [c["start_s"] for c in data["chapters"]] == expected_starts(chapters)
    assert [c["start_frame"] for c in data["chapters"]] == [t.start_frame for t in result.chapters]
    assert sum(c["duration_s"] for c in data["chapters"]) == pytest.approx(data["duration_s"])
    for key, value in EXTRA.items():
        assert data[key] == value
    assert OutputOptions.from_dict(data["options"]) == quiet("m4b")


def test_loudnorm_reaches_the_target(tmp_path, chapters, metadata):
    out = tmp_path / "book.wav"
    options = OutputOptions(format="wav", loudness_target=-16.0)
    result = write_outputs(chapters, metadata, out, options, {})
    assert result.loudness["measured"]["input_i"]
    assert result.loudness["normalization_type"] in ("linear", "dynamic")
    assert sf.info(str(out)).frames == result.frames  # the filter keeps the length exactly
    stderr = ff.run(
        ["-i", str(out), "-af", ff.loudnorm_filter(-16, -1.5, 15), "-f", "null", "-"],
        what="check",
        loglevel="info",
    )
    assert float(ff.parse_loudnorm(stderr)["input_i"]) == pytest.approx(-16, abs=1.0)
    data = json.loads((tmp_path / "output.json").read_text())
    assert data["loudness"]["target_i"] == -16.0


def test_split_chapters(tmp_path, chapters, metadata):
    out = tmp_path / "book"
    result = write_outputs(chapters, metadata, out, quiet("m4b", split_chapters=True), EXTRA)
    assert result.path == out
    names = [
        "01 - Chapter 1 Loomings.m4b",
        "02 - Chapter 2 = The Carpet-Bag; #2.m4b",
        "03 - Épilogue Fin.m4b",
    ]
    assert [p.name for p in result.files] == names
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "output.json"])
    timings = timeline(chapters, Pauses())
    for n, path in enumerate(result.files):
        probe = ff.probe(path)
        assert probe.tags["track"] == f"{n + 1}/3"
        assert probe.tags["title"] == TITLES[n]
        assert probe.tags["album"] == metadata.title and probe.tags["artist"] == "Herman Melville"
        assert probe.duration == pytest.approx(timings[n].duration, abs=0.05)
        assert any(s.attached_pic for s in probe.streams)
    data = json.loads((out / "output.json").read_text())
    assert data["files"] == names and [c["file"] for c in data["chapters"]] == names


def _failing_ffmpeg(tmp_path: Path, when: str = "") -> Path:
    """A wrapper that runs the real ffmpeg (so a partial file really is written), then fails."""
    real = imageio_ffmpeg.get_ffmpeg_exe()
    script = tmp_path / "bin" / "ffmpeg-crash"
    script.parent.mkdir()
    condition = f'case "$*" in *"{when}"*) ;; *) exec "{real}" "$@" ;; esac\n' if when else ""
    script.write_text(
        f"#!/bin/sh\n{condition}"
        f'"{real}" "$@"\n'
        "echo 'simulated encoder failure: No space left on device' >&2\nexit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_encoder_failure_leaves_nothing_then_export_succeeds(tmp_path, chapters, metadata, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "book.m4b"
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(_failing_ffmpeg(tmp_path, when="-c:a")))
    with pytest.raises(FFmpegError) as info:
        write_outputs(chapters, metadata, out, OutputOptions(), EXTRA)  # the loudness pass works, the encode fails
    assert "No space left on device" in info.value.stderr_tail
    assert "encoding book.m4b" in str(info.value)
    assert list(out_dir.iterdir()) == []
    assert all(s.wav.is_file() for c in chapters for s in c.segments)

    monkeypatch.delenv("AUDIOBOOK_FFMPEG")
    write_outputs(chapters, metadata, out, OutputOptions(), EXTRA)
    assert sorted(p.name for p in out_dir.iterdir()) == ["book.m4b", "output.json"]


def test_split_failure_removes_finished_parts(tmp_path, chapters, metadata, monkeypatch):
    out = tmp_path / "book"
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(_failing_ffmpeg(tmp_path, when="03 - ")))
    with pytest.raises(FFmpegError, match="encoding 03 - "):
        write_outputs(chapters, metadata, out, quiet("mp3", split_chapters=True), {})
    assert list(out.iterdir()) == []


def test_ffmpeg_rejecting_a_bitrate_is_reported(tmp_path, chapters, metadata):
    out = tmp_path / "book.opus"
    with pytest.raises(FFmpegError) as info:
        write_outputs(chapters, metadata, out, quiet("opus", bitrate="900000k"), {})
    assert info.value.stderr_tail
    assert list(tmp_path.iterdir()) == []


def test_options_validate_and_round_trip():
    options = OutputOptions.from_dict(
        {"format": "mp3", "pauses": {"chapter": 3}, "bitrate": "96k", "loudnorm": False, "other": 1}
    )
    assert options.pauses == Pauses(chapter=3.0) and options.resolved_bitrate == "96k"
    assert OutputOptions.from_dict(options.to_dict()) == options
    assert OutputOptions().format == "m4b" and OutputOptions().resolved_bitrate == "64k"
    assert OutputOptions(format="flac").resolved_bitrate is None
    with pytest.raises(AudiobookError, match="unknown format 'aiff'; choose one of m4b, mp3, opus, flac, wav"):
        OutputOptions(format="aiff")
    with pytest.raises(AudiobookError, match="bitrate 'fast'"):
        OutputOptions(bitrate="fast")
    with pytest.raises(AudiobookError, match="loudness target"):
        OutputOptions(loudness_target=3)


def test_names_and_tags():
    assert safe_name('a/b\\c:d*e?f"g<h>i|j\x01k') == "a b c d e f g h i j k"
    assert safe_name("  ...Dots...  ") == "Dots"  # no hidden files
    assert safe_name("x" * 200) == "x" * 80
    from audiobook.assemble import ChapterTiming

    timings = [ChapterTiming(i, t, 0, 1) for i, t in enumerate(["One", "???", *["x"] * 98])]
    names = chapter_file_names(timings, ".mp3")
    assert names[:2] == ["001 - One.mp3", "002 - Chapter 2.mp3"] and names[-1] == "100 - x.mp3"
    assert iso639_2("en-GB") == "eng" and iso639_2("fr") == "fre" and iso639_2("xx") == ""
    md = Metadata(title="T", authors=["A", "B"], date="c. 1900")
    assert book_tags(md, "m4b", track=(2, 9), title="Two") == {
        "title": "Two",
        "artist": "A, B",
        "album_artist": "A, B",
        "album": "T",
        "genre": "Audiobook",
        "language": "en",
        "track": "2/9",
        "media_type": "2",
    }


def test_nothing_to_export(tmp_path, metadata):
    with pytest.raises(AudiobookError, match="no narrated chapters"):
        write_outputs([], metadata, tmp_path / "x.m4b", OutputOptions(), {})


def test_cover_is_recognised_by_its_bytes_and_odd_ones_are_left_out(tmp_path, chapters, metadata, caplog):
    mislabelled = Metadata(title="T", authors=["A"], cover=png(), cover_type="image/jpeg")
    write_outputs(chapters, mislabelled, tmp_path / "a.m4b", quiet("m4b"), {})
    assert bytes(mutagen.File(tmp_path / "a.m4b").tags["covr"][0]) == png()
    gif = Metadata(title="T", authors=["A"], cover=b"GIF89a....", cover_type="image/gif")
    write_outputs(chapters, gif, tmp_path / "b.m4b", quiet("m4b"), {})
    assert not any(s.attached_pic for s in ff.probe(tmp_path / "b.m4b").streams)
    assert "cover (image/gif) left out" in caplog.text


def test_a_silent_book_is_exported_without_normalising(tmp_path, metadata, caplog):
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(RATE, dtype=np.int16), RATE, subtype="PCM_16")
    chapters = [ChapterAudio(0, "Quiet", [Segment(silent, RATE, [], True)])]
    result = write_outputs(chapters, metadata, tmp_path / "q.flac", OutputOptions(format="flac"), {})
    assert result.loudness is None and "measures as silence" in caplog.text
    assert ff.probe(result.files[0]).duration == pytest.approx(1.0, abs=0.05)
