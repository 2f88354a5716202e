"""plan -> synthesize -> assemble, with per-chunk error handling.

The runner is the only writer of ``job.json``. Worker threads each drive one worker process and report
back through a queue; the main thread records every result the moment it arrives, so a crash at any point
loses at most the chunks in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import soundfile

from . import job as jobs
from .assemble import ChapterAudio, Segment
from .chapters import select_chapters
from .chunker import DEFAULT_MAX_CHUNK_CHARS, chunk_book
from .errors import JobError, SynthesisError
from .job import DONE, FAILED, ChunkState, Job, JobLock, Settings
from .outputs import ExportResult, OutputOptions, export
from .progress import Progress
from .readers import read_book
from .workers import Worker, WorkerFailure, WorkerSpec

log = logging.getLogger(__name__)

GPU_WORKERS = 4
"""Worker processes sharing one CUDA GPU. On an H100 with Kokoro-82M: 1 worker 1,600-2,300 chars/s,
4 workers 5,360, 8 workers 6,330 (see README, Speed); four take most of the gain for a quarter of the memory."""
MAX_CPU_WORKERS = 4
"""On a CPU, one single-threaded worker per core gave the most chars/s (measured on 2 cores, see README);
past four, memory grows (a worker holds its own model) for returns nobody has measured."""
MAX_ATTEMPTS = 3
"""A chunk is tried once and retried twice, with a fresh worker after a crash or a hang."""
AUDIO_SETTINGS = ("backend", "model", "voice", "speed", "lang", "seed")


@dataclass
class RunOptions:
    """How to run the synthesis; none of these change the audio."""

    workers: int | None = None
    """Worker processes; ``None``: one on a GPU, else one per core up to ``MAX_CPU_WORKERS``."""
    device: str = "auto"
    threads: int | None = None
    """Threads per worker; ``None``: the cores shared out between the workers."""
    quiet: bool = False
    first_timeout_s: float = 600.0
    """Per-chunk timeout before any speed is measured, plus ``chars * 1 s``."""
    timeout_factor: float = 10.0
    """Once a speed is measured: a chunk may take this many times its expected time (plus a minute)."""


@dataclass
class RunResult:
    job: Job
    failed: list[ChunkState] = field(default_factory=list)
    export: ExportResult | None = None


# ---- plan ----------------------------------------------------------------------------------------


def plan(
    book_path: Path, job_dir: Path, settings: Settings, chapter_spec: str = "all", output: OutputOptions | None = None
) -> Job:
    """Read the book, choose chapters, chunk them, and write a new job directory."""
    if (job_dir / jobs.JOB_FILE).exists():
        raise JobError(
            f"{job_dir}: a job is already planned here (use `audiobook resume {job_dir}`, or choose another --job-dir)"
        )
    book = read_book(book_path)
    indices = select_chapters(book, chapter_spec)
    if not settings.max_chunk_chars:
        settings.max_chunk_chars = DEFAULT_MAX_CHUNK_CHARS
    if settings.lang is None:
        from .engine.g2p import lang_code_for

        settings.lang = lang_code_for(book.metadata.language)
    chunks = chunk_book(book, indices, settings.max_chunk_chars)
    if not chunks:
        raise JobError(f"{book_path}: the chosen chapters hold no narratable text")
    out = (output or OutputOptions()).to_dict()
    out["chapters"] = chapter_spec
    return jobs.create(job_dir, book, Path(book_path), indices, chunks, settings, out)


# ---- build and resume ----------------------------------------------------------------------------


def build(
    book_path: Path,
    job_dir: Path,
    given: dict[str, Any],
    chapter_spec: str | None,
    output: OutputOptions | None,
    out_path: Path | None,
    run: RunOptions,
    allow_settings_change: bool = False,
) -> RunResult:
    """Plan (or pick up the job already in ``job_dir``), synthesize every pending chunk, export.

    ``given`` holds the settings the user named (``Settings`` field names); the rest take defaults.
    """
    if (job_dir / jobs.JOB_FILE).exists():
        job = jobs.load(job_dir)
        if job.book.get("sha256") != jobs.sha256_file(book_path):
            raise JobError(
                f"{job_dir}: this job was planned from a different book "
                f"({job.book.get('source')}); choose another --job-dir"
            )
        if chapter_spec is not None and chapter_spec != job.output.get("chapters", "all"):
            raise JobError(
                f"{job_dir}: planned with --chapters {job.output.get('chapters', 'all')}; "
                "a different selection needs a new --job-dir"
            )
        log.info("picking up the job already planned in %s", job_dir)
        return _continue(job, given, output, out_path, run, allow_settings_change)
    settings = Settings.from_dict({k: v for k, v in given.items() if v is not None})
    created = not job_dir.exists()
    job_dir.mkdir(parents=True, exist_ok=True)
    try:
        with JobLock(job_dir):
            job = plan(book_path, job_dir, settings, chapter_spec or "all", output)
    except BaseException:
        if created:  # a book that cannot be read leaves nothing behind
            (job_dir / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                job_dir.rmdir()
        raise
    return _continue(job, {}, None, out_path, run, allow_settings_change)


def resume(
    job_dir: Path,
    overrides: dict[str, Any],
    output: OutputOptions | None,
    out_path: Path | None,
    run: RunOptions,
    allow_settings_change: bool = False,
) -> RunResult:
    """Continue a job from ``job.json`` alone: the book file may be gone."""
    return _continue(jobs.load(job_dir), overrides, output, out_path, run, allow_settings_change)


def _continue(
    job: Job,
    overrides: dict[str, Any],
    output: OutputOptions | None,
    out_path: Path | None,
    run: RunOptions,
    allow_settings_change: bool,
) -> RunResult:
    with JobLock(job.dir):
        job = jobs.load(job.dir)  # re-read under the lock: another run may have finished meanwhile
        _apply_overrides(job, overrides, allow_settings_change)
        if output is not None or out_path is not None:
            _set_output(job, output, out_path)
        _clean_partial_files(job)
        for line in jobs.verify(job):
            log.warning("repaired: %s", line)
        if job.pending():
            resolve_model(job)
        failed = synthesize(job, run)
        if failed:
            return RunResult(job=job, failed=failed)
        return RunResult(job=job, export=_export(job))


def _apply_overrides(job: Job, overrides: dict[str, Any], allow: bool) -> None:
    """Refuse (or, with ``allow``, apply and re-synthesize) settings that would change the audio."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("max_chunk_chars") not in (None, job.settings.max_chunk_chars):
        raise JobError(
            f"{job.dir}: planned with --max-chunk-chars {job.settings.max_chunk_chars}; "
            "chunking differently needs a new --job-dir"
        )
    current = job.settings.to_dict()
    changed = {
        k: v
        for k, v in given.items()
        if k in AUDIO_SETTINGS and v != current.get(k) and not (k == "backend" and v == "auto")
    }
    if not changed:
        return
    listing = ", ".join(f"{k} {current.get(k)!r} -> {v!r}" for k, v in changed.items())
    done = [c for c in job.chunks if c.status == DONE]
    if done and not allow:
        raise JobError(
            f"{job.dir}: this job's audio was made with other settings ({listing}); pass "
            "--allow-settings-change to re-synthesize every chunk with the new ones"
        )
    if done:
        log.warning("settings changed (%s): all %d finished chunks will be synthesized again", listing, len(done))
    for key, value in changed.items():
        setattr(job.settings, key, value)
    for chunk in done:
        chunk.status, chunk.frames, chunk.paragraph_ends, chunk.synthesized_sha256 = "pending", None, [], None
    job.save()


