"""The job runner end to end with the real worker, the random-weight kokoro model and real ffmpeg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from audiobook import job as jobs
from audiobook import runner
from audiobook.errors import JobError, SynthesisError
from audiobook.outputs import OutputOptions

BOOK = """# The Small Book

## Chapter One

The first lamp was lit at dusk. It burned until the morning came.

A second paragraph follows here, short and plain.

## Chapter Two

The boats came home one by one. Each captain waved at the light.

## Chapter Three

Winter ended. The keeper slept at last.
"""


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "small.md"
    path.write_text(BOOK, encoding="utf-8")
    return path


@pytest.fixture
def given(test_model_dir: Path) -> dict:
    return {"backend": "torch", "model": str(test_model_dir), "max_chunk_chars": 200, "seed": 7}


def wav_output() -> OutputOptions:
    return OutputOptions.from_dict({"format": "wav", "loudnorm": False})


def run_opts(**kw) -> runner.RunOptions:
    return runner.RunOptions(device="cpu", quiet=True, **kw)


def test_build_writes_audio_output_json_and_status(tmp_path: Path, book: Path, given: dict) -> None:
    result = runner.build(book, tmp_path / "job", given, None, wav_output(), tmp_path / "out.wav", run_opts())
    assert not result.failed
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert info.samplerate == 24000 and info.channels == 1
    job = jobs.load(tmp_path / "job")
    assert all(c.status == "done" and c.attempts == 1 for c in job.chunks)
    assert [c.title for c in job.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert job.settings.backend == "torch" and job.settings.model == str(given["model"])
    assert job.settings.voice == "af_test"  # the model's default, recorded so a resume cannot drift
    meta = json.loads((tmp_path / "output.json").read_text())
    assert [c["title"] for c in meta["chapters"]] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert meta["backend"] == "torch" and meta["device"] == "cpu" and meta["voice"] == "af_test"
    assert meta["duration_s"] == pytest.approx(info.frames / 24000, abs=0.05)
    state = runner.status(tmp_path / "job")
    assert state["chunks"] == {"pending": 0, "done": len(job.chunks), "failed": 0}
    assert state["output"] == str(tmp_path / "out.wav")

    # another format without --out goes to its own default name; the WAV given with --out stays
    flac = runner.export_job(tmp_path / "job", OutputOptions.from_dict({"format": "flac", "loudnorm": False}), None)
    assert flac.path == tmp_path / "small.flac" and (tmp_path / "out.wav").exists()
    assert flac.frames == info.frames


def test_resume_redoes_only_an_edited_chunk(tmp_path: Path, book: Path, given: dict) -> None:
    runner.build(book, tmp_path / "job", given, None, wav_output(), tmp_path / "out.wav", run_opts())
    before = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in jobs.load(tmp_path / "job").chunks}
    edited = sorted(before)[1]
    text_file = tmp_path / "job" / "chunks" / f"{edited}.txt"
    # an editor that saves Windows line endings: still one edit, synthesized once
    text_file.write_bytes((text_file.read_text() + " Edited.").replace("\n", "\r\n").encode())
    result = runner.resume(tmp_path / "job", {}, None, None, run_opts())
    assert not result.failed
    after = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in result.job.chunks}
    assert [cid for cid in before if before[cid] != after[cid]] == [edited]
    assert jobs.verify(jobs.load(tmp_path / "job")) == []  # and it stays done


def test_changed_settings_are_refused_without_the_flag(tmp_path: Path, book: Path, given: dict) -> None:
    runner.build(book, tmp_path / "job", given, None, wav_output(), tmp_path / "out.wav", run_opts())
    with pytest.raises(JobError, match="other settings .*speed 1.0 -> 1.3.*--allow-settings-change"):
        runner.resume(tmp_path / "job", {"speed": 1.3}, None, None, run_opts())
    result = runner.resume(tmp_path / "job", {"speed": 1.3}, None, None, run_opts(), allow_settings_change=True)
    assert result.job.settings.speed == 1.3 and all(c.attempts == 2 for c in result.job.chunks)


def test_a_chunk_that_always_fails_is_reported_and_the_rest_finish(tmp_path: Path, book: Path, given: dict) -> None:
    runner.plan(book, tmp_path / "job", jobs.Settings(**given))
    job = jobs.load(tmp_path / "job")
    bad = job.chunks[1]
    (tmp_path / "job" / "wav" / f"{bad.id}.wav").mkdir()  # its WAV can never be put in place
    result = runner.resume(tmp_path / "job", {}, wav_output(), tmp_path / "out.wav", run_opts())
    assert [c.id for c in result.failed] == [bad.id]
    assert result.export is None and not (tmp_path / "out.wav").exists()
    job = jobs.load(tmp_path / "job")
    failed = job.chunk(bad.id)
    assert failed.status == "failed" and failed.attempts == runner.MAX_ATTEMPTS and failed.error
    assert all(c.status == "done" for c in job.chunks if c.id != bad.id)
    assert runner.status(tmp_path / "job")["failures"][0]["id"] == bad.id

    (tmp_path / "job" / "wav" / f"{bad.id}.wav").rmdir()  # the cause is fixed: resume retries it alone
    done_before = {c.id: c.attempts for c in job.chunks if c.id != bad.id}
    result = runner.resume(tmp_path / "job", {}, None, None, run_opts())
    assert not result.failed and result.export is not None
    assert {c.id: c.attempts for c in result.job.chunks if c.id != bad.id} == done_before


def test_a_hung_worker_is_timed_out_and_replaced(tmp_path: Path, book: Path, given: dict) -> None:
    """SIGSTOP freezes the first worker for real; the runner must give up on it and start another."""
    runner.plan(book, tmp_path / "job", jobs.Settings(**given))
    job = jobs.load(tmp_path / "job")
    pool = runner._Pool(job, run_opts(workers=1, threads=1))
    original_start = pool._start_worker
    frozen = []

    def start_and_freeze_first(index: int):
        worker = original_start(index)
        if not frozen:
            os.kill(worker.pid, signal.SIGSTOP)
            frozen.append(worker.pid)
        return worker

    pool._start_worker = start_and_freeze_first
    timeouts = iter([3.0])  # the frozen worker gets 3 s; the healthy ones all the time they need
    pool._timeout = lambda chars: next(timeouts, 600.0)
    pool.run(job.pending())
    job = jobs.load(tmp_path / "job")
    assert all(c.status == "done" for c in job.chunks)
    assert job.chunks[0].attempts == 2
    with pytest.raises(ProcessLookupError):
        os.kill(frozen[0], 0)


def test_a_worker_thread_that_dies_ends_the_run_instead_of_hanging(
    tmp_path: Path, book: Path, given: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS refusing a new process (EAGAIN) costs attempts and is reported; an unexpected error in a worker
    thread ends the run with its message. Neither can leave the runner waiting forever. Fork refusal cannot
    be caused for real here, so starting a worker is what is replaced."""
    from audiobook.workers import Worker

    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(Worker, "start", refuse)
    runner.plan(book, tmp_path / "job", jobs.Settings(**given))
    result = runner.resume(tmp_path / "job", {}, wav_output(), None, run_opts(workers=1))
    assert len(result.failed) == len(result.job.chunks)
    assert all("Resource temporarily unavailable" in c.error for c in result.failed)

    def broken(self):
        raise ValueError("a bug in the worker start-up")

    monkeypatch.setattr(Worker, "start", broken)
    with pytest.raises(SynthesisError, match="a bug in the worker start-up"):
        runner.resume(tmp_path / "job", {}, None, None, run_opts(workers=1))
    assert jobs.load(tmp_path / "job").pending()


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path: Path, book: Path, given: dict) -> None:
    with pytest.raises(SynthesisError, match="could not load the model"):
        runner.build(
            book,
            tmp_path / "job",
            {**given, "model": str(tmp_path / "nowhere")},
            None,
            wav_output(),
            tmp_path / "out.wav",
            run_opts(),
        )
    assert jobs.load(tmp_path / "job").pending()  # planned, nothing lost, resumable


