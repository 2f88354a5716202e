"""Streamed speech (``POST /v1/audio/speech``): short text in, audio out while it is still being made.

A speech request goes to the same warm workers as the books, with a lower priority number, so it waits at
most for the chunk each worker has in flight. The worker is asked to stream (``Request.stream``): it appends
each piece's PCM to a file the moment the piece is made, and :class:`SpeechStream` follows that growing file
and hands the bytes on. Why a growing file rather than answer lines per piece or a named pipe: the pool and
its one-answer-per-request protocol stay as they are; a worker never blocks on a slow or vanished reader (a
pipe's writer would); and a retry after a crashed worker rewrites the file with the very same bytes (each
piece is seeded), so the reader just keeps its offset and waits until the file grows past it again.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..engine import loading
from ..engine.core import check_speed
from ..engine.g2p import lang_code_for
from ..engine.voices import VoiceSpec
from ..errors import AudiobookError, SynthesisError
from ..pool import Batch, Done, Event, Failed, LocalPool, Stopped
from ..protocol import Request
from ..settings import Settings
from .metrics import Metrics

log = logging.getLogger(__name__)

SPEECH_PRIORITY = -1
"""Lower than a book chunk's: speech jumps the book queue (never a chunk already in flight)."""
MAX_INPUT_CHARS = 4096
"""What OpenAI's endpoint accepts; longer text belongs in a book."""
POLL_S = 0.005
"""How often the growing file is looked at: far below the time one piece takes to make."""
WARM_UP_TEXT = "Ready."


class Speaker:
    """Makes speech requests for the service's default model and follows their audio."""

    def __init__(self, pool: LocalPool, settings: Settings, work_dir: Path, metrics: Metrics) -> None:
        self.pool = pool
        self.settings = settings
        self.work_dir = work_dir
        self.metrics = metrics
        self.warm = threading.Event()
        self._ids = itertools.count()
        shutil.rmtree(work_dir, ignore_errors=True)  # a killed service's leftovers
        work_dir.mkdir(parents=True, exist_ok=True)

    def voices(self) -> list[str]:
        return loading.model_voices(self.settings.source)

    def speak(
        self, text: str, voice: str | None = None, speed: float = 1.0, lang: str | None = None, counted: bool = True
    ) -> SpeechStream:
        """Queue ``text`` for the next free worker; the returned stream yields its PCM (24 kHz mono int16).
        ``counted``: in the metrics (the warm-up is not)."""
        if not text.strip():
            raise AudiobookError("input is empty; give some text to speak")
        if len(text) > MAX_INPUT_CHARS:
            raise AudiobookError(
                f"input has {len(text):,} characters; at most {MAX_INPUT_CHARS:,} (add a book instead)"
            )
        check_speed(speed)
        spec = self.voice(voice)
        number = next(self._ids)
        request = Request(
            id=f"speech-{number}",
            text=text,
            out_wav=str(self.work_dir / f"speech-{number}.wav"),
            voice=spec,
            speed=float(speed),
            lang=self.lang(lang),
            seed=self.settings.seed,
            stream=str(self.work_dir / f"speech-{number}.pcm"),
        )
        return SpeechStream(self.pool.submit([request], SPEECH_PRIORITY), request, self.metrics if counted else None)

    def voice(self, voice: str | None) -> VoiceSpec:
        """The voice asked for (a name or a blend of the model's voices), else the service's default."""
        if not voice:
            return self.settings.voice
        spec = VoiceSpec.parse(voice)
        if spec.names:
            spec.check(self.voices())
        return spec

    def lang(self, lang: str | None) -> str:
        """The language asked for, else the service's (``--lang``, else US English), as for a book: a voice's
        name does not decide it (the bundled model's Japanese-named voices read English well)."""
        return lang_code_for(lang) if lang else self.settings.lang

    def warm_up(self, workers: int) -> None:
        """Load the model (and the language's G2P) in every worker now, in the background."""
        streams = [self.speak(WARM_UP_TEXT, counted=False) for _ in range(workers)]

        def drain() -> None:
            try:
                for stream in streams:
                    for _ in stream:
                        pass
                self.warm.set()
                log.info("workers are warm")
            except AudiobookError as e:
                log.error("warming the workers failed: %s", e)

        threading.Thread(target=drain, name="warm-up", daemon=True).start()


class SpeechStream:
    """The PCM of one speech request as the worker makes it; iterate once. ``close`` gives up on it."""

    def __init__(self, batch: Batch, request: Request, metrics: Metrics | None) -> None:
        self.batch = batch
        self.request = request
        self.metrics = metrics
        self.frames = 0
        self._outcome: list[Event] = []
        self._finished = threading.Event()
        self._closed = False
        self._started = time.monotonic()
        threading.Thread(target=self._wait, name=f"{request.id}-events", daemon=True).start()

    def _wait(self) -> None:
        try:
            for event in self.batch.events():
                if isinstance(event, Done | Failed | Stopped):
                    self._outcome.append(event)
        finally:
            self._finished.set()
            if self._closed:  # the listener left while a worker was still writing
                self._remove_files()

    def __iter__(self) -> Iterator[bytes]:
        path = Path(self.request.stream)
        offset = 0
        first = True
        try:
            while True:
                finished = self._finished.is_set()  # before reading: once Done, the file is complete
                data = _read_from(path, offset)
                if data:
                    offset += len(data)
                    if first and self.metrics is not None:
                        self.metrics.first_byte(time.monotonic() - self._started)
                    first = False
                    yield data
                    continue
                if finished:
                    self._check_outcome()
                    break
                time.sleep(POLL_S)
        finally:
            self.frames = offset // 2
            self.close()

    def _check_outcome(self) -> None:
        outcome = self._outcome[-1] if self._outcome else None
        if isinstance(outcome, Done):
            if self.metrics is not None:
                self.metrics.speech_done(len(self.request.text), outcome.answer)
            return
        reason = outcome.error if isinstance(outcome, Failed | Stopped) else "the request was cancelled"
        raise SynthesisError(f"speech failed: {reason}")

    def close(self) -> None:
        """Cancel the request if no worker has taken it yet, and remove its files."""
        self._closed = True
        self.batch.cancel()
        self._remove_files()

    def _remove_files(self) -> None:
        for name in (self.request.stream, self.request.out_wav):
            Path(name).unlink(missing_ok=True)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:  # the worker has not started on it yet
        return b""