def _set_output(job: Job, output: OutputOptions | None, out_path: Path | None) -> None:
    """Take new output options; a saved ``--out`` is forgotten when the format or layout changes without a
    new one (an MP3 must not be written over the M4B's name)."""
    if output is not None:
        new = output.to_dict()
        if out_path is None and any(new.get(k) != job.output.get(k) for k in ("format", "split_chapters")):
            job.output.pop("path", None)
        job.output.update(new)
    if out_path is not None:
        job.output["path"] = str(Path(out_path).resolve())
    job.save()


def _clean_partial_files(job: Job) -> None:
    """Temporary files left by a worker killed mid-write; finished WAVs never start with a dot."""
    for leftover in (job.dir / "wav").glob(".*"):
        leftover.unlink(missing_ok=True)


# ---- synthesis -----------------------------------------------------------------------------------


def resolve_model(job: Job) -> None:
    """Fix ``auto``/unset backend and model to a concrete pair, once, in job.json.

    Every worker then loads exactly that model, and a resume never switches to another one (the hub
    coming back online must not turn half a book into a different voice).
    """
    from .engine.loading import announce_fallback, resolve_source

    settings = job.settings
    if settings.voice:
        from .engine.voices import absolute_voice_spec

        settings.voice = absolute_voice_spec(settings.voice)
    if settings.model and Path(settings.model).exists():
        settings.model = str(Path(settings.model).resolve())  # resume may run from another directory
    if settings.backend in ("torch", "onnx") and settings.model:
        job.save()
        return
    source = resolve_source(settings.backend, settings.model)
    if source.fallback:
        announce_fallback(source)
    settings.backend, settings.model = source.backend, source.model
    job.save()


