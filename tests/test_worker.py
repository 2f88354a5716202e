"""The worker process: one-shot CLI, serve protocol, bad requests, a killed worker, reproducible audio."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import soundfile

from audiobook import worker
from audiobook.engine.voices import VoiceSpec
from audiobook.protocol import Answer, Hello, Request, encode

REPO_ROOT = Path(__file__).resolve().parent.parent

TIMEOUT = 240


def start_server(worker_command: list[str], worker_env: dict, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*worker_command, "--serve", *flags],
        cwd=REPO_ROOT,
        env=worker_env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def read_line(proc: subprocess.Popen, timeout: float = TIMEOUT) -> str:
    """The next stdout line, or fail the test (never hang) if none comes within ``timeout``."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        pytest.fail(f"no line from the worker within {timeout} s")
    return box[0]


@pytest.fixture(scope="module")
def server(worker_command: list[str], worker_env: dict, test_model_dir: Path):  # noqa: ANN201
    proc = start_server(
        worker_command,
        worker_env,
        "--model",
        str(test_model_dir),
        "--backend",
        "torch",
        "--device",
        "cpu",
        "--threads",
        "1",
    )
    hello = json.loads(read_line(proc))
    yield proc, hello
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def ask(proc: subprocess.Popen, line: str) -> dict:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return json.loads(read_line(proc))


def test_serve_says_hello_once_loaded(server, test_model_dir: Path) -> None:  # noqa: ANN001
    proc, hello = server
    assert set(hello) == {f.name for f in dataclasses.fields(Hello)}
    assert hello["ready"] is True
    assert (hello["device"], hello["backend"], hello["model"]) == ("cpu", "torch", str(test_model_dir))
    assert hello["pid"] == proc.pid and hello["load_s"] > 0


