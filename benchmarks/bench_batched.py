"""The CPU paths side by side on the same real prose: which one should a CPU machine use?

    python benchmarks/bench_batched.py                 # >= 8,000 characters of "A Scandal in Bohemia"
    python benchmarks/bench_batched.py --chars 800     # a quick look
    python benchmarks/bench_batched.py --only onnx-int8,kokoro-onnx

Every path speaks the same voice (``jf_gongitsune``) with the same weights: the bundled int8 Kokoro-82M v1.0
graph, the float32 graph dequantized from it, and the torch KModel converted from it
(``audiobook.engine.convert``). The text is read from the corpus book in place, G2P'd once, and split into
pieces exactly as the engine splits a chunk; the paths then differ only in how the pieces reach the model:

* ``torch-batch1``: ``TorchBackend.infer`` per piece, kokoro's own forward (the reference);
* ``torch-batched``: ``BatchRunner`` over each paragraph's pieces, longest first, cut by ``--budget``;
* ``onnx-int8`` / ``onnx-float``: one ONNX Runtime call per piece on the int8 graph / the float32 graph;
* ``kokoro-onnx``: the kokoro-onnx library (the ``bench`` extra) on the int8 graph, text in, its own G2P and
  pauses, one ``create`` per paragraph: what a user of that library gets.

One run, one process, one thread each (``--threads``): on a CPU the pool runs one such worker per core, so
per-thread throughput is what decides. Prints one JSON line per path, then the ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiobook.engine import bundled, convert  # noqa: E402
from audiobook.engine.batched import BatchRunner  # noqa: E402
from audiobook.engine.core import piece_seed, split_paragraphs, split_phonemes  # noqa: E402
from audiobook.engine.g2p import phonemize  # noqa: E402
from audiobook.engine.voices import style_for  # noqa: E402
from audiobook.readers import read_book  # noqa: E402

log = logging.getLogger("benchmarks.bench_batched")

BOOK = ROOT.parent / "shared" / "corpus" / "sherlock-holmes-se.epub"
CHAPTER = "A Scandal in Bohemia"
VOICE = bundled.DEFAULT_VOICE
SAMPLE_RATE = 24000
PATHS = ("torch-batch1", "torch-batched", "onnx-int8", "onnx-float", "kokoro-onnx")


def prose(book: Path, chapter_title: str, chars: int) -> list[str]:
    """Whole paragraphs from the start of a chapter, at least ``chars`` characters in all."""
    found = [c for c in read_book(book).chapters if chapter_title.lower() in c.title.lower() and not c.skipped]
    if not found:
        raise SystemExit(f"no chapter titled {chapter_title!r} in {book}")
    paragraphs: list[str] = []
    for chapter in found:
        for paragraph in chapter.paragraphs:
            paragraphs.append(paragraph)
            if sum(len(p) for p in paragraphs) >= chars:
                return paragraphs
    return paragraphs


def pieces_of(paragraphs: list[str]) -> list[list[str]]:
    """Each paragraph's phoneme pieces, as ``Engine.synthesize`` cuts them."""
    return [split_phonemes(phonemize(p, "a")) for p in split_paragraphs("\n\n".join(paragraphs))]


def run_pieces(name: str, paragraphs_pieces: list[list[str]], synthesize) -> tuple[float, float, float]:  # noqa: ANN001
    """Wall seconds, CPU seconds and audio seconds of ``synthesize(pieces, first_index)`` per paragraph."""
    wall = cpu = audio = 0.0
    index = 0
    for pieces in paragraphs_pieces:
        started, cpu_started = time.perf_counter(), time.process_time()
        samples = synthesize(pieces, index)
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        audio += samples / SAMPLE_RATE
        index += len(pieces)
    log.info("%s: %.1f s for %.1f s of audio", name, wall, audio)
    return wall, cpu, audio


def torch_paths(paragraphs_pieces: list[list[str]], budget: int) -> dict[str, Callable[[list[str], int], int]]:
    from audiobook.engine.torch_backend import TorchBackend

    backend = TorchBackend.load(str(convert.model_dir()), "cpu")
    pack = backend.voice_pack(VOICE)

    def batch1(pieces: list[str], first: int) -> int:
        return sum(
            len(backend.infer(p, style_for(pack, len(p)), 1.0, piece_seed(0, first + i))) for i, p in enumerate(pieces)
        )

    runner = BatchRunner(backend.model, budget=budget)

    def batched(pieces: list[str], first: int) -> int:
        rows = runner.synthesize(
            pieces,
            [style_for(pack, len(p)) for p in pieces],
            [1.0] * len(pieces),
            [piece_seed(0, first + i) for i in range(len(pieces))],
        )
        return sum(len(row.audio) for row in rows)

    return {"torch-batch1": batch1, "torch-batched": batched}


