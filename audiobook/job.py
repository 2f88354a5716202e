"""The job directory and its ``job.json``: plan, load, atomic save, state transitions, checks, lock.

Layout of a job directory::

    job.json          the whole state; rewritten atomically after every change
    chunks/ID.txt     the text of each chunk (UTF-8); edit one to fix a pronunciation, then resume
    wav/ID.wav        the audio of each finished chunk (24 kHz mono PCM 16)
    cover.<ext>       the book's cover, so export works after the book file is gone
    logs/             one stderr log per worker process
    .lock             held by the one process that runs the job

A chunk is ``done`` only once its WAV is in place (written under a temporary name, then renamed) *and*
recorded here. ``verify`` re-checks every done chunk against the disk before any work starts.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import soundfile

from . import SAMPLE_RATE
from .book import Book, Metadata
from .chunker import Chunk
from .errors import JobError

log = logging.getLogger(__name__)

SCHEMA = "audiobook-job"
VERSION = 1
JOB_FILE = "job.json"
PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class Settings:
    """Everything that changes the synthesized audio. Changing one on resume needs an explicit flag."""

    backend: str = "auto"
    """``auto``, ``torch`` or ``onnx``; replaced by what the first worker actually loaded."""
    model: str | None = None
    """Hugging Face repo id, local directory or file, or ``bundled``; ``None`` until resolved."""
    voice: str | None = None
    """Voice name, ``.pt`` path or blend (``af_heart*0.7+af_bella*0.3``); ``None``: the model's default."""
    speed: float = 1.0
    lang: str | None = None
    """Kokoro language code; ``None``: derived from the book's language."""
    seed: int = 0
    """Job seed; each chunk's decoder noise is seeded from it and the chunk id."""
    max_chunk_chars: int = 0
    """Chunk size limit used by the plan; 0 means the chunker's default."""
    sample_rate: int = SAMPLE_RATE

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
class Job:
    """A loaded job. Mutate through the methods below; each one saves."""

    dir: Path
    book: dict[str, Any]
    settings: Settings
    chapters: list[ChapterEntry]
    chunks: list[ChunkState]
    output: dict[str, Any]
    """Output options (format, pauses, loudness...) and, once exported, the final file."""
    created: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    """One record per synthesis run: start, end, device, backend, chunks done, synthesis seconds."""

    # ---- reading ---------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.dir / JOB_FILE

    def chunk(self, chunk_id: str) -> ChunkState:
        return self._by_id()[chunk_id]

    def _by_id(self) -> dict[str, ChunkState]:
        return {c.id: c for c in self.chunks}

    def chunk_text(self, chunk: ChunkState) -> str:
        return (self.dir / chunk.text).read_text(encoding="utf-8")

    def pending(self) -> list[ChunkState]:
        """Chunks still to synthesize, failed ones included (resume retries them)."""
        return [c for c in self.chunks if c.status != DONE]

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
            "settings": self.settings.to_dict(),
            "output": self.output,
            "chapters": [dataclasses.asdict(c) for c in self.chapters],
            "chunks": [dataclasses.asdict(c) for c in self.chunks],
            "runs": self.runs,
        }

    def save(self) -> None:
        write_atomic(self.path, (json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n").encode())

    def mark_done(
        self, chunk: ChunkState, wav: str, frames: int, paragraph_ends: list[int], synth_s: float, text_sha256: str
    ) -> None:
        """Record a chunk whose WAV is already in place under its final name."""
        chunk.status, chunk.wav, chunk.frames = DONE, wav, frames
        chunk.paragraph_ends, chunk.synth_s, chunk.error = list(paragraph_ends), synth_s, None
        chunk.synthesized_sha256 = text_sha256
        self.save()

    def mark_failed(self, chunk: ChunkState, error: str) -> None:
        chunk.status, chunk.error = FAILED, error
        self.save()

    def reset(self, chunk: ChunkState, why: str) -> None:
        """Send a chunk back to ``pending`` (its stale WAV, if any, is left to be overwritten)."""
        log.warning("chunk %s: %s; it will be synthesized again", chunk.id, why)
        chunk.status, chunk.frames, chunk.paragraph_ends, chunk.error = PENDING, None, [], None
        chunk.attempts = 0


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    output: dict[str, Any],
) -> Job:
    """Write a new job directory: chunk text files, cover, and job.json (written last)."""
    job_dir.mkdir(parents=True, exist_ok=True)
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
        output=output,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    job.save()
    return job


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
    }


# ---- loading and checking ------------------------------------------------------------------------


def load(job_dir: Path) -> Job:
    """Read job.json; a clear ``JobError`` if it is missing, corrupt, or of another version."""
    path = Path(job_dir) / JOB_FILE
    if not path.is_file():
        raise JobError(f"{job_dir}: no {JOB_FILE} here (plan or build a book first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JobError(f"{path}: unreadable ({e})") from e
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise JobError(f"{path}: not an audiobook job file")
    if data.get("version") != VERSION:
        raise JobError(f"{path}: job format version {data.get('version')}; this audiobook reads {VERSION}")
    try:
        return Job(
            dir=Path(job_dir),
            book=data["book"],
            settings=Settings.from_dict(data["settings"]),
            chapters=[ChapterEntry(**c) for c in data["chapters"]],
            chunks=[ChunkState.from_dict(c) for c in data["chunks"]],
            output=data.get("output", {}),
            created=data.get("created", ""),
            runs=data.get("runs", []),
        )
    except (KeyError, TypeError) as e:
        raise JobError(f"{path}: malformed job file ({e})") from e


def verify(job: Job) -> list[str]:
    """Check every chunk against the disk; send the ones that disagree back to pending.

    Returns one line per repair. A done chunk needs its WAV present, readable, 24 kHz mono, with the
    recorded frame count, made from the text that is in its text file now.
    """
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
        if problem:
            job.reset(chunk, problem)
            repairs.append(f"{chunk.id}: {problem}")
    job.save()
    return repairs


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