def test_serve_answers_requests_in_order(server, tmp_path: Path) -> None:  # noqa: ANN001
    proc, _ = server
    requests = [
        Request("c1", "One short chunk.", str(tmp_path / "c1.wav"), VoiceSpec.parse("af_test"), 1.0, "a", 7),
        Request(
            "c2",
            "Two paragraphs.\n\nHere.",
            str(tmp_path / "c2.wav"),
            VoiceSpec.parse("af_test*0.7+am_test*0.3"),
            1.5,
            "a",
            8,
        ),
        Request("c3", "Bonjour.", str(tmp_path / "c3.wav"), VoiceSpec.parse("bf_test"), lang="f"),
    ]
    for request in requests:
        answer = ask(proc, encode(request))
        assert set(answer) == {f.name for f in dataclasses.fields(Answer)}
        assert answer["id"] == request.id and answer["ok"] is True, answer
        info = soundfile.info(request.out_wav)
        assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
        assert answer["frames"] == info.frames
        assert answer["phonemes"] > 0 and answer["synth_s"] > 0 and answer["error_kind"] == ""
    assert len(answer["paragraph_ends"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.wav", "c2.wav", "c3.wav"]


def test_a_request_for_timings_gets_them_beside_its_wav(server, tmp_path: Path) -> None:  # noqa: ANN001
    from audiobook.timing import load

    proc, _ = server
    wav, timings = tmp_path / "t.wav", tmp_path / "t.timings.json"
    request = Request(
        "t", "Timed words.\n\nBonne nuit.", str(wav), VoiceSpec.parse("af_test"), out_timings=str(timings)
    )
    answer = ask(proc, encode(request))
    assert answer["ok"] is True and answer["timings"] == str(timings)
    stored = load(timings, soundfile.info(str(wav)).frames)
    assert stored is not None and stored.problems() == []
    assert [w.text for s in stored.sentences for w in s.words] == ["Timed", "words", "Bonne", "nuit"]
    untimed = ask(proc, encode(Request("u", "Plain.", str(tmp_path / "u.wav"), VoiceSpec.parse("af_test"))))
    assert untimed["ok"] is True and untimed["timings"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.timings.json", "t.wav", "u.wav"]


class NoDurations:
    """A backend whose model reports no durations (an ONNX export with audio as its only output)."""

    gives_durations = False

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.backend, name)


def test_a_model_without_durations_gives_audio_and_says_so_once(
    torch_backend,  # noqa: ANN001
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from audiobook.engine.core import Engine

    engine = Engine(NoDurations(torch_backend))
    answers = []
    for name in ("a", "b"):
        wav, timings = tmp_path / f"{name}.wav", tmp_path / f"{name}.timings.json"
        request = Request(name, "Plain words.", str(wav), VoiceSpec.parse("af_test"), out_timings=str(timings))
        answers.append(worker.synthesize(engine, request))
    assert [(a.ok, a.timings) for a in answers] == [(True, None), (True, None)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]
    assert sum("reports no durations" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("line", "expected_id", "error"),
    [
        ("this is not json", None, "bad request: not JSON"),
        ("[1, 2]", None, "Request must be a JSON object"),
        ('{"id": "m1", "text": "No output path."}', "m1", "Request is missing 'out_wav'"),
        (
            '{"id": "m2", "text": "Hi.", "voice": [["af_nope", 1.0]], "out_wav": "/tmp/x.wav"}',
            "m2",
            "voice 'af_nope' not found; available: af_test, am_test, bf_test (see `audiobook voices`)",
        ),
        (
            '{"id": "m3", "text": "Hi.", "voice": [["af_test", 1]], "speed": 3, "out_wav": "/tmp/x.wav"}',
            "m3",
            "speed 3.0 is out of range",
        ),
        (
            '{"id": "m4", "text": "Hi.", "voice": "af_test", "out_wav": "/tmp/x.wav"}',
            "m4",
            "Request.voice: not a list of [voice, weight] terms",
        ),
        ('{"id": "m5", "text": 7, "voice": [], "out_wav": "/tmp/x.wav"}', "m5", "Request.text: expected str"),
    ],
)
def test_bad_request_gets_an_error_answer(server, line: str, expected_id: str | None, error: str) -> None:  # noqa: ANN001
    proc, _ = server
    answer = ask(proc, line)
    assert answer["id"] == expected_id and answer["ok"] is False and answer["error_kind"] == "chunk"
    assert error in answer["error"]
    assert proc.poll() is None


def test_eof_ends_the_worker_cleanly_with_a_clean_channel(server) -> None:  # noqa: ANN001
    proc, _ = server
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    assert rest == ""  # every line was an answer; kokoro's and torch's chatter went to stderr


def test_one_shot_matches_serve_bit_for_bit(
    worker_command: list[str], worker_env: dict, test_model_dir: Path, tmp_path: Path
) -> None:
    """Two processes, two modes, one chunk: identical WAV bytes (resume relies on it)."""
    text = tmp_path / "in.txt"
    text.write_text("Same chunk, same seed.\n\nSame audio.", encoding="utf-8")
    flags = ["--model", str(test_model_dir), "--device", "cpu", "--threads", "1"]
    done = subprocess.run(
        [
            *worker_command,
            "--text-file",
            str(text),
            "--out-wav",
            str(tmp_path / "one.wav"),
            "--voice",
            "am_test",
            "--seed",
            "11",
            *flags,
        ],
        cwd=REPO_ROOT,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = done.stdout.splitlines()
    report = json.loads(line)
    assert report["ok"] is True and (report["device"], report["backend"]) == ("cpu", "torch")
    assert report["frames"] == soundfile.info(tmp_path / "one.wav").frames
    assert len(report["paragraph_ends"]) == 1 and report["load_s"] > 0 and report["synth_s"] > 0

    proc = start_server(worker_command, worker_env, *flags)
    try:
        assert json.loads(read_line(proc))["ready"] is True
        request = {  # the JSON form, written by hand: the protocol is a contract, not only our encoder
            "id": "x",
            "text": text.read_text(encoding="utf-8"),
            "voice": [["am_test", 1.0]],
            "out_wav": str(tmp_path / "served.wav"),
            "seed": 11,
        }
        answer = ask(proc, json.dumps(request))
        assert answer["ok"] is True
        assert (tmp_path / "served.wav").read_bytes() == (tmp_path / "one.wav").read_bytes()

        # Killed mid-request: the caller reads EOF instead of waiting forever.
        proc.stdin.write(
            encode(
                Request(
                    "k", "A longer chunk to be cut short. " * 8, str(tmp_path / "k.wav"), VoiceSpec.parse("am_test")
                )
            )
            + "\n"
        )
        proc.stdin.flush()
        threading.Timer(1.0, proc.kill).start()
        assert read_line(proc, timeout=60) == ""
        assert proc.wait(timeout=30) != 0
        assert not (tmp_path / "k.wav").exists()
    finally:
        proc.kill()


def test_failed_load_says_not_ready(worker_command: list[str], worker_env: dict, tmp_path: Path) -> None:
    done = subprocess.run(
        [*worker_command, "--serve", "--model", str(tmp_path), "--backend", "torch"],
        cwd=REPO_ROOT,
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    hello = json.loads(line)
    assert hello["ready"] is False and "has no config.json" in hello["error"] and hello["error_kind"] == "model"


@pytest.mark.parametrize(
    "argv",
    [
        ["--speed", "fast", "--text-file", "a", "--out-wav", "b"],
        ["--device", "tpu", "--serve"],
        ["--text-file", "only.txt"],
        ["--serve", "--threads", "0"],
    ],
)
def test_invalid_flags_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        worker.main(argv)
    assert stop.value.code == 2


def test_one_shot_failure_exits_1_with_a_json_error(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    text = tmp_path / "in.txt"
    text.write_text("Hello.", encoding="utf-8")
    status = worker.main(
        [
            "--text-file",
            str(text),
            "--out-wav",
            str(tmp_path / "o.wav"),
            "--model",
            str(tmp_path),
            "--backend",
            "torch",
            "--device",
            "cpu",
        ]
    )
    out = capfd.readouterr().out
    assert status == 1
    error = f"{tmp_path} has no config.json; a kokoro model directory holds config.json, one .pth file and voices/*.pt"
    assert json.loads(out) == {"ok": False, "error": error}


def test_help_has_an_example(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        worker.main(["--help"])
    assert "python -m audiobook.worker --serve" in capsys.readouterr().out


def test_script_shim_runs_from_a_checkout() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "kokoro_worker.py"), "--bogus"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "unrecognized arguments: --bogus" in done.stderr
