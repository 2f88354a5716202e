"""The service's library: books in a persistent queue, run one after another over warm shared worker pools.

Layout of a library directory::

    queue.json      the queue: each book's id, file and state, in order (see :mod:`.queue`)
    uploads/        books uploaded over the API
    jobs/ID/        ordinary job directories: `audiobook status`, `resume` and `export` work on them
    jobs/ID.m4b     each finished audiobook, beside its job directory
    logs/           what the shared worker processes said on stderr
    .speech/        streamed speech while it is being made (removed after each request)
    (anything else) books you put there yourself, added by path

One thread (the runner) takes the first queued book and calls :func:`audiobook.runner.resume` on its job
directory with a shared, warm :class:`~audiobook.pool.LocalPool` (one per worker configuration), so the
model is loaded once for every book and for streamed speech. The runner's ``observe`` hook feeds progress,
the event stream and the metrics. Pausing cancels the book's batch: chunks in flight finish and are
recorded, the rest wait. Every route of the HTTP app is one call into :class:`Library`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from .. import SAMPLE_RATE, runner
from .. import job as jobs
from ..assemble import ChapterAudio, Segment, chapter_pieces, stream_pieces
from ..atomic import atomic_file
from ..diskspace import human
from ..errors import AudiobookError, JobError, NotFoundError, OutsideLibraryError, TooLargeError
from ..job import DONE as CHUNK_DONE
from ..job import FAILED as CHUNK_FAILED
from ..job import PENDING as CHUNK_PENDING
from ..job import Job
from ..outputs import FORMATS, OutputChanges
from ..pool import Batch, Done, Event, Failed, LocalPool, Timeouts, WorkerPool
from ..protocol import Request, WorkerConfig
from ..settings import SettingsRequest, resolve
from . import paths
from . import queue as q
from .metrics import Metrics
from .queue import CANCELLED, DONE, ERROR, FAILED, PAUSED, QUEUED, Entry
from .speech import Speaker

log = logging.getLogger(__name__)

BOOK_PRIORITY = 0
"""Book chunks; streamed speech is submitted with a lower number, so it goes first."""
MAX_UPLOAD_BYTES = 200 * 2**20
"""An EPUB with its images is rarely over 50 MB; a text book a few MB."""
MAX_CHUNK_EDIT_CHARS = 100_000
RUNNING = "running"
"""Shown for the queued book the runner is working on; never stored."""


@dataclass(frozen=True)
class ServiceOptions:
    """How the service makes books; given once, on the command line of `audiobook serve`."""

    settings: SettingsRequest = field(default_factory=SettingsRequest)
    """The audio settings new books get (a book added over the API may choose its voice, speed, language, seed)."""
    output: OutputChanges = field(default_factory=OutputChanges)
    """The output options new books get (a book may choose its format)."""
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    warm_up: bool = True
    """Load the model in every worker at start, so the first request does not wait for it."""


@dataclass(frozen=True)
class BookChoices:
    """What one book added over the API may choose; ``None`` takes the service's default."""

    chapters: str | None = None
    voice: str | None = None
    speed: float | None = None
    lang: str | None = None
    seed: int | None = None
    format: str | None = None