def test_failed_assembly_keeps_everything_and_export_redoes_only_it(
    tmp_path: Path, book: Path, given: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-ffmpeg"
    broken.write_text("#!/bin/sh\necho 'simulated encoder failure' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(broken))
    with pytest.raises(Exception, match="simulated encoder failure"):
        runner.build(book, tmp_path / "job", given, None, wav_output(), tmp_path / "out.wav", run_opts())
    job = jobs.load(tmp_path / "job")
    assert all(c.status == "done" for c in job.chunks)
    wavs = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in job.chunks}
    monkeypatch.delenv("AUDIOBOOK_FFMPEG")
    result = runner.export_job(tmp_path / "job", None, None)
    assert result.path == tmp_path / "out.wav" and result.path.exists()
    assert {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in jobs.load(tmp_path / "job").chunks} == wavs


# ---- SIGKILL at random moments ---------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "audiobook.cli", "-q", *args]


def _build_args(book: Path, job_dir: Path, out: Path, given: dict) -> list[str]:
    return [
        "build",
        str(book),
        "--job-dir",
        str(job_dir),
        "--out",
        str(out),
        "--format",
        "wav",
        "--no-loudnorm",
        "--backend",
        given["backend"],
        "--model",
        given["model"],
        "--device",
        "cpu",
        "--max-chunk-chars",
        str(given["max_chunk_chars"]),
        "--seed",
        str(given["seed"]),
    ]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_identical_bytes(tmp_path: Path, book: Path, given: dict) -> None:
    import random

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    reference = tmp_path / "reference.wav"
    subprocess.run(_cli(*_build_args(book, tmp_path / "ref-job", reference, given)), check=True, env=env, timeout=600)
    job_dir, out = tmp_path / "job", tmp_path / "out.wav"
    first_run = jobs.load(tmp_path / "ref-job").runs[0]
    # kill anywhere from process start to well inside the synthesis, whatever this machine's speed
    window = first_run["load_s"] + 0.6 * first_run["wall_s"]
    rng = random.Random(20261123)
    kills = 0
    for round_no in range(12):
        args = _build_args(book, job_dir, out, given) if round_no == 0 else ["resume", str(job_dir)]
        proc = subprocess.Popen(_cli(*args), env=env, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.3, window))
            break
        except subprocess.TimeoutExpired:
            workers = _children(proc.pid)
            if workers and rng.random() < 0.5:  # a worker dies; the runner retries it, then dies too
                for pid in workers:
                    os.kill(pid, signal.SIGKILL)
                kills += 1
                time.sleep(rng.uniform(0.2, 3.0))
            if proc.poll() is None:
                proc.kill()
                kills += 1
            proc.wait(timeout=60)
        if kills >= 6:
            break
    subprocess.run(_cli("resume", str(job_dir)), check=True, env=env, timeout=600)
    assert kills >= 3
    assert out.read_bytes() == reference.read_bytes()
    job = jobs.load(job_dir)
    assert all(c.status == "done" for c in job.chunks)
    assert not list((job_dir / "wav").glob(".*"))


