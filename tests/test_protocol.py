"""The pool-worker records: one JSON line each, read back exactly, anything else refused with a reason."""

from __future__ import annotations

import json

import pytest

from audiobook.engine.voices import VoiceSpec
from audiobook.protocol import Answer, Hello, ProtocolError, Request, WorkerConfig, decode, encode


def test_records_round_trip_as_single_lines() -> None:
    records = [
        Hello(ready=True, device="cpu", backend="onnx", model="bundled", load_s=1.5, pid=42),
        Hello(ready=False, error="no such model", error_kind="model"),
        Request(
            "003-0001", "Text with “quotes” and é.", "/j/wav/003-0001.wav", VoiceSpec.parse("a*0.7+b*0.3"), 1.2, "b", 9
        ),
        Answer("003-0001", True, frames=48000, paragraph_ends=(100, 2000), synth_s=1.25, phonemes=300),
        Answer.failure("x", "disk full", "disk_full"),
    ]
    for record in records:
        line = encode(record)
        assert "\n" not in line
        assert decode(type(record), line) == record
    assert json.loads(encode(records[2]))["voice"] == [["a", 0.7], ["b", 0.3]]


@pytest.mark.parametrize(
    ("kind", "line", "message"),
    [
        (Answer, "not json", "not JSON"),
        (Answer, "[]", "Answer must be a JSON object"),
        (Answer, '{"ok": true}', "Answer is missing 'id'"),
        (Answer, '{"id": "a", "ok": "yes"}', "Answer.ok: expected bool"),
        (Answer, '{"id": "a", "ok": true, "frames": 1.5}', "Answer.frames: expected int"),
        (Answer, '{"id": "a", "ok": true, "frames": true}', "Answer.frames: expected int"),
        (Answer, '{"id": "a", "ok": true, "paragraph_ends": [1, "2"]}', "expected a list of integers"),
        (Request, '{"id": "a", "text": "t", "out_wav": "o", "voice": "af_heart"}', "not a list of \\[voice, weight\\]"),
        (Hello, '{"ready": true, "load_s": "fast"}', "Hello.load_s: expected float"),
    ],
)
def test_malformed_lines_are_refused_with_the_reason(kind: type, line: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode(kind, line)


def test_integers_are_accepted_where_floats_are_expected() -> None:
    assert decode(Answer, '{"id": null, "ok": false, "synth_s": 2}').synth_s == 2.0


def test_worker_config_is_its_command_line() -> None:
    assert WorkerConfig("torch", "hexgrad/Kokoro-82M", "abc123", "cuda", 2).argv() == [
        *("--backend", "torch", "--model", "hexgrad/Kokoro-82M", "--device", "cuda"),
        *("--revision", "abc123", "--threads", "2"),
    ]
    assert WorkerConfig("onnx", "bundled").argv() == ["--backend", "onnx", "--model", "bundled", "--device", "cpu"]
    assert WorkerConfig("onnx", "bundled", lang="b").argv()[-2:] == ["--lang-code", "b"]  # G2P loads with the model
