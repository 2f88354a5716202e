"""Starting, feeding, timing out and restarting worker processes.

Each worker is ``python -m audiobook.worker --serve``: it loads the model once, says hello with one JSON
line, then answers one JSON line per request. A worker that dies or hangs costs one chunk attempt, never the
job: the caller gets ``WorkerFailure`` and starts a fresh worker.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 600.0
"""Loading a model can mean a first download from the hub; a dead worker is seen at once anyway."""


class WorkerFailure(Exception):
    """The worker died, hung past its timeout, or broke the protocol."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to start a worker: the model flags every worker of a job shares."""

    backend: str
    model: str | None
    device: str
    threads: int | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "audiobook.worker", "--serve", "--backend", self.backend, "--device", self.device]
        if self.model:
            cmd += ["--model", self.model]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd


class Worker:
    """One worker process and the thread that reads its answers."""

    def __init__(self, spec: WorkerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self.hello: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> dict[str, Any]:
        """Start the process and wait for its hello line; returns it (device, backend, model, load_s)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.debug("starting worker: %s", " ".join(self.spec.command()))
        with open(self.log_path, "ab") as stderr:
            self._proc = subprocess.Popen(
                self.spec.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_worker_env(),
                start_new_session=True,
            )
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        hello = self._read(HELLO_TIMEOUT_S)
        if not hello.get("ready"):
            self.stop()
            raise WorkerFailure(f"worker could not load the model: {hello.get('error', hello)}")
        self.hello = hello
        return hello

    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer; ``WorkerFailure`` if the worker dies or hangs."""
        if self._proc is None or self._proc.poll() is not None:
            raise WorkerFailure("worker is not running")
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write((json.dumps(payload) + "\n").encode())
            self._proc.stdin.flush()
        except OSError as e:
            raise WorkerFailure(f"worker stopped accepting requests ({e})") from e
        answer = self._read(timeout)
        if answer.get("id") != payload.get("id"):
            raise WorkerFailure(f"worker answered {answer.get('id')!r} to request {payload.get('id')!r}")
        return answer

    def _read(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise WorkerFailure(f"worker gave no answer within {timeout:.0f} s; it was stopped") from None
        if line is None:
            code = self._proc.wait() if self._proc else None
            raise WorkerFailure(f"worker exited (status {code}); see {self.log_path}")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            self.stop()
            raise WorkerFailure(f"worker wrote a non-protocol line: {line[:200]!r}") from None
        if not isinstance(answer, dict):
            self.stop()
            raise WorkerFailure(f"worker wrote a non-object line: {line[:200]!r}")
        return answer

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