def worker_layout(run: RunOptions) -> tuple[int, int | None]:
    """(workers, threads per worker), measured rather than guessed.

    CUDA/ROCm: ``GPU_WORKERS`` processes share the GPU (kokoro runs one utterance at a time, which leaves an
    H100 mostly idle: 4 workers gave 2.3-3.4x the chars/s of one). Apple MPS: one. CPU: one worker per core,
    up to ``MAX_CPU_WORKERS``, the cores shared out as threads.
    """
    gpu = _gpu_kind(run.device)
    if run.workers is not None:
        workers = run.workers
    elif gpu == "cuda":
        workers = GPU_WORKERS
    elif gpu == "mps":
        workers = 1
    else:
        workers = min(MAX_CPU_WORKERS, _cores())
    threads = run.threads
    if threads is None:
        threads = max(1, _cores() // workers)
    return workers, threads


def _gpu_kind(device: str) -> str | None:
    """``cuda`` (ROCm included), ``mps``, or None for the CPU; ``auto`` asks torch what is there."""
    if device in ("cuda", "rocm", "mps"):
        return "mps" if device == "mps" else "cuda"
    if device != "auto":
        return None
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else None


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def synthesize(job: Job, run: RunOptions) -> list[ChunkState]:
    """Synthesize every chunk that is not done; returns the chunks that failed all their attempts."""
    todo = job.pending()
    if not todo:
        return []
    workers, threads = worker_layout(run)
    pool = _Pool(job, replace(run, workers=workers, threads=threads))
    started, wall0 = datetime.now(timezone.utc), time.monotonic()
    try:
        pool.run(todo)
    finally:
        job.runs.append(
            {
                "started": started.isoformat(timespec="seconds"),
                "wall_s": round(time.monotonic() - wall0, 3),
                "device": pool.hello.get("device"),
                "backend": pool.hello.get("backend"),
                "load_s": pool.hello.get("load_s"),
                "workers": workers,
                "threads": threads,
                "chunks_done": pool.done_count,
                "synth_s": round(pool.synth_s, 3),
            }
        )
        job.save()
    return [c for c in job.chunks if c.status == FAILED]


class _Pool:
    """N worker threads, each driving one worker process, and the main thread recording results."""

    def __init__(self, job: Job, run: RunOptions) -> None:
        self.job, self.run_opts = job, run
        self.tasks: queue.Queue[ChunkState] = queue.Queue()
        self.events: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.workers: list[Worker] = []
        self.hello: dict[str, Any] = {}
        self.loaded = threading.Event()
        self.done_count, self.synth_s, self._done_chars = 0, 0.0, 0

    # main thread

    def run(self, todo: list[ChunkState]) -> None:
        for chunk in todo:
            self.tasks.put(chunk)
        total = sum(c.chars for c in self.job.chunks)
        progress = Progress(total, total - sum(c.chars for c in todo), quiet=self.run_opts.quiet)
        threads = [
            threading.Thread(target=self._drive, args=(i,), daemon=True)
            for i in range(min(self.run_opts.workers, len(todo)))
        ]
        for t in threads:
            t.start()
        remaining = len(todo)
        try:
            while remaining:
                try:
                    kind, chunk, detail = self.events.get(timeout=1.0)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads):
                        raise SynthesisError(
                            f"every worker thread stopped with {remaining} chunks left; see {self.job.dir / 'logs'}"
                        ) from None
                    continue
                if kind == "hello":
                    self._record_hello(detail)
                    continue
                if kind == "fatal":
                    raise SynthesisError(detail)
                remaining -= 1
                self._record(kind, chunk, detail, progress)
        finally:
            self.stop.set()
            for worker in list(self.workers):
                worker.stop(grace_s=0 if remaining else 5)
            for t in threads:
                t.join(timeout=10)
            self._drain(progress)
            progress.close()

    def _record(self, kind: str, chunk: ChunkState, detail: Any, progress: Progress) -> None:
        attempts, payload = detail
        chunk.attempts += attempts
        if kind == "done":
            if self.job.settings.voice is None and payload.get("voice"):
                self.job.settings.voice = payload["voice"]  # the model's default, fixed for the whole job
            self.done_count += 1
            self.synth_s += payload["synth_s"]
            self._done_chars += chunk.chars
            self.job.mark_done(
                chunk,
                payload["wav"],
                payload["frames"],
                payload.get("paragraph_ends", []),
                payload["synth_s"],
                payload["text_sha256"],
            )
            progress.advance(chunk.chars)
        else:
            log.error("chunk %s failed after %d attempts: %s", chunk.id, chunk.attempts, payload)
            self.job.mark_failed(chunk, payload)

    def _drain(self, progress: Progress) -> None:
        """Record results that arrived while stopping: finished audio is never thrown away."""
        while True:
            try:
                kind, chunk, detail = self.events.get_nowait()
            except queue.Empty:
                return
            if kind == "done":
                self._record(kind, chunk, detail, progress)

    def _record_hello(self, hello: dict[str, Any]) -> None:
        if not self.hello:
            if self.job.settings.voice and "voices" in hello:
                from .engine.voices import check_voice_spec

                check_voice_spec(self.job.settings.voice, hello["voices"])  # fail once, not every chunk
            self.hello = hello
            log.info(
                "%d worker(s): backend=%s model=%s device=%s (model loaded in %.1f s)",
                self.run_opts.workers,
                hello.get("backend"),
                hello.get("model"),
                hello.get("device"),
                hello.get("load_s", 0.0),
            )

    # worker threads

    def _spec(self) -> WorkerSpec:
        s = self.job.settings
        return WorkerSpec(backend=s.backend, model=s.model, device=self.run_opts.device, threads=self.run_opts.threads)

    def _drive(self, index: int) -> None:
        worker: Worker | None = None
        try:
            while not self.stop.is_set():
                try:
                    chunk = self.tasks.get_nowait()
                except queue.Empty:
                    return
                worker = self._attempt_chunk(chunk, worker, index)
        except WorkerFailure as e:  # no worker of this job could load the model at all
            self.events.put(("fatal", None, str(e)))
        except BaseException as e:  # the OS refusing a process, or a bug: never leave the main thread waiting
            log.debug("worker thread %d stopped", index, exc_info=True)
            self.events.put(("fatal", None, f"worker thread {index} stopped: {type(e).__name__}: {e}"))
        finally:
            if worker is not None:
                worker.stop()

    def _attempt_chunk(self, chunk: ChunkState, worker: Worker | None, index: int) -> Worker | None:
        error = "not attempted"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self.stop.is_set():
                return worker
            try:
                if worker is None:
                    worker = self._start_worker(index)
                result = self._synthesize_once(worker, chunk)
            except WorkerFailure as e:
                if worker is None and not self.loaded.is_set():
                    raise
                # after a crash, a replacement that cannot start (say, memory still held) costs one attempt
                error = str(e)
                if worker is not None:
                    worker.stop()
                worker = None
            except (SynthesisError, OSError, RuntimeError, UnicodeError) as e:
                error = str(e)
            else:
                self.events.put(("done", chunk, (attempt, result)))
                return worker
            if not self.stop.is_set():
                log.warning("chunk %s attempt %d/%d failed: %s", chunk.id, attempt, MAX_ATTEMPTS, error)
        if not self.stop.is_set():
            self.events.put(("failed", chunk, (MAX_ATTEMPTS, error)))
        return worker

    def _start_worker(self, index: int) -> Worker:
        worker = Worker(self._spec(), self.job.dir / "logs" / f"worker-{index}.log")
        self.workers.append(worker)
        hello = worker.start()
        self.loaded.set()
        self.events.put(("hello", None, hello))
        return worker

    def _synthesize_once(self, worker: Worker, chunk: ChunkState) -> dict[str, Any]:
        text = self.job.chunk_text(chunk)
        text_sha = jobs.sha256_text(text)
        wav_rel = f"wav/{chunk.id}.wav"
        settings = self.job.settings
        request = {
            "id": chunk.id,
            "text": text,
            "voice": settings.voice,
            "speed": settings.speed,
            "lang": settings.lang,
            "out_wav": str((self.job.dir / wav_rel).resolve()),
            "seed": jobs.chunk_seed(settings.seed, chunk.id),
        }
        answer = worker.request(request, self._timeout(len(text)))
        if not answer.get("ok"):
            raise SynthesisError(answer.get("error", "unknown worker error"))
        frames = soundfile.info(str(self.job.dir / wav_rel)).frames
        if frames != answer.get("frames"):
            raise SynthesisError(f"{wav_rel} holds {frames} frames, the worker reported {answer.get('frames')}")
        return {
            "wav": wav_rel,
            "frames": frames,
            "paragraph_ends": answer.get("paragraph_ends", []),
            "synth_s": float(answer.get("synth_s", 0.0)),
            "text_sha256": text_sha,
            "voice": answer.get("voice"),
        }

    def _timeout(self, chars: int) -> float:
        """Proportional to the chunk's length, from the speed measured so far in this run."""
        if self.synth_s > 0 and self._done_chars > 0:
            rate = self._done_chars / self.synth_s
            return 60.0 + self.run_opts.timeout_factor * chars / rate
        return self.run_opts.first_timeout_s + chars * 1.0


