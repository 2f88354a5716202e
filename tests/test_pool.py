"""The worker pool driven with real worker processes and the random-weight model: crashes, hangs, bad answers,
job-level failures, priorities, and the layout per device."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile

from audiobook import pool
from audiobook.engine.voices import VoiceSpec
from audiobook.pool import Done, Failed, Layout, LocalPool, Ready, Stopped, Timeouts
from audiobook.protocol import MODEL, Request, WorkerConfig

VOICE = VoiceSpec.parse("af_test")


def requests(tmp_path: Path, *texts: str) -> list[Request]:
    return [Request(f"r{n}", text, str(tmp_path / f"r{n}.wav"), VOICE, seed=n) for n, text in enumerate(texts)]


def one_worker(test_model_dir: Path, tmp_path: Path, timeouts: Timeouts | None = None) -> LocalPool:
    config = WorkerConfig("torch", str(test_model_dir), device="cpu", threads=1)
    return LocalPool(config, tmp_path / "logs", Layout(workers=1, threads=1), timeouts)


def run(local: LocalPool, batch: list[Request]) -> list[pool.Event]:
    events = []
    try:
        events = list(local.submit(batch).events())
    finally:
        local.close()
    return events


def when_busy(local: LocalPool, act) -> threading.Thread:  # noqa: ANN001
    """Call ``act(pid)`` once, the moment the first worker process is working on a request."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = [p for p in list(local._processes) if p.busy and p.pid]
            if busy:
                act(busy[0].pid)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_every_request_is_done_in_its_own_wav(test_model_dir: Path, tmp_path: Path) -> None:
    events = run(one_worker(test_model_dir, tmp_path), requests(tmp_path, "One.", "Two words.", "Three words here."))
    assert isinstance(events[0], Ready) and events[0].hello.ready and events[0].hello.device == "cpu"
    done = [e for e in events if isinstance(e, Done)]
    assert [e.request.id for e in done] == ["r0", "r1", "r2"] and all(e.attempts == 1 for e in done)
    for event in done:
        assert soundfile.info(event.request.out_wav).frames == event.answer.frames > 0


def test_a_worker_killed_mid_chunk_is_replaced_and_the_chunk_retried(test_model_dir: Path, tmp_path: Path) -> None:
    local = one_worker(test_model_dir, tmp_path)
    killed: list[int] = []
    when_busy(local, lambda pid: (os.kill(pid, signal.SIGKILL), killed.append(pid)))
    events = run(local, requests(tmp_path, "A chunk that loses its worker halfway."))
    (done,) = [e for e in events if isinstance(e, Done)]
    assert killed and done.attempts == 2
    assert len([e for e in events if isinstance(e, Ready)]) == 2  # a fresh worker loaded the model again
    assert local.restarts == 1  # what the service's metrics report


def test_a_hung_worker_is_timed_out_and_replaced(test_model_dir: Path, tmp_path: Path) -> None:
    """SIGSTOP freezes the worker for real; the pool must give up on it and start another."""
    local = one_worker(test_model_dir, tmp_path, Timeouts(first_s=20.0, per_char_s=0.0))
    frozen: list[int] = []
    when_busy(local, lambda pid: (os.kill(pid, signal.SIGSTOP), frozen.append(pid)))
    started = time.monotonic()
    events = run(local, requests(tmp_path, "Frozen once."))
    (done,) = [e for e in events if isinstance(e, Done)]
    assert done.attempts == 2 and time.monotonic() - started >= 20.0
    with pytest.raises(ProcessLookupError):
        os.kill(frozen[0], 0)  # the frozen worker was killed, not left behind


