"""Audio as the service sends it: a WAV header in front of streamed PCM, or PCM encoded on the fly by ffmpeg."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import SAMPLE_RATE
from .. import ffmpeg as ff
from ..outputs import FORMATS

BYTES_PER_FRAME = 2
UNKNOWN_SIZE = 0xFFFFFFFF
"""What a WAV header says for a length not known yet (audio streamed while it is made); players read to the end."""

SPEECH_FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg", "opus": "audio/ogg"}
"""OpenAI's response formats that this service speaks, with their media types. ``pcm`` is raw 24 kHz mono
16-bit little-endian samples, as OpenAI's is."""


def wav_header(frames: int | None) -> bytes:
    """The 44-byte header of a 24 kHz mono 16-bit PCM WAV of ``frames`` frames (``None``: not known yet)."""
    if frames is None:
        riff_size = data_size = UNKNOWN_SIZE
    else:
        data_size = frames * BYTES_PER_FRAME
        riff_size = 36 + data_size
        if riff_size > UNKNOWN_SIZE:
            raise ValueError(f"{frames} frames do not fit a RIFF WAV")
    byte_rate = SAMPLE_RATE * BYTES_PER_FRAME
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, byte_rate, BYTES_PER_FRAME, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def as_wav(pcm: Iterable[bytes], frames: int | None = None) -> Iterator[bytes]:
    """A WAV file's bytes: the header goes out with the first block of audio (never alone, so the first byte
    a listener gets is followed at once by sound)."""
    header = wav_header(frames)
    for block in pcm:
        if header:
            block, header = header + block, b""
        yield block
    if header:
        yield header


def encode(pcm: Iterable[bytes], response_format: str) -> Iterator[bytes]:
    """``pcm`` in one of ``SPEECH_FORMATS``; mp3 and opus are encoded by ffmpeg as the PCM arrives."""
    if response_format == "pcm":
        return iter(pcm)
    if response_format == "wav":
        return as_wav(pcm)
    spec = FORMATS[response_format]
    args = ff.encode_args(
        ff.EncodeSpec(spec.muxer, spec.codec, Path("pipe:1"), spec.default_bitrate, extra=["-flush_packets", "1"])
    )
    return ff.pipe(args, what=f"encoding speech as {response_format}", stdin=pcm)
