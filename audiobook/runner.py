"""plan -> feed -> record: a book becomes a job, its pending chunks go to the worker pool, results are recorded.

The runner is the only writer of ``job.json`` during synthesis, and it records every result the moment it
arrives, so a crash at any point loses at most the chunks in flight. Settings come resolved from
:mod:`audiobook.settings`, workers from :mod:`audiobook.pool`, the final file from :mod:`audiobook.export`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from .lexicon import Lexicon, digest
from .normalize import NORMALIZER_VERSION
from .outputs import ExportResult, OutputChanges
from .pool import Done, Event, Failed, Layout, LocalPool, Ready, Stopped, Timeouts, WorkerPool, layout
from .progress import Progress
from .protocol import DEVICE, DISK_FULL, MODEL, Request, WorkerConfig
from .readers import read_book
from .settings import Settings, SettingsRequest, resolve
from .timing import timings_path

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
    """``None`` when chunks failed, or when the run was cancelled through its shared pool with chunks left."""


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
    job = jobs.create(job_dir, book, Path(book_path), indices, chunks, settings, selection)
    if request is not None and request.lexicon is not None:
        job.keep_lexicon(Path(request.lexicon))
    return job


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
    retime: bool = False,
) -> RunResult:
    """Continue a job from ``job.json`` alone (the book file may be gone): synthesize what is missing, export.

    ``retime`` also redoes the finished chunks that have no timings (made before audiobook wrote them).
    """
    with jobs.open_for_update(job_dir) as job:
        request = request or SettingsRequest()
        if request.lexicon is None and job.lexicon_path.is_file():
            request = replace(request, lexicon=str(job.lexicon_path))  # the job's own lexicon, as edited
        settings = resolve(request, job.settings, job.book.get("language", "en"))
        job.adopt(settings, allow_settings_change)
        if request.lexicon is not None and Path(request.lexicon).resolve() != job.lexicon_path.resolve():
            job.keep_lexicon(Path(request.lexicon))
        if output is not None:
            job.update_output(output)
        for line in jobs.verify(job):
            log.warning("repaired: %s", line)
        if retime:
            log.info("re-synthesizing %d chunks that have no timings", len(job.retime()))
        failed = feed(job, run or RunOptions())
        if failed or job.pending():  # failures, or the owner of a shared pool cancelled the run (a pause)
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
    config, size = worker_setup(job.settings, run)
    _warn_about_device(job, config.device)
    diskspace.warn_if_short(job.dir, export.output_path(job).parent, _need(job, todo))
    recorder = Recorder(job, Progress(_chars(job.chunks), _chars(job.done()), quiet=run.quiet), size, run.observe)
    pool = run.pool or LocalPool(config, job.dir / "logs", size, run.timeouts)
    lexicon = job.lexicon()
    batch = pool.submit([request_for(job, chunk, lexicon) for chunk in todo])
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


def worker_setup(settings: Settings, run: RunOptions) -> tuple[WorkerConfig, Layout]:
    """The workers a job with these settings needs where ``run`` asks: their config, and how many of them.

    A service keys its warm pools by the config, so jobs with the same model, device and language share
    workers (the language is there so that a worker loads its G2P while its model loads)."""
    device = resolve_device(run.device, settings.backend)
    size = layout(device, run.workers, run.threads)
    config = WorkerConfig(settings.backend, settings.model, settings.revision, device, size.threads, settings.lang)
    return config, size


def request_for(job: Job, chunk: ChunkState, lexicon: Lexicon | None = None) -> Request:
    """What a worker is asked to do for one chunk: its text, and the lexicon entries that touch it."""
    settings = job.settings
    text = job.chunk_text(chunk)
    wav = (job.dir / "wav" / f"{chunk.id}.wav").resolve()
    return Request(
        id=chunk.id,
        text=text,
        out_wav=str(wav),
        voice=settings.voice,
        speed=settings.speed,
        lang=settings.lang,
        seed=jobs.chunk_seed(settings.seed, chunk.id),
        lexicon=lexicon.touching(text).text() if lexicon else "",
        out_timings=str(timings_path(wav)),
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
        timings = f"wav/{Path(answer.timings).name}" if answer.timings else None
        self.job.mark_done(
            chunk,
            f"wav/{wav.name}",
            frames,
            list(answer.paragraph_ends),
            answer.synth_s,
            text_sha,
            NORMALIZER_VERSION,
            digest(event.request.lexicon),
            timings,
        )
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