def test_a_bad_answer_costs_one_attempt(
    test_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that breaks the protocol is replaced. A real worker cannot be made to do that (its stdout is the
    protocol alone), so the first process started is a stand-in that says hello, then answers garbage; every
    later one is the real worker."""
    marker = tmp_path / "first-started"
    stand_in = (
        "import os, sys\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        '    print(\'{"ready": true, "device": "cpu", "backend": "torch"}\', flush=True)\n'
        "    sys.stdin.readline()\n"
        "    print('this is not an answer', flush=True)\n"
        "    sys.stdin.readline()\n"
        "else:\n"
        "    os.execv(sys.executable, [sys.executable, '-m', 'audiobook.worker', *sys.argv[1:]])\n"
    )
    monkeypatch.setattr(
        pool.WorkerProcess, "command", lambda self: [sys.executable, "-c", stand_in, "--serve", *self.config.argv()]
    )
    events = run(one_worker(test_model_dir, tmp_path), requests(tmp_path, "Answered twice."))
    (done,) = [e for e in events if isinstance(e, Done)]
    assert done.attempts == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "audiobook.pool"]
    assert any("attempt 1/3 failed: worker broke the protocol: not JSON" in w for w in warnings), warnings


def test_a_request_that_always_fails_is_reported_after_three_attempts(test_model_dir: Path, tmp_path: Path) -> None:
    bad = Request("bad", "No such voice.", str(tmp_path / "bad.wav"), VoiceSpec.parse("af_nobody"))
    events = run(one_worker(test_model_dir, tmp_path), [bad, *requests(tmp_path, "Fine.")])
    (failed,) = [e for e in events if isinstance(e, Failed)]
    assert failed.request.id == "bad" and failed.attempts == pool.MAX_ATTEMPTS
    assert "voice 'af_nobody' not found" in failed.error
    assert [e.request.id for e in events if isinstance(e, Done)] == ["r0"]


def test_a_model_that_will_not_load_stops_the_batch_at_once(tmp_path: Path) -> None:
    config = WorkerConfig("torch", str(tmp_path / "no-model"), device="cpu", threads=1)
    local = LocalPool(config, tmp_path / "logs", Layout(workers=2, threads=1))
    events = run(local, requests(tmp_path, "One.", "Two.", "Three."))
    stops = [e for e in events if isinstance(e, Stopped)]
    assert stops and stops[0].kind == MODEL and "could not load the model" in stops[0].error
    assert not [e for e in events if isinstance(e, Done | Failed)]


def test_a_lower_priority_number_is_served_first_by_warm_workers(test_model_dir: Path, tmp_path: Path) -> None:
    """A service puts a listener's sentence ahead of a book's chunks; the worker stays loaded across batches."""
    local = one_worker(test_model_dir, tmp_path)
    try:
        book = local.submit(requests(tmp_path, *[f"Book chunk number {n}." for n in range(4)]))
        events = book.events()
        first = next(e for e in events if isinstance(e, Done))
        urgent = local.submit([Request("now", "Right now.", str(tmp_path / "now.wav"), VOICE)], priority=-1)
        (done,) = [e for e in urgent.events() if isinstance(e, Done)]
        rest = [e for e in events if isinstance(e, Done)]
    finally:
        local.close()
    assert first.request.id == "r0" and done.request.id == "now"
    assert [e.request.id for e in rest] == ["r1", "r2", "r3"]
    assert len([e for e in book.events()]) == 0
    finished = {p.stem: p.stat().st_mtime_ns for p in tmp_path.glob("*.wav")}
    # at most one book chunk (the one already in flight) finished between r0 and the urgent request
    assert finished["now"] < finished["r2"] < finished["r3"]
    assert len(local._processes) == 0


def test_a_cancelled_batch_reports_its_chunk_in_flight_and_ends(test_model_dir: Path, tmp_path: Path) -> None:
    """How a service pauses a book: the request in flight finishes and is reported, no other one starts, and the
    reader is not left waiting for requests that will never run."""
    local = one_worker(test_model_dir, tmp_path)
    try:
        batch = local.submit(requests(tmp_path, *[f"Paused book chunk {n}." for n in range(4)]))
        cancelled = threading.Event()
        when_busy(local, lambda pid: (batch.cancel(), cancelled.set()))
        events = list(batch.events())
    finally:
        local.close()
    done = [e.request.id for e in events if isinstance(e, Done)]
    assert cancelled.is_set() and done and len(done) < 4
    assert sorted(p.stem for p in tmp_path.glob("r*.wav")) == done  # nothing started after the cancel


@pytest.mark.parametrize(
    ("device", "cores", "workers", "threads", "expected"),
    [
        ("cpu", 8, None, None, Layout(4, 2)),
        ("cpu", 8, 3, None, Layout(3, 2)),
        ("cpu", 8, 2, 1, Layout(2, 1)),
        ("cpu", 2, None, None, Layout(2, 1)),
        ("cpu", 1, None, None, Layout(1, 1)),
        ("cuda", 16, None, None, Layout(pool.GPU_WORKERS, 4)),
        ("rocm", 16, None, None, Layout(pool.GPU_WORKERS, 4)),
        ("mps", 8, None, None, Layout(1, 8)),
    ],
)
def test_layout_per_device(monkeypatch: pytest.MonkeyPatch, device, cores, workers, threads, expected) -> None:  # noqa: ANN001
    monkeypatch.setattr(pool, "cores", lambda: cores)
    assert pool.layout(device, workers, threads) == expected


def test_the_last_chunks_go_out_longest_first() -> None:
    """So that the workers finish together; everything before the tail keeps the book's order."""
    texts = ["a" * 10, "b" * 50, "c" * 20, "d" * 40, "e" * 30, "f" * 45, "g" * 5]
    reqs = [Request(f"r{i}", text, f"r{i}.wav", VOICE) for i, text in enumerate(texts)]
    order = [r.id for r in pool.dispatch_order(reqs, workers=2)]
    assert order == ["r0", "r1", "r2", "r5", "r3", "r4", "r6"]  # the last four (2 x 2 workers) by length
    assert [r.id for r in pool.dispatch_order(reqs, workers=1)] == [r.id for r in reqs]
    assert [r.id for r in pool.dispatch_order(reqs[:3], workers=4)] == ["r1", "r2", "r0"]
