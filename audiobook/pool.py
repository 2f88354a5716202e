"""The worker pool: starting, feeding, timing out, retrying and restarting the processes that synthesize.

A caller submits :class:`~audiobook.protocol.Request` records and reads typed events back from the
:class:`Batch` it gets: :class:`Ready` when a worker has loaded its model, :class:`Done` or :class:`Failed`
once per request, and :class:`Stopped` when a failure that no retry can fix (a full disk, a model that cannot
load, a lost device) ends the run. The caller never sees a process, a thread or a pipe, so another
implementation of :class:`WorkerPool` (workers on other machines, behind a cluster scheduler) can stand behind
the same interface: it needs only to make each request's WAV exist and report its answer.

:class:`LocalPool` runs worker processes on this machine, one thread driving each. Workers start on demand
and stay warm until the pool is closed, so one pool can serve several batches (a service keeps the model
loaded from one book to the next); a batch submitted with a lower ``priority`` number is served first.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .protocol import (
    DEVICE,
    DISK_FULL,
    JOB_LEVEL,
    MODEL,
    Answer,
    Hello,
    ProtocolError,
    Request,
    WorkerConfig,
    decode,
    encode,
)

log = logging.getLogger(__name__)

GPU_WORKERS = 4
"""Worker processes sharing one CUDA GPU. On an H100 with Kokoro-82M: 1 worker 1,600-2,300 chars/s,
4 workers 5,360, 8 workers 6,330 (see README, Speed); four take most of the gain for a quarter of the memory."""
MAX_CPU_WORKERS = 4
"""On a CPU, one single-threaded worker per core gave the most chars/s (measured on 2 cores, see README);
past four, memory grows (a worker holds its own model) for returns nobody has measured."""
MAX_ATTEMPTS = 3
"""A request is tried once and retried twice, with a fresh worker after a crash or a hang."""
HELLO_TIMEOUT_S = 600.0
"""Loading a model can mean a first download from the hub; a dead worker is seen at once anyway."""


# ---- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """A worker loaded its model."""

    hello: Hello


@dataclass(frozen=True)
class Done:
    """A request's WAV is in place."""

    request: Request
    answer: Answer
    attempts: int


@dataclass(frozen=True)
class Failed:
    """A request failed every attempt; the rest of the batch goes on."""

    request: Request
    error: str
    attempts: int


@dataclass(frozen=True)
class Stopped:
    """A failure no retry can fix; the batch ends here and unfinished requests stay unfinished."""

    error: str
    kind: str
    """One of ``protocol.JOB_LEVEL``, or ``pool`` for a bug in the pool itself."""


Event = Ready | Done | Failed | Stopped


@dataclass(frozen=True)
class Layout:
    """How many worker processes, and CPU threads in each."""

    workers: int
    threads: int


