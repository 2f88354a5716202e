"""How much disk a job still needs, and what to say when there is not enough.

Estimates, not promises: speech length comes from characters (``CHARS_PER_AUDIO_SECOND``), chunk WAVs are
16-bit mono at 24 kHz, and each output format has a typical rate for speech.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import SAMPLE_RATE

log = logging.getLogger(__name__)

CHARS_PER_AUDIO_SECOND = 14.0
"""Kokoro at speed 1.0 on English prose: Alice's 142,794 characters gave 10,258 s of speech (13.9 chars/s)."""
WAV_BYTES_PER_SECOND = SAMPLE_RATE * 2
OUTPUT_BYTES_PER_SECOND = {"m4b": 8_000, "mp3": 8_000, "opus": 4_000, "flac": 28_000, "wav": WAV_BYTES_PER_SECOND}
"""The default bitrates (64k AAC and MP3, 32k Opus); FLAC compresses speech to a little over half of WAV."""


@dataclass(frozen=True)
class Need:
    """Bytes still to be written: chunk WAVs in the job directory, the final file(s) beside the output."""

    wavs: int
    output: int

    @property
    def total(self) -> int:
        return self.wavs + self.output


def need(chars_left: int, chars_total: int, speed: float, output_format: str) -> Need:
    """What the rest of a job will write, from its characters."""
    per_second = CHARS_PER_AUDIO_SECOND * speed
    return Need(
        wavs=int(chars_left / per_second * WAV_BYTES_PER_SECOND),
        output=int(chars_total / per_second * OUTPUT_BYTES_PER_SECOND.get(output_format, WAV_BYTES_PER_SECOND)),
    )


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds (or will hold) ``path``."""
    return shutil.disk_usage(_existing(path)).free


def warn_if_short(job_dir: Path, output_dir: Path, needed: Need) -> None:
    """Log a warning before a run when the disk(s) will not hold what it is about to write."""
    problem = shortfall(job_dir, output_dir, needed)
    if problem:
        log.warning("%s; free some space, or the run will stop when the disk is full", problem)


def full(where: Path, needed: Need) -> str:
    """What to say when the disk filled up under ``where``."""
    return (
        f"disk full in {where}: the rest of the book needs about {human(needed.total)}, "
        f"{human(free_bytes(where))} is free"
    )


def shortfall(job_dir: Path, output_dir: Path, needed: Need) -> str | None:
    """The problem when the disk(s) will not hold what is still to be written; ``None`` when they will."""
    same_disk = _existing(job_dir).stat().st_dev == _existing(output_dir).stat().st_dev
    checks = [(job_dir, needed.total)] if same_disk else [(job_dir, needed.wavs), (output_dir, needed.output)]
    for where, wanted in checks:
        free = free_bytes(where)
        if wanted > free:
            return f"{where} has {human(free)} free, but the rest of this book needs about {human(wanted)}"
    return None


def human(size: float) -> str:
    """``1.2 GB``, ``35 MB``, ``512 kB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{size:.1f} {unit}" if unit != "B" and size < 10 else f"{size:.0f} {unit}"


def _existing(path: Path) -> Path:
    """``path``, or its nearest parent that exists (an output folder not made yet)."""
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