def test_ctrl_c_saves_state_and_hints_resume(tmp_path: Path, book: Path, given: dict) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    job_dir = tmp_path / "job"
    # a shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt;
    # give the build the default disposition a terminal would
    proc = subprocess.Popen(
        _cli(*_build_args(book, job_dir, tmp_path / "out.wav", given)),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (job_dir / "logs").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"audiobook resume {job_dir}" in err
    assert "Traceback" not in err
    jobs.load(job_dir)  # state is readable
    subprocess.run(_cli("resume", str(job_dir)), check=True, env=env, timeout=600)
    assert (tmp_path / "out.wav").exists()


def test_worker_layout_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_cores", lambda: 8)
    assert runner.worker_layout(runner.RunOptions(device="cpu")) == (4, 2)
    assert runner.worker_layout(runner.RunOptions(device="cpu", workers=3)) == (3, 2)
    assert runner.worker_layout(runner.RunOptions(device="cpu", workers=2, threads=1)) == (2, 1)
    assert runner.worker_layout(runner.RunOptions(device="cuda"))[0] == runner.GPU_WORKERS
    assert runner.worker_layout(runner.RunOptions(device="mps"))[0] == 1
    monkeypatch.setattr(runner, "_cores", lambda: 2)
    assert runner.worker_layout(runner.RunOptions(device="cpu")) == (2, 1)
