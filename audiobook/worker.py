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
import errno
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import AudiobookError
from .protocol import CHUNK, DEVICE, DISK_FULL, MODEL, Answer, Hello, ProtocolError, Request, decode, encode, to_dict

if TYPE_CHECKING:
    import numpy as np

    from .engine.core import Engine, Synthesis
    from .engine.loading import ModelSource
    from .lexicon import Lexicon
    from .timing import ChunkTimings

log = logging.getLogger("audiobook.worker")

DEFAULT_MODEL_HELP = "Hugging Face repo id (default hexgrad/Kokoro-82M), local model directory, or bundled"
EXAMPLE = """examples:
  python -m audiobook.worker --text-file chapter.txt --out-wav chapter.wav --voice af_heart*0.7+af_bella*0.3
  python -m audiobook.worker --serve --model ~/models/kokoro --device cpu --threads 2
"""


def build_parser() -> argparse.ArgumentParser:
    from .devices import DEVICE_CHOICES
    from .engine.g2p import LANG_CODES
    from .engine.loading import BACKENDS

    parser = argparse.ArgumentParser(
        prog="python -m audiobook.worker",
        description="Synthesize speech with Kokoro-82M.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin until EOF")
    parser.add_argument("--text-file", help="one-shot: the text to speak (UTF-8)")
    parser.add_argument("--out-wav", help="one-shot: where to write the 24 kHz mono WAV")
    parser.add_argument("--out-timings", help="one-shot: where to write its word and sentence timings (JSON)")
    parser.add_argument("--voice", default=None, help="name, .pt path, or af_heart*0.7+af_bella*0.3")
    parser.add_argument("--speed", type=float, default=1.0, help="0.5 to 2.0 (default 1.0)")
    parser.add_argument("--lang-code", default="a", choices=tuple(LANG_CODES), help="kokoro language (default a)")
    parser.add_argument("--split-pattern", default=None, help="paragraph break regex (default blank line)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same audio (default 0)")
    parser.add_argument("--model", default=None, help=DEFAULT_MODEL_HELP)
    parser.add_argument("--revision", default=None, help="hub commit of --model (default: the newest)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
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


def send(channel: IO[str], line: str) -> None:
    channel.write(line + "\n")
    channel.flush()


def load(args: argparse.Namespace) -> tuple[Engine, Hello, ModelSource]:
    """Load the backend once, on the device asked for; the hello line that says what was loaded."""
    from .devices import resolve_device
    from .engine.core import Engine
    from .engine.loading import choose_model, load_backend

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    source = replace(choose_model(args.backend, args.model), revision=args.revision)
    backend = load_backend(source, resolve_device(args.device, source.backend), args.threads)
    hello = Hello(
        ready=True,
        device=backend.device,
        backend=backend.name,
        model=backend.model_id,
        load_s=round(time.perf_counter() - started, 3),
        pid=os.getpid(),
    )
    return Engine(backend), hello, source


def one_shot(args: argparse.Namespace, channel: IO[str]) -> int:
    """Speak one text file into one WAV; print one JSON object (what was loaded, and the answer)."""
    from .engine.loading import default_voice
    from .engine.voices import VoiceSpec

    try:
        with open(args.text_file, encoding="utf-8") as f:
            text = f.read()
        engine, hello, source = load(args)
        voice = VoiceSpec.parse(args.voice) if args.voice else VoiceSpec.parse(default_voice(source, args.lang_code))
        request = Request(
            id="one-shot",
            text=text,
            out_wav=args.out_wav,
            voice=voice,
            speed=args.speed,
            lang=args.lang_code,
            seed=args.seed,
            out_timings=args.out_timings,
        )
    except (AudiobookError, OSError, UnicodeDecodeError) as e:
        log.error("%s", e)
        send(channel, json.dumps({"ok": False, "error": str(e)}, ensure_ascii=False))
        return 1
    answer = synthesize(engine, request, args.split_pattern)
    if not answer.ok:
        log.error("%s", answer.error)
    report = {**to_dict(hello), **to_dict(answer), "voice": str(voice)}
    send(channel, json.dumps(report, ensure_ascii=False))
    return 0 if answer.ok else 1


def serve(args: argparse.Namespace, channel: IO[str]) -> int:
    warm_up_g2p(args.lang_code)
    try:
        engine, hello, _ = load(args)
    except Exception as e:  # noqa: BLE001 - any load failure is reported to the caller
        log.exception("model load failed")
        kind = DEVICE if failure_kind(e) == DEVICE else MODEL
        send(channel, encode(Hello(ready=False, error=describe(e), error_kind=kind)))
        return 1
    send(channel, encode(hello))
    for line in sys.stdin:
        if line.strip():
            send(channel, encode(answer(engine, line)))
    return 0


def warm_up_g2p(lang: str) -> None:
    """Load the language's G2P (spaCy and misaki's lexicons for English: seconds) in a thread, while the model
    loads, instead of in front of the first chunk. A G2P that fails here fails that chunk, with its message."""

    def build() -> None:
        from .engine.g2p import get_g2p

        try:
            get_g2p(lang)
        except Exception as e:  # noqa: BLE001 - reported by the first request that needs it
            log.debug("G2P warm-up for %s failed: %s", lang, e)

    threading.Thread(target=build, name="g2p-warm-up", daemon=True).start()


def answer(engine: Engine, line: str) -> Answer:
    """The answer to one request line; any failure becomes an ``Answer`` with the error and its kind."""
    try:
        request = decode(Request, line)
    except ProtocolError as e:
        return Answer.failure(_request_id(line), f"bad request: {e}")
    return synthesize(engine, request)


def synthesize(engine: Engine, request: Request, split_pattern: str | None = None) -> Answer:
    """Speak one request into its WAV file, and its timings into theirs when the request names one."""
    from .engine.core import write_wav
    from .lexicon import parse

    started = time.perf_counter()
    try:
        lexicon = parse(request.lexicon, f"request {request.id}") if request.lexicon else None
        if request.stream:
            result, timings = synthesize_streaming(engine, request, lexicon), None
        else:
            result, timings = _speak(engine, request, split_pattern, lexicon)
    except Exception as e:  # noqa: BLE001 - one bad request must not end the worker
        log.exception("request %s failed", request.id)
        return Answer.failure(request.id, describe(e), failure_kind(e))
    try:
        write_wav(request.out_wav, result.audio)
        if timings is not None:  # after the WAV: timings never describe audio that is not there
            from .timing import save

            save(timings, Path(request.out_timings))
    except Exception as e:  # noqa: BLE001
        log.exception("request %s: writing %s failed", request.id, request.out_wav)
        kind = DISK_FULL if disk_full(e, Path(request.out_wav), result.frames) else failure_kind(e)
        return Answer.failure(request.id, describe(e), kind)
    return Answer(
        id=request.id,
        ok=True,
        frames=result.frames,
        paragraph_ends=tuple(result.paragraph_ends),
        synth_s=round(time.perf_counter() - started, 3),
        phonemes=result.phonemes_synth,
        timings=request.out_timings if timings is not None else None,
    )


def synthesize_streaming(engine: Engine, request: Request, lexicon: Lexicon | None = None) -> Synthesis:
    """Speak a streamed request, writing each piece's PCM to ``request.stream`` as soon as it is made.

    The file is truncated first: a retry makes the very same pieces (same seeds), so a reader that keeps its
    offset simply waits until the file has grown past what it already sent."""
    from .engine.streaming import pcm16
    from .engine.streaming import synthesize_streaming as speak

    with open(request.stream, "wb") as out:

        def send_piece(audio: np.ndarray) -> None:
            out.write(pcm16(audio))
            out.flush()

        return speak(
            engine, request.text, request.voice, request.speed, request.lang, request.seed, send_piece, lexicon
        )


def _speak(
    engine: Engine, request: Request, split_pattern: str | None, lexicon: Lexicon | None
) -> tuple[Synthesis, ChunkTimings | None]:
    """The chunk's audio, and its timings when asked for and the model can give them."""
    args = (request.text, request.voice, request.speed, request.lang, request.seed)
    if request.out_timings and engine.backend.gives_durations:
        from .engine.timed import synthesize_timed

        return synthesize_timed(engine, *args, split_pattern=split_pattern, lexicon=lexicon)
    if request.out_timings:
        _say_once(
            f"{engine.backend.model_id} reports no durations, so its chunks get audio but no timings; subtitles "
            "and read-along need --model bundled or an ONNX export with a durations output"
        )
    return engine.synthesize(*args, split_pattern=split_pattern, lexicon=lexicon), None


_said: set[str] = set()


def _say_once(message: str) -> None:
    """A warning that would otherwise repeat for every chunk, once per worker."""
    if message not in _said:
        _said.add(message)
        log.warning("%s", message)


_DEVICE_ERRORS = (
    "CUDA error",
    "HIP error",
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "no CUDA GPUs are available",
    "CUDA driver",
)
"""Messages of torch errors after which the GPU is gone for this process (a fresh one would fail the same)."""


def failure_kind(error: BaseException) -> str:
    """Whether another attempt can help (``chunk``) or not: a full disk, a lost device."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DISK_FULL
    text = str(error)
    if type(error).__name__ == "OutOfMemoryError":  # GPU memory: a smaller piece may fit next time
        return CHUNK
    if any(marker in text for marker in _DEVICE_ERRORS):
        return DEVICE
    return CHUNK


def disk_full(error: BaseException, path: Path, frames: int) -> bool:
    """Whether a failed write failed for lack of space.

    libsndfile's write callback reports ENOSPC as an ``AssertionError`` with no message, so the disk itself is
    asked: a failed write into a directory with less free space than the file needs is a full disk.
    """
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return False
    return free < frames * 2 + WAV_HEADER_SLACK


WAV_HEADER_SLACK = 1 << 16


def describe(error: BaseException) -> str:
    """Our own errors are already sentences; anything else gets its type name too."""
    return str(error) if isinstance(error, AudiobookError) else f"{type(error).__name__}: {error}".rstrip(": ")


def _request_id(line: str) -> str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None


if __name__ == "__main__":
    sys.exit(main())
