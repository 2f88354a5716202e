"""The job runner end to end with the real worker, the random-weight kokoro model and real ffmpeg."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from audiobook import job as jobs
from audiobook import pool, report, runner
from audiobook.errors import JobError, ModelError, SynthesisError
from audiobook.export import export_job
from audiobook.outputs import OutputChanges
from audiobook.settings import SettingsRequest

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
def given(test_model_dir: Path) -> SettingsRequest:
    return SettingsRequest(backend="torch", model=str(test_model_dir), max_chunk_chars=200, seed=7)


def wav_output(out: Path | None = None) -> OutputChanges:
    return OutputChanges(format="wav", loudnorm=False, out=out)


def run_opts(**kw) -> runner.RunOptions:
    return runner.RunOptions(device="cpu", quiet=True, **kw)


def test_build_writes_audio_output_json_and_status(tmp_path: Path, book: Path, given: SettingsRequest) -> None:
    result = runner.build(book, tmp_path / "job", given, None, wav_output(tmp_path / "out.wav"), run_opts())
    assert not result.failed
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert info.samplerate == 24000 and info.channels == 1
    job = jobs.load(tmp_path / "job")
    assert all(c.status == "done" and c.attempts == 1 for c in job.chunks)
    assert [c.title for c in job.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert job.settings.backend == "torch" and job.settings.model == given.model
    assert str(job.settings.voice) == "af_test"  # the model's default, recorded so a resume cannot drift
    meta = json.loads((tmp_path / "output.json").read_text())
    assert [c["title"] for c in meta["chapters"]] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert meta["backend"] == "torch" and meta["device"] == "cpu" and meta["voice"] == "af_test"
    assert meta["duration_s"] == pytest.approx(info.frames / 24000, abs=0.05)
    state = report.status(tmp_path / "job")
    assert state["chunks"] == {"pending": 0, "done": len(job.chunks), "failed": 0}
    assert state["output"] == str(tmp_path / "out.wav")

    # another format without --out goes to its own default name; the WAV given with --out stays
    flac = export_job(tmp_path / "job", OutputChanges(format="flac", loudnorm=False))
    assert flac.path == tmp_path / "small.flac" and (tmp_path / "out.wav").exists()
    assert flac.frames == info.frames


def test_resume_redoes_only_an_edited_chunk(tmp_path: Path, book: Path, given: SettingsRequest) -> None:
    runner.build(book, tmp_path / "job", given, None, wav_output(tmp_path / "out.wav"), run_opts())
    before = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in jobs.load(tmp_path / "job").chunks}
    edited = sorted(before)[1]
    text_file = tmp_path / "job" / "chunks" / f"{edited}.txt"
    # an editor that saves Windows line endings: still one edit, synthesized once
    text_file.write_bytes((text_file.read_text() + " Edited.").replace("\n", "\r\n").encode())
    result = runner.resume(tmp_path / "job", run=run_opts())
    assert not result.failed
    after = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in result.job.chunks}
    assert [cid for cid in before if before[cid] != after[cid]] == [edited]
    assert jobs.verify(jobs.load(tmp_path / "job")) == []  # and it stays done


def test_changed_settings_are_refused_without_the_flag(tmp_path: Path, book: Path, given: SettingsRequest) -> None:
    runner.build(book, tmp_path / "job", given, None, wav_output(tmp_path / "out.wav"), run_opts())
    with pytest.raises(JobError, match="other settings .*speed 1.0 -> 1.3.*--allow-settings-change"):
        runner.resume(tmp_path / "job", SettingsRequest(speed=1.3), run=run_opts())
    result = runner.resume(tmp_path / "job", SettingsRequest(speed=1.3), run=run_opts(), allow_settings_change=True)
    assert result.job.settings.speed == 1.3 and all(c.attempts == 2 for c in result.job.chunks)


def test_a_chunk_that_always_fails_is_reported_and_the_rest_finish(
    tmp_path: Path, book: Path, given: SettingsRequest
) -> None:
    runner.plan(book, tmp_path / "job", given)
    job = jobs.load(tmp_path / "job")
    bad = job.chunks[1]
    (tmp_path / "job" / "wav" / f"{bad.id}.wav").mkdir()  # its WAV can never be put in place
    result = runner.resume(tmp_path / "job", output=wav_output(tmp_path / "out.wav"), run=run_opts())
    assert [c.id for c in result.failed] == [bad.id]
    assert result.export is None and not (tmp_path / "out.wav").exists()
    job = jobs.load(tmp_path / "job")
    failed = job.chunk(bad.id)
    assert failed.status == "failed" and failed.attempts == pool.MAX_ATTEMPTS and failed.error
    assert all(c.status == "done" for c in job.chunks if c.id != bad.id)
    assert report.status(tmp_path / "job")["failures"][0]["id"] == bad.id

    (tmp_path / "job" / "wav" / f"{bad.id}.wav").rmdir()  # the cause is fixed: resume retries it alone
    done_before = {c.id: c.attempts for c in job.chunks if c.id != bad.id}
    result = runner.resume(tmp_path / "job", run=run_opts())
    assert not result.failed and result.export is not None
    assert {c.id: c.attempts for c in result.job.chunks if c.id != bad.id} == done_before


def test_a_worker_thread_that_dies_ends_the_run_instead_of_hanging(
    tmp_path: Path, book: Path, given: SettingsRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS refusing a new process (EAGAIN) costs attempts and is reported; an unexpected error in a worker
    thread ends the run with its message. Neither can leave the runner waiting forever. Fork refusal cannot
    be caused for real here, so starting a worker is what is replaced."""

    def refuse(self, timeout: float = 0):  # noqa: ANN001, ANN202
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(pool.WorkerProcess, "start", refuse)
    runner.plan(book, tmp_path / "job", given)
    result = runner.resume(tmp_path / "job", output=wav_output(), run=run_opts(workers=1))
    assert len(result.failed) == len(result.job.chunks)
    assert all("Resource temporarily unavailable" in c.error for c in result.failed)

    def broken(self, timeout: float = 0):  # noqa: ANN001, ANN202
        raise ValueError("a bug in the worker start-up")

    monkeypatch.setattr(pool.WorkerProcess, "start", broken)
    with pytest.raises(SynthesisError, match="a bug in the worker start-up"):
        runner.resume(tmp_path / "job", run=run_opts(workers=1))
    assert jobs.load(tmp_path / "job").pending()


