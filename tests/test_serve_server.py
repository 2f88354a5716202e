"""The real `audiobook serve` in a subprocess on a loopback port, with real workers and the random-weight model:
live events, and a SIGKILL in the middle of a book followed by a restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from audiobook import job as jobs
from audiobook import runner
from audiobook.outputs import OutputChanges
from audiobook.settings import SettingsRequest

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOK = """# The Longer Book

## Chapter One

The first lamp was lit at dusk. It burned until the morning came.

{tide}

## Chapter Two

The boats came home one by one. Each captain waved at the light.

{wind}

## Chapter Three

Winter ended. The keeper slept at last.
""".format(tide="The tide turned twice that night. " * 8, wind="The wind rose and fell again. " * 6)
TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `audiobook serve` process; ``url`` once it answers."""

    def __init__(self, library: Path, model: Path, port: int, log: Path) -> None:
        args = [
            *("serve", "--library", str(library), "--port", str(port)),
            *("--backend", "torch", "--model", str(model), "--max-chunk-chars", "200", "--seed", "7"),
            *("--device", "cpu", "--workers", "1", "--threads", "1", "--format", "wav", "--no-loudnorm"),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "audiobook.cli", *args], env=env, stderr=err)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.url}/api/status", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        pytest.fail(f"the server did not answer: {log.read_text()}")

    def book(self, book_id: str) -> dict:
        return httpx.get(f"{self.url}/api/books/{book_id}", timeout=10).json()

    def wait_for(self, book_id: str, ready, what: str) -> dict:  # noqa: ANN001
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            book = self.book(book_id)
            if ready(book):
                return book
            time.sleep(0.1)
        pytest.fail(f"{book_id} never got {what}: {book}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def listen(url: str, messages: list[dict]) -> threading.Thread:
    """Collect the server's events in the background until the connection ends."""

    def read() -> None:
        try:
            with httpx.stream("GET", f"{url}/api/events", timeout=None) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        messages.append(json.loads(line[6:]))
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_sigkill_mid_book_then_restart_finishes_with_the_same_bytes(tmp_path: Path, test_model_dir: Path) -> None:
    """The server (and with it its workers) is killed with SIGKILL while a book is half made. Restarted on the
    same library, it carries on from the job's own job.json, and the book is byte for byte the one an
    uninterrupted `audiobook build` makes."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "longer.md").write_text(BOOK, encoding="utf-8")
    reference = runner.build(
        library / "longer.md",
        tmp_path / "reference-job",
        SettingsRequest(backend="torch", model=str(test_model_dir), max_chunk_chars=200, seed=7),
        None,
        OutputChanges(format="wav", loudnorm=False, out=tmp_path / "reference.wav"),
        runner.RunOptions(device="cpu", workers=1, threads=1, quiet=True),
    )
    assert reference.export is not None
    total = len(reference.job.chunks)
    assert total >= 6

    port = free_port()
    server = Server(library, test_model_dir, port, tmp_path / "server.log")
    messages: list[dict] = []
    listener = listen(server.url, messages)
    try:
        added = httpx.post(f"{server.url}/api/books", json={"path": "longer.md"}, timeout=60)
        assert added.status_code == 201, added.text
        before_kill = server.wait_for("longer", lambda b: b["chunks"]["done"] >= 2, "two chunks done")
        workers = children(server.proc.pid)
        assert workers, "the server's worker processes"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
    finally:
        server.stop()
    assert before_kill["chunks"]["done"] < total
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # no orphan keeps burning the CPU
    listener.join(timeout=30)
    chunk_events = [m for m in messages if m["type"] == "chunk" and m["book"] == "longer"]
    assert chunk_events and chunk_events[-1]["chunk"]["status"] == "done"
    assert chunk_events[-1]["progress"]["chunks"]["done"] >= 2 and "eta_s" in chunk_events[-1]["progress"]

    killed = jobs.load(library / "jobs" / "longer")
    assert 2 <= len(killed.done()) < total
    server = Server(library, test_model_dir, port, tmp_path / "server.log")
    try:
        book = server.wait_for("longer", lambda b: b["state"] == "done", "done after the restart")
        download = httpx.get(f"{server.url}{book['download']}", timeout=60)
    finally:
        server.stop()
    assert download.content == (tmp_path / "reference.wav").read_bytes()
    job = jobs.load(library / "jobs" / "longer")
    assert all(c.status == "done" for c in job.chunks) and len(job.runs) >= 1
    assert not [p for p in (library / "jobs" / "longer" / "wav").iterdir() if p.name.startswith(".")]
    assert json.loads((library / "queue.json").read_text())["books"][0]["state"] == "done"
