"""The project's exception types.

Library code raises these; only ``cli.py`` turns them into one ``Error: ...`` line and exit status 2.
"""

from __future__ import annotations


class AudiobookError(Exception):
    """Base class for every error the user can act on."""


class BadInputError(AudiobookError):
    """A book file that cannot be read: missing, unknown type, corrupt, DRM, empty, hostile."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelError(AudiobookError):
    """A model, voice, device or G2P resource that cannot be loaded."""


class SynthesisError(AudiobookError):
    """A chunk that failed to synthesize."""


class TimingUnavailable(SynthesisError):
    """The model cannot say how long each phoneme lasts (an ONNX export without a durations output)."""


class JobError(AudiobookError):
    """A job directory that is missing, locked, corrupt, or asked to change its settings."""


class FFmpegError(AudiobookError):
    """ffmpeg failed; carries the last lines of its stderr."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(f"{message}\n{stderr_tail}".rstrip())
        self.stderr_tail = stderr_tail


class RunStopped(AudiobookError):
    """The run stopped for a reason outside the book (a full disk, a lost GPU): finished chunks are kept, and
    `audiobook resume` carries on once the cause is fixed."""


class LexiconError(AudiobookError):
    """A pronunciation lexicon that cannot be read: ``file:line: reason``."""


class NotFoundError(AudiobookError):
    """Something asked for by name (a book in the service's queue, a chunk, a file) that does not exist."""


class OutsideLibraryError(AudiobookError):
    """A path given to the service that leads outside its library directory (``..``, an absolute path, a link)."""


class TooLargeError(AudiobookError):
    """An upload or a text over the service's size limit."""
