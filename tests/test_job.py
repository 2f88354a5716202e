"""job.json: atomic writes, loading errors, checks against the disk, the lock, per-chunk seeds."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiobook import job as jobs
from audiobook.book import Book, Chapter, Metadata
from audiobook.chunker import Chunk
from audiobook.engine.voices import VoiceSpec
from audiobook.errors import AudiobookError, JobError
from audiobook.outputs import OutputChanges
from audiobook.settings import Settings

SETTINGS = Settings(
    backend="onnx", model="bundled", voice=VoiceSpec.parse("jf_alpha"), speed=1.0, lang="a", seed=3, max_chunk_chars=500
)


def _book() -> Book:
    chapters = [Chapter("One", ["One", "First words here."]), Chapter("Two", ["Two", "Second words."])]
    return Book(Metadata(title="T", authors=["A"], cover=b"\x89PNG fake", cover_type="image/png"), chapters)


def _chunks() -> list[Chunk]:
    return [
        Chunk("000-0000", 0, 0, "One\n\nFirst words here.", True),
        Chunk("001-0000", 1, 0, "Two\n\nSecond words.", True),
    ]


@pytest.fixture
def job(tmp_path: Path) -> jobs.Job:
    source = tmp_path / "book.txt"
    source.write_text("whatever", encoding="utf-8")
    return jobs.create(tmp_path / "job", _book(), source, [0, 1], _chunks(), SETTINGS)


def _write_wav(path: Path, frames: int) -> None:
    soundfile.write(str(path), np.zeros(frames, dtype=np.int16), 24000, subtype="PCM_16")


def test_create_writes_texts_cover_and_a_versioned_job_file(job: jobs.Job) -> None:
    data = json.loads((job.dir / "job.json").read_text())
    assert data["schema"] == "audiobook-job" and data["version"] == jobs.VERSION
    assert [c["id"] for c in data["chunks"]] == ["000-0000", "001-0000"]
    assert (job.dir / "chunks/000-0000.txt").read_text() == "One\n\nFirst words here."
    assert data["chunks"][0]["text"] == "chunks/000-0000.txt"
    assert data["chunks"][0]["text_sha256"] == jobs.sha256_text("One\n\nFirst words here.")
    assert data["chapters"] == [
        {"index": 0, "title": "One", "chunks": ["000-0000"]},
        {"index": 1, "title": "Two", "chunks": ["001-0000"]},
    ]
    assert data["book"]["cover"] == "cover.png" and (job.dir / "cover.png").read_bytes() == b"\x89PNG fake"
    assert len(data["book"]["sha256"]) == 64


def test_round_trip_and_metadata_survive_without_the_book(job: jobs.Job) -> None:
    Path(job.book["source"]).unlink()
    loaded = jobs.load(job.dir)
    assert loaded.to_dict() == job.to_dict()
    assert loaded.metadata().cover == b"\x89PNG fake" and loaded.metadata().authors == ["A"]


def test_save_leaves_no_temporary_files(job: jobs.Job) -> None:
    for _ in range(3):
        job.save()
    assert sorted(p.name for p in job.dir.iterdir()) == [".lock", "chunks", "cover.png", "job.json", "wav"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no job.json here"),
        ("{not json", "unreadable"),
        ('{"schema": "other"}', "not an audiobook job file"),
        ('{"schema": "audiobook-job", "version": 99}', "job format version 99.*upgrade audiobook"),
        ('{"schema": "audiobook-job", "version": 1, "book": {}}', "malformed job file"),
        ('{"schema": "audiobook-job", "version": 2, "book": {}, "settings": {}}', "malformed job file"),
        (
            '{"schema": "audiobook-job", "version": 2, "book": {}, "chapters": [], "chunks": [], '
            '"settings": {"backend": "onnx", "model": "bundled", "speed": 1, "lang": "a", "seed": 0, '
            '"max_chunk_chars": 500}}',
            "malformed job file .job settings are malformed",
        ),
    ],
)
def test_load_errors_are_clear(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "job.json").write_text(content)
    with pytest.raises(JobError, match=message):
        jobs.load(tmp_path)


def test_verify_keeps_good_chunks_and_repairs_bad_ones(job: jobs.Job) -> None:
    first, second = job.chunks
    _write_wav(job.dir / "wav/000-0000.wav", 480)
    job.mark_done(first, "wav/000-0000.wav", 480, [], 0.1, first.text_sha256)
    _write_wav(job.dir / "wav/001-0000.wav", 100)
    job.mark_done(second, "wav/001-0000.wav", 999, [], 0.1, second.text_sha256)  # wrong frame count
    repairs = jobs.verify(job)
    assert [r.split(":")[0] for r in repairs] == ["001-0000"]
    assert "100 frames" in repairs[0]
    assert first.status == "done" and second.status == "pending"


def test_verify_resynthesizes_an_edited_chunk(job: jobs.Job) -> None:
    first = job.chunks[0]
    _write_wav(job.dir / "wav/000-0000.wav", 480)
    job.mark_done(first, "wav/000-0000.wav", 480, [], 0.1, first.text_sha256)
    (job.dir / first.text).write_text("One\n\nFirst words, pronounced better.", encoding="utf-8")
    repairs = jobs.verify(job)
    assert repairs == ["000-0000: its text file was edited since it was synthesized"]
    assert first.status == "pending"
    assert first.text_sha256 == jobs.sha256_text("One\n\nFirst words, pronounced better.")


def test_verify_catches_missing_and_corrupt_wavs(job: jobs.Job) -> None:
    first, second = job.chunks
    job.mark_done(first, "wav/000-0000.wav", 480, [], 0.1, first.text_sha256)
    (job.dir / "wav/001-0000.wav").write_bytes(b"RIFF garbage")
    job.mark_done(second, "wav/001-0000.wav", 480, [], 0.1, second.text_sha256)
    repairs = jobs.verify(job)
    assert "is missing" in repairs[0] and "does not parse" in repairs[1]


def test_missing_chunk_text_is_an_error(job: jobs.Job) -> None:
    (job.dir / "chunks/001-0000.txt").unlink()
    with pytest.raises(JobError, match="chunk text file is missing"):
        jobs.verify(job)


def _hold_lock(job_dir: str, ready, release) -> None:
    with jobs.JobLock(Path(job_dir)):
        ready.set()
        release.wait(30)


def test_lock_refuses_a_second_runner_and_frees_on_exit(job: jobs.Job) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(job.dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(JobError, match=rf"another audiobook process \(pid {holder.pid}\)"):
            with jobs.JobLock(job.dir):
                pass
    finally:
        release.set()
        holder.join(30)
    with jobs.JobLock(job.dir):
        pass


def test_lock_is_released_when_its_holder_is_killed(job: jobs.Job) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(job.dir), ready, release))
    holder.start()
    assert ready.wait(30)
    os.kill(holder.pid, 9)
    holder.join(30)
    with jobs.JobLock(job.dir):
        pass


def test_chunk_seed_is_stable_and_distinct() -> None:
    assert jobs.chunk_seed(0, "000-0000") == jobs.chunk_seed(0, "000-0000")
    assert jobs.chunk_seed(0, "000-0000") != jobs.chunk_seed(1, "000-0000")
    assert jobs.chunk_seed(0, "000-0000") != jobs.chunk_seed(0, "000-0001")
    assert 0 <= jobs.chunk_seed(12345, "999-9999") < 2**31


@pytest.mark.parametrize(
    ("saved", "changes", "options", "path"),
    [
        # --out alone names the format
        ({}, OutputChanges(out=Path("/b/book.mp3")), {"format": "mp3"}, "/b/book.mp3"),
        # a new format without a new --out forgets the saved one: no MP3 on the M4B's name
        ({"path": "/b/book.m4b"}, OutputChanges(format="mp3"), {"format": "mp3"}, None),
        # changing a pause keeps it
        ({"path": "/b/book.m4b"}, OutputChanges(pause_chapter=3.0), {"format": "m4b"}, "/b/book.m4b"),
        # a split export goes to a folder: its name says nothing about the format
        ({}, OutputChanges(split_chapters=True, out=Path("/b/book.mp3")), {"format": "m4b"}, "/b/book.mp3"),
    ],
)
def test_output_record_update(saved: dict, changes: OutputChanges, options: dict, path: str | None) -> None:
    record = jobs.OutputRecord.from_dict({"options": {}, **saved})
    record.update(changes)
    assert record.path == path
    assert {k: record.options.to_dict()[k] for k in options} == options
    assert jobs.OutputRecord.from_dict(record.to_dict()) == record


def test_output_record_refuses_a_file_name_that_contradicts_the_format() -> None:
    with pytest.raises(AudiobookError, match="--out book.wav is a .wav file name but --format is mp3"):
        jobs.OutputRecord().update(OutputChanges(format="mp3", out=Path("book.wav")))
