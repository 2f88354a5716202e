"""The service's queue on disk: which books, in which order, and what the user asked of each.

``queue.json`` in the library directory holds one entry per book: its id (the name of its job directory),
the book file, and its state. Progress is never kept here: each job's own ``job.json`` is the truth of that,
so a service killed at any moment loses nothing but the chunks in flight. The file is rewritten atomically
after every change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import JobError

log = logging.getLogger(__name__)

SCHEMA = "audiobook-queue"
VERSION = 1
QUEUE_FILE = "queue.json"

QUEUED = "queued"
"""Waiting for its turn (or running: the service runs the first queued book)."""
PAUSED = "paused"
"""Stopped by the user, keeping its place; ``resume`` queues it again."""
CANCELLED = "cancelled"
"""Taken out of the work by the user; its job directory and finished chunks stay, ``resume`` queues it again."""
DONE = "done"
"""Every chunk synthesized and the audiobook written."""
FAILED = "failed"
"""Some chunks failed every attempt; ``resume`` retries them."""
ERROR = "error"
"""The run stopped for a reason outside the book (a full disk, a locked job, a model that will not load)."""
STATES = (QUEUED, PAUSED, CANCELLED, DONE, FAILED, ERROR)


@dataclass
class Entry:
    id: str
    """The job directory's name under ``jobs/``; also the book's id in the API."""
    book: str
    """The book file, relative to the library directory."""
    state: str = QUEUED
    added: str = ""
    """ISO 8601 UTC."""
    error: str | None = None
    """Why the book is ``failed`` or ``error``."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        names = {f.name for f in dataclasses.fields(cls)}
        entry = cls(**{k: v for k, v in data.items() if k in names})
        if entry.state not in STATES:
            raise ValueError(f"unknown state {entry.state!r}")
        return entry


def load(library: Path) -> list[Entry]:
    """The queue in order; empty for a new library. ``JobError`` for a file this version cannot read."""
    path = library / QUEUE_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA or data.get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} {SCHEMA} file")
        return [Entry.from_dict(item) for item in data["books"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise JobError(f"{path}: unreadable queue ({e}); move it away to start an empty queue") from e


def save(library: Path, entries: list[Entry]) -> None:
    data = {"schema": SCHEMA, "version": VERSION, "books": [dataclasses.asdict(e) for e in entries]}
    write_atomic(library / QUEUE_FILE, (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode())
