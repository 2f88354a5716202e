"""Pipeline benchmark: build a fixed sample end to end and print one JSON line.

The sample is the example story (examples/the-keeper-of-small-lights.md), each chapter read ``--repeat``
times, built with the random-weight test model (real kokoro architecture, so the real amount of compute)
by the real runner: chunking, worker IPC, WAV writes, ffmpeg assembly. It reports

- ``load_s``: the worker's model load;
- ``chars_per_s`` and ``rtf`` (synthesis seconds per second of audio) inside the synthesis calls;
- ``overhead_ratio``: end-to-end wall time / time spent inside synthesis calls, the model load included
  (``overhead_ratio_after_load`` leaves the one-off load out). Target: at most 1.05.

Usage: python benchmarks/bench_pipeline.py [--repeat N] [--workers N] [--format wav|m4b]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiobook import job as jobs  # noqa: E402
from audiobook import runner  # noqa: E402
from audiobook.outputs import OutputChanges  # noqa: E402
from audiobook.settings import SettingsRequest  # noqa: E402
from tests.support.random_model import build_random_model  # noqa: E402

STORY = ROOT / "examples" / "the-keeper-of-small-lights.md"


def sample_book(dest: Path, repeat: int) -> Path:
    """The story with each chapter's paragraphs repeated, as a Markdown book."""
    text = STORY.read_text(encoding="utf-8")
    head, *chapters = text.split("\n## ")
    body = [head.strip()]
    for chapter in chapters:
        heading, _, paragraphs = chapter.partition("\n")
        body.append(f"## {heading}\n" + "\n\n".join([paragraphs.strip()] * repeat))
    dest.write_text("\n\n".join(body) + "\n", encoding="utf-8")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--format", default="wav")
    parser.add_argument("--max-chunk-chars", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="audiobook-bench-") as tmp:
        tmp_path = Path(tmp)
        model = build_random_model(tmp_path / "model")
        book = sample_book(tmp_path / "sample.md", args.repeat)
        request = SettingsRequest(backend="torch", model=str(model), seed=0, max_chunk_chars=args.max_chunk_chars)
        output = OutputChanges(format=args.format, loudnorm=False, out=tmp_path / f"out.{args.format}")
        run = runner.RunOptions(workers=args.workers, threads=args.threads, device="cpu", quiet=True)
        started = time.perf_counter()
        result = runner.build(book, tmp_path / "job", request, None, output, run)
        wall = time.perf_counter() - started
        job = jobs.load(tmp_path / "job")
        run_record = job.runs[-1]
        synth_s = sum(c.synth_s or 0.0 for c in job.chunks) / max(1, args.workers)
        chars = sum(c.chars for c in job.chunks)
        audio_s = sum(c.frames or 0 for c in job.chunks) / job.settings.sample_rate
        load_s = run_record.load_s or 0.0
        print(
            json.dumps(
                {
                    "bench": "pipeline",
                    "model": "random-weight kokoro (test model)",
                    "backend": "torch",
                    "device": run_record.device,
                    "workers": args.workers,
                    "chunks": len(job.chunks),
                    "chars": chars,
                    "audio_s": round(audio_s, 2),
                    "load_s": load_s,
                    "chars_per_s": round(chars / synth_s, 1),
                    "rtf": round(synth_s / audio_s, 4),
                    "wall_s": round(wall, 3),
                    "synth_s": round(synth_s, 3),
                    "overhead_ratio": round(wall / synth_s, 4),
                    "overhead_ratio_after_load": round((wall - load_s) / synth_s, 4),
                    "failed": len(result.failed),
                }
            )
        )


if __name__ == "__main__":
    main()
