"""plan -> feed -> record: a book becomes a job, its pending chunks go to the worker pool, results are recorded.

The runner is the only writer of ``job.json`` during synthesis, and it records every result the moment it
arrives, so a crash at any point loses at most the chunks in flight. Settings come resolved from
:mod:`audiobook.settings`, workers from :mod:`audiobook.pool`, the final file from :mod:`audiobook.export`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import soundfile

from . import diskspace, export
from . import job as jobs
from .chapters import select_chapters
from .chunker import chunk_book
from .devices import resolve_device
from .errors import JobError, ModelError, RunStopped, SynthesisError
from .job import FAILED, ChunkState, Job, RunRecord
from .outputs import ExportResult, OutputChanges
from .pool import Done, Event, Failed, Layout, LocalPool, Ready, Stopped, Timeouts, WorkerPool, layout
from .progress import Progress
from .protocol import DEVICE, DISK_FULL, MODEL, Request, WorkerConfig
from .readers import read_book
from .settings import SettingsRequest, resolve

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to run the synthesis; none of these change the audio."""

    device: str = "auto"
    workers: int | None = None
    """Worker processes; ``None``: the pool's measured default for the device."""
    threads: int | None = None
    """Threads per worker; ``None``: the cores shared out between the workers."""
    quiet: bool = False
    timeouts: Timeouts = field(default_factory=Timeouts)
    pool: WorkerPool | None = None
    """A pool that is already running (a service keeps one warm across books), made for this job's model and
    device; ``None``: a pool of worker processes is started for this run and closed after it."""
    observe: Callable[[Job, Event], None] | None = None
    """Called after each pool event is recorded in job.json (progress pages, metrics)."""


@dataclass
class RunResult:
    job: Job
    failed: list[ChunkState] = field(default_factory=list)
    export: ExportResult | None = None


# ---- plan ----------------------------------------------------------------------------------------


def plan(book_path: Path, job_dir: Path, request: SettingsRequest | None = None, selection: str = "all") -> Job:
    """Read the book, choose chapters, resolve the settings, chunk, and write a new job directory.

    Everything that can be wrong with the book or the settings is found before anything is written.
    """
    book = read_book(book_path)
    indices = select_chapters(book, selection)
    settings = resolve(request or SettingsRequest(), None, book.metadata.language)
    chunks = chunk_book(book, indices, settings.max_chunk_chars)
    if not chunks:
        raise JobError(f"{book_path}: the chosen chapters hold no narratable text")
    return jobs.create(job_dir, book, Path(book_path), indices, chunks, settings, selection)


# ---- build and resume ----------------------------------------------------------------------------


def build(
    book_path: Path,
    job_dir: Path,
    request: SettingsRequest | None = None,
    selection: str | None = None,
    output: OutputChanges | None = None,
    run: RunOptions | None = None,
    allow_settings_change: bool = False,
) -> RunResult:
    """Plan the book (or pick up the job already planned in ``job_dir``), synthesize it, write the audiobook."""
    if (job_dir / jobs.JOB_FILE).exists():
        jobs.load(job_dir).check_plan(book_path, selection)
        log.info("picking up the job already planned in %s", job_dir)
    else:
        plan(book_path, job_dir, request, selection or "all")
    return resume(job_dir, request, output, run, allow_settings_change)


def resume(
    job_dir: Path,
    request: SettingsRequest | None = None,
    output: OutputChanges | None = None,
    run: RunOptions | None = None,
    allow_settings_change: bool = False,
) -> RunResult:
    """Continue a job from ``job.json`` alone (the book file may be gone): synthesize what is missing, export."""
    with jobs.open_for_update(job_dir) as job:
        settings = resolve(request or SettingsRequest(), job.settings, job.book.get("language", "en"))
        job.adopt(settings, allow_settings_change)
        if output is not None:
            job.update_output(output)
        for line in jobs.verify(job):
            log.warning("repaired: %s", line)
        failed = feed(job, run or RunOptions())
        if failed:
            return RunResult(job=job, failed=failed)
        return RunResult(job=job, export=export.write(job))


# ---- feed ----------------------------------------------------------------------------------------


def feed(job: Job, run: RunOptions) -> list[ChunkState]:
    """Synthesize every chunk that is not done; returns the chunks that failed all their attempts.

    A failure no retry can fix (a full disk, a lost device, a model that will not load) stops the run with
    ``RunStopped`` or ``ModelError``, every finished chunk kept.
    """
    todo = job.pending()
    if not todo:
        return []
    device = resolve_device(run.device, job.settings.backend)
    _warn_about_device(job, device)
    diskspace.warn_if_short(job.dir, export.output_path(job).parent, _need(job, todo))
    size = layout(device, run.workers, run.threads)
    settings = job.settings
    config = WorkerConfig(settings.backend, settings.model, settings.revision, device, size.threads, settings.lang)
    recorder = Recorder(job, Progress(_chars(job.chunks), _chars(job.done()), quiet=run.quiet), size, run.observe)
    pool = run.pool or LocalPool(config, job.dir / "logs", size, run.timeouts)
    batch = pool.submit([request_for(job, chunk) for chunk in todo])
    try:
        for event in batch.events():
            recorder.record(event)
    finally:
        batch.cancel()
        if run.pool is None:
            pool.close()
        for event in batch.leftovers():
            recorder.record(event)
        recorder.finish()
    if recorder.stopped is not None:
        raise _stop_error(job, recorder.stopped)
    return [c for c in job.chunks if c.status == FAILED]


