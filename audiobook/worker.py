"""The synthesis worker process: argument parsing and the request loop, nothing else.

One-shot: ``python -m audiobook.worker --text-file in.txt --out-wav out.wav [--voice ...]`` speaks one file
and prints one JSON line. Serve: ``python -m audiobook.worker --serve [--model ...]`` loads the model once,
prints a hello line, then answers one JSON line per JSON request line on stdin, in order, until EOF.

Stdout is the protocol channel alone: at start the real stdout is kept for the protocol and fd 1 (and
``sys.stdout``) point at stderr, so kokoro's prints and library chatter never reach the caller's parser.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import IO

log = logging.getLogger("audiobook.worker")

DEFAULT_MODEL_HELP = "Hugging Face repo id (default hexgrad/Kokoro-82M), local model directory, or bundled"
EXAMPLE = """examples:
  python -m audiobook.worker --text-file chapter.txt --out-wav chapter.wav --voice af_heart*0.7+af_bella*0.3
  python -m audiobook.worker --serve --model ~/models/kokoro --device cpu --threads 2
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiobook.worker",
        description="Synthesize speech with Kokoro-82M.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin until EOF")
    parser.add_argument("--text-file", help="one-shot: the text to speak (UTF-8)")
    parser.add_argument("--out-wav", help="one-shot: where to write the 24 kHz mono WAV")
    parser.add_argument("--voice", default=None, help="name, .pt path, or af_heart*0.7+af_bella*0.3")
    parser.add_argument("--speed", type=float, default=1.0, help="0.5 to 2.0 (default 1.0)")
    parser.add_argument("--lang-code", default="a", help="kokoro language: a b e f h i j p z (default a)")
    parser.add_argument("--split-pattern", default=None, help="paragraph break regex (default blank line)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same audio (default 0)")
    parser.add_argument("--model", default=None, help=DEFAULT_MODEL_HELP)
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the model")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the worker; return the exit status (argparse exits 2 on invalid flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve:
        die_with_parent()
    if not args.serve and not (args.text_file and args.out_wav):
        parser.error("one-shot mode needs --text-file and --out-wav (or pass --serve)")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    with protocol_channel() as channel:
        from .engine.g2p import enable_kokoro_warnings

        enable_kokoro_warnings()
        return serve(args, channel) if args.serve else one_shot(args, channel)


def die_with_parent() -> None:
    """Linux: get SIGKILL when the runner dies, so no orphan worker keeps burning the CPU after a kill.

    Set here rather than in the runner's fork (``preexec_fn`` is not safe in a threaded parent). If the
    runner died before this line, the worker notices the new parent and leaves at once.
    """
    parent = os.environ.get("AUDIOBOOK_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):
        os._exit(1)


@contextlib.contextmanager
def protocol_channel() -> Iterator[IO[str]]:
    """Keep the real stdout for the protocol; send fd 1 and ``sys.stdout`` to stderr meanwhile."""
    sys.stdout.flush()
    saved_fd = os.dup(1)
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    saved_stdout = sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield channel
    finally:
        with contextlib.suppress(OSError, ValueError):
            channel.flush()
        sys.stdout.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        sys.stdout = saved_stdout
        with contextlib.suppress(OSError, ValueError):
            channel.close()


def send(channel: IO[str], message: dict) -> None:
    channel.write(json.dumps(message, ensure_ascii=False) + "\n")
    channel.flush()


def load(args: argparse.Namespace):  # noqa: ANN201 - (Engine, load seconds)
    """Load the backend once and wrap it in an ``Engine``."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from .engine.core import Engine
    from .engine.loading import load_backend

    started = time.perf_counter()
    backend = load_backend(args.backend, args.model, args.device, args.threads)
    return Engine(backend), time.perf_counter() - started


def one_shot(args: argparse.Namespace, channel: IO[str]) -> int:
    from .engine.core import write_wav
    from .errors import AudiobookError

    try:
        with open(args.text_file, encoding="utf-8") as f:
            text = f.read()
        engine, load_s = load(args)
        result = engine.synthesize(
            text, args.voice, args.speed, args.lang_code, args.seed, split_pattern=args.split_pattern
        )
        write_wav(args.out_wav, result.audio)
    except (AudiobookError, OSError, UnicodeDecodeError) as e:
        log.error("%s", e)
        send(channel, {"ok": False, "error": str(e)})
        return 1
    backend = engine.backend
    send(
        channel,
        {
            "ok": True,
            "frames": result.frames,
            "seconds": round(result.seconds, 3),
            "device": backend.device,
            "backend": backend.name,
            "model": backend.model_id,
            "load_s": round(load_s, 3),
            "synth_s": round(result.g2p_s + result.synth_s, 3),
            "paragraph_ends": result.paragraph_ends,
            "phonemes": result.phonemes_synth,
        },
    )
    return 0


def serve(args: argparse.Namespace, channel: IO[str]) -> int:
    try:
        engine, load_s = load(args)
    except Exception as e:  # noqa: BLE001 - any load failure is reported to the caller, who may fall back
        log.exception("model load failed")
        send(channel, {"ready": False, "error": f"{type(e).__name__}: {e}" if not _is_ours(e) else str(e)})
        return 1
    backend = engine.backend
    send(
        channel,
        {
            "ready": True,
            "device": backend.device,
            "backend": backend.name,
            "model": backend.model_id,
            "load_s": round(load_s, 3),
            "pid": os.getpid(),
            "voices": backend.voice_names(),
        },
    )
    for line in sys.stdin:
        if line.strip():
            send(channel, answer(engine, line))
    return 0


def answer(engine, line: str) -> dict:  # noqa: ANN001 - Engine, imported lazily
    """The answer to one request line; any failure becomes ``{"ok": false, "error": ...}``."""
    from .engine.core import write_wav

    request_id = None
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        request_id = request.get("id")
        text, out_wav = request["text"], request["out_wav"]
        if not isinstance(text, str) or not isinstance(out_wav, str):
            raise ValueError("'text' and 'out_wav' must be strings")
        started = time.perf_counter()
        result = engine.synthesize(
            text,
            request.get("voice"),
            float(request.get("speed", 1.0)),
            request.get("lang", "a"),
            int(request.get("seed", 0)),
        )
        write_wav(out_wav, result.audio)
        return {
            "id": request_id,
            "ok": True,
            "frames": result.frames,
            "seconds": round(result.seconds, 3),
            "synth_s": round(time.perf_counter() - started, 3),
            "paragraph_ends": result.paragraph_ends,
            "phonemes": result.phonemes_synth,
            "voice": result.voice,
        }
    except KeyError as e:
        return {"id": request_id, "ok": False, "error": f"request is missing {e}"}
    except Exception as e:  # noqa: BLE001 - one bad request must not end the worker
        log.exception("request %s failed", request_id)
        return {"id": request_id, "ok": False, "error": str(e) if _is_ours(e) else f"{type(e).__name__}: {e}"}


def _is_ours(error: Exception) -> bool:
    from .errors import AudiobookError

    return isinstance(error, AudiobookError)


if __name__ == "__main__":
    sys.exit(main())