def onnx_path(graph: Path, threads: int):  # noqa: ANN201
    from audiobook.engine.onnx_backend import OnnxBackend, create_session

    session, device = create_session(graph, "cpu", threads), "cpu"
    backend = OnnxBackend(session, graph.name, device, bundled.vocab(), bundled.voices())
    pack = backend.voice_pack(VOICE)

    def synthesize(pieces: list[str], first: int) -> int:
        return sum(len(backend.infer(p, style_for(pack, len(p)), 1.0, 0)) for p in pieces)

    return synthesize


def kokoro_onnx_run(paragraphs: list[str], threads: int, scratch: Path) -> tuple[float, float, float]:
    import onnxruntime as ort
    from kokoro_onnx import Kokoro

    voices = scratch / "voices.npz"
    np.savez(voices, **bundled.voices())
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(bundled.model_path()), options, providers=["CPUExecutionProvider"])
    kokoro = Kokoro.from_session(session, str(voices), vocab_config={"vocab": bundled.vocab()})
    wall = cpu = audio = 0.0
    for paragraph in paragraphs:
        started, cpu_started = time.perf_counter(), time.process_time()
        samples, rate = kokoro.create(paragraph, VOICE, 1.0, "en-us")
        wall += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        audio += len(samples) / rate
    return wall, cpu, audio


def record(name: str, chars: int, wall: float, cpu: float, audio: float, **extra: object) -> dict:
    row = {
        "path": name,
        "chars": chars,
        "audio_s": round(audio, 1),
        "synth_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "chars_per_s": round(chars / wall, 2),
        "rtf": round(wall / audio, 3),
        # CPU seconds of this process: other load on the machine barely moves it
        "chars_per_cpu_s": round(chars / cpu, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        **extra,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=8000, help="at least this many characters (default 8000)")
    parser.add_argument("--budget", type=int, default=4096, help="torch-batched: padded tokens per batch")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per path (default 1)")
    parser.add_argument("--only", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]

    import torch

    torch.set_num_threads(args.threads)
    paragraphs = prose(BOOK, CHAPTER, args.chars)
    chars = sum(len(p) for p in paragraphs)
    started = time.perf_counter()
    paragraphs_pieces = pieces_of(paragraphs)
    g2p_s = time.perf_counter() - started
    pieces = [p for ps in paragraphs_pieces for p in ps]
    print(
        json.dumps(
            {
                "text": f"{BOOK.name}: {CHAPTER}",
                "chars": chars,
                "paragraphs": len(paragraphs),
                "pieces": len(pieces),
                "phonemes": sum(len(p) for p in pieces),
                "g2p_s": round(g2p_s, 1),
                "threads": args.threads,
                "cpus": os.cpu_count(),
            }
        ),
        flush=True,
    )

    runs: dict[str, dict] = {}
    synthesizers = {}
    if {"torch-batch1", "torch-batched"} & set(wanted):
        synthesizers.update(torch_paths(paragraphs_pieces, args.budget))
    if "onnx-int8" in wanted:
        synthesizers["onnx-int8"] = onnx_path(bundled.model_path(), args.threads)
    if "onnx-float" in wanted:
        synthesizers["onnx-float"] = onnx_path(convert.float_onnx_path(), args.threads)
    for name in wanted:
        if name in synthesizers:
            extra = {"budget": args.budget} if name == "torch-batched" else {}
            runs[name] = record(name, chars, *run_pieces(name, paragraphs_pieces, synthesizers[name]), **extra)
    if "kokoro-onnx" in wanted:
        try:
            with tempfile.TemporaryDirectory() as scratch:
                runs["kokoro-onnx"] = record(
                    "kokoro-onnx",
                    chars,
                    *kokoro_onnx_run(paragraphs, args.threads, Path(scratch)),
                    note="text in: its own G2P, included",
                )
        except ImportError:
            log.warning("kokoro-onnx is not installed (pip install 'audiobook[bench]'); skipped")

    def ratio(a: str, b: str) -> None:
        if a in runs and b in runs:
            print(
                json.dumps(
                    {
                        "ratio": f"{a} / {b}",
                        "chars_per_s": round(runs[a]["chars_per_s"] / runs[b]["chars_per_s"], 2),
                        "chars_per_cpu_s": round(runs[a]["chars_per_cpu_s"] / runs[b]["chars_per_cpu_s"], 2),
                    }
                ),
                flush=True,
            )

    ratio("torch-batched", "torch-batch1")
    ratio("onnx-float", "onnx-int8")
    ratio("torch-batched", "onnx-int8")
    ratio("torch-batch1", "onnx-int8")
    ratio("onnx-int8", "kokoro-onnx")


if __name__ == "__main__":
    main()