def request_for(job: Job, chunk: ChunkState) -> Request:
    """What a worker is asked to do for one chunk."""
    settings = job.settings
    return Request(
        id=chunk.id,
        text=job.chunk_text(chunk),
        out_wav=str((job.dir / "wav" / f"{chunk.id}.wav").resolve()),
        voice=settings.voice,
        speed=settings.speed,
        lang=settings.lang,
        seed=jobs.chunk_seed(settings.seed, chunk.id),
    )


# ---- record --------------------------------------------------------------------------------------


class Recorder:
    """Turns pool events into job.json updates, progress, and the run's record in the job's history."""

    def __init__(
        self, job: Job, progress: Progress, size: Layout, observe: Callable[[Job, Event], None] | None = None
    ) -> None:
        self.job = job
        self.progress = progress
        self.observe = observe
        self.run = RunRecord(
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"), workers=size.workers, threads=size.threads
        )
        self.stopped: Stopped | None = None
        self._wall0 = time.monotonic()

    def record(self, event: Event) -> None:
        if isinstance(event, Ready) and self.run.device is None:
            hello = event.hello
            self.run.device, self.run.backend, self.run.load_s = hello.device, hello.backend, hello.load_s
            log.info(
                "workers: backend=%s model=%s device=%s (model loaded in %.1f s)",
                hello.backend,
                hello.model,
                hello.device,
                hello.load_s,
            )
        elif isinstance(event, Done):
            self._done(event)
        elif isinstance(event, Failed):
            chunk = self.job.chunk(event.request.id)
            chunk.attempts += event.attempts
            log.error("chunk %s failed after %d attempts: %s", chunk.id, chunk.attempts, event.error)
            self.job.mark_failed(chunk, event.error)
        elif isinstance(event, Stopped):
            self.stopped = self.stopped or event
        if self.observe is not None:
            self.observe(self.job, event)

    def finish(self) -> None:
        """Close the progress display and append this run to the job's history."""
        self.progress.close()
        self.run.wall_s = round(time.monotonic() - self._wall0, 3)
        self.run.synth_s = round(self.run.synth_s, 3)
        self.job.runs.append(self.run)
        self.job.save()

    def _done(self, event: Done) -> None:
        chunk = self.job.chunk(event.request.id)
        chunk.attempts += event.attempts
        answer, wav = event.answer, Path(event.request.out_wav)
        frames = soundfile.info(str(wav)).frames
        if frames != answer.frames:
            self.job.mark_failed(chunk, f"{wav.name} holds {frames} frames, the worker reported {answer.frames}")
            return
        self.run.chunks_done += 1
        self.run.synth_s += answer.synth_s
        text_sha = jobs.sha256_text(event.request.text)
        self.job.mark_done(chunk, f"wav/{wav.name}", frames, list(answer.paragraph_ends), answer.synth_s, text_sha)
        self.progress.advance(chunk.chars)


def _stop_error(job: Job, stopped: Stopped) -> Exception:
    resume_hint = f"audiobook resume {job.dir}"
    if stopped.kind == DISK_FULL:
        problem = diskspace.full(job.dir / "wav", _need(job, job.pending()))
        return RunStopped(f"{problem}; free some space, then: {resume_hint}")
    if stopped.kind == DEVICE:
        return RunStopped(
            f"the device stopped working ({stopped.error}); fix it or pick another --device, then: {resume_hint}"
        )
    if stopped.kind == MODEL:
        return ModelError(stopped.error)
    return SynthesisError(f"{stopped.error}; see {job.dir / 'logs'}")


def _warn_about_device(job: Job, device: str) -> None:
    """Chunks made on another device differ by rounding: say so, since the book will mix them."""
    earlier = {run.device for run in job.runs if run.chunks_done} - {None}
    if job.done() and earlier and earlier != {device}:
        log.warning(
            "finished chunks were made on %s and this run uses %s: the audio may differ very slightly "
            "between them (use --device to match)",
            ", ".join(sorted(earlier)),
            device,
        )


def _need(job: Job, todo: list[ChunkState]) -> diskspace.Need:
    return diskspace.need(_chars(todo), _chars(job.chunks), job.settings.speed, job.output.options.format)


def _chars(chunks: list[ChunkState]) -> int:
    return sum(c.chars for c in chunks)
