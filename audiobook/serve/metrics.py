"""The service's Prometheus metrics (``GET /metrics``), named the Prometheus way.

Units are in the names (``_seconds``), counters end in ``_total``, and labels have few values: ``device``
(cpu, cuda, rocm, mps), ``backend`` (torch, onnx), ``kind`` (book, speech) and a queue ``state``. Counters and
histograms are updated from the runner's events as they happen; the queue's depth and the pools' restarts
are read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import SAMPLE_RATE
from ..job import DONE, Job
from ..pool import Done, Event, Failed
from ..protocol import Answer, WorkerConfig

if TYPE_CHECKING:
    from .library import Library

LABELS = ("device", "backend")
CHUNK_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""A 2,000-character chunk takes about a second on a GPU and half a minute to a minute on one CPU core."""
FIRST_BYTE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """One registry per service (tests run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.chunks_done = Counter(
            "audiobook_chunks_done", "Book chunks synthesized and recorded.", LABELS, registry=registry
        )
        self.chunks_failed = Counter(
            "audiobook_chunks_failed", "Book chunks that failed every attempt.", LABELS, registry=registry
        )
        self.characters = Counter(
            "audiobook_synthesized_characters",
            "Characters of text synthesized.",
            (*LABELS, "kind"),
            registry=registry,
        )
        self.audio = Counter(
            "audiobook_synthesized_audio_seconds", "Seconds of audio synthesized.", (*LABELS, "kind"), registry=registry
        )
        self.chunk_seconds = Histogram(
            "audiobook_chunk_synthesis_seconds",
            "Seconds a worker spent synthesizing one book chunk.",
            LABELS,
            buckets=CHUNK_BUCKETS,
            registry=registry,
        )
        self.speech_requests = Counter(
            "audiobook_speech_requests", "Streamed speech requests answered in full.", LABELS, registry=registry
        )
        self.speech_labels: tuple[str, str] = ("", "")
        """Device and backend of the speech workers, set by ``speech_pool`` when the service starts."""
        self.first_byte_seconds = Histogram(
            "audiobook_speech_first_byte_seconds",
            "Seconds from a speech request's arrival to its first byte of audio.",
            LABELS,
            buckets=FIRST_BYTE_BUCKETS,
            registry=registry,
        )

    def speech_pool(self, config: WorkerConfig) -> None:
        """The workers that streamed speech runs on (its series' labels)."""
        self.speech_labels = (config.device, config.backend)

    def watch(self, library: Library) -> None:
        """Read the queue and the pools of ``library`` at each scrape."""
        self.registry.register(_LibraryCollector(library))

    def book_event(self, config: WorkerConfig, job: Job, event: Event) -> None:
        """Count one recorded pool event of a book's run."""
        labels = (config.device, config.backend)
        if isinstance(event, Done) and job.chunk(event.request.id).status == DONE:
            self.chunks_done.labels(*labels).inc()
            self.characters.labels(*labels, "book").inc(len(event.request.text))
            self.audio.labels(*labels, "book").inc(event.answer.frames / SAMPLE_RATE)
            self.chunk_seconds.labels(*labels).observe(event.answer.synth_s)
        elif isinstance(event, Failed):
            self.chunks_failed.labels(*labels).inc()

    def first_byte(self, seconds: float) -> None:
        self.first_byte_seconds.labels(*self.speech_labels).observe(seconds)

    def speech_done(self, chars: int, answer: Answer) -> None:
        labels = self.speech_labels
        self.speech_requests.labels(*labels).inc()
        self.characters.labels(*labels, "speech").inc(chars)
        self.audio.labels(*labels, "speech").inc(answer.frames / SAMPLE_RATE)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class _LibraryCollector(Collector):
    def __init__(self, library: Library) -> None:
        self.library = library

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the values exist only once the library runs

    def collect(self) -> Iterator[Metric]:
        books = self.library.books()
        states = GaugeMetricFamily("audiobook_queue_books", "Books in the queue, by state.", labels=["state"])
        counts: dict[str, int] = {}
        for book in books:
            counts[book["state"]] = counts.get(book["state"], 0) + 1
        for state, count in sorted(counts.items()):
            states.add_metric([state], count)
        yield states
        yield GaugeMetricFamily(
            "audiobook_queue_chunks",
            "Chunks waiting to be synthesized in queued and running books: the queue's depth.",
            value=sum(_waiting(book) for book in books),
        )
        restarts = CounterMetricFamily(
            "audiobook_worker_restarts",
            "Worker processes started again after one crashed, hung or broke the protocol.",
            labels=list(LABELS),
        )
        by_labels: dict[tuple[str, str], int] = {}
        for pool in self.library.pools():  # two models on one device share a series
            key = (pool.config.device, pool.config.backend)
            by_labels[key] = by_labels.get(key, 0) + pool.restarts
        for (device, backend), count in sorted(by_labels.items()):
            restarts.add_metric([device, backend], count)
        yield restarts


def _waiting(book: dict[str, Any]) -> int:
    if book["state"] not in ("queued", "running"):
        return 0
    return book["chunks_total"] - book["chunks"]["done"]
