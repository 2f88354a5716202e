"""The records that cross the pipe between the pool and a worker process, defined once for both ends.

A worker is started with a :class:`WorkerConfig` (as command-line flags), writes one :class:`Hello` line when
its model is loaded (or failed to load), then reads one :class:`Request` line per chunk and writes one
:class:`Answer` line for each, in order. Every line is one JSON object; :func:`encode` and :func:`decode` are
the only way records become lines and back, and ``decode`` refuses a line that is not the record it should be.

An answer that failed says what kind of failure it was (``error_kind``): a chunk's own failure is retried; a
job-level one (``JOB_LEVEL``: a full disk, a model that cannot load, a lost device) cannot be fixed by a retry
and stops the run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from .engine.voices import VoiceSpec

CHUNK = "chunk"
"""This chunk failed; another attempt may succeed."""
DISK_FULL = "disk_full"
MODEL = "model"
DEVICE = "device"
JOB_LEVEL = frozenset({DISK_FULL, MODEL, DEVICE})
"""Failure kinds that no retry can fix: the run stops, keeping every finished chunk."""


class ProtocolError(ValueError):
    """A line that is not the record it should be."""


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker is started: the model every worker of a job loads, and where it runs."""

    backend: str
    """``torch`` or ``onnx``."""
    model: str
    revision: str | None = None
    device: str = "cpu"
    """Concrete: ``cpu``, ``cuda``, ``rocm`` or ``mps`` (resolved by :mod:`audiobook.devices`)."""
    threads: int | None = None
    lang: str | None = None
    """The job's kokoro language code: the worker loads its G2P while the model loads."""

    def argv(self) -> list[str]:
        """The worker's command-line flags (``python -m audiobook.worker --serve`` + these)."""
        flags = ["--backend", self.backend, "--model", self.model, "--device", self.device]
        if self.revision:
            flags += ["--revision", self.revision]
        if self.threads:
            flags += ["--threads", str(self.threads)]
        if self.lang:
            flags += ["--lang-code", self.lang]
        return flags


@dataclass(frozen=True)
class Hello:
    """The worker's first line: its model is loaded (``ready``), or why not."""

    ready: bool
    device: str = ""
    backend: str = ""
    model: str = ""
    load_s: float = 0.0
    pid: int = 0
    error: str = ""
    error_kind: str = ""


@dataclass(frozen=True)
class Request:
    """Synthesize ``text`` into the WAV file ``out_wav`` (written atomically)."""

    id: str
    text: str
    out_wav: str
    voice: VoiceSpec
    speed: float = 1.0
    lang: str = "a"
    seed: int = 0
    lexicon: str = ""
    """The pronunciation lexicon entries that touch ``text``, as lexicon lines (empty: none)."""
    stream: str = ""
    """Streamed speech (``audiobook serve``): a file the worker rewrites from the start on each attempt and
    appends every piece's audio to, as 16-bit PCM, the moment the piece is made (short pieces, the first
    shortest); the reader follows the growing file. Empty for a book chunk. The WAV is written as usual."""
    out_timings: str | None = None
    """Where to write the chunk's word and sentence timings (JSON, after the WAV); None: no timings."""


@dataclass(frozen=True)
class Answer:
    """The outcome of one request: the WAV's frame count and paragraph ends, or the error and its kind."""

    id: str | None
    ok: bool
    frames: int = 0
    paragraph_ends: tuple[int, ...] = ()
    """Frame offsets where a paragraph ends inside the chunk (the last paragraph's end excluded)."""
    synth_s: float = 0.0
    phonemes: int = 0
    timings: str | None = None
    """The timings file written (the request's ``out_timings``); None when none was asked for or the model
    cannot time its phonemes."""
    error: str = ""
    error_kind: str = ""

    @classmethod
    def failure(cls, request_id: str | None, error: str, kind: str = CHUNK) -> Answer:
        return cls(id=request_id, ok=False, error=error, error_kind=kind)


Record = TypeVar("Record", WorkerConfig, Hello, Request, Answer)


def encode(record: Hello | Request | Answer) -> str:
    """One JSON line (no newline) for a record."""
    return json.dumps(to_dict(record), ensure_ascii=False)


def to_dict(record: Hello | Request | Answer) -> dict[str, Any]:
    return {field.name: _plain(getattr(record, field.name)) for field in dataclasses.fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, VoiceSpec):
        return value.to_json()
    return list(value) if isinstance(value, tuple) else value


def decode(kind: type[Record], line: str | bytes) -> Record:
    """Parse one line into a ``kind`` record; ``ProtocolError`` naming what is wrong."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(f"not JSON ({e}): {str(line)[:200]!r}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{kind.__name__} must be a JSON object, got: {str(line)[:200]!r}")
    return from_dict(kind, data)


def from_dict(kind: type[Record], data: dict[str, Any]) -> Record:
    hints = typing.get_type_hints(kind, vars(sys.modules[__name__]))
    values = {}
    for field in dataclasses.fields(kind):
        if field.name not in data:
            if field.default is dataclasses.MISSING:
                raise ProtocolError(f"{kind.__name__} is missing {field.name!r}")
            continue
        values[field.name] = _convert(data[field.name], hints[field.name], f"{kind.__name__}.{field.name}")
    return kind(**values)


def _convert(value: Any, hint: Any, where: str) -> Any:
    if hint is VoiceSpec:
        try:
            return VoiceSpec.from_json(value)
        except (TypeError, ValueError) as e:
            raise ProtocolError(f"{where}: not a list of [voice, weight] terms ({e})") from None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    expected = next(t for t in options if t is not type(None))
    if typing.get_origin(expected) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ProtocolError(f"{where}: expected a list of integers, got {value!r}")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or expected is int and isinstance(value, bool):
        raise ProtocolError(f"{where}: expected {expected.__name__}, got {value!r}")
    return value
