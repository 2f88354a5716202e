"""The job directory and its ``job.json``: plan, load, atomic save, state transitions, checks, lock.

Layout of a job directory::

    job.json          the whole state (schema version 2); rewritten atomically after every change
    job.v1.json       the version-1 file, kept when an older job was upgraded
    chunks/ID.txt     the text of each chunk (UTF-8); edit one to fix a pronunciation, then resume
    lexicon.txt       the job's pronunciation lexicon (a copy of --lexicon FILE); edit it, then resume
    wav/ID.wav        the audio of each finished chunk (24 kHz mono PCM 16)
    cover.<ext>       the book's cover, so export works after the book file is gone
    book.epub         a copy of an EPUB book, for the read-along EPUB (``export --format epub3``)
    wav/ID.timings.json  when each sentence and word of a finished chunk is spoken (see audiobook.timing)
    logs/             one stderr log per worker process
    .lock             held by the one process that runs the job

A chunk is ``done`` only once its WAV is in place (written under a temporary name, then renamed) *and*
recorded here. ``verify`` re-checks every done chunk against the disk before any work starts.

Version 1 files (audiobook 0.1.0) are upgraded on load: settings resolved and checked like new ones, the
output options and the chapter selection moved to their own records. The caller that holds the lock saves
the upgrade (see :func:`open_for_update`); a read-only caller (``status``) upgrades in memory only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import soundfile

from .atomic import atomic_file, write_atomic
from .book import Book, Metadata
from .chunker import Chunk
from .errors import AudiobookError, JobError, RunStopped
from .lexicon import Lexicon, load_lexicons
from .outputs import OutputChanges, OutputOptions
from .settings import PER_CHUNK, Settings, SettingsRequest, changes, describe, resolve

log = logging.getLogger(__name__)

SCHEMA = "audiobook-job"
VERSION = 2
JOB_FILE = "job.json"
LEXICON_FILE = "lexicon.txt"
PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class OutputRecord:
    """The job's output: how to write it, where, and what was last written. One update function: ``update``."""

    options: OutputOptions = field(default_factory=OutputOptions)
    path: str | None = None
    """Where the user asked the output to go (``--out``), absolute; ``None``: beside the job directory."""
    file: str | None = None
    """The file (or folder, for a split export) last written."""
    exported: str | None = None
    """When it was written, ISO 8601 UTC."""

    def update(self, changes: OutputChanges) -> None:
        """Take the flags the user gave. ``--out book.mp3`` alone means MP3; a saved ``--out`` is forgotten
        when the format or layout changes without a new one (an MP3 must not be written over the M4B's name)."""
        changes = changes.with_format_from_out()
        if changes.out is None and changes.changes_layout(self.options):
            self.path = None
        self.options = self.options.changed(changes)
        if changes.out is not None:
            self.path = str(Path(changes.out).resolve())

    def written(self, path: Path) -> None:
        self.file = str(path)
        self.exported = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        return {"options": self.options.to_dict(), "path": self.path, "file": self.file, "exported": self.exported}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRecord:
        return cls(
            OutputOptions.from_dict(data.get("options", {})), data.get("path"), data.get("file"), data.get("exported")
        )


