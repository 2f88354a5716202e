"""The ffmpeg wrapper: pure builders against golden strings, executable lookup, errors carrying stderr."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import imageio_ffmpeg
import pytest

from audiobook import ffmpeg as ff
from audiobook.errors import AudiobookError, FFmpegError


def test_escape_ffmetadata_specials_and_newlines():
    assert ff.escape_ffmetadata("a=b;c#d\\e\nf") == "a\\=b\\;c\\#d\\\\e\\\nf"
    assert ff.escape_ffmetadata("line\r\nbreak") == "line\\\nbreak"
    assert ff.escape_ffmetadata("plain, 'quoted' \"text\"") == "plain, 'quoted' \"text\""


def test_ffmetadata_golden():
    text = ff.ffmetadata(
        {"title": "Moby=Dick; or #1", "artist": "Herman Melville", "comment": "", "description": "a\nb"},
        [ff.ChapterMark("Loomings", 0, 36000), ff.ChapterMark("The Carpet\\Bag", 36000, 96000)],
    )
    assert text == (
        ";FFMETADATA1\n"
        "title=Moby\\=Dick\\; or \\#1\n"
        "artist=Herman Melville\n"
        "description=a\\\nb\n"
        "\n"
        "[CHAPTER]\n"
        "TIMEBASE=1/24000\n"
        "START=0\n"
        "END=36000\n"
        "title=Loomings\n"
        "\n"
        "[CHAPTER]\n"
        "TIMEBASE=1/24000\n"
        "START=36000\n"
        "END=96000\n"
        "title=The Carpet\\\\Bag\n"
    )


def test_ffmetadata_without_chapters():
    assert ff.ffmetadata({"title": "T"}) == ";FFMETADATA1\ntitle=T\n"


def test_clock_and_vorbis_chapters_golden():
    assert ff.clock(0) == "00:00:00.000"
    assert ff.clock(3723.4567) == "01:02:03.457"
    assert ff.clock(45 * 3600 + 0.0004) == "45:00:00.000"
    marks = [ff.ChapterMark("One", 0, 24000), ff.ChapterMark("Two", 36012, 48000)]
    assert ff.vorbis_chapters(marks) == {
        "CHAPTER000": "00:00:00.000",
        "CHAPTER000NAME": "One",
        "CHAPTER001": "00:00:01.500",
        "CHAPTER001NAME": "Two",
    }


def test_loudnorm_filters_golden():
    assert ff.loudnorm_filter(-18, -1.5, 15) == "loudnorm=I=-18:TP=-1.5:LRA=15:print_format=json,aresample=24000"
    measured = {
        "input_i": "-23.10",
        "input_tp": "-7.20",
        "input_lra": "4.30",
        "input_thresh": "-33.40",
        "target_offset": "0.20",
    }
    assert ff.loudnorm_filter(-16, -1, 11, measured) == (
        "loudnorm=I=-16:TP=-1:LRA=11:measured_I=-23.10:measured_TP=-7.20:measured_LRA=4.30:"
        "measured_thresh=-33.40:offset=0.20:linear=true:print_format=json,aresample=24000"
    )


def test_parse_loudnorm_takes_the_last_json_block():
    stderr = 'Input #0 {junk\n[Parsed_loudnorm_0 @ 0x1]\n{\n\t"input_i" : "-20.5",\n\t"input_tp" : "-3.0"\n}\n'
    assert ff.parse_loudnorm(stderr) == {"input_i": "-20.5", "input_tp": "-3.0"}
    with pytest.raises(FFmpegError, match="no measurement"):
        ff.parse_loudnorm("nothing here")


def test_encode_args_golden():
    spec = ff.EncodeSpec(
        muxer="ipod",
        codec="aac",
        output=Path("/o/.book.partial.m4b"),
        bitrate="64k",
        metadata_file=Path("/t/metadata.txt"),
        cover_file=Path("/t/cover.jpg"),
        audio_filter="loudnorm=I=-18",
        stream_language="eng",
        extra=["-movflags", "+faststart"],
    )
    assert ff.encode_args(spec) == [
        "-f", "s16le", "-ar", "24000", "-ac", "1", "-i", "pipe:0",
        "-f", "ffmetadata", "-i", "/t/metadata.txt",
        "-i", "/t/cover.jpg",
        "-map", "0:a",
        "-map", "2:v", "-c:v", "copy", "-disposition:v:0", "attached_pic",
        "-map_metadata", "1", "-map_chapters", "1",
        "-af", "loudnorm=I=-18",
        "-c:a", "aac", "-b:a", "64k",
        "-metadata:s:a:0", "language=eng",
        "-movflags", "+faststart",
        "-f", "ipod", "-y", "/o/.book.partial.m4b",
    ]  # fmt: skip


def test_encode_args_plain_wav():
    spec = ff.EncodeSpec(muxer="wav", codec="pcm_s16le", output=Path("b.wav"))
    assert ff.encode_args(spec) == [
        "-f", "s16le", "-ar", "24000", "-ac", "1", "-i", "pipe:0",
        "-map", "0:a", "-map_metadata", "-1", "-map_chapters", "-1",
        "-c:a", "pcm_s16le", "-f", "wav", "-y", "b.wav",
    ]  # fmt: skip


def test_parse_probe():
    report = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.m4b':
  Metadata:
    major_brand     : M4A
    title           : My Book
    comment         : line one
                    : line two
  Duration: 01:02:03.45, start: 0.000000, bitrate: 69 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 3.400000
      Metadata:
        title           : One: the start
    Chapter #0:1: start 3.400000, end 7.000000
      Metadata:
        title           : Two
  Stream #0:0[0x1](eng): Audio: aac (LC) (mp4a / 0x6134706D), 24000 Hz, mono, fltp, 64 kb/s (default)
      Metadata:
        handler_name    : SoundHandler
  Stream #0:1[0x0]: Video: mjpeg (Baseline), yuvj420p, 16x16, 90k tbn (attached pic)
Output #0, ffmetadata, to '/dev/null':
  Metadata:
    title           : ignored
"""
    p = ff.parse_probe(report)
    assert p.duration == pytest.approx(3723.45)
    assert p.sample_rate == 24000
    assert p.tags["title"] == "My Book"
    assert p.tags["comment"] == "line one\nline two"
    assert p.tags["handler_name"] == "SoundHandler"
    assert [(c.start, c.end, c.title) for c in p.chapters] == [
        (0.0, 3.4, "One: the start"),
        (3.4, 7.0, "Two"),
    ]
    assert [(s.kind, s.codec, s.attached_pic, s.language) for s in p.streams] == [
        ("Audio", "aac", False, "eng"),
        ("Video", "mjpeg", True, ""),
    ]


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_ffmpeg_prefers_env_var(tmp_path, monkeypatch):
    fake = _script(tmp_path / "my-ffmpeg", "exit 0\n")
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(fake))
    assert ff.find_ffmpeg() == str(fake)


