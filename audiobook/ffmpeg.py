"""The one place that runs ffmpeg, plus the pure builders for the text it reads.

Everything that starts an ffmpeg process goes through :func:`run`: it finds the executable, logs the quoted
command line at debug level, feeds raw PCM on stdin when asked, captures stderr to a temporary file (so a
chatty ffmpeg can never block on a full pipe while we block writing its stdin) and raises
:class:`~audiobook.errors.FFmpegError` with stderr's last lines when ffmpeg fails.

imageio-ffmpeg ships no ffprobe, so :func:`probe` reads a file back by parsing ``ffmpeg -i``'s report.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiobook import SAMPLE_RATE
from audiobook.errors import AudiobookError, FFmpegError

log = logging.getLogger(__name__)

ENV_VAR = "AUDIOBOOK_FFMPEG"
STDERR_TAIL_LINES = 15


def find_ffmpeg() -> str:
    """The ffmpeg executable: ``$AUDIOBOOK_FFMPEG``, else ``ffmpeg`` on PATH, else imageio-ffmpeg's binary."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise AudiobookError(f"{ENV_VAR}={configured!r} is not an executable ffmpeg; fix the variable or unset it")
        return found
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # ImportError, or RuntimeError when the package has no binary for this platform
        raise AudiobookError(
            "ffmpeg not found: install it (apt install ffmpeg, brew install ffmpeg), "
            f"`pip install imageio-ffmpeg`, or point {ENV_VAR} at an ffmpeg executable"
        ) from e


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run(args: Sequence[str], *, what: str, stdin: Iterable[bytes] | None = None, loglevel: str = "error") -> str:
    """Run ffmpeg with ``args`` (without the executable); return its stderr.

    ``stdin``, when given, is an iterable of byte blocks written to ffmpeg's standard input (for an input
    of ``pipe:0``); otherwise stdin is closed and ``-nostdin`` is passed. ``what`` names the step in the
    error message. ``loglevel`` is ``error`` so that a failure's tail is all error lines; reading reports
    (``probe``, loudnorm's JSON) need ``info``. An exception raised by the ``stdin`` iterable kills ffmpeg
    and propagates unchanged.
    """
    cmd = [find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", loglevel]
    if stdin is None:
        cmd.append("-nostdin")
    cmd += list(args)
    log.debug("running %s", shlex.join(cmd))
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        except OSError as e:
            raise FFmpegError(f"{what}: could not start {cmd[0]}: {e}") from e
        try:
            if stdin is not None:
                _feed(proc, stdin)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        text = err.read().decode("utf-8", errors="replace")
    if code != 0:
        raise FFmpegError(f"{what}: ffmpeg exited with status {code}", _tail(text))
    return text


def pipe(args: Sequence[str], *, what: str, stdin: Iterable[bytes], block_size: int = 1 << 16) -> Iterator[bytes]:
    """Run ffmpeg with ``args`` (output ``pipe:1``), feeding it ``stdin`` from a thread, and yield what it writes
    as soon as it writes it (for audio that is streamed while it is made).

    Closing the generator early kills ffmpeg. An exception raised by the ``stdin`` iterable is raised here once
    ffmpeg has been stopped; a failing ffmpeg raises :class:`~audiobook.errors.FFmpegError` with stderr's tail.
    """
    cmd = [find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error", *args]
    log.debug("running %s", shlex.join(cmd))
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        except OSError as e:
            raise FFmpegError(f"{what}: could not start {cmd[0]}: {e}") from e
        failures: list[BaseException] = []

        def feed() -> None:
            try:
                _feed(proc, stdin)
            except BaseException as e:  # noqa: BLE001 - handed to the reading side
                failures.append(e)
                proc.kill()

        feeder = threading.Thread(target=feed, name="ffmpeg-stdin", daemon=True)
        feeder.start()
        try:
            assert proc.stdout is not None
            while block := proc.stdout.read1(block_size):
                yield block
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        feeder.join()
        if failures:
            raise failures[0]
        if code != 0:
            err.seek(0)
            raise FFmpegError(f"{what}: ffmpeg exited with status {code}", _tail(err.read().decode(errors="replace")))


def _feed(proc: subprocess.Popen, blocks: Iterable[bytes]) -> None:
    """Write ``blocks`` to ffmpeg's stdin; stop quietly if ffmpeg closed it (its exit status tells why)."""
    assert proc.stdin is not None
    try:
        for block in blocks:
            proc.stdin.write(block)
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass


# ---------------------------------------------------------------------------------------------------------
# Pure builders


@dataclass(frozen=True)
class ChapterMark:
    """One chapter in a container's chapter list, in frames at ``SAMPLE_RATE``."""

    title: str
    start: int
    end: int


_FFMETA_SPECIAL = re.compile(r"([=;#\\\n])")


def escape_ffmetadata(value: str) -> str:
    """Escape ``=``, ``;``, ``#``, ``\\`` and newlines with a backslash, as the FFMETADATA format wants."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _FFMETA_SPECIAL.sub(r"\\\1", value)


def ffmetadata(tags: Mapping[str, str], chapters: Sequence[ChapterMark] = (), rate: int = SAMPLE_RATE) -> str:
    """An FFMETADATA1 file: global ``tags`` then one ``[CHAPTER]`` per mark, timed in 1/``rate`` units."""
    lines = [";FFMETADATA1"]
    lines += [f"{escape_ffmetadata(k)}={escape_ffmetadata(v)}" for k, v in tags.items() if v]
    for mark in chapters:
        lines += [
            "",
            "[CHAPTER]",
            f"TIMEBASE=1/{rate}",
            f"START={mark.start}",
            f"END={mark.end}",
            f"title={escape_ffmetadata(mark.title)}",
        ]
    return "\n".join(lines) + "\n"


def clock(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the Vorbis chapter-extension time format (rounded to the millisecond)."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def vorbis_chapters(chapters: Sequence[ChapterMark], rate: int = SAMPLE_RATE) -> dict[str, str]:
    """``CHAPTERxxx`` / ``CHAPTERxxxNAME`` comments (numbered from 000 as ffmpeg's Ogg muxer does)."""
    tags: dict[str, str] = {}
    for n, mark in enumerate(chapters):
        tags[f"CHAPTER{n:03d}"] = clock(mark.start / rate)
        tags[f"CHAPTER{n:03d}NAME"] = mark.title
    return tags


PCM_INPUT = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"]
"""ffmpeg input arguments for the book's raw PCM on stdin: 16-bit little-endian mono at 24 kHz."""


MEASURE_FILTER = "ebur128=peak=true:framelog=quiet"
"""The measuring pass. ``ebur128`` reports what ``loudnorm`` needs (integrated loudness, its gate threshold,
loudness range, true peak) about six times faster than a measuring ``loudnorm``, which runs its whole
192 kHz dynamic processing only to throw the audio away."""

_EBUR128 = re.compile(
    r"Integrated loudness:\s+I:\s+(?P<i>\S+) LUFS\s+Threshold:\s+(?P<thresh>\S+) LUFS\s+"
    r"Loudness range:\s+LRA:\s+(?P<lra>\S+) LU.*?True peak:\s+Peak:\s+(?P<tp>\S+) dBFS",
    re.DOTALL,
)


def parse_ebur128(stderr: str) -> dict[str, str]:
    """The summary ``ebur128=peak=true`` prints, under loudnorm's names (``input_i``, ``input_tp``...)."""
    found = list(_EBUR128.finditer(stderr))
    if not found:
        raise FFmpegError("ebur128 printed no loudness summary", _tail(stderr))
    m = found[-1]
    peak = m["tp"] if m["tp"] not in ("-inf", "inf", "nan") else "-99"
    return {
        "input_i": m["i"],
        "input_tp": peak,
        "input_lra": m["lra"],
        "input_thresh": m["thresh"],
        "target_offset": "0",
    }


def loudnorm_filter(target: float, true_peak: float, lra: float, measured: Mapping[str, str] | None = None) -> str:
    """``loudnorm``: a single dynamic pass when ``measured`` is None, else the linear apply pass."""
    parts = [f"I={target:g}", f"TP={true_peak:g}", f"LRA={lra:g}"]
    if measured is not None:
        parts += [
            f"measured_I={measured['input_i']}",
            f"measured_TP={measured['input_tp']}",
            f"measured_LRA={measured['input_lra']}",
            f"measured_thresh={measured['input_thresh']}",
            f"offset={measured['target_offset']}",
            "linear=true",
        ]
    parts.append("print_format=json")
    # loudnorm may resample internally (192 kHz in its dynamic mode): bring it back to the book's rate.
    return f"loudnorm={':'.join(parts)},aresample={SAMPLE_RATE}"


def measure_args(filter_: str) -> list[str]:
    """Arguments for a pass that only runs ``filter_`` over the PCM on stdin and discards the audio."""
    return [*PCM_INPUT, "-af", filter_, "-f", "null", "-"]


def parse_loudnorm(stderr: str) -> dict[str, str]:
    """The JSON block that ``loudnorm`` with ``print_format=json`` prints at the end of stderr."""
    start = stderr.rfind("{")
    end = stderr.rfind("}")
    if start < 0 or end < start:
        raise FFmpegError("loudnorm printed no measurement", _tail(stderr))
    try:
        values = json.loads(stderr[start : end + 1])
    except ValueError as e:
        raise FFmpegError("loudnorm printed an unreadable measurement", _tail(stderr)) from e
    return {k: str(v) for k, v in values.items()}


@dataclass
class EncodeSpec:
    """Everything one encode needs besides the PCM: container, codec, metadata file, cover, output."""

    muxer: str
    codec: str
    output: Path
    bitrate: str | None = None
    metadata_file: Path | None = None
    cover_file: Path | None = None
    audio_filter: str | None = None
    stream_language: str = ""
    extra: list[str] = field(default_factory=list)


def encode_args(spec: EncodeSpec) -> list[str]:
    """The argument list that encodes the PCM on stdin as ``spec`` says (pure; golden-tested)."""
    args = list(PCM_INPUT)
    meta_index = cover_index = None
    if spec.metadata_file is not None:
        args += ["-f", "ffmetadata", "-i", str(spec.metadata_file)]
        meta_index = 1
    if spec.cover_file is not None:
        args += ["-i", str(spec.cover_file)]
        cover_index = 2 if meta_index else 1
    args += ["-map", "0:a"]
    if cover_index is not None:
        args += ["-map", f"{cover_index}:v", "-c:v", "copy", "-disposition:v:0", "attached_pic"]
    if meta_index is not None:
        args += ["-map_metadata", str(meta_index), "-map_chapters", str(meta_index)]
    else:
        args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if spec.audio_filter:
        args += ["-af", spec.audio_filter]
    args += ["-c:a", spec.codec]
    if spec.bitrate:
        args += ["-b:a", spec.bitrate]
    if spec.stream_language:
        args += ["-metadata:s:a:0", f"language={spec.stream_language}"]
    args += [*spec.extra, "-f", spec.muxer, "-y", str(spec.output)]
    return args


# ---------------------------------------------------------------------------------------------------------
# Reading a file back


@dataclass
class ProbedChapter:
    start: float
    end: float
    title: str


@dataclass
class ProbedStream:
    kind: str
    """``Audio``, ``Video``, ``Data``..."""
    codec: str
    attached_pic: bool
    description: str
    language: str = ""


@dataclass
class Probe:
    """What ``ffmpeg -i`` reports about a file."""

    duration: float | None
    tags: dict[str, str]
    """Container tags merged with the first audio stream's (Ogg keeps its comments on the stream)."""
    chapters: list[ProbedChapter]
    streams: list[ProbedStream]
    sample_rate: int | None


_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_CHAPTER = re.compile(r"^\s*Chapter #\d+:\d+: start (-?[\d.]+), end (-?[\d.]+)")
_STREAM = re.compile(r"^\s*Stream #\d+:\d+(?:\[\w+\])?(?:\((\w+)\))?: (\w+): (\w+)(.*)$")
_CONTINUED = re.compile(r"^\s+: (.*)$")
_TAG = re.compile(r"^\s+(\S[^:]*?)\s*: (.*)$")
_RATE = re.compile(r"(\d+) Hz")


def probe(path: Path) -> Probe:
    """Read ``path``'s duration, tags, chapters and streams from ``ffmpeg -i`` (no ffprobe needed)."""
    try:
        text = run(["-i", str(path), "-f", "ffmetadata", "-y", os.devnull], what=f"reading {path}", loglevel="info")
    except FFmpegError as e:
        raise FFmpegError(f"cannot read {path}", e.stderr_tail) from e
    return parse_probe(text)


def parse_probe(text: str) -> Probe:
    """Parse the input report ``ffmpeg -i`` prints on stderr (pure)."""
    result = Probe(None, {}, [], [], None)
    chapter_tags: dict[str, str] = {}
    section = ""  # what the next "Metadata:" block belongs to: input, chapter, audio or other
    target: dict[str, str] | None = None
    key = ""
    for line in text.splitlines():
        if line.startswith("Output #"):
            break
        if line.startswith("Input #"):
            section, target = "input", None
        elif m := _DURATION.match(line):
            result.duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            target = None
        elif m := _CHAPTER.match(line):
            result.chapters.append(ProbedChapter(float(m[1]), float(m[2]), ""))
            section, target = "chapter", None
        elif m := _STREAM.match(line):
            language, kind, codec, rest = m[1] or "", m[2], m[3], m[4]
            first_audio = kind == "Audio" and not any(s.kind == "Audio" for s in result.streams)
            result.streams.append(ProbedStream(kind, codec, "(attached pic)" in rest, rest.strip(), language))
            section, target = ("audio" if first_audio else "other"), None
            if first_audio and (r := _RATE.search(rest)):
                result.sample_rate = int(r[1])
        elif line.strip() == "Metadata:":
            if section == "chapter":
                chapter_tags = {}
                target = chapter_tags
            else:
                target = result.tags if section in ("input", "audio") else None
        elif target is not None and (m := _CONTINUED.match(line)):
            target[key] += "\n" + m[1]
        elif target is not None and (m := _TAG.match(line)):
            key = m[1]
            target.setdefault(key, m[2])
            if target is chapter_tags and key == "title":
                result.chapters[-1].title = m[2]
        else:
            target = None
    return result
