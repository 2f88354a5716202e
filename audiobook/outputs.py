"""Final audio: M4B, MP3, Opus, FLAC or WAV, one file or one per chapter, with tags, chapters and cover.

The book's PCM is streamed from the chunk WAVs (see :mod:`audiobook.assemble`) into ffmpeg's stdin, once
to measure loudness and once to encode, so memory stays flat however long the book. Every file is written
under a temporary name in its final directory and renamed into place only when ffmpeg succeeded.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from audiobook import SAMPLE_RATE, atomic
from audiobook import ffmpeg as ff
from audiobook.assemble import (
    ChapterAudio,
    ChapterTiming,
    Pauses,
    book_pieces,
    check_wavs,
    stream_book,
    stream_pieces,
    timeline,
    total_frames,
)
from audiobook.book import Metadata
from audiobook.errors import AudiobookError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    muxer: str
    codec: str
    default_bitrate: str | None
    """Speech at 24 kHz mono: what each codec needs to sound clean, without wasting space."""
    extra: tuple[str, ...] = ()
    chapters: bool = True
    tags: bool = True


FORMATS: dict[str, Format] = {
    # iPod-flavoured MP4: the M4A brand players expect; faststart puts the index first for streaming
    # servers (Audiobookshelf). ffmpeg's native AAC needs ~64k to be clean on speech.
    "m4b": Format("m4b", ".m4b", "ipod", "aac", "64k", ("-movflags", "+faststart")),
    # ID3v2.3 is the version every player (and Windows) reads; CHAP/CTOC frames come from the chapters.
    "mp3": Format("mp3", ".mp3", "mp3", "libmp3lame", "64k", ("-id3v2_version", "3")),
    # Opus is transparent for speech from about 32k.
    "opus": Format("opus", ".opus", "opus", "libopus", "32k"),
    "flac": Format("flac", ".flac", "flac", "flac", None),
    # RF64 past 4 GB (about 24.8 h at 24 kHz mono 16-bit); a plain RIFF WAV below that.
    "wav": Format("wav", ".wav", "wav", "pcm_s16le", None, ("-rf64", "auto"), chapters=False, tags=False),
}

READ_ALONG = "epub3"
"""Not an audio format: the book's EPUB with the narration inside and each sentence highlighted as it is spoken
(see :mod:`audiobook.readalong`); written by :mod:`audiobook.timed_outputs`."""
READ_ALONG_EXTENSION = ".epub"
SUBTITLE_FORMATS = ("srt", "vtt")
NO_SUBTITLES = "none"

_BITRATE = re.compile(r"^\d+(\.\d+)?[kK]?$")


@dataclass
class OutputOptions:
    """How the final audio is written. ``None`` means "use the format's default"."""

    format: str = "m4b"
    """m4b (default: what audiobook players want), mp3, opus, flac or wav."""
    split_chapters: bool = False
    """One file per chapter (``01 - Title.ext``, track n/N) instead of one file with chapter marks."""
    pauses: Pauses = field(default_factory=Pauses)
    """Silences inserted after paragraphs, after chapter titles and between chapters."""
    loudnorm: bool = True
    """EBU R128 loudness normalisation in two streaming passes (measure, then apply a linear gain)."""
    loudness_target: float = -18.0
    """Integrated loudness in LUFS. -18 sits at the loud end of ACX's audiobook range (-23..-18 dB RMS) and
    near podcast practice (-16..-19): easy to hear on a phone in a street, with room for the peaks so the
    gain stays linear. EBU R128's broadcast -23 is too quiet for earbuds."""
    true_peak: float = -1.5
    """Ceiling in dBTP; below R128's -1 to leave room for lossy-codec overshoot."""
    loudness_range: float = 15.0
    """loudnorm's LRA target. Narrated speech sits well under it, which keeps loudnorm in linear mode."""
    bitrate: str | None = None
    """Audio bitrate such as ``64k`` for the lossy formats; None uses the format's default."""
    subtitles: str | None = None
    """``srt`` or ``vtt``: sentence subtitles beside each audio file, named as players look for them; None: none."""
    subtitle_words: bool = False
    """Word timing in the subtitles: WebVTT karaoke timestamps, or one SRT cue per word."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS and self.format != READ_ALONG:
            choices = ", ".join([*FORMATS, READ_ALONG])
            raise AudiobookError(f"unknown format {self.format!r}; choose one of {choices}")
        if self.subtitles is not None and self.subtitles not in SUBTITLE_FORMATS:
            raise AudiobookError(f"unknown subtitle format {self.subtitles!r}; choose {' or '.join(SUBTITLE_FORMATS)}")
        if self.bitrate is not None and not _BITRATE.match(str(self.bitrate)):
            raise AudiobookError(f"bitrate {self.bitrate!r} is not a number of bits/s such as 64k")
        if not -70 <= self.loudness_target <= -5:
            raise AudiobookError(f"loudness target {self.loudness_target} LUFS is outside -70..-5")
        if not -9 <= self.true_peak <= 0:
            raise AudiobookError(f"true peak {self.true_peak} dBTP is outside -9..0")
        if not 1 <= self.loudness_range <= 50:
            raise AudiobookError(f"loudness range {self.loudness_range} LU is outside 1..50")

    @property
    def spec(self) -> Format:
        return FORMATS[self.format]

    @property
    def resolved_bitrate(self) -> str | None:
        return self.bitrate or self.spec.default_bitrate

    @classmethod
    def from_dict(cls, data: dict) -> OutputOptions:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        if isinstance(values.get("pauses"), dict):
            values["pauses"] = Pauses.from_dict(values["pauses"])
        return cls(**values)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["pauses"] = self.pauses.to_dict()
        return data

    def changed(self, changes: OutputChanges) -> OutputOptions:
        """These options with the ones the user named replaced."""
        pauses = {
            name: value
            for name, value in (
                ("paragraph", changes.pause_paragraph),
                ("title", changes.pause_title),
                ("chapter", changes.pause_chapter),
            )
            if value is not None
        }
        named = {
            "format": changes.format,
            "split_chapters": changes.split_chapters,
            "loudnorm": changes.loudnorm,
            "loudness_target": changes.loudness_target,
            "bitrate": changes.bitrate,
            "subtitles": changes.subtitles,
            "subtitle_words": changes.subtitle_words,
        }
        data = {**self.to_dict(), **{k: v for k, v in named.items() if v is not None}}
        data["pauses"] = {**data["pauses"], **pauses}
        if data["subtitles"] == NO_SUBTITLES:
            data["subtitles"] = None
        return OutputOptions.from_dict(data)


@dataclass(frozen=True)
class OutputChanges:
    """Output flags as the user gave them (``None``: keep what the job has). They never change the audio."""

    format: str | None = None
    split_chapters: bool | None = None
    pause_paragraph: float | None = None
    pause_title: float | None = None
    pause_chapter: float | None = None
    loudnorm: bool | None = None
    loudness_target: float | None = None
    bitrate: str | None = None
    subtitles: str | None = None
    """``srt``, ``vtt``, or ``none`` to stop writing them."""
    subtitle_words: bool | None = None
    out: Path | None = None
    """The output file (a folder for a split export); relative to the working directory."""

    def with_format_from_out(self) -> OutputChanges:
        """``--out book.mp3`` names the format too; ``JobError`` when it contradicts ``--format``."""
        if self.out is None or self.split_chapters:
            return self
        suffix = Path(self.out).suffix.lower()
        named = (
            READ_ALONG
            if suffix == READ_ALONG_EXTENSION
            else next((f.name for f in FORMATS.values() if suffix == f.extension), None)
        )
        if named is None:
            return self
        if self.format is not None and self.format != named:
            raise AudiobookError(
                f"--out {self.out} is a .{named} file name but --format is {self.format}; make them agree"
            )
        return dataclasses.replace(self, format=named)

    def changes_layout(self, options: OutputOptions) -> bool:
        """Whether the format or the file layout differs from ``options`` (a saved ``--out`` no longer fits)."""
        return (self.format not in (None, options.format)) or (
            self.split_chapters is not None and self.split_chapters != options.split_chapters
        )


MANIFEST_NAME = "output.json"
"""Written beside the output file, or inside the output directory of a split export."""


@dataclass
class ExportResult:
    path: Path
    """The output file, or the output directory of a split export."""
    files: list[Path]
    """Every audio file written, in chapter order for a split export."""
    manifest: Path
    """The ``output.json`` written with them."""
    chapters: list[ChapterTiming]
    frames: int
    """Total length in frames at ``SAMPLE_RATE``, pauses included."""
    loudness: dict | None = None
    """Targets, the measured values and the normalisation type loudnorm used; None when off."""

    @property
    def duration_s(self) -> float:
        return self.frames / SAMPLE_RATE


# ---------------------------------------------------------------------------------------------------------
# Tags and names (pure)

_LANGUAGES = {  # ISO 639-1 -> 639-2/B, which MP4's track language field wants
    "en": "eng", "es": "spa", "fr": "fre", "de": "ger", "it": "ita", "pt": "por", "ja": "jpn",
    "zh": "chi", "hi": "hin", "ko": "kor", "ru": "rus", "nl": "dut", "pl": "pol", "sv": "swe",
}  # fmt: skip


def iso639_2(language: str) -> str:
    """``en-GB`` -> ``eng``; empty when unknown."""
    base = language.split("-")[0].split("_")[0].lower()
    if len(base) == 3:
        return base
    return _LANGUAGES.get(base, "")


def book_tags(metadata: Metadata, fmt: str, track: tuple[int, int] | None = None, title: str = "") -> dict:
    """The tags every output carries (ffmpeg's generic names, mapped per container by its muxers)."""
    year = metadata.date[:4] if metadata.date[:4].isdigit() else ""
    tags = {
        "title": title or metadata.title,
        "artist": metadata.author,
        "album_artist": metadata.author,
        "album": metadata.title,
        "genre": "Audiobook",
        "date": year,
        "language": metadata.language,
        "description": metadata.description,
        "comment": metadata.description,
    }
    if track is not None:
        tags["track"] = f"{track[0]}/{track[1]}"
    if fmt == "m4b":
        tags["media_type"] = "2"  # iTunes "stik" 2: Audiobook
    if fmt == "mp3":
        tags.pop("comment", None)  # ffmpeg writes it as a second TXXX copy of the description
        tags["language"] = iso639_2(metadata.language)  # ID3's TLAN holds ISO 639-2 codes
    return {k: v for k, v in tags.items() if v}


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_name(title: str, limit: int = 80) -> str:
    """A file-name-safe version of ``title`` (no separators, reserved or control characters)."""
    name = " ".join(_UNSAFE.sub(" ", title).split())
    return name[:limit].strip(" .")


def chapter_file_names(timings: Sequence[ChapterTiming], extension: str) -> list[str]:
    """``01 - Title.ext`` for each chapter, zero-padded to the chapter count, unique."""
    width = max(2, len(str(len(timings))))
    return [
        f"{n:0{width}d} - {safe_name(t.title) or f'Chapter {n}'}{extension}" for n, t in enumerate(timings, start=1)
    ]


def manifest(
    result_files: Sequence[Path],
    timings: Sequence[ChapterTiming],
    options: OutputOptions,
    loudness: dict | None,
    extra: dict,
    chapter_files: Sequence[Path] | None = None,
) -> dict:
    """The content of ``output.json`` (pure)."""
    chapters = []
    for n, t in enumerate(timings):
        entry = {
            "index": t.index,
            "title": t.title,
            "start_s": t.start,
            "duration_s": t.duration,
            "start_frame": t.start_frame,
            "frames": t.frames,
        }
        if chapter_files is not None:
            entry["file"] = chapter_files[n].name
        chapters.append(entry)
    data = {
        "format": options.format,
        "files": [p.name for p in result_files],
        "duration_s": total_frames(timings) / SAMPLE_RATE,
        "frames": total_frames(timings),
        "sample_rate": SAMPLE_RATE,
        "chapters": chapters,
        "options": options.to_dict(),
        "loudness": loudness,
    }
    data.update(extra)
    return data


# ---------------------------------------------------------------------------------------------------------
# Export


def write_outputs(
    chapters: list[ChapterAudio],
    metadata: Metadata,
    out: Path,
    options: OutputOptions,
    extra: dict | None = None,
) -> ExportResult:
    """Write the book as ``options`` says, plus ``output.json``; return what was written.

    ``out`` is the output file, or for ``split_chapters`` the output directory (``output.json`` goes beside
    the file, or inside the directory). Nothing half-written is left behind on failure.
    """
    if not chapters:
        raise AudiobookError("nothing to export: the job has no narrated chapters")
    out = Path(out)
    check_wavs(chapters)
    timings = timeline(chapters, options.pauses)
    loudness = _measure(chapters, options) if options.loudnorm else None
    with tempfile.TemporaryDirectory(prefix="audiobook-export-") as work:
        encoder = _Encoder(options, metadata, loudness, Path(work))
        if options.split_chapters:
            out.mkdir(parents=True, exist_ok=True)
            files = _export_split(encoder, chapters, timings, out)
            manifest_path = out / MANIFEST_NAME
            data = manifest(files, timings, options, loudness, extra or {}, chapter_files=files)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            marks = [ff.ChapterMark(t.title, t.start_frame, t.end_frame) for t in timings]
            with atomic.atomic_path(out) as tmp:
                encoder.encode(
                    stream_book(chapters, options.pauses),
                    tmp,
                    book_tags(metadata, options.format),
                    marks,
                    name=out.name,
                )
            files = [out]
            manifest_path = out.parent / MANIFEST_NAME
            data = manifest(files, timings, options, loudness, extra or {})
    _write_json(manifest_path, data)
    duration = total_frames(timings) / SAMPLE_RATE
    log.info("wrote %s (%.1f s, %d chapters)", ", ".join(map(str, files)), duration, len(timings))
    return ExportResult(out, files, manifest_path, timings, total_frames(timings), loudness)


def _measure(chapters: Sequence[ChapterAudio], options: OutputOptions) -> dict | None:
    """The first loudness pass over the whole book; None when there is nothing to normalise (silence)."""
    pcm = stream_book(chapters, options.pauses)
    stderr = ff.run(ff.measure_args(ff.MEASURE_FILTER), what="measuring loudness", stdin=pcm, loglevel="info")
    measured = ff.parse_ebur128(stderr)
    log.info(
        "measured %s LUFS, %s dBTP, LRA %s LU",
        measured["input_i"],
        measured["input_tp"],
        measured["input_lra"],
    )
    if float(measured["input_i"]) <= -70:
        log.warning("the book measures as silence (%s LUFS): loudness left as it is", measured["input_i"])
        return None
    return {
        "target_i": options.loudness_target,
        "target_tp": options.true_peak,
        "target_lra": options.loudness_range,
        "measured": measured,
    }


def _export_split(
    encoder: _Encoder, chapters: Sequence[ChapterAudio], timings: Sequence[ChapterTiming], out_dir: Path
) -> list[Path]:
    """One file per chapter; all are renamed into place only once every one has been encoded."""
    options, metadata = encoder.options, encoder.metadata
    pieces = book_pieces(chapters, options.pauses)
    finals = [out_dir / name for name in chapter_file_names(timings, options.spec.extension)]
    parts = [atomic.temporary_name(final) for final in finals]  # hidden: a player scanning the folder skips them
    try:
        for n, (timing, part) in enumerate(zip(timings, parts, strict=True), start=1):
            tags = book_tags(metadata, options.format, track=(n, len(timings)), title=timing.title)
            encoder.encode(stream_pieces(pieces[n - 1]), part, tags, [], name=finals[n - 1].name)
    except BaseException:
        for part in parts:
            part.unlink(missing_ok=True)
        raise
    for part, final in zip(parts, finals, strict=True):
        atomic.commit(part, final)
    return finals


class _Encoder:
    """What every file of one export shares: options, metadata, loudness values, cover, a scratch dir."""

    def __init__(self, options: OutputOptions, metadata: Metadata, loudness: dict | None, work: Path) -> None:
        self.options = options
        self.metadata = metadata
        self.loudness = loudness
        self.work = work
        self.cover = _cover_file(metadata, work)

    def encode(self, pcm: Iterable[bytes], output: Path, tags: dict, marks: list[ff.ChapterMark], name: str) -> None:
        """Encode ``pcm`` into ``output`` (a temporary name the caller renames; ``name`` is the final one)."""
        spec = self._spec(Path(name), tags, marks, output)
        loudness = self.loudness
        loglevel = "info" if loudness is not None else "error"  # loudnorm reports at info level
        stderr = ff.run(ff.encode_args(spec), what=f"encoding {name}", stdin=pcm, loglevel=loglevel)
        if loudness is not None:
            loudness["normalization_type"] = ff.parse_loudnorm(stderr).get("normalization_type", "")
        if self.options.format == "opus" and self.cover is not None:
            _opus_cover(spec.output, self.metadata)

    def _spec(self, out: Path, tags: dict, marks: list[ff.ChapterMark], output: Path) -> ff.EncodeSpec:
        fmt = self.options.spec
        meta_file = None
        if fmt.tags:
            if fmt.name in ("flac", "opus"):
                # Vorbis comments written by us: ffmpeg's FLAC muxer writes no chapters, and its Ogg muxer
                # shifted them by a second in our tests once a filter was in the chain.
                tags = {**tags, **ff.vorbis_chapters(marks)}
                marks = []
            meta_file = self.work / f"{out.stem}.ffmetadata"
            meta_file.write_text(ff.ffmetadata(tags, marks if fmt.chapters else []), encoding="utf-8")
        filter_ = None
        if self.loudness is not None:
            lo = self.loudness
            filter_ = ff.loudnorm_filter(lo["target_i"], lo["target_tp"], lo["target_lra"], lo["measured"])
        return ff.EncodeSpec(
            muxer=fmt.muxer,
            codec=fmt.codec,
            output=output,
            bitrate=self.options.resolved_bitrate,
            metadata_file=meta_file,
            cover_file=self.cover if fmt.name in ("m4b", "mp3", "flac") else None,
            audio_filter=filter_,
            stream_language=iso639_2(self.metadata.language) if fmt.name == "m4b" else "",
            extra=list(fmt.extra),
        )


def _image_suffix(data: bytes) -> str | None:
    """JPEG or PNG by their magic bytes (EPUBs do mislabel covers); None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    return None


def _cover_file(metadata: Metadata, work: Path) -> Path | None:
    if not metadata.cover:
        return None
    suffix = _image_suffix(metadata.cover)
    if suffix is None:
        log.warning("cover (%s) left out: audiobook containers take JPEG or PNG", metadata.cover_type or "?")
        return None
    path = work / f"cover{suffix}"
    path.write_bytes(metadata.cover)
    return path


def _opus_cover(path: Path, metadata: Metadata) -> None:
    """Ogg has no attached-picture stream: Opus players read a METADATA_BLOCK_PICTURE comment."""
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    picture = Picture()
    picture.type = 3  # front cover
    picture.mime = "image/png" if _image_suffix(metadata.cover or b"") == ".png" else "image/jpeg"
    picture.desc = "Cover"
    picture.data = metadata.cover or b""
    audio = OggOpus(str(path))
    audio["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode("ascii")]
    audio.save()


def _write_json(path: Path, data: dict) -> None:
    atomic.write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