def test_find_ffmpeg_env_var_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(tmp_path / "missing"))
    with pytest.raises(AudiobookError, match="AUDIOBOOK_FFMPEG"):
        ff.find_ffmpeg()


def test_find_ffmpeg_then_path_then_imageio(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOBOOK_FFMPEG", raising=False)
    _script(tmp_path / "ffmpeg", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ff.find_ffmpeg() == str(tmp_path / "ffmpeg")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert ff.find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()


def test_find_ffmpeg_none_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIOBOOK_FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    def no_binary():
        raise RuntimeError("no ffmpeg exe")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    with pytest.raises(AudiobookError, match="ffmpeg not found.*AUDIOBOOK_FFMPEG"):
        ff.find_ffmpeg()


def test_run_error_carries_stderr_tail(tmp_path, monkeypatch):
    lines = "".join(f"echo 'line {n}' >&2\n" for n in range(40))
    fake = _script(tmp_path / "ffmpeg", lines + "echo 'Error: disk full' >&2\nexit 3\n")
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(fake))
    with pytest.raises(FFmpegError) as info:
        ff.run(["-i", "x"], what="encoding book.m4b")
    err = info.value
    assert str(err).startswith("encoding book.m4b: ffmpeg exited with status 3\n")
    assert err.stderr_tail.splitlines()[-1] == "Error: disk full"
    assert len(err.stderr_tail.splitlines()) == ff.STDERR_TAIL_LINES
    assert "line 0\n" not in err.stderr_tail


def test_run_feeds_stdin_and_survives_early_exit(tmp_path, monkeypatch):
    """ffmpeg that stops reading early must not hang us; a large stdin is written without deadlock."""
    fake = _script(tmp_path / "ffmpeg", "head -c 10 >/dev/null\necho 'Error: gave up' >&2\nexit 1\n")
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(fake))
    blocks = (bytes(65536) for _ in range(200))
    with pytest.raises(FFmpegError, match="gave up"):
        ff.run([], what="encoding", stdin=blocks)


def test_run_kills_ffmpeg_when_the_pcm_source_fails(tmp_path, monkeypatch):
    fake = _script(tmp_path / "ffmpeg", "cat >/dev/null\n")
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(fake))

    def blocks():
        yield bytes(100)
        raise AudiobookError("chunk WAV gone")

    with pytest.raises(AudiobookError, match="chunk WAV gone"):
        ff.run([], what="encoding", stdin=blocks())


EBUR128_SUMMARY = """[Parsed_ebur128_0 @ 0x7f98] Summary:

  Integrated loudness:
    I:         -21.6 LUFS
    Threshold: -31.7 LUFS

  Loudness range:
    LRA:         3.1 LU
    Threshold: -41.9 LUFS
    LRA low:   -23.0 LUFS
    LRA high:  -19.9 LUFS

  True peak:
    Peak:      -12.0 dBFS
[out#0/null @ 0x55e3] video:0KiB audio:741KiB
"""


def test_parse_ebur128_gives_loudnorm_names():
    assert ff.parse_ebur128(EBUR128_SUMMARY) == {
        "input_i": "-21.6",
        "input_tp": "-12.0",
        "input_lra": "3.1",
        "input_thresh": "-31.7",
        "target_offset": "0",
    }
    silent = EBUR128_SUMMARY.replace("-12.0 dBFS", "-inf dBFS")
    assert ff.parse_ebur128(silent)["input_tp"] == "-99"
    with pytest.raises(FFmpegError, match="no loudness summary"):
        ff.parse_ebur128("Error: nothing")


def test_run_real_ffmpeg_measures_pcm(monkeypatch):
    monkeypatch.delenv("AUDIOBOOK_FFMPEG", raising=False)
    import numpy as np

    t = np.arange(24000 * 4) / 24000
    pcm = (0.2 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2").tobytes()
    stderr = ff.run(ff.measure_args(ff.MEASURE_FILTER), what="measuring", stdin=[pcm], loglevel="info")
    by_ebur128 = ff.parse_ebur128(stderr)
    stderr = ff.run(ff.measure_args(ff.loudnorm_filter(-18, -1.5, 15)), what="x", stdin=[pcm], loglevel="info")
    by_loudnorm = ff.parse_loudnorm(stderr)
    assert -20 < float(by_ebur128["input_i"]) < -10
    for key in ("input_i", "input_tp", "input_thresh"):  # the fast measurement agrees with loudnorm's own
        assert float(by_ebur128[key]) == pytest.approx(float(by_loudnorm[key]), abs=0.2)
    assert os.path.exists(ff.find_ffmpeg())