def test_a_model_that_is_not_there_fails_before_anything_is_written(tmp_path: Path, book: Path) -> None:
    request = SettingsRequest(backend="torch", model=str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere"):
        runner.build(book, tmp_path / "job", request, None, wav_output(), run_opts())
    assert not (tmp_path / "job").exists()


def test_a_model_that_cannot_load_stops_the_run_once(tmp_path: Path, book: Path, test_model_dir: Path) -> None:
    """Its voices are listed, so the plan is made; every worker would fail to load it, so the first one stops
    the run (no chunk is charged an attempt) and the job waits, resumable, for a working model."""
    broken = tmp_path / "broken-model"
    shutil.copytree(test_model_dir, broken)
    next(broken.glob("*.pth")).write_bytes(b"not a checkpoint")
    request = SettingsRequest(backend="torch", model=str(broken), max_chunk_chars=200)
    with pytest.raises(ModelError, match="could not load the model"):
        runner.build(book, tmp_path / "job", request, None, wav_output(), run_opts())
    job = jobs.load(tmp_path / "job")
    assert len(job.pending()) == len(job.chunks) and all(c.attempts == 0 for c in job.chunks)


def test_failed_assembly_keeps_everything_and_export_redoes_only_it(
    tmp_path: Path, book: Path, given: SettingsRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken-ffmpeg"
    broken.write_text("#!/bin/sh\necho 'simulated encoder failure' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("AUDIOBOOK_FFMPEG", str(broken))
    with pytest.raises(Exception, match="simulated encoder failure"):
        runner.build(book, tmp_path / "job", given, None, wav_output(tmp_path / "out.wav"), run_opts())
    job = jobs.load(tmp_path / "job")
    assert all(c.status == "done" for c in job.chunks)
    wavs = {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in job.chunks}
    monkeypatch.delenv("AUDIOBOOK_FFMPEG")
    result = export_job(tmp_path / "job")
    assert result.path == tmp_path / "out.wav" and result.path.exists()
    assert {c.id: (tmp_path / "job" / c.wav).stat().st_mtime_ns for c in jobs.load(tmp_path / "job").chunks} == wavs


# ---- SIGKILL at random moments ---------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "audiobook.cli", "-q", *args]


def _build_args(book: Path, job_dir: Path, out: Path, given: SettingsRequest) -> list[str]:
    return [
        *("build", str(book), "--job-dir", str(job_dir), "--out", str(out), "--format", "wav", "--no-loudnorm"),
        *("--backend", given.backend, "--model", given.model, "--device", "cpu"),
        *("--max-chunk-chars", str(given.max_chunk_chars), "--seed", str(given.seed)),
    ]


def _done_count(job_dir: Path) -> tuple[int, int]:
    """(chunks done, chunks in all) from job.json as it is on disk now; (0, 0) before it exists."""
    try:
        chunks = json.loads((job_dir / "job.json").read_text())["chunks"]
    except (OSError, ValueError, KeyError):
        return 0, 0
    return sum(c["status"] == "done" for c in chunks), len(chunks)


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
def test_sigkill_at_random_moments_then_resume_gives_identical_bytes(
    tmp_path: Path, book: Path, given: SettingsRequest
) -> None:
    """The runner, or its workers and then the runner, are SIGKILLed at moments chosen by progress (a number
    of finished chunks, then a random fraction of a second into the next), so every machine gets its kills
    whatever its speed. The resumed book must be byte-identical to an uninterrupted build."""
    import random

    longer = tmp_path / "longer.md"
    longer.write_text(
        BOOK.replace("\n\n## Chapter Two", "\n\n" + "The tide turned twice that night. " * 12 + "\n\n## Chapter Two")
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    reference = tmp_path / "reference.wav"
    subprocess.run(_cli(*_build_args(longer, tmp_path / "ref-job", reference, given)), check=True, env=env, timeout=600)
    job_dir, out = tmp_path / "job", tmp_path / "out.wav"
    rng = random.Random(20261123)
    kills = 0
    for round_no in range(20):
        args = _build_args(longer, job_dir, out, given) if round_no == 0 else ["resume", str(job_dir)]
        done, total = _done_count(job_dir)
        target = rng.randint(done, max(done, total - 2))
        proc = subprocess.Popen(_cli(*args), env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if _children(proc.pid) and _done_count(job_dir)[0] >= target:
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.0, 1.0))
        if rng.random() < 0.5:  # a worker dies; the runner retries it, then dies too
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            kills += 1
            time.sleep(rng.uniform(0.2, 2.0))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait(timeout=60)
        if kills >= 5:
            break
    subprocess.run(_cli("resume", str(job_dir)), check=True, env=env, timeout=600)
    assert kills >= 3
    assert out.read_bytes() == reference.read_bytes()
    job = jobs.load(job_dir)
    assert all(c.status == "done" for c in job.chunks)
    assert not list((job_dir / "wav").glob(".*"))


def test_ctrl_c_saves_state_and_hints_resume(tmp_path: Path, book: Path, given: SettingsRequest) -> None:
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


# ---- a full disk ---------------------------------------------------------------------------------

FULL_DISK_SCRIPT = """
set -u
mount -t tmpfs -o size={size} tmpfs {small}
cd {small}
{cli} build {book} --job-dir {small}/job --out {host}/out.wav {flags} 2> {host}/stop.err
echo $? > {host}/stop.rc
cp {small}/job/job.json {host}/stopped.json
ls -a {small}/job/wav > {host}/stopped.ls
mount -o remount,size=64m {small}
{cli} resume {small}/job 2> {host}/resume.err
echo $? > {host}/resume.rc
cp {small}/job/job.json {host}/resumed.json
"""


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_one_line_and_resume_finishes(
    tmp_path: Path, book: Path, given: SettingsRequest
) -> None:
    """A real tmpfs, too small for the book, mounted in a private mount namespace: the run stops at the first
    chunk that does not fit, says where, how much is needed and how much is free, and exits 75, charging no
    chunk an attempt; once there is room, resume finishes the book."""
    import shlex

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    reference_args = _build_args(book, tmp_path / "ref-job", tmp_path / "ref.wav", given)
    flags = reference_args[reference_args.index("--out") + 2 :]
    subprocess.run(_cli(*_build_args(book, tmp_path / "ref-job", tmp_path / "ref.wav", given)), check=True, env=env)
    ref = jobs.load(tmp_path / "ref-job")
    wavs = [(tmp_path / "ref-job" / c.wav).stat().st_size for c in ref.chunks]
    texts = sum((tmp_path / "ref-job" / c.text).stat().st_size for c in ref.chunks)
    # room for the plan, job.json twice over, logs, and about half of the chunks
    size = texts + 2 * (tmp_path / "ref-job" / "job.json").stat().st_size + 96 * 1024 + sum(wavs) // 2
    small = tmp_path / "small"
    small.mkdir()
    cli = " ".join(shlex.quote(a) for a in _cli())
    script = FULL_DISK_SCRIPT.format(
        size=size, small=small, host=tmp_path, cli=cli, book=book, flags=" ".join(map(shlex.quote, flags))
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not (tmp_path / "stop.rc").exists():
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {done.stderr.strip()[-300:]}")
    errors = [line for line in (tmp_path / "stop.err").read_text().splitlines() if line.startswith("Error:")]
    assert (tmp_path / "stop.rc").read_text().strip() == "75", (tmp_path / "stop.err").read_text()
    assert len(errors) == 1 and "disk full in" in errors[0] and f"audiobook resume {small}/job" in errors[0]
    assert re.search(r"needs about [\d.]+ [kMG]?B, [\d.]+ [kMG]?B is free; free some space", errors[0])
    assert "Traceback" not in (tmp_path / "stop.err").read_text()
    stopped = json.loads((tmp_path / "stopped.json").read_text())
    statuses = [c["status"] for c in stopped["chunks"]]
    assert "done" in statuses and "pending" in statuses  # what fitted is kept; what did not waits
    assert all(c["attempts"] == 0 for c in stopped["chunks"] if c["status"] != "done")
    assert not [n for n in (tmp_path / "stopped.ls").read_text().split() if n.startswith(".") and n not in (".", "..")]
    assert (tmp_path / "resume.rc").read_text().strip() == "0", (tmp_path / "resume.err").read_text()
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert all(c["status"] == "done" for c in resumed["chunks"])
    assert (tmp_path / "out.wav").read_bytes() == (tmp_path / "ref.wav").read_bytes()


def test_a_shared_pool_stays_warm_across_jobs_and_every_event_is_observed(
    tmp_path: Path, book: Path, given: SettingsRequest
) -> None:
    """What a service does: one pool, its model loaded once, serving job after job."""
    from audiobook.protocol import WorkerConfig

    config = WorkerConfig("torch", given.model, device="cpu", threads=1)
    seen: list[tuple[str, str]] = []
    shared = pool.LocalPool(config, tmp_path / "logs", pool.Layout(1, 1))
    try:
        run = run_opts(pool=shared, observe=lambda job, event: seen.append((job.dir.name, type(event).__name__)))
        for name in ("first", "second"):
            result = runner.build(book, tmp_path / name, given, None, wav_output(tmp_path / f"{name}.wav"), run)
            assert not result.failed and result.export is not None
        assert len(shared._processes) == 1  # the same worker served both books
    finally:
        shared.close()
    chunks = len(jobs.load(tmp_path / "first").chunks)
    assert seen.count(("first", "Done")) == seen.count(("second", "Done")) == chunks
    assert seen.count(("first", "Ready")) == 1 and ("second", "Ready") not in seen
