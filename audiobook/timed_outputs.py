"""Timed text beside a job's audio: ``timings.json``, SRT/WebVTT subtitles, and the read-along EPUB 3.

Everything here reads the timings the workers stored beside the chunk WAVs and shifts them with the same
layout the audio was assembled from (:func:`audiobook.timing.book_timings`); nothing is synthesized. A chunk
synthesized without timings (by audiobook 0.1.0) still exports as audio; a timed output of its job names the
chunks that lack them and how to redo just those (``audiobook resume JOB --retime``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

from .assemble import ChapterAudio
from .atomic import write_atomic
from .errors import JobError
from .job import Job
from .outputs import MANIFEST_NAME, ExportResult, OutputOptions, manifest, write_outputs
from .subtitles import subtitles
from .timing import BookTimings, ChunkTimings, book_timings, load, timings_json

log = logging.getLogger(__name__)

TIMINGS_NAME = "timings.json"
"""Beside ``output.json``: chapters -> sentences -> words, in seconds of the final audio."""
READ_ALONG_AUDIO = "mp3"
"""The chapters' audio inside the EPUB: MP3 is a core media type of EPUB 3 that every reading system plays."""


class TimingsMissing(JobError):
    """Some finished chunks have no timings, so a timed output cannot cover them."""


def chunk_timings(job: Job) -> tuple[dict[Path, ChunkTimings], list[str]]:
    """The stored timings of every finished chunk, by WAV path, and the ids of chunks without sound ones."""
    found: dict[Path, ChunkTimings] = {}
    missing = []
    for chunk in job.done():
        timings = load(job.dir / chunk.timings, chunk.frames or 0) if chunk.timings else None
        if timings is None:
            missing.append(chunk.id)
        else:
            found[job.dir / chunk.wav] = timings
    return found, missing


def missing_message(job: Job, ids: list[str]) -> str:
    """Which chunks lack timings, and the command that redoes only those."""
    from .export import short_list

    return (
        f"{len(ids)} chunks have no timings ({short_list(ids)}): they were synthesized before audiobook wrote "
        f"timings, or by a model that cannot time its phonemes; `audiobook resume {job.dir} --retime` "
        "re-synthesizes just those"
    )


def write_beside(job: Job, chapters: list[ChapterAudio], result: ExportResult) -> list[Path]:
    """``timings.json`` and the subtitles the options ask for, beside the audio ``result`` wrote.

    ``TimingsMissing`` (after the audio is written) when subtitles are asked for and some chunks lack timings.
    """
    options = job.output.options
    found, missing = chunk_timings(job)
    book = book_timings(chapters, options.pauses, found)
    written = []
    if not missing:
        path = result.manifest.with_name(TIMINGS_NAME)
        names = [f.name for f in result.files] if options.split_chapters else None
        write_atomic(path, _json(timings_json(book, names)))
        written.append(path)
    if options.subtitles:
        if missing:
            raise TimingsMissing(f"wrote {result.path} but no subtitles: {missing_message(job, missing)}")
        written += write_subtitles(book, result, options)
    elif missing:
        log.info("no %s: %s", TIMINGS_NAME, missing_message(job, missing))
    return written


def subtitle_paths(files: list[Path], fmt: str) -> list[Path]:
    """Each audio file's subtitles: same name, the subtitle format's extension (``book.m4b`` -> ``book.srt``),
    where players look for them."""
    return [f.with_suffix(f".{fmt}") for f in files]


def write_subtitles(book: BookTimings, result: ExportResult, options: OutputOptions) -> list[Path]:
    """One subtitle file per audio file: the whole book, or each chapter's own (times from its file's start)."""
    fmt = options.subtitles or "vtt"
    paths = subtitle_paths(result.files, fmt)
    if options.split_chapters:
        for chapter, path in zip(book.chapters, paths, strict=True):
            text = subtitles([chapter], fmt, options.subtitle_words, offset=chapter.start)
            write_atomic(path, text.encode("utf-8"))
    else:
        write_atomic(paths[0], subtitles(book.chapters, fmt, options.subtitle_words).encode("utf-8"))
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# ---- the read-along EPUB --------------------------------------------------------------------------------