class Library:
    """The queue, the runner thread, the shared pools, and every question the HTTP app asks."""

    def __init__(self, root: Path, options: ServiceOptions | None = None) -> None:
        self.root = Path(root).resolve()
        self.options = options or ServiceOptions()
        self.metrics = Metrics()
        self.events = Broadcast()
        self.speaker: Speaker | None = None
        self._cond = threading.Condition()
        self._entries: list[Entry] = []
        self._reserved: set[str] = set()
        self._edited: set[str] = set()
        self._running: str | None = None
        self._feed: _Feed | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._pools: dict[WorkerConfig, LocalPool] = {}
        self._cache: dict[str, tuple[tuple[int, int, int], Job]] = {}
        self._rate = Throughput()
        self.metrics.watch(self)

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Read the queue (adopting job directories it does not list), warm the workers, start running."""
        for sub in ("uploads", "jobs", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        with self._cond:
            self._entries = [e for e in q.load(self.root) if self._has_job(e.id)]
            self._adopt_orphans()
            self._save()
        settings = resolve(self.options.settings, None, "en")
        config, size = runner.worker_setup(settings, self._run_options())
        self.speaker = Speaker(self._pool(config, size), settings, self.root / ".speech", self.metrics)
        self.metrics.speech_pool(config)
        if self.options.warm_up:
            self.speaker.warm_up(size.workers)
        self._thread = threading.Thread(target=self._run_queue, name="library-runner", daemon=True)
        self._thread.start()
        log.info("library %s: %d books in the queue", self.root, len(self._entries))

    def close(self) -> None:
        """Stop: chunks in flight are given up (a restart redoes them), every finished one is kept."""
        with self._cond:
            self._closing = True
            if self._feed is not None:
                self._feed.cancel()
            self._cond.notify_all()
        for pool in list(self._pools.values()):
            pool.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.events.close()

    @property
    def ready(self) -> bool:
        """Whether the workers for streamed speech have loaded their model."""
        return self.speaker is not None and self.speaker.warm.is_set()

    def pools(self) -> list[LocalPool]:
        return list(self._pools.values())

    # ---- adding books ----------------------------------------------------------------------------

    def add(self, given: str, choices: BookChoices | None = None) -> dict[str, Any]:
        """Plan a book that is inside the library directory and queue it; the same checks as the CLI's."""
        source = paths.inside(self.root, given)
        if source.is_relative_to(self.root / "jobs"):
            raise OutsideLibraryError(f"{given}: inside jobs/, where the service keeps its job directories")
        return self._plan(source, choices or BookChoices())

    def upload(self, filename: str | None, data: BinaryIO, choices: BookChoices | None = None) -> dict[str, Any]:
        """Store an uploaded book in ``uploads/`` (at most ``max_upload_bytes``), then add it like ``add``.

        A file that is not a readable book is removed again, with the reader's one-line reason."""
        limit = self.options.max_upload_bytes
        target = self._unique_upload(paths.upload_name(filename))
        try:
            with atomic_file(target) as out:
                size = 0
                while block := data.read(1 << 20):
                    size += len(block)
                    if size > limit:
                        raise TooLargeError(f"{filename}: larger than the upload limit of {human(limit)}")
                    out.write(block)
            return self._plan(target, choices or BookChoices())
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def _plan(self, source: Path, choices: BookChoices) -> dict[str, Any]:
        book_id = self._reserve(paths.slug(source.name))
        try:
            job_dir = self.job_dir(book_id)
            request = dataclasses.replace(
                self.options.settings,
                **{k: v for k, v in dataclasses.asdict(choices).items() if v is not None and k not in _NOT_AUDIO},
            )
            runner.plan(source, job_dir, request, choices.chapters or "all")
            output = dataclasses.replace(self.options.output, format=choices.format or self.options.output.format)
            extension = FORMATS[output.format or "m4b"].extension
            with jobs.open_for_update(job_dir) as job:
                job.update_output(
                    dataclasses.replace(output, split_chapters=False, out=job_dir.parent / (book_id + extension))
                )
            entry = Entry(book_id, str(source.relative_to(self.root)), added=_now())
            with self._cond:
                self._entries.append(entry)
                self._save()
                self._cond.notify_all()
        finally:
            with self._cond:
                self._reserved.discard(book_id)
        self._publish_book(entry)
        return self.summary(book_id)

    # ---- reading ---------------------------------------------------------------------------------

    def books(self) -> list[dict[str, Any]]:
        """Every book in queue order, with its progress and ETA."""
        with self._cond:
            entries = list(self._entries)
        loaded = {}
        for entry in entries:
            try:
                loaded[entry.id] = self._load(entry.id)
            except (NotFoundError, JobError) as e:  # removed or broken by hand: the rest of the list still shows
                log.warning("queue: %s", e)
        entries = [e for e in entries if e.id in loaded]
        etas = self._etas(entries, loaded)
        return [self._summary(e, loaded[e.id], position, etas.get(e.id)) for position, e in enumerate(entries)]

    def summary(self, book_id: str) -> dict[str, Any]:
        """One book as ``books`` lists it (its ETA depends on the books ahead of it)."""
        with self._cond:
            self._entry(book_id)
        found = [b for b in self.books() if b["id"] == book_id]
        if not found:
            self._load(book_id)  # raises why it is not listed
        return found[0]

    def book(self, book_id: str) -> dict[str, Any]:
        """One book's summary with its chapters and every chunk's status."""
        summary = self.summary(book_id)
        job = self._load(book_id)
        by_id = {c.id: c for c in job.chunks}
        chapters = []
        for chapter in job.chapters:
            chunks = [self._chunk_row(by_id[cid], job) for cid in chapter.chunks]
            chapters.append(
                {
                    "index": chapter.index,
                    "title": chapter.title,
                    "chunks": chunks,
                    "done": all(c["status"] == CHUNK_DONE for c in chunks),
                    "audio": f"/api/books/{book_id}/chapters/{chapter.index}/audio",
                }
            )
        return {**summary, "chapters": chapters}

    def chunk(self, book_id: str, chunk_id: str) -> dict[str, Any]:
        """One chunk: its status and its text as the next synthesis will read it."""
        job = self._load(book_id)
        chunk = _find_chunk(job, chunk_id)
        return {**self._chunk_row(chunk, job), "text": job.chunk_text(chunk)}

    def chunk_wav(self, book_id: str, chunk_id: str) -> Path:
        """The WAV of a finished chunk."""
        job = self._load(book_id)
        chunk = _find_chunk(job, chunk_id)
        if chunk.status != CHUNK_DONE or not chunk.wav:
            raise JobError(f"chunk {chunk_id} is {chunk.status}: there is no audio to play yet")
        return job.dir / chunk.wav

    def chapter_audio(self, book_id: str, index: int) -> tuple[int, Iterator[bytes]]:
        """A finished chapter as PCM assembled on the fly from its chunks, pauses included: (frames, blocks)."""
        job = self._load(book_id)
        chapter = next((c for c in job.chapters if c.index == index), None)
        if chapter is None:
            raise NotFoundError(f"book {book_id} has no chapter {index} (see its chapter list)")
        chunks = [job.chunk(cid) for cid in chapter.chunks]
        done = sum(c.status == CHUNK_DONE for c in chunks)
        if done < len(chunks):
            raise JobError(f"chapter {index} has {done} of {len(chunks)} chunks done; it can be played once finished")
        segments = [
            Segment(job.dir / str(c.wav), int(c.frames or 0), list(c.paragraph_ends), c.ends_paragraph) for c in chunks
        ]
        pieces = chapter_pieces(ChapterAudio(index, chapter.title, segments), job.output.options.pauses, last=True)
        return sum(p.frames for p in pieces), stream_pieces(pieces)

    def output_file(self, book_id: str) -> Path:
        """The finished audiobook file."""
        job = self._load(book_id)
        written = Path(job.output.file) if job.output.file else None
        if written is None or not written.is_file() or job.pending():
            raise JobError(f"book {book_id} is not finished yet: its audiobook has not been written")
        if not written.resolve().is_relative_to(self.root):
            raise OutsideLibraryError(f"book {book_id}: its output {written} is outside the library directory")
        return written

    def job_dir(self, book_id: str) -> Path:
        return self.root / "jobs" / book_id

    # ---- changing the queue ----------------------------------------------------------------------

    def pause(self, book_id: str) -> dict[str, Any]:
        """Stop a book, keeping its place: chunks in flight finish, the rest wait for ``resume``."""
        return self._set_state(book_id, PAUSED)

    def cancel(self, book_id: str) -> dict[str, Any]:
        """Take a book out of the work (its job directory and finished chunks stay); ``resume`` brings it back."""
        return self._set_state(book_id, CANCELLED)

    def resume(self, book_id: str) -> dict[str, Any]:
        """Queue a paused, cancelled, failed or stopped book again (failed chunks are retried)."""
        return self._set_state(book_id, QUEUED)

    def move(self, book_id: str, position: int) -> list[dict[str, Any]]:
        """Put a book at ``position`` (0 is first) in the queue; a book moved ahead of the running one goes first."""
        with self._cond:
            entry = self._entry(book_id)
            self._entries.remove(entry)
            self._entries.insert(max(0, min(position, len(self._entries))), entry)
            self._save()
            self._reschedule()
        self.events.publish({"type": "queue", "order": [e.id for e in self._entries]})
        return self.books()

    def edit_chunk(self, book_id: str, chunk_id: str, text: str) -> dict[str, Any]:
        """Replace a chunk's text; only that chunk is synthesized again, then the audiobook is written again.

        The text file is rewritten atomically and the job's own check (``jobs.verify``) finds the edit when
        the book runs next, as it would after an edit by hand. A finished book goes first in the queue so the
        fix is heard soon; a running one restarts from its job.json (chunks in flight finish first)."""
        if not text.strip():
            raise AudiobookError("the new text is empty; a chunk needs something to say")
        if len(text) > MAX_CHUNK_EDIT_CHARS:
            raise TooLargeError(f"the new text has {len(text):,} characters; at most {MAX_CHUNK_EDIT_CHARS:,}")
        if "\x00" in text:
            raise AudiobookError("the new text contains a NUL character")
        job = self._load(book_id)
        chunk = _find_chunk(job, chunk_id)
        with atomic_file(job.dir / chunk.text) as out:
            out.write(text.replace("\r\n", "\n").encode("utf-8"))
        with self._cond:
            entry = self._entry(book_id)
            if entry.state in (DONE, FAILED, ERROR):
                entry.state, entry.error = QUEUED, None
                self._entries.remove(entry)
                self._entries.insert(0, entry)
            elif self._running == book_id and self._feed is not None:
                self._edited.add(book_id)  # even if the chunk in flight was the last, this run is not the end
                self._feed.cancel()  # the runner picks the book up again, and its check finds the edit
            self._save()
            self._reschedule()
            self._cond.notify_all()
        self.events.publish({"type": "chunk", "book": book_id, "chunk": {"id": chunk_id, "status": CHUNK_PENDING}})
        self._publish_book(entry)
        return self.chunk(book_id, chunk_id)

    def _set_state(self, book_id: str, state: str) -> dict[str, Any]:
        with self._cond:
            entry = self._entry(book_id)
            if state == QUEUED and entry.state == DONE:
                return self.summary(book_id)
            if state != QUEUED and entry.state == DONE:
                raise JobError(
                    f"book {book_id} is finished; there is nothing to {'pause' if state == PAUSED else 'cancel'}"
                )
            entry.state, entry.error = state, None
            if self._running == book_id and state != QUEUED and self._feed is not None:
                self._feed.cancel()
            self._save()
            self._reschedule()
            self._cond.notify_all()
        self._publish_book(entry)
        return self.summary(book_id)

    def _reschedule(self) -> None:
        """If another book now comes before the running one, let the running one stop (in flight finishes)."""
        first = self._next()
        if self._running is not None and self._feed is not None and (first is None or first.id != self._running):
            self._feed.cancel()

    # ---- the runner thread -----------------------------------------------------------------------

    def _run_queue(self) -> None:
        while True:
            with self._cond:
                while not self._closing and self._next() is None:
                    self._cond.wait()
                if self._closing:
                    return
                entry = self._next()
                assert entry is not None
                self._running, self._feed = entry.id, None
            self._publish_book(entry)
            try:
                self._run(entry)
            finally:
                with self._cond:
                    self._running, self._feed = None, None
                    if not self._closing:
                        self._save()
                self._publish_book(entry)

    def _run(self, entry: Entry) -> None:
        try:
            job = jobs.load(self.job_dir(entry.id))
            config, size = runner.worker_setup(job.settings, self._run_options())
            feed = _Feed(self._pool(config, size), config)
            with self._cond:
                if self._closing or self._next() is not entry:
                    return
                self._feed = feed
                self._edited.discard(entry.id)  # this run's own check sees every edit made until now
            self._rate.resume()
            run = dataclasses.replace(self._run_options(), pool=feed, observe=self._observe(entry, config))
            result = runner.resume(self.job_dir(entry.id), run=run)
        except AudiobookError as e:
            if not self._closing:
                log.error("book %s stopped: %s", entry.id, e)
                entry.state, entry.error = ERROR, str(e).splitlines()[0]
            return
        except Exception as e:  # a bug must not end the service: the book says what happened
            log.exception("book %s stopped", entry.id)
            if not self._closing:
                entry.state, entry.error = ERROR, f"{type(e).__name__}: {e}"
            return
        with self._cond:
            edited = entry.id in self._edited
            self._edited.discard(entry.id)
        if edited:
            return  # still queued: the next run redoes the edited chunk and writes the book again
        if result.export is not None:
            entry.state, entry.error = DONE, None
        elif result.failed:
            ids = ", ".join(c.id for c in result.failed[:5])
            entry.state, entry.error = FAILED, f"{len(result.failed)} chunks failed ({ids}); resume retries them"
        # else: paused, cancelled, edited or moved behind another book: the state already says what next

    def _observe(self, entry: Entry, config: WorkerConfig) -> Any:
        def observe(job: Job, event: Event) -> None:
            self.metrics.book_event(config, job, event)
            if isinstance(event, Done | Failed):
                chunk = job.chunk(event.request.id)
                if chunk.status == CHUNK_DONE:
                    self._rate.add(chunk.chars)
                self.events.publish(
                    {
                        "type": "chunk",
                        "book": entry.id,
                        "chunk": self._chunk_row(chunk, job),
                        "progress": self._progress(entry, job),
                    }
                )

        return observe

    def _pool(self, config: WorkerConfig, size: Any) -> LocalPool:
        with self._cond:
            if config not in self._pools:
                self._pools[config] = LocalPool(config, self.root / "logs", size, self.options.timeouts)
            return self._pools[config]

    def _run_options(self) -> runner.RunOptions:
        o = self.options
        return runner.RunOptions(device=o.device, workers=o.workers, threads=o.threads, quiet=True, timeouts=o.timeouts)

    # ---- helpers ---------------------------------------------------------------------------------

    def _next(self) -> Entry | None:
        return next((e for e in self._entries if e.state == QUEUED), None)

    def _entry(self, book_id: str) -> Entry:
        entry = next((e for e in self._entries if e.id == book_id), None)
        if entry is None:
            raise NotFoundError(f"no book {book_id!r} in the library (GET /api/books lists them)")
        return entry

    def _load(self, book_id: str) -> Job:
        """The book's job as job.json says now (parsed again only when the file changed)."""
        self._entry(book_id)
        path = self.job_dir(book_id) / jobs.JOB_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise NotFoundError(f"book {book_id}: its job directory {path.parent} is gone") from None
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._cache.get(book_id)
        if cached is None or cached[0] != key:
            cached = (key, jobs.load(path.parent))
            self._cache[book_id] = cached
        return cached[1]

    def _summary(self, entry: Entry, job: Job, position: int, eta: float | None) -> dict[str, Any]:
        running = entry.id == self._running
        return {
            "id": entry.id,
            "title": job.book.get("title") or entry.id,
            "author": job.book.get("author") or "",
            "book": entry.book,
            "state": RUNNING if running and entry.state == QUEUED else entry.state,
            "busy": running,
            "error": entry.error,
            "position": position,
            "added": entry.added,
            **self._progress(entry, job, eta),
            "voice": str(job.settings.voice),
            "speed": job.settings.speed,
            "format": job.output.options.format,
            "download": f"/api/books/{entry.id}/download" if entry.state == DONE else None,
        }

    def _progress(self, entry: Entry, job: Job, eta: float | None = None) -> dict[str, Any]:
        counts = {CHUNK_PENDING: 0, CHUNK_DONE: 0, CHUNK_FAILED: 0}
        chars_done = chars_total = frames = 0
        for chunk in job.chunks:
            counts[chunk.status] = counts.get(chunk.status, 0) + 1
            chars_total += chunk.chars
            if chunk.status == CHUNK_DONE:
                chars_done += chunk.chars
                frames += chunk.frames or 0
        if eta is None and entry.id == self._running:
            rate = self._rate.chars_per_s()
            eta = (chars_total - chars_done) / rate if rate else None
        return {
            "chunks": counts,
            "chunks_total": len(job.chunks),
            "chars_done": chars_done,
            "chars_total": chars_total,
            "percent": round(100.0 * chars_done / chars_total, 1) if chars_total else 100.0,
            "audio_done_s": round(frames / SAMPLE_RATE, 1),
            "eta_s": round(eta) if eta is not None else None,
        }

    def _etas(self, entries: Sequence[Entry], loaded: dict[str, Job]) -> dict[str, float]:
        """Seconds until each queued book is finished, at the rate measured lately, in queue order."""
        rate = self._rate.chars_per_s()
        if not rate:
            return {}
        etas, ahead = {}, 0
        for entry in entries:
            if entry.state == QUEUED:
                ahead += sum(c.chars for c in loaded[entry.id].chunks if c.status != CHUNK_DONE)
                etas[entry.id] = ahead / rate
        return etas

    def _chunk_row(self, chunk: jobs.ChunkState, job: Job) -> dict[str, Any]:
        book_id = job.dir.name
        done = chunk.status == CHUNK_DONE
        version = (chunk.synthesized_sha256 or "")[:12]
        return {
            "id": chunk.id,
            "chapter": chunk.chapter,
            "status": chunk.status,
            "chars": chunk.chars,
            "seconds": round((chunk.frames or 0) / SAMPLE_RATE, 2) if done else None,
            "attempts": chunk.attempts,
            "error": chunk.error,
            "audio": f"/api/books/{book_id}/chunks/{chunk.id}/audio?v={version}" if done else None,
        }

    def _publish_book(self, entry: Entry) -> None:
        self.events.publish({"type": "book", "book": entry.id, "state": entry.state})

    def _save(self) -> None:
        q.save(self.root, self._entries)

    def _has_job(self, book_id: str) -> bool:
        if (self.job_dir(book_id) / jobs.JOB_FILE).is_file():
            return True
        log.warning("queue: %s has no job directory any more; dropped from the queue", book_id)
        return False

    def _adopt_orphans(self) -> None:
        """Job directories under jobs/ that the queue does not list (the service was killed between planning a
        book and saving the queue, or someone planned one there by hand) join the end of the queue."""
        known = {e.id for e in self._entries}
        for job_file in sorted((self.root / "jobs").glob(f"*/{jobs.JOB_FILE}")):
            book_id = job_file.parent.name
            if book_id in known:
                continue
            try:
                source = Path(jobs.load(job_file.parent).book.get("source", ""))
            except JobError as e:
                log.warning("queue: skipping %s: %s", job_file.parent, e)
                continue
            book = str(source.relative_to(self.root)) if source.is_relative_to(self.root) else str(source)
            self._entries.append(Entry(book_id, book, added=_now()))
            log.warning("queue: found job %s, not in the queue; added at the end", book_id)

    def _reserve(self, base: str) -> str:
        with self._cond:
            taken = {e.id for e in self._entries} | self._reserved
            book_id, n = base, 1
            while book_id in taken or self.job_dir(book_id).exists():
                n += 1
                book_id = f"{base}-{n}"
            self._reserved.add(book_id)
            return book_id

    def _unique_upload(self, name: str) -> Path:
        """A new file in uploads/, created empty so that two uploads of one name at once get two names."""
        folder = self.root / "uploads"
        folder.mkdir(exist_ok=True)
        stem, suffix = Path(name).stem, Path(name).suffix
        for n in itertools.count(1):
            target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
            try:
                target.open("xb").close()
                return target
            except FileExistsError:
                continue
        raise AssertionError("unreachable")