def layout(device: str, workers: int | None = None, threads: int | None = None) -> Layout:
    """The measured default layout for a device, with the user's overrides.

    CUDA/ROCm: ``GPU_WORKERS`` processes share the GPU (kokoro runs one utterance at a time, which leaves an
    H100 mostly idle). Apple MPS and DirectML: one. CPU: one worker per core, up to ``MAX_CPU_WORKERS``. Threads: the
    cores shared out between the workers.
    """
    if workers is None:
        if device in ("cuda", "rocm"):
            workers = GPU_WORKERS
        else:
            workers = 1 if device in ("mps", "directml") else min(MAX_CPU_WORKERS, cores())
    return Layout(workers, threads if threads is not None else max(1, cores() // workers))


def dispatch_order(requests: Sequence[Request], workers: int) -> list[Request]:
    """The order requests go out: as given, but the last ``2 * workers`` longest first.

    The last chunks decide when a job ends. Given out longest first, they finish close together, instead of one
    worker speaking a long chunk alone while the others wait: measured on 8,000 characters (5 chunks, 2 workers),
    one worker sat idle for a third of the run. A whole book is barely reordered.
    """
    if workers < 2:
        return list(requests)
    cut = max(0, len(requests) - 2 * workers)
    return [*requests[:cut], *sorted(requests[cut:], key=lambda request: -len(request.text))]


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---- the interface -------------------------------------------------------------------------------


class Batch:
    """The requests of one submission and the events they produce, read by one consumer."""

    def __init__(self, requests: Sequence[Request], alive: Callable[[], bool] = lambda: True) -> None:
        """``alive`` is the pool's answer to "is anyone still working on this?", asked while nothing happens."""
        self.requests = list(requests)
        self._alive = alive
        self._events: queue.Queue[Event | None] = queue.Queue()  # None only wakes the reader
        self._unfinished = len(self.requests)
        self._in_flight = 0
        self._lock = threading.Lock()
        self.cancelled = threading.Event()

    def claim(self) -> bool:
        """For pool implementations: a request is about to be served. False once the batch is cancelled: the
        request is then dropped. Every claimed request ends in ``put`` of its Done or Failed, or in ``drop``."""
        with self._lock:
            if self.cancelled.is_set():
                return False
            self._in_flight += 1
            return True

    def drop(self) -> None:
        """For pool implementations: a claimed request is given up because the batch was cancelled."""
        with self._lock:
            self._in_flight -= 1
        self._events.put(None)

    def put(self, event: Event) -> None:
        """For pool implementations: report an event of this batch."""
        self._events.put(event)
        if isinstance(event, Done | Failed):
            with self._lock:
                self._in_flight -= 1

    def stop(self, error: str, kind: str) -> None:
        """For pool implementations: end the batch with a failure no retry can fix."""
        self.cancelled.set()
        self.put(Stopped(error, kind))

    def cancel(self) -> None:
        """Hand out none of its remaining requests. Those in flight still finish: ``events`` reports them and
        then ends (a service pauses a book this way); whatever finishes after the reader left is in
        ``leftovers``."""
        self.cancelled.set()
        self._events.put(None)

    def events(self) -> Iterator[Event]:
        """Every event until each request is done or failed, the batch is stopped, or it was cancelled and
        nothing of it is in flight any more (never a hang: if the pool has nobody left working on it, the
        batch ends with ``Stopped``)."""
        while self._unfinished:
            if self.cancelled.is_set() and self._settled():
                return
            try:
                event = self._events.get(timeout=1.0)
            except queue.Empty:
                if not self._alive():
                    yield Stopped(f"every worker stopped with {self._unfinished} requests left", "pool")
                    return
                continue
            if event is None:
                continue
            if isinstance(event, Done | Failed):
                self._unfinished -= 1
            yield event
            if isinstance(event, Stopped):
                return

    def _settled(self) -> bool:
        """Nothing in flight and nothing left to read (``put`` queues an event before it counts it finished)."""
        with self._lock:
            return self._in_flight <= 0 and self._events.empty()

    def leftovers(self) -> list[Done]:
        """Requests that finished after the consumer stopped reading: finished audio is never thrown away."""
        found = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return found
            if isinstance(event, Done):
                found.append(event)


class WorkerPool(ABC):
    """Synthesizes requests somewhere; the runner needs nothing else."""

    @abstractmethod
    def submit(self, requests: Sequence[Request], priority: int = 0) -> Batch:
        """Queue ``requests`` (lower ``priority`` numbers first) and return the batch that reports on them."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker: finish nothing more, lose nothing finished."""

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- worker processes on this machine ------------------------------------------------------------


@dataclass
class Timeouts:
    """How long a request may take before its worker is taken for hung and replaced."""

    first_s: float = 600.0
    """Before any speed is measured: this, plus ``per_char_s`` for each character."""
    per_char_s: float = 1.0
    factor: float = 10.0
    """Once a speed is measured: this many times the expected time, plus a minute."""
    hello_s: float = HELLO_TIMEOUT_S


@dataclass
class _Speed:
    chars: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, chars: int, seconds: float) -> None:
        with self.lock:
            self.chars += chars
            self.seconds += seconds

    def timeout(self, chars: int, timeouts: Timeouts) -> float:
        with self.lock:
            if self.chars and self.seconds > 0:
                return 60.0 + timeouts.factor * chars * self.seconds / self.chars
        return timeouts.first_s + chars * timeouts.per_char_s


class LocalPool(WorkerPool):
    """Worker processes on this machine, each driven by one thread."""

    def __init__(
        self, config: WorkerConfig, log_dir: Path, size: Layout | None = None, timeouts: Timeouts | None = None
    ) -> None:
        self.layout = size or layout(config.device)
        self.config = dataclasses.replace(config, threads=config.threads or self.layout.threads)
        self.log_dir = log_dir
        self.timeouts = timeouts or Timeouts()
        self._tasks: queue.PriorityQueue[tuple[int, int, Request | None, Batch | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._processes: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._loaded = threading.Event()
        self._speed = _Speed()
        self._started: set[int] = set()
        self.restarts = 0
        """Worker processes started in place of one that crashed, hung or broke the protocol (for metrics)."""

    def submit(self, requests: Sequence[Request], priority: int = 0) -> Batch:
        if self._closed.is_set():
            raise RuntimeError("the pool is closed")
        batch = Batch(requests, alive=lambda: any(t.is_alive() for t in self._threads))
        for request in dispatch_order(batch.requests, self.layout.workers):
            self._tasks.put((priority, next(self._order), request, batch))
        self._start_threads(len(batch.requests))
        return batch

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            process.stop(grace_s=0 if process.busy else 5.0)
        for _ in self._threads:
            self._tasks.put((-(2**31), -1, None, None))  # wake idle threads
        for thread in self._threads:
            thread.join(timeout=10)

    # one thread per worker process

    def _start_threads(self, wanted: int) -> None:
        with self._lock:
            alive = [t for t in self._threads if t.is_alive()]
            for index in range(len(alive), min(self.layout.workers, len(alive) + wanted)):
                thread = threading.Thread(target=self._drive, args=(index,), daemon=True, name=f"worker-{index}")
                alive.append(thread)
                thread.start()
            self._threads = alive

    def _drive(self, index: int) -> None:
        process: WorkerProcess | None = None
        batch: Batch | None = None
        try:
            while not self._closed.is_set():
                _, _, request, batch = self._tasks.get()
                if request is None or batch is None or self._closed.is_set():
                    break
                if not batch.claim():
                    continue
                process = self._serve(request, batch, process, index)
        except BaseException as e:  # a bug, or the OS refusing threads: never leave the consumer waiting
            log.debug("worker thread %d stopped", index, exc_info=True)
            if batch is not None:
                batch.stop(f"worker thread {index} stopped: {type(e).__name__}: {e}", "pool")
        finally:
            if process is not None:
                self._forget(process)

    def _serve(self, request: Request, batch: Batch, process: WorkerProcess | None, index: int) -> WorkerProcess | None:
        """Up to ``MAX_ATTEMPTS`` tries at one request; returns the worker to keep using."""
        error = "not attempted"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self._closed.is_set() or batch.cancelled.is_set():
                batch.drop()
                return process
            try:
                process = process or self._start(index, batch)
                answer = process.request(request, self._speed.timeout(len(request.text), self.timeouts))
            except WorkerFailure as e:
                if self._job_level(e.kind, e.starting):
                    batch.stop(str(e), e.kind or MODEL)
                    return None
                error = str(e)  # a crash or a hang: a fresh worker gets the next attempt
                if process is not None:
                    self._forget(process)
                process = None
            except OSError as e:  # the OS refusing a process (EAGAIN, ENOMEM) costs an attempt
                error = f"cannot start a worker: {e}"
            else:
                if answer.ok:
                    self._speed.add(len(request.text), answer.synth_s)
                    batch.put(Done(request, answer, attempt))
                    return process
                if answer.error_kind in JOB_LEVEL:
                    batch.stop(answer.error, answer.error_kind)
                    return process
                error = answer.error
            if not self._closed.is_set():
                log.warning("%s: attempt %d/%d failed: %s", request.id, attempt, MAX_ATTEMPTS, error)
        if not self._closed.is_set():
            batch.put(Failed(request, error, MAX_ATTEMPTS))
        return process

    def _job_level(self, kind: str, starting: bool) -> bool:
        """A full disk or a lost device stops the run; so does a model that no worker has ever loaded.

        A worker that cannot start after others did (memory still held by a crashed one, say) costs one
        attempt instead: the model itself is fine.
        """
        if kind in (DISK_FULL, DEVICE):
            return True
        return starting and not self._loaded.is_set()

    def _start(self, index: int, batch: Batch) -> WorkerProcess:
        process = WorkerProcess(self.config, self.log_dir / f"worker-{index}.log")
        with self._lock:
            if self._closed.is_set():
                raise WorkerFailure("the pool is closing")
            self._processes.add(process)
            if index in self._started:
                self.restarts += 1
            self._started.add(index)
        try:
            hello = process.start(self.timeouts.hello_s)
        except BaseException:
            self._forget(process)
            raise
        self._loaded.set()
        batch.put(Ready(hello))
        return process

    def _forget(self, process: WorkerProcess) -> None:
        process.stop()
        with self._lock:
            self._processes.discard(process)


class WorkerFailure(Exception):
    """The worker died, hung past its timeout, broke the protocol, or could not load its model."""

    def __init__(self, message: str, kind: str = "", starting: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        """The ``protocol`` failure kind the worker reported, if it said one."""
        self.starting = starting
        """True when the worker never got ready."""


class WorkerProcess:
    """One ``python -m audiobook.worker --serve`` process and the thread that reads its lines."""

    def __init__(self, config: WorkerConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.busy = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "audiobook.worker", "--serve", *self.config.argv()]

    def start(self, timeout: float = HELLO_TIMEOUT_S) -> Hello:
        """Start the process and wait for its hello; ``WorkerFailure`` (with the error's kind) if not ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("starting worker: %s", " ".join(self.command()))
        with open(self.log_path, "ab") as stderr:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_worker_env(),
                start_new_session=True,
            )
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        try:
            hello = self._read(Hello, timeout)
        except WorkerFailure as e:
            raise WorkerFailure(f"worker could not start: {e}", starting=True) from None
        if not hello.ready:
            self.stop()
            raise WorkerFailure(
                f"worker could not load the model: {hello.error}", hello.error_kind or MODEL, starting=True
            )
        return hello

    def request(self, request: Request, timeout: float) -> Answer:
        """Send one request and wait for its answer; ``WorkerFailure`` if the worker dies or hangs."""
        if self._proc is None or self._proc.poll() is not None:
            raise WorkerFailure("worker is not running")
        self.busy = True
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write((encode(request) + "\n").encode())
            self._proc.stdin.flush()
            answer = self._read(Answer, timeout)
        except OSError as e:
            raise WorkerFailure(f"worker stopped accepting requests ({e})") from e
        finally:
            self.busy = False
        if answer.id != request.id:
            self.stop()
            raise WorkerFailure(f"worker answered {answer.id!r} to request {request.id!r}")
        return answer

    def _read(self, kind: type[Hello] | type[Answer], timeout: float) -> Hello | Answer:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise WorkerFailure(f"worker gave no answer within {timeout:.0f} s; it was stopped") from None
        if line is None:
            code = self._proc.wait() if self._proc else None
            raise WorkerFailure(f"worker exited (status {code}); see {self.log_path}")
        try:
            return decode(kind, line)
        except ProtocolError as e:
            self.stop()
            raise WorkerFailure(f"worker broke the protocol: {e}") from None

    def stop(self, grace_s: float = 5.0) -> None:
        """End the worker: close its stdin (a clean exit), then kill it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pump(stream: BinaryIO, lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        if line.strip():
            lines.put(line)
    lines.put(None)


def _worker_env() -> dict[str, str]:
    """Workers import this very package, even when it runs from a source checkout."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["AUDIOBOOK_PARENT_PID"] = str(os.getpid())  # the worker ends itself when this process dies
    return env
