"""What ``audiobook status`` shows: a job's progress, read from job.json and the disk, changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import job as jobs
from .job import DONE, FAILED, PENDING


def status(job_dir: Path) -> dict[str, Any]:
    """Chunks by status, characters and audio done, an estimate of the whole, failures, settings, the output."""
    job = jobs.load(job_dir)
    counts = {PENDING: 0, DONE: 0, FAILED: 0}
    for chunk in job.chunks:
        counts[chunk.status] = counts.get(chunk.status, 0) + 1
    done = job.done()
    chars_total = sum(c.chars for c in job.chunks)
    chars_done = sum(c.chars for c in done)
    audio_done = sum(c.frames or 0 for c in done) / job.settings.sample_rate
    final = job.output.file
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