@dataclass
class ChunkState:
    id: str
    chapter: int
    text: str
    """Path of the chunk's text file, relative to the job directory."""
    chars: int
    text_sha256: str
    ends_paragraph: bool = True
    status: str = PENDING
    attempts: int = 0
    wav: str | None = None
    frames: int | None = None
    paragraph_ends: list[int] = field(default_factory=list)
    synthesized_sha256: str | None = None
    """``text_sha256`` of the text the WAV was made from; a mismatch means the text was edited."""
    synth_s: float | None = None
    error: str | None = None
    normalizer: str | None = None
    """The text normaliser version the WAV was made with (``None``: none, or not recorded)."""
    lexicon_entries: str | None = None
    """Digest of the lexicon entries that touched the text when the WAV was made (``""``/``None``: none); a
    mismatch with today's entries means the lexicon changed for this chunk's words."""
    timings: str | None = None
    """The chunk's timings file beside its WAV (relative path); None for a chunk synthesized without them
    (by audiobook 0.1.0, or by a model that cannot time its phonemes)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ChapterEntry:
    index: int
    title: str
    chunks: list[str]


@dataclass
class RunRecord:
    """One synthesis run, kept in the job's history: where it ran, how long, how much it did."""

    started: str
    """ISO 8601 UTC."""
    wall_s: float = 0.0
    device: str | None = None
    backend: str | None = None
    load_s: float | None = None
    """The first worker's model load."""
    workers: int = 0
    threads: int = 0
    chunks_done: int = 0
    synth_s: float = 0.0
    """Seconds the workers spent synthesizing, summed over workers."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Job:
    """A loaded job. Mutate through the methods below; each one saves."""

    dir: Path
    book: dict[str, Any]
    settings: Settings
    chapters: list[ChapterEntry]
    chunks: list[ChunkState]
    output: OutputRecord = field(default_factory=OutputRecord)
    selection: str = "all"
    """The ``--chapters`` spec the plan was made with."""
    created: str = ""
    runs: list[RunRecord] = field(default_factory=list)
    upgraded_from: int | None = None
    """The job.json version this was read from, when older than ``VERSION`` (not saved)."""

    # ---- reading ---------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.dir / JOB_FILE

    def chunk(self, chunk_id: str) -> ChunkState:
        return next(c for c in self.chunks if c.id == chunk_id)

    def chunk_text(self, chunk: ChunkState) -> str:
        return (self.dir / chunk.text).read_text(encoding="utf-8")

    @property
    def lexicon_path(self) -> Path:
        return self.dir / LEXICON_FILE

    def lexicon(self) -> Lexicon:
        """The pronunciation lexicon in use: the job's ``lexicon.txt`` (if any) over the user's own."""
        return load_lexicons(self.lexicon_path if self.lexicon_path.is_file() else None)

    def pending(self) -> list[ChunkState]:
        """Chunks still to synthesize, failed ones included (resume retries them)."""
        return [c for c in self.chunks if c.status != DONE]

    def done(self) -> list[ChunkState]:
        return [c for c in self.chunks if c.status == DONE]

    def untimed(self) -> list[ChunkState]:
        """Finished chunks without timings: subtitles and the read-along EPUB cannot cover them."""
        return [c for c in self.done() if not c.timings]

    def source_copy(self) -> Path | None:
        """The job's own copy of the book file, if it has one (jobs planned before timed text do not)."""
        name = self.book.get("copy")
        return self.dir / name if name and (self.dir / name).is_file() else None

    def metadata(self) -> Metadata:
        cover_file = self.book.get("cover")
        cover = (self.dir / cover_file).read_bytes() if cover_file and (self.dir / cover_file).exists() else None
        return Metadata(
            title=self.book.get("title", ""),
            authors=list(self.book.get("authors", [])),
            language=self.book.get("language", "en"),
            identifier=self.book.get("identifier", ""),
            description=self.book.get("description", ""),
            date=self.book.get("date", ""),
            cover=cover,
            cover_type=self.book.get("cover_type", "") if cover else "",
        )

    # ---- writing ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "created": self.created,
            "book": self.book,
            "selection": self.selection,
            "settings": self.settings.to_dict(),
            "output": self.output.to_dict(),
            "chapters": [dataclasses.asdict(c) for c in self.chapters],
            "chunks": [dataclasses.asdict(c) for c in self.chunks],
            "runs": [dataclasses.asdict(r) for r in self.runs],
        }

    def save(self) -> None:
        """Rewrite job.json atomically; on a full disk the previous file stays whole and the run stops."""
        try:
            write_atomic(self.path, (json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n").encode())
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise RunStopped(
                f"disk full in {self.dir}: job.json cannot be saved ({e.strerror}); free some space, then: "
                f"audiobook resume {self.dir}"
            ) from e

    def adopt(self, settings: Settings, allow_change: bool) -> None:
        """Take resolved settings. New audio settings are refused while finished chunks were made with the old
        ones, unless ``allow_change``: then every finished chunk is synthesized again (a book in two voices is
        never what anyone wants). The chunking itself never changes: that needs a new plan.

        A new normaliser version or lexicon is never refused (``PER_CHUNK``): the first is reported once and
        finished chunks are kept; for the second, :func:`verify` redoes the chunks whose words it touches."""
        diff = changes(self.settings, settings)
        if not diff:
            return
        self._report_per_chunk_changes(diff)
        diff = {name: change for name, change in diff.items() if name not in PER_CHUNK}
        if not diff:
            self.settings = settings
            self.save()
            return
        if "max_chunk_chars" in diff:
            raise JobError(
                f"{self.dir}: planned with --max-chunk-chars {self.settings.max_chunk_chars}; "
                "chunking differently needs a new --job-dir"
            )
        done = self.done()
        if done and not allow_change:
            raise JobError(
                f"{self.dir}: this job's audio was made with other settings ({describe(diff)}); pass "
                "--allow-settings-change to re-synthesize every chunk with the new ones"
            )
        if done:
            log.warning(
                "settings changed (%s): all %d finished chunks will be synthesized again", describe(diff), len(done)
            )
        for chunk in done:
            chunk.status, chunk.frames, chunk.paragraph_ends, chunk.synthesized_sha256 = PENDING, None, [], None
        self.settings = settings
        self.save()

    def _report_per_chunk_changes(self, diff: dict[str, tuple[Any, Any]]) -> None:
        done = self.done()
        if "normalizer" in diff and done:
            old, new = diff["normalizer"]
            log.warning(
                "%d finished chunks were read with %s; this run uses text normaliser version %s, so chunks made "
                "from now on may read some numbers, numerals or abbreviations differently (finished ones are kept)",
                len(done),
                f"text normaliser version {old}" if old else "no text normaliser",
                new,
            )
        if "lexicon" in diff and done:
            log.info("the pronunciation lexicon changed: chunks whose words it touches will be synthesized again")

    def mark_done(
        self,
        chunk: ChunkState,
        wav: str,
        frames: int,
        paragraph_ends: list[int],
        synth_s: float,
        text_sha256: str,
        normalizer: str | None = None,
        lexicon_entries: str = "",
        timings: str | None = None,
    ) -> None:
        """Record a chunk whose WAV (and timings file, if any) is already in place, and what it was made from."""
        chunk.status, chunk.wav, chunk.frames = DONE, wav, frames
        chunk.paragraph_ends, chunk.synth_s, chunk.error = list(paragraph_ends), synth_s, None
        chunk.synthesized_sha256, chunk.timings = text_sha256, timings
        chunk.normalizer, chunk.lexicon_entries = normalizer, lexicon_entries
        self.save()

    def keep_lexicon(self, source: Path) -> None:
        """Copy a lexicon file into the job (``lexicon.txt``), where a resume finds it and the user can edit it."""
        write_atomic(self.lexicon_path, Path(source).read_bytes())

    def mark_failed(self, chunk: ChunkState, error: str) -> None:
        chunk.status, chunk.error = FAILED, error
        self.save()

    def reset(self, chunk: ChunkState, why: str) -> None:
        """Send a chunk back to ``pending`` (its stale WAV, if any, is left to be overwritten)."""
        log.warning("chunk %s: %s; it will be synthesized again", chunk.id, why)
        _to_pending(chunk)

    def retime(self) -> list[str]:
        """Send finished chunks that have no timings back to ``pending`` (``resume --retime``); their ids."""
        chunks = self.untimed()
        for chunk in chunks:
            _to_pending(chunk)
        self.save()
        return [c.id for c in chunks]

    def check_plan(self, book_path: Path, selection: str | None) -> None:
        """``JobError`` unless this job was planned from ``book_path`` with ``selection`` (or none given)."""
        if self.book.get("sha256") != sha256_file(book_path):
            raise JobError(
                f"{self.dir}: this job was planned from a different book ({self.book.get('source')}); "
                "choose another --job-dir"
            )
        if selection is not None and selection != self.selection:
            raise JobError(
                f"{self.dir}: planned with --chapters {self.selection}; a different selection needs a new --job-dir"
            )

    def update_output(self, output_changes: OutputChanges) -> None:
        self.output.update(output_changes)
        self.save()

    def record_output(self, path: Path) -> None:
        self.output.written(path)
        self.save()


def _to_pending(chunk: ChunkState) -> None:
    chunk.status, chunk.frames, chunk.paragraph_ends, chunk.error = PENDING, None, [], None
    chunk.attempts, chunk.timings = 0, None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_seed(job_seed: int, chunk_id: str) -> int:
    """The decoder seed for one chunk: stable across machines, runs and resume."""
    digest = hashlib.sha256(f"{job_seed}:{chunk_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# ---- creating ------------------------------------------------------------------------------------


def create(
    job_dir: Path,
    book: Book,
    source: Path,
    indices: list[int],
    chunks: list[Chunk],
    settings: Settings,
    selection: str = "all",
) -> Job:
    """Write a new job directory: chunk text files, cover, and job.json (written last)."""
    with _new_job_dir(job_dir):
        (job_dir / "chunks").mkdir(exist_ok=True)
        (job_dir / "wav").mkdir(exist_ok=True)
        states = []
        for chunk in chunks:
            rel = f"chunks/{chunk.id}.txt"
            write_atomic(job_dir / rel, chunk.text.encode("utf-8"))
            states.append(
                ChunkState(
                    id=chunk.id,
                    chapter=chunk.chapter,
                    text=rel,
                    chars=len(chunk.text),
                    text_sha256=sha256_text(chunk.text),
                    ends_paragraph=chunk.ends_paragraph,
                )
            )
        chapters = [
            ChapterEntry(index=i, title=book.chapters[i].title, chunks=[c.id for c in chunks if c.chapter == i])
            for i in indices
        ]
        job = Job(
            dir=job_dir,
            book=_book_record(book, source, job_dir),
            settings=settings,
            chapters=chapters,
            chunks=states,
            selection=selection,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        job.save()
        return job


@contextlib.contextmanager
def _new_job_dir(job_dir: Path) -> Iterator[None]:
    """Hold the lock of a directory that must not hold a job yet; one made here is removed if writing fails."""
    created = not job_dir.exists()
    job_dir.mkdir(parents=True, exist_ok=True)
    try:
        with JobLock(job_dir):
            if (job_dir / JOB_FILE).exists():
                raise JobError(
                    f"{job_dir}: a job is already planned here (use `audiobook resume {job_dir}`, or choose "
                    "another --job-dir)"
                )
            yield
    except BaseException:
        if created:
            shutil.rmtree(job_dir, ignore_errors=True)
        raise


def _book_record(book: Book, source: Path, job_dir: Path) -> dict[str, Any]:
    meta = book.metadata
    cover = None
    if meta.cover:
        ext = {"image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(meta.cover_type, "jpg")
        cover = f"cover.{ext}"
        write_atomic(job_dir / cover, meta.cover)
    return {
        "title": meta.title,
        "author": meta.author,
        "authors": meta.authors,
        "language": meta.language,
        "identifier": meta.identifier,
        "description": meta.description,
        "date": meta.date,
        "source": str(source.resolve()),
        "sha256": sha256_file(source),
        "cover": cover,
        "cover_type": meta.cover_type if cover else "",
        "copy": _copy_book(source, job_dir),
    }


def _copy_book(source: Path, job_dir: Path) -> str | None:
    """Keep an EPUB in the job (``book.epub``): the read-along EPUB is made from it, long after the original may
    have moved. Other formats are not kept: their read-along EPUB is generated from the chunk texts."""
    with source.open("rb") as f:
        epub = source.suffix.lower() == ".epub" or b"mimetypeapplication/epub+zip" in f.read(64)
    if not epub:
        return None
    name = "book.epub"
    with source.open("rb") as src, atomic_file(job_dir / name) as dst:
        shutil.copyfileobj(src, dst)
    return name


# ---- loading and checking ------------------------------------------------------------------------


def load(job_dir: Path) -> Job:
    """Read job.json (upgrading an older version in memory); a clear ``JobError`` if it cannot be read."""
    path = job_file(job_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JobError(f"{path}: unreadable ({e})") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise JobError(f"{path}: not an audiobook job file")
    version = data.get("version")
    if version not in (1, VERSION):
        raise JobError(
            f"{path}: job format version {version}; this audiobook reads versions 1 and {VERSION} "
            "(a newer audiobook wrote it: upgrade audiobook)"
        )
    try:
        if version == 1:
            data = _upgrade_v1(data)
        return Job(
            dir=Path(job_dir),
            book=data["book"],
            settings=Settings.from_dict(data["settings"]),
            chapters=[ChapterEntry(**c) for c in data["chapters"]],
            chunks=[ChunkState.from_dict(c) for c in data["chunks"]],
            output=OutputRecord.from_dict(data.get("output", {})),
            selection=data.get("selection", "all"),
            created=data.get("created", ""),
            runs=[RunRecord.from_dict(r) for r in data.get("runs", [])],
            upgraded_from=version if version != VERSION else None,
        )
    except (KeyError, TypeError, AttributeError, JobError) as e:
        raise JobError(f"{path}: malformed job file ({e})") from e
    except AudiobookError as e:  # the settings of a version-1 job, resolved now, do not work here
        raise JobError(f"{path}: cannot upgrade this version {version} job: {e}") from e


def job_file(job_dir: Path) -> Path:
    """``DIR/job.json``; ``JobError`` when there is none (not a job directory, or no directory at all)."""
    path = Path(job_dir) / JOB_FILE
    if not path.is_file():
        raise JobError(f"{job_dir}: no {JOB_FILE} here (plan or build a book first)")
    return path


@contextlib.contextmanager
def open_for_update(job_dir: Path) -> Iterator[Job]:
    """Hold the job's lock and load it; an older version is upgraded on disk first (its file kept beside)."""
    job_file(job_dir)  # before the lock, which would otherwise fail on a directory that is not there
    with JobLock(job_dir):
        job = load(job_dir)
        if job.upgraded_from is not None:
            backup = job.dir / f"job.v{job.upgraded_from}.json"
            write_atomic(backup, job.path.read_bytes())
            job.save()
            log.warning(
                "%s: upgraded job.json from version %d to %d (the old file is kept as %s)",
                job.dir,
                job.upgraded_from,
                VERSION,
                backup.name,
            )
            job.upgraded_from = None
        yield job


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 job.json as version 2: settings resolved and checked like new ones (version 1 left them open
    until the first run and kept relative paths), the chapter selection and the output in their own records."""
    old = data["settings"]
    request = SettingsRequest(
        backend=old.get("backend") if old.get("backend") not in (None, "auto") else None,
        model=old.get("model"),
        voice=old.get("voice"),
        speed=old.get("speed"),
        lang=old.get("lang"),
        seed=old.get("seed"),
        max_chunk_chars=old.get("max_chunk_chars") or None,
    )
    output = dict(data.get("output") or {})
    selection = output.pop("chapters", "all")
    record = {
        "path": output.pop("path", None),
        "file": output.pop("file", None),
        "exported": output.pop("exported", None),
        "options": output,
    }
    settings = resolve(request, None, data["book"].get("language", "en"))
    settings = dataclasses.replace(settings, normalizer="", lexicon="")  # version 1 had neither
    return {**data, "version": VERSION, "settings": settings.to_dict(), "output": record, "selection": selection}


def verify(job: Job) -> list[str]:
    """Check every chunk against the disk; send the ones that disagree back to pending.

    Returns one line per repair. A done chunk needs its WAV present, readable, 24 kHz mono, with the
    recorded frame count, made from the text that is in its text file now, with the lexicon entries that
    touch that text today. Temporary files that a killed
    worker left in ``wav/`` are removed (finished WAVs never start with a dot).
    """
    for leftover in (job.dir / "wav").glob(".*"):
        leftover.unlink(missing_ok=True)
    lexicon = job.lexicon()
    repairs = []
    for chunk in job.chunks:
        text_path = job.dir / chunk.text
        if not text_path.is_file():
            raise JobError(f"{text_path}: chunk text file is missing (restore it or plan the job again)")
        try:
            text = text_path.read_text(encoding="utf-8")  # what the worker is sent, newlines normalised
        except UnicodeDecodeError as e:
            raise JobError(f"{text_path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from e
        current = sha256_text(text)
        if current != chunk.text_sha256:
            chunk.text_sha256, chunk.chars = current, len(text)
        if chunk.status != DONE:
            continue
        problem = _done_problem(job, chunk)
        if problem is None and (chunk.lexicon_entries or "") != lexicon.fingerprint(text):
            problem = "the lexicon entries for its words changed"
        if problem:
            job.reset(chunk, problem)
            repairs.append(f"{chunk.id}: {problem}")
        elif chunk.timings and _timings_problem(job, chunk):
            # The audio is sound: the chunk stays done, only without timings (``resume --retime`` redoes it).
            repairs.append(f"{chunk.id}: {chunk.timings} is missing or stale; the chunk has no timings now")
            chunk.timings = None
    job.save()
    return repairs


def _timings_problem(job: Job, chunk: ChunkState) -> bool:
    from .timing import load as load_timings

    return load_timings(job.dir / chunk.timings, chunk.frames or 0) is None


def _done_problem(job: Job, chunk: ChunkState) -> str | None:
    if chunk.synthesized_sha256 != chunk.text_sha256:
        return "its text file was edited since it was synthesized"
    if not chunk.wav:
        return "no WAV recorded"
    wav = job.dir / chunk.wav
    if not wav.is_file():
        return f"{chunk.wav} is missing"
    try:
        info = soundfile.info(str(wav))
    except (RuntimeError, soundfile.LibsndfileError) as e:
        return f"{chunk.wav} does not parse ({e})"
    if info.frames != chunk.frames:
        return f"{chunk.wav} has {info.frames} frames, job.json recorded {chunk.frames}"
    if info.samplerate != job.settings.sample_rate or info.channels != 1:
        return f"{chunk.wav} is {info.samplerate} Hz, {info.channels} channels"
    return None


# ---- the lock ------------------------------------------------------------------------------------


class JobLock:
    """An exclusive ``flock`` on ``DIR/.lock``: one runner per job. The kernel drops it if we die."""

    def __init__(self, job_dir: Path) -> None:
        self.path = Path(job_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise JobError(
                f"{self.path.parent}: another audiobook process (pid {holder}) is running this "
                "job; wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