# ---- export --------------------------------------------------------------------------------------


def _export(job: Job) -> ExportResult:
    options = OutputOptions.from_dict(job.output)
    out = Path(job.output["path"]) if job.output.get("path") else default_output_path(job, options)
    result = export(chapter_audio(job), job.metadata(), out, options, _run_summary(job))
    job.output["file"] = str(result.path)
    job.output["exported"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    job.save()
    return result


def export_job(job_dir: Path, output: OutputOptions | None, out_path: Path | None) -> ExportResult:
    """Make the final file(s) from a finished job, synthesizing nothing."""
    job = jobs.load(job_dir)
    with JobLock(job.dir):
        job = jobs.load(job_dir)
        for line in jobs.verify(job):
            log.warning("repaired: %s", line)
        missing = [c.id for c in job.chunks if c.status != DONE]
        if missing:
            raise JobError(
                f"{job_dir}: {len(missing)} chunks are not synthesized yet ({_ids(missing)}); "
                f"run `audiobook resume {job_dir}` first"
            )
        _set_output(job, output, out_path)
        return _export(job)


def default_output_path(job: Job, options: OutputOptions) -> Path:
    """``<book stem>.<format>`` beside the job directory (a folder of the same stem for a split)."""
    stem = Path(job.book.get("source", "book")).stem or "book"
    if options.split_chapters:
        return job.dir.resolve().parent / stem
    return job.dir.resolve().parent / f"{stem}.{options.format}"


def chapter_audio(job: Job) -> list[ChapterAudio]:
    by_id = {c.id: c for c in job.chunks}
    return [
        ChapterAudio(
            index=ch.index,
            title=ch.title,
            segments=[
                Segment(
                    wav=job.dir / by_id[cid].wav,
                    frames=by_id[cid].frames,
                    paragraph_ends=list(by_id[cid].paragraph_ends),
                    ends_paragraph=by_id[cid].ends_paragraph,
                )
                for cid in ch.chunks
            ],
        )
        for ch in job.chapters
    ]


def _run_summary(job: Job) -> dict[str, Any]:
    wall = sum(r.get("wall_s", 0.0) for r in job.runs)
    audio_s = sum(c.frames or 0 for c in job.chunks) / job.settings.sample_rate
    last = job.runs[-1] if job.runs else {}
    return {
        "synthesis_wall_s": round(wall, 3),
        "real_time_factor": round(wall / audio_s, 4) if audio_s else None,
        "device": last.get("device"),
        "backend": job.settings.backend,
        "model": job.settings.model,
        "voice": job.settings.voice,
        "speed": job.settings.speed,
        "seed": job.settings.seed,
    }


def _ids(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


# ---- status --------------------------------------------------------------------------------------


def status(job_dir: Path) -> dict[str, Any]:
    """What a job holds, read from job.json and checked against the disk (without changing it)."""
    job = jobs.load(job_dir)
    counts = {s: 0 for s in ("pending", "done", "failed")}
    for c in job.chunks:
        counts[c.status] = counts.get(c.status, 0) + 1
    done = [c for c in job.chunks if c.status == DONE]
    chars_total = sum(c.chars for c in job.chunks)
    chars_done = sum(c.chars for c in done)
    audio_done = sum(c.frames or 0 for c in done) / job.settings.sample_rate
    final = job.output.get("file")
    return {
        "job_dir": str(job.dir),
        "title": job.book.get("title"),
        "author": job.book.get("author"),
        "chunks": counts,
        "chunks_total": len(job.chunks),
        "chars_done": chars_done,
        "chars_total": chars_total,
        "audio_done_s": round(audio_done, 2),
        "audio_estimated_total_s": round(audio_done * chars_total / chars_done, 1) if chars_done else None,
        "failures": [{"id": c.id, "attempts": c.attempts, "error": c.error} for c in job.chunks if c.status == FAILED],
        "settings": job.settings.to_dict(),
        "output": final if final and Path(final).exists() else None,
    }