def write_read_along(job: Job, chapters: list[ChapterAudio], out: Path, extra: dict) -> ExportResult:
    """The book's EPUB 3 with each chapter's audio and Media Overlays (see :mod:`audiobook.readalong`), plus
    ``output.json`` and ``timings.json`` beside it."""
    from .readalong import add_overlays, write_epub

    found, missing = chunk_timings(job)
    if missing:
        raise TimingsMissing(f"no read-along EPUB: {missing_message(job, missing)}")
    options = job.output.options
    book = book_timings(chapters, options.pauses, found)
    audio_options = dataclasses.replace(options, format=READ_ALONG_AUDIO, split_chapters=True, subtitles=None)
    with tempfile.TemporaryDirectory(prefix="audiobook-read-along-") as work:
        audio = write_outputs(chapters, job.metadata(), Path(work), audio_options)
        publication, narrated = _publication(job, book, audio.files)
        report = add_overlays(publication, narrated, narrator=f"Kokoro-82M ({job.settings.voice})")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_epub(publication, out)
    log.info(
        "wrote %s: %d of %d sentences highlighted as they are spoken",
        out,
        report.placed,
        report.sentences,
    )
    data = manifest(
        [out],
        audio.chapters,
        options,
        audio.loudness,
        {**extra, "sentences": report.sentences, "sentences_placed": report.placed},
    )
    manifest_path = out.parent / MANIFEST_NAME
    write_atomic(manifest_path, _json(data))
    write_atomic(out.parent / TIMINGS_NAME, _json(timings_json(book)))
    return ExportResult(out, [out], manifest_path, audio.chapters, audio.frames, audio.loudness)


def _publication(job: Job, book: BookTimings, audio: list[Path]):  # noqa: ANN202 - (Publication, chapters)
    """The book's own EPUB 3 when the job has it and it still reads as the job was planned; else one generated
    from the narrated text."""
    from .readalong import NarratedChapter, NotEpub3, TextChapter, generate, open_epub
    from .readers import read_book

    source = job.source_copy()
    if source is not None and source.suffix == ".epub":
        try:
            publication = open_epub(source)
            read = read_book(source)
            titles = [read.chapters[c.index].title if c.index < len(read.chapters) else None for c in book.chapters]
            if titles != [c.title for c in book.chapters]:
                raise NotEpub3(f"{source} no longer reads as the job was planned (other chapters)")
            sources = [read.chapters[c.index].source for c in book.chapters]
            return publication, [
                NarratedChapter(c, s, a) for c, s, a in zip(book.chapters, sources, audio, strict=True)
            ]
        except NotEpub3 as e:
            log.info("%s; the read-along EPUB is generated from the narrated text", e)
    elif source is None:
        log.info("the job keeps no copy of its book; the read-along EPUB is generated from the narrated text")
    texts = [TextChapter(c.title, _narrated_paragraphs(job, c.index)) for c in book.chapters]
    publication, documents = generate(job.metadata(), texts)
    return publication, [NarratedChapter(c, d, a) for c, d, a in zip(book.chapters, documents, audio, strict=True)]


def _narrated_paragraphs(job: Job, chapter: int) -> list[str]:
    """A chapter's paragraphs as they were narrated: its chunk texts, joined as the chunker cut them."""
    by_id = {c.id: c for c in job.chunks}
    entry = next(c for c in job.chapters if c.index == chapter)
    text = ""
    for chunk_id in entry.chunks:
        chunk = by_id[chunk_id]
        text += job.chunk_text(chunk) + ("\n\n" if chunk.ends_paragraph else " ")
    return [p.strip() for p in text.split("\n\n") if p.strip()]
