"""Streamed speech in the engine and the worker: how text is cut into pieces, and the growing PCM file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiobook import worker
from audiobook.engine.base import MAX_PHONEMES
from audiobook.engine.core import count_phonemes
from audiobook.engine.streaming import (
    FIRST_PIECE_PHONEMES,
    JOIN_S,
    pcm16,
    speech_pieces,
    synthesize_streaming,
    trim_join,
)
from audiobook.engine.voices import VoiceSpec
from audiobook.protocol import Request


@pytest.mark.parametrize(
    ("phonemes", "first", "expected"),
    [
        ("ʃˈɔɹt.", 24, ["ʃˈɔɹt."]),
        # the first piece ends at the last word boundary within 12 phonemes; the next may have 24
        ("ðə kˈipəɹ lˈɪt ðə lˈæmp æt dˈʌsk ænd wˈeɪtɪd.", 12, ["ðə kˈipəɹ", "lˈɪt ðə lˈæmp æt dˈʌsk", "ænd wˈeɪtɪd."]),
        # a sentence end is preferred when it keeps at least half of the allowed length
        ("wˈʌn tˈu. θɹˈi fˈɔɹ fˈaɪv sˈɪks.", 16, ["wˈʌn tˈu.", "θɹˈi fˈɔɹ fˈaɪv sˈɪks."]),
        # one word longer than allowed is cut
        ("abcdefghij klm", 4, ["abcd", "efghij", "klm"]),
    ],
)
def test_speech_pieces(phonemes: str, first: int, expected: list[str]) -> None:
    assert list(speech_pieces(phonemes, first)) == expected


def test_speech_pieces_double_up_to_the_model_limit_and_lose_nothing() -> None:
    words = " ".join(f"wˈɜɹd{n}" for n in range(400))
    pieces = list(speech_pieces(words))
    assert len(pieces[0]) <= FIRST_PIECE_PHONEMES
    assert all(len(p) <= min(FIRST_PIECE_PHONEMES * 2**k, MAX_PHONEMES) for k, p in enumerate(pieces))
    assert max(len(p) for p in pieces) > MAX_PHONEMES - 20  # the cap is reached
    assert " ".join(pieces) == words
    assert sum(count_phonemes(p) for p in pieces) == count_phonemes(words)


def test_a_streamed_request_writes_each_piece_before_the_wav(engine, tmp_path: Path) -> None:  # noqa: ANN001
    """The worker appends every piece's PCM to the stream file as it goes; at the end the file holds exactly the
    audio of the WAV, whatever was in the file before (a retry starts it afresh)."""
    stream = tmp_path / "speech.pcm"
    stream.write_bytes(b"left over from an attempt that crashed" * 100)
    text = "The keeper lit the lamp at dusk, and the boats came home one by one across the water."
    request = Request("s", text, str(tmp_path / "s.wav"), VoiceSpec.parse("af_test"), seed=3, stream=str(stream))
    answer = worker.synthesize(engine, request)
    assert answer.ok, answer.error
    wav, rate = soundfile.read(str(tmp_path / "s.wav"), dtype="int16")
    streamed = np.frombuffer(stream.read_bytes(), dtype="<i2")
    assert rate == 24000 and len(streamed) == len(wav) == answer.frames > 0
    assert np.array_equal(streamed, wav)
    # what a book chunk makes in one piece is streamed in several, the first one short
    pieces: list[np.ndarray] = []
    synthesize_streaming(engine, text, VoiceSpec.parse("af_test"), 1.0, "a", 3, pieces.append)
    assert engine.synthesize(text, VoiceSpec.parse("af_test"), seed=3).pieces == 1
    assert len(pieces) >= 3 and len(pieces[0]) < len(pieces[1])
    assert b"".join(pcm16(p) for p in pieces) == stream.read_bytes()


def test_pcm16_scales_and_clips() -> None:
    audio = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], dtype=np.float32)
    assert np.frombuffer(pcm16(audio), dtype="<i2").tolist() == [0, 16384, -16384, 32767, -32768, 32767]


def test_trim_join_shortens_the_padding_only_where_a_sentence_was_cut() -> None:
    silence, voice = np.zeros(9600, np.float32), np.full(2400, 0.5, np.float32)  # 0.4 s, 0.1 s
    audio = np.concatenate([silence, voice, silence])
    assert len(trim_join(audio, starts=True, ends=True)) == len(audio)
    keep = round(JOIN_S * 24000)
    assert len(trim_join(audio, starts=True, ends=False)) == 9600 + 2400 + keep
    assert len(trim_join(audio, starts=False, ends=False)) == keep + 2400 + keep
    assert np.array_equal(trim_join(silence, starts=False, ends=False), silence)
