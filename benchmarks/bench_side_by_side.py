"""Side by side, one run: upstream kokoro's KPipeline loop, the kokoro-onnx library, and ``audiobook build``.

    make bench-side-by-side                          # or:
    python benchmarks/bench_side_by_side.py          # >= 8,000 characters of "A Scandal in Bohemia"
    python benchmarks/bench_side_by_side.py --chars 1000 --only audiobook

The same prose (read in place from the corpus book), the same voice (``jf_gongitsune``) and the same weights
where the path allows: the bundled Kokoro-82M v1.0 weights, which need no hub.

* ``kpipeline``: ``kokoro.KPipeline`` (G2P, chunking and ``KModel``: upstream's own loop) on the bundled weights
  converted for torch, torch's default threads. Its English G2P is misaki's on the spaCy model we ship (misaki's
  own would download one).
* ``kokoro-onnx``: ``kokoro_onnx.Kokoro`` with its defaults (its session, its espeak G2P) on the bundled int8
  graph and voices; one ``create`` call for the whole text.
* ``audiobook``: ``audiobook build`` in a subprocess with its defaults (workers, threads, ``--backend auto``,
  an M4B with loudness normalisation), timed from start to the finished file: G2P, model loads and the final
  encode included. ``auto`` takes what this machine's calibration measured (``audiobook.calibrate``); the
  calibration runs first, once, outside the timing, and is reported.

Prints one JSON line per path (chars/s and the real-time factor, wall seconds per second of audio), then the
ratios against ``audiobook``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiobook.engine import bundled  # noqa: E402
from benchmarks.bench_batched import BOOK, CHAPTER, prose  # noqa: E402

log = logging.getLogger("benchmarks.bench_side_by_side")

VOICE = bundled.DEFAULT_VOICE
SAMPLE_RATE = 24000
PATHS = ("kpipeline", "kokoro-onnx", "audiobook")


def run_kpipeline(text: str) -> tuple[float, float]:
    """Wall seconds and audio seconds of upstream kokoro's loop over the text."""
    import torch
    from kokoro import KModel, KPipeline

    from audiobook.engine import convert
    from audiobook.engine.g2p import english_g2p

    model_dir = convert.model_dir()
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=config, model=str(model_dir / convert.WEIGHTS_NAME)).eval()
    # Built for Spanish (espeak, no download), then given misaki's English G2P: KPipeline's English branch would
    # ``spacy.cli.download`` a model we already ship under another package name.
    pipeline = KPipeline(lang_code="e", repo_id="hexgrad/Kokoro-82M", model=model)
    pipeline.lang_code, pipeline.g2p = "a", english_g2p(british=False)
    audio = 0.0
    with torch.inference_mode():
        for result in pipeline(text, voice=str(model_dir / "voices" / f"{VOICE}.pt")):
            audio += len(result.audio) / SAMPLE_RATE
    return time.perf_counter() - started, audio


def run_kokoro_onnx(text: str, scratch: Path) -> tuple[float, float]:
    from kokoro_onnx import Kokoro

    voices = scratch / "voices.npz"
    np.savez(voices, **bundled.voices())
    started = time.perf_counter()
    kokoro = Kokoro(str(bundled.model_path()), str(voices), vocab_config={"vocab": bundled.vocab()})
    samples, rate = kokoro.create(text, VOICE, 1.0, "en-us")
    return time.perf_counter() - started, len(samples) / rate


def run_audiobook(paragraphs: list[str], scratch: Path) -> tuple[float, float, dict]:
    """``audiobook build`` of a one-chapter Markdown book with these paragraphs, in a fresh process."""
    book = scratch / "scandal.md"
    book.write_text(f"# {CHAPTER}\n\n" + "\n\n".join(paragraphs[1:]) + "\n", encoding="utf-8")
    out = scratch / "scandal.m4b"
    command = [sys.executable, "-m", "audiobook.cli", "--quiet", "build", str(book), "--job-dir", str(scratch / "job")]
    command += ["--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    wall = time.perf_counter() - started
    report = json.loads((scratch / "job" / "job.json").read_text(encoding="utf-8"))
    audio = sum(c.get("frames") or 0 for c in report["chunks"]) / SAMPLE_RATE
    runs = report.get("runs", [{}])
    last = runs[-1] if runs else {}
    return wall, audio, {"settings": report["settings"], "workers": last.get("workers"), "threads": last.get("threads")}


def calibrate_first() -> dict:
    """The one-time calibration ``audiobook build`` relies on, made now so it is not in the timing."""
    from audiobook import calibrate

    started = time.perf_counter()
    result = calibrate.fastest()
    return {"calibration": result.summary(), "calibration_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=8000, help="at least this many characters (default 8000)")
    parser.add_argument("--only", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]

    paragraphs = prose(BOOK, CHAPTER, args.chars)  # the first is the chapter's heading
    text = "\n\n".join(paragraphs)
    chars = len(text)
    print(
        json.dumps(
            {
                "text": f"{BOOK.name}: {CHAPTER}",
                "chars": chars,
                "cpus": os.cpu_count(),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        ),
        flush=True,
    )
    runs: dict[str, dict] = {}

    def record(name: str, wall: float, audio: float, **extra: object) -> None:
        row = {
            "path": name,
            "chars": chars,
            "wall_s": round(wall, 1),
            "audio_s": round(audio, 1),
            "chars_per_s": round(chars / wall, 2),
            "rtf": round(wall / audio, 3),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            **extra,
        }
        runs[name] = row
        print(json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        if "audiobook" in wanted:
            print(json.dumps(calibrate_first()), flush=True)
        if "kpipeline" in wanted:
            record("kpipeline", *run_kpipeline(text))
        if "kokoro-onnx" in wanted:
            try:
                record("kokoro-onnx", *run_kokoro_onnx(text, Path(scratch)))
            except ImportError:
                log.warning("kokoro-onnx is not installed (pip install 'audiobook[bench]'); skipped")
        if "audiobook" in wanted:
            wall, audio, extra = run_audiobook(paragraphs, Path(scratch))
            record("audiobook", wall, audio, **extra)
    if "audiobook" in runs:
        for name in runs:
            if name != "audiobook":
                ratio = runs["audiobook"]["chars_per_s"] / runs[name]["chars_per_s"]
                print(json.dumps({"ratio": f"audiobook / {name}", "chars_per_s": round(ratio, 2)}), flush=True)


if __name__ == "__main__":
    main()
