"""Throughput and latency of each backend and model on one fixed text, one JSON line per configuration.

    python -m benchmarks.bench_backends                        # onnx bundled + torch, on auto devices
    python -m benchmarks.bench_backends --backend onnx --device cpu,cuda --threads 1,2
    python -m benchmarks.bench_backends --backend torch --model hexgrad/Kokoro-82M --device cuda

Each configuration loads its model once (``load_s``), synthesizes the text chunk by chunk through the shared
``Engine`` (G2P included, as the worker does), and reports chars/s, the real-time factor (compute seconds per
audio second), the first chunk's latency (the first call pays for warm-up: cuDNN, thread pools) and
P50/P95/P99 over the later chunks. The torch backend uses ``hexgrad/Kokoro-82M`` when it can be had, else a
random-weight model with the real architecture (``"model": "random-weights"``): its speed is Kokoro's, its
audio is noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# `make bench` runs this file as a script, from a checkout that need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiobook.devices import resolve_device  # noqa: E402
from audiobook.engine import Engine  # noqa: E402
from audiobook.engine.loading import (  # noqa: E402
    DEFAULT_REPO,
    choose_model,
    default_repo_available,
    default_voice,
    load_backend,
)
from audiobook.engine.voices import VoiceSpec  # noqa: E402

log = logging.getLogger("benchmarks.bench_backends")

SAMPLE_RATE = 24000

TEXT = (
    "The old house stood at the end of a quiet street. Every morning the baker opened his shop, and the "
    "smell of fresh bread filled the air. Children ran past on their way to school, and the postman waved "
    "to everyone he met. "
    "She walked to the station in the rain. The train was late, so she bought a cup of coffee and read the "
    "newspaper while she waited. When it finally arrived, every seat was taken, and she stood by the door "
    "watching the grey fields go by. "
    "My brother likes to build small boats out of wood. Last summer he sailed one across the lake and came "
    "home with a big smile on his face. He says the next one will have a real sail and a little cabin. "
    "The children played in the garden until it was dark. Then their mother called them inside for dinner, "
    "and they told her about their day: the frog by the pond, the broken kite, and the dog that followed "
    "them home. "
    "We found an old map in the attic. It showed a path through the forest to a river, and we decided to "
    "follow it the next weekend. Nobody knew who had drawn it, or why the river had a name we had never "
    "heard. "
    "The doctor said that he should rest for a few days. He stayed in bed, drank a lot of water, and "
    "listened to music on the radio. By Thursday he felt well enough to sit in the garden and read."
)
"""About 1,500 characters of plain narrative English, cut into chunks at sentence ends."""


def chunks_of(text: str, max_chars: int) -> list[str]:
    """Sentences packed greedily into chunks of at most ``max_chars`` characters."""
    out: list[str] = []
    for sentence in text.replace(". ", ".\n").split("\n"):
        if out and len(out[-1]) + 1 + len(sentence) <= max_chars:
            out[-1] += " " + sentence
        else:
            out.append(sentence)
    return out


def run_config(
    backend: str,
    model: str | None,
    device: str,
    threads: int | None,
    chunks: list[str],
    voice: str | None,
    label: str | None = None,
) -> dict:
    """Load once, synthesize every chunk, and summarise the timings."""
    started = time.perf_counter()
    source = choose_model(backend, model)
    loaded = load_backend(source, resolve_device(device, source.backend), threads)
    load_s = time.perf_counter() - started
    engine = Engine(loaded)
    voice = voice or default_voice(source, "a")
    spec = VoiceSpec.parse(voice)
    latencies: list[float] = []
    audio_s = 0.0
    cpu_started = time.process_time()
    for chunk in chunks:
        t0 = time.perf_counter()
        result = engine.synthesize(chunk, spec, lang="a")
        latencies.append(time.perf_counter() - t0)
        audio_s += len(result.audio) / SAMPLE_RATE
    cpu_s = time.process_time() - cpu_started
    total = sum(latencies)
    later = np.array(latencies[1:] or latencies)
    chars = sum(len(c) for c in chunks)
    return {
        "backend": loaded.name,
        "model": label or loaded.model_id,
        "device": loaded.device,
        "threads": threads,
        "voice": voice,
        "chunks": len(chunks),
        "chars": chars,
        "audio_s": round(audio_s, 2),
        "load_s": round(load_s, 2),
        "synth_s": round(total, 2),
        "chars_per_s": round(chars / total, 1),
        # CPU seconds of this process (all its threads): a load on the machine from others barely moves it
        "cpu_s": round(cpu_s, 2),
        "chars_per_cpu_s": round(chars / cpu_s, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "rtf": round(total / audio_s, 3),
        "first_chunk_s": round(latencies[0], 3),
        "p50_s": round(float(np.percentile(later, 50)), 3),
        "p95_s": round(float(np.percentile(later, 95)), 3),
        "p99_s": round(float(np.percentile(later, 99)), 3),
    }


def torch_model(model: str | None, scratch: Path) -> tuple[str, str | None]:
    """The torch model to bench and its label: the given one, the hub's, or a random-weight stand-in."""
    if model:
        return model, None
    available, why = default_repo_available()
    if available:
        return DEFAULT_REPO, None
    from tests.support.random_model import build_random_model

    log.warning("%s; benchmarking torch with a random-weight model of the same architecture", why)
    return str(build_random_model(scratch / "random-kokoro")), "random-weights"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="onnx,torch", help="comma list of onnx, torch [onnx,torch]")
    parser.add_argument("--model", help="model for every backend (default: bundled for onnx, the hub's for torch)")
    parser.add_argument("--device", default="auto", help="comma list of auto, cpu, cuda, rocm [auto]")
    parser.add_argument("--threads", default="", help="comma list of CPU thread counts (onnx) [backend default]")
    parser.add_argument("--chunk-chars", type=int, default=300, help="characters per chunk [300]")
    parser.add_argument("--repeat", type=int, default=2, help="times the text is repeated [2]")
    parser.add_argument("--voice", help="voice for every configuration [the model's default for English]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    chunks = chunks_of(" ".join([TEXT] * args.repeat), args.chunk_chars)
    threads = [int(t) for t in args.threads.split(",") if t] or [None]
    with tempfile.TemporaryDirectory() as scratch:
        for backend in args.backend.split(","):
            model, label = (args.model, None) if backend == "onnx" else torch_model(args.model, Path(scratch))
            for device in args.device.split(","):
                for n in threads if backend == "onnx" else [None]:
                    if backend == "torch" and n:
                        os.environ["OMP_NUM_THREADS"] = str(n)
                    result = run_config(backend, model, device, n, chunks, args.voice, label)
                    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
