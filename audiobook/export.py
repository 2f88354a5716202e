"""A job's chunks -> the final audiobook file(s), synthesizing nothing.

The job knows what to write (its output record) and where its chunks are; :mod:`audiobook.outputs` does the
writing. Used at the end of a build or resume, and by ``audiobook export``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from . import job as jobs
from .assemble import ChapterAudio, Segment
from .errors import JobError
from .job import Job
from .outputs import READ_ALONG, READ_ALONG_EXTENSION, ExportResult, OutputChanges, OutputOptions, write_outputs

log = logging.getLogger(__name__)


def export_job(job_dir: Path, changes: OutputChanges | None = None) -> ExportResult:
    """Write a finished job's audiobook, in the output options it has with ``changes`` applied."""
    with jobs.open_for_update(job_dir) as job:
        for line in jobs.verify(job):
            log.warning("repaired: %s", line)
        missing = [c.id for c in job.pending()]
        if missing:
            raise JobError(
                f"{job_dir}: {len(missing)} chunks are not synthesized yet ({short_list(missing)}); "
                f"run `audiobook resume {job_dir}` first"
            )
        if changes is not None:
            job.update_output(changes)
        return write(job)


def write(job: Job) -> ExportResult:
    """Write the audiobook of a job whose chunks are all done, and record what was written.

    Beside the audio go ``timings.json`` and the subtitles the options ask for; ``--format epub3`` writes the
    read-along EPUB instead (see :mod:`audiobook.timed_outputs`).
    """
    from .timed_outputs import write_beside, write_read_along

    chapters = chapter_audio(job)
    if job.output.options.format == READ_ALONG:
        result = write_read_along(job, chapters, output_path(job), run_summary(job))
        job.record_output(result.path)
        return result
    result = write_outputs(chapters, job.metadata(), output_path(job), job.output.options, run_summary(job))
    job.record_output(result.path)
    write_beside(job, chapters, result)
    return result


def output_path(job: Job) -> Path:
    """Where the audiobook goes: the ``--out`` the job was given, else beside the job directory."""
    return Path(job.output.path) if job.output.path else default_output_path(job, job.output.options)


def default_output_path(job: Job, options: OutputOptions) -> Path:
    """``<book stem>.<format>`` beside the job directory (a folder of the same stem for a split)."""
    stem = Path(job.book.get("source", "book")).stem or "book"
    if options.format == READ_ALONG:  # never the book's own name: that may be the EPUB it was made from
        return job.dir.resolve().parent / f"{stem}.read-along{READ_ALONG_EXTENSION}"
    if options.split_chapters:
        return job.dir.resolve().parent / stem
    return job.dir.resolve().parent / f"{stem}.{options.format}"


def chapter_audio(job: Job) -> list[ChapterAudio]:
    """The job's chapters as assembly sees them: chunk WAVs with their frame counts and paragraph ends."""
    by_id = {c.id: c for c in job.chunks}
    return [
        ChapterAudio(
            index=chapter.index,
            title=chapter.title,
            segments=[
                Segment(
                    wav=job.dir / by_id[cid].wav,
                    frames=by_id[cid].frames,
                    paragraph_ends=list(by_id[cid].paragraph_ends),
                    ends_paragraph=by_id[cid].ends_paragraph,
                )
                for cid in chapter.chunks
            ],
        )
        for chapter in job.chapters
    ]


def run_summary(job: Job) -> dict[str, Any]:
    """What ``output.json`` says about how the audio was made."""
    wall = sum(r.wall_s for r in job.runs)
    audio_s = sum(c.frames or 0 for c in job.chunks) / job.settings.sample_rate
    device = job.runs[-1].device if job.runs else None
    settings = job.settings
    return {
        "synthesis_wall_s": round(wall, 3),
        "real_time_factor": round(wall / audio_s, 4) if audio_s else None,
        "device": device,
        "backend": settings.backend,
        "model": settings.model,
        "voice": str(settings.voice),
        "speed": settings.speed,
        "seed": settings.seed,
    }


def short_list(ids: list[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
