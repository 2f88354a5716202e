"""Timed text on the bundled model: what it costs, and how close our times are to an offline recognizer's.

    python benchmarks/bench_timing.py            # both, one JSON line each
    python benchmarks/bench_timing.py --rounds 5

Cost: the same text synthesized plainly (``Engine.synthesize``) and with timings (``synthesize_timed``), in
alternating rounds in one process, as a ratio of the medians. Accuracy: the intelligibility test's paragraphs
and the example book's, each spoken and then heard by pocketsphinx, freely and as forced alignment of the known
text; start offsets (ours minus the recognizer's) of matched words and of each sentence's first word.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `make bench` runs this file as a script, from a checkout that need not be installed; the recognizer helpers
# are the tests' own.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from recognizer import offsets, recognized_words, summary  # noqa: E402
from test_intelligibility import PARAGRAPHS, normalize  # noqa: E402

from audiobook.engine import Engine, bundled  # noqa: E402
from audiobook.engine.onnx_backend import OnnxBackend  # noqa: E402
from audiobook.engine.timed import synthesize_timed  # noqa: E402
from audiobook.engine.voices import VoiceSpec  # noqa: E402

VOICE = VoiceSpec.parse(bundled.DEFAULT_VOICE)


def example_paragraphs() -> list[str]:
    text = (ROOT / "examples" / "the-keeper-of-small-lights.md").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip() and not p.startswith("#")]


def cost(engine: Engine, text: str, rounds: int) -> dict:
    plain, timed = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        engine.synthesize(text, VOICE)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        synthesize_timed(engine, text, VOICE)
        timed.append(time.perf_counter() - started)
    return {
        "bench": "timing_cost",
        "chars": len(text),
        "rounds": rounds,
        "plain_s": round(statistics.median(plain), 3),
        "timed_s": round(statistics.median(timed), 3),
        "timed_over_plain": round(statistics.median(timed) / statistics.median(plain), 3),
    }


def accuracy(engine: Engine, paragraphs: list[str]) -> list[dict]:
    import pocketsphinx

    decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
    spoken = [(p, *synthesize_timed(engine, p, VOICE)) for p in paragraphs]
    lines = []
    for mode in ("free", "aligned"):
        words, sentences = [], []
        for paragraph, synthesis, timings in spoken:
            text = " ".join(normalize(paragraph)) if mode == "aligned" else None
            found = offsets(timings, recognized_words(decoder, synthesis.audio, text))
            words += found.words
            sentences += found.sentences
        lines.append(
            {
                "bench": "timing_accuracy",
                "recognizer": f"pocketsphinx {mode}",
                "paragraphs": len(paragraphs),
                "word_starts": summary(words),
                "sentence_starts": summary(sentences),
            }
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    engine = Engine(OnnxBackend.load("bundled", "cpu", args.threads))
    paragraphs = PARAGRAPHS + example_paragraphs()
    print(json.dumps(cost(engine, "\n\n".join(PARAGRAPHS[:2]), args.rounds)))  # noqa: T201
    for line in accuracy(engine, paragraphs):
        print(json.dumps(line))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