_NOT_AUDIO = ("chapters", "format")


def _find_chunk(job: Job, chunk_id: str) -> jobs.ChunkState:
    chunk = next((c for c in job.chunks if c.id == chunk_id), None)
    if chunk is None:
        raise NotFoundError(f"book {job.dir.name} has no chunk {chunk_id!r}")
    return chunk


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Feed(WorkerPool):
    """The shared pool as one book's run sees it: the same workers, and a handle to cancel the book's batch."""

    def __init__(self, pool: WorkerPool, config: WorkerConfig) -> None:
        self.pool = pool
        self.config = config
        self._batches: list[Batch] = []
        self._cancelled = False
        self._lock = threading.Lock()

    def submit(self, requests: Sequence[Request], priority: int = BOOK_PRIORITY) -> Batch:
        batch = self.pool.submit(requests, BOOK_PRIORITY)
        with self._lock:
            self._batches.append(batch)
            if self._cancelled:
                batch.cancel()
        return batch

    def cancel(self) -> None:
        """Hand out no more of this book's chunks; those in flight finish and are recorded."""
        with self._lock:
            self._cancelled = True
            for batch in self._batches:
                batch.cancel()

    def close(self) -> None:
        """Nothing: the service owns the shared pool and keeps it warm for the next book."""


class Throughput:
    """Characters per second over the last few finished chunks, all workers together (for ETAs)."""

    IDLE_S = 10.0

    def __init__(self, window: int = 30) -> None:
        self._marks: deque[tuple[float, int]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def resume(self) -> None:
        """A run starts: after a pause in the work, measure afresh from now."""
        now = time.monotonic()
        with self._lock:
            if not self._marks or now - self._marks[-1][0] > self.IDLE_S:
                self._marks.clear()
                self._marks.append((now, 0))

    def add(self, chars: int) -> None:
        with self._lock:
            self._marks.append((time.monotonic(), chars))

    def chars_per_s(self) -> float | None:
        with self._lock:
            if len(self._marks) < 2:
                return None
            span = self._marks[-1][0] - self._marks[0][0]
            chars = sum(c for _, c in list(self._marks)[1:])
        return chars / span if span > 0 else None


class Broadcast:
    """Messages to every listener of the event stream, from any thread. A listener that falls behind loses its
    oldest messages; the runner never waits for one."""

    QUEUE_SIZE = 256

    def __init__(self) -> None:
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any] | None]]] = set()
        self._lock = threading.Lock()

    def listen(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any] | None]]:
        """A new listener, in the running event loop; pass it to ``forget`` when done."""
        listener = (asyncio.get_running_loop(), asyncio.Queue(self.QUEUE_SIZE))
        with self._lock:
            self._listeners.add(listener)
        return listener

    def forget(self, listener: tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any] | None]]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def publish(self, message: dict[str, Any] | None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, queue in listeners:
            try:
                loop.call_soon_threadsafe(_offer, queue, message)
            except RuntimeError:  # its loop is closed
                self.forget((loop, queue))

    def close(self) -> None:
        """End every listener's stream."""
        self.publish(None)


def _offer(queue: asyncio.Queue[dict[str, Any] | None], message: dict[str, Any] | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)
