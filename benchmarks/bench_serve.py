"""Time to first audio byte of `POST /v1/audio/speech` with warm workers: P50 and P95, one JSON line per scenario.

    python benchmarks/bench_serve.py                  # bundled ONNX model, 20 one-sentence requests
    python benchmarks/bench_serve.py --requests 50 --busy

It starts the real `audiobook serve` on a free loopback port (a temporary library), waits until its workers are
warm, then sends one-sentence requests one after another, streaming the answer, and records when the first byte
of audio arrives and when the last does. Side by side in the same run: the time to the whole sentence, which is
what a client would wait without streaming (``first_byte_share`` is the ratio). ``--busy`` repeats the
measurement while a book keeps every worker busy: a speech request then waits for one book chunk in flight
(the book is planned with 400-character chunks so that this stays short).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "The keeper lit the lamp at dusk and watched the boats come home.",
    "She walked to the station in the rain, and the train was late again.",
    "My brother likes to build small boats out of wood.",
    "The children played in the garden until it was dark.",
    "We found an old map in the attic, folded inside a book.",
    "A fishing boat rounded the point, heavy with the catch.",
    "The wind rose after midnight and rain beat on the glass.",
    "Nobody knew who had drawn the map, or why.",
    "By morning the storm had passed, and the harbour was calm.",
    "He promised to write every week, and he kept his word.",
]
BOOK = "# A Busy Book\n\n## One\n\n" + " ".join(SENTENCES * 12) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(library: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [
        *(sys.executable, "-m", "audiobook.cli", "serve", "--library", str(library), "--port", str(port)),
        *("--backend", args.backend, "--model", args.model, "--device", "cpu", "--max-chunk-chars", "400"),
    ]
    if args.workers:
        command += ["--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, env=env, stderr=open(library / "server.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server stopped: {(library / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/status", timeout=2).json().get("ready"):
                return proc
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit("the server's workers never got warm")


def speak(client: httpx.Client, url: str, text: str, response_format: str) -> dict[str, float]:
    """One request; seconds to the first byte of audio and to the last, and the audio's length."""
    header = 44 if response_format == "wav" else 0
    body = {"model": "kokoro", "input": text, "response_format": response_format}
    started = time.perf_counter()
    first = None
    size = 0
    with client.stream("POST", f"{url}/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        for block in response.iter_bytes():
            size += len(block)
            if first is None and size > header:
                first = time.perf_counter() - started
    total = time.perf_counter() - started
    return {"first_byte_s": first or total, "total_s": total, "audio_s": (size - header) / 2 / 24000}


def measure(url: str, scenario: str, requests: int, response_format: str) -> dict:
    with httpx.Client(timeout=600) as client:
        speak(client, url, SENTENCES[0], response_format)  # the connection and the server's first request path
        runs = [speak(client, url, SENTENCES[n % len(SENTENCES)], response_format) for n in range(requests)]
    first = np.array([r["first_byte_s"] for r in runs])
    total = np.array([r["total_s"] for r in runs])
    return {
        "bench": "serve_first_byte",
        "scenario": scenario,
        "format": response_format,
        "requests": requests,
        "first_byte_p50_s": round(float(np.percentile(first, 50)), 3),
        "first_byte_p95_s": round(float(np.percentile(first, 95)), 3),
        "whole_sentence_p50_s": round(float(np.percentile(total, 50)), 3),
        "whole_sentence_p95_s": round(float(np.percentile(total, 95)), 3),
        "first_byte_share": round(float(np.median(first / total)), 3),
        "audio_p50_s": round(float(np.median([r["audio_s"] for r in runs])), 2),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--workers", type=int, default=None, help="[one per core, up to 4]")
    parser.add_argument("--busy", action="store_true", help="also measure while a book keeps the workers busy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        library = Path(tmp)
        port = free_port()
        proc = start(library, port, args)
        url = f"http://127.0.0.1:{port}"
        try:
            for response_format in ("pcm", "wav"):
                print(json.dumps(measure(url, "idle", args.requests, response_format)), flush=True)
            if args.busy:
                (library / "busy.md").write_text(BOOK, encoding="utf-8")
                httpx.post(f"{url}/api/books", json={"path": "busy.md", "format": "wav"}, timeout=120)
                time.sleep(5)  # every worker is on a chunk now
                print(json.dumps(measure(url, "busy", max(5, args.requests // 4), "pcm")), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
