"""Narration-ready text and lexicons wired into synthesis: the engine, the worker, the settings and the jobs.

What `audiobook pronounce` shows is what the engine feeds the model; a job records the normaliser version and
its lexicon; editing the lexicon and resuming redoes only the chunks whose words it touches; a job made under
another normaliser version says so once and carries on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_engine import Recording

from audiobook import job as jobs
from audiobook import runner, worker
from audiobook.cli import cli
from audiobook.engine.core import Engine, count_phonemes
from audiobook.engine.voices import VoiceSpec
from audiobook.errors import LexiconError
from audiobook.lexicon import parse
from audiobook.normalize import NORMALIZER_VERSION
from audiobook.outputs import OutputChanges
from audiobook.protocol import Request
from audiobook.settings import Settings, SettingsRequest, resolve
from audiobook.speech import prepare

BOOK = """# The Quillithorpe Papers

## Chapter I

Zorbulon met the keeper at the gate at 10:15. The lamp was lit and the night was calm and long.

## Chapter II

Quillithorpe waved from the boat. The tide came in slowly over the sand and the stones.

## Chapter III

The keeper slept until the morning, and nobody came to the door at all.
"""

NAMES = "Zorbulon = /zˈɔɹbjəlɑn/\nQuillithorpe = Quill-ith-orp\n"


@pytest.fixture
def names(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text(NAMES, encoding="utf-8")
    return path


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory of this test's own; its lexicon.txt is the user's lexicon."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "config" / "audiobook").mkdir(parents=True)
    return tmp_path / "config" / "audiobook" / "lexicon.txt"


# ---- the engine and the worker -------------------------------------------------------------------


def test_the_engine_feeds_the_model_what_pronounce_shows(torch_backend) -> None:  # noqa: ANN001
    text = "CHAPTER XII.\n\nHenry VIII met Zorbulon at 10:15."
    lexicon = parse(NAMES)
    backend = Recording(torch_backend)
    result = Engine(backend).synthesize(text, VoiceSpec.parse("af_test"), 1.0, "a", seed=0, lexicon=lexicon)
    prepared = prepare(text, "a", lexicon)
    assert backend.fed == prepared.pieces()
    assert prepared.phonemes.splitlines()[1].startswith("hˈɛnɹi ði ˈAθ mˈɛt zˈɔɹbjəlɑn")
    assert result.normalized.text == "CHAPTER twelve.\n\nHenry the eighth met [Zorbulon](/zˈɔɹbjəlɑn/) at ten fifteen."
    assert result.normalized.to_source(*_span(result.normalized.text, "eighth")) == _span(text, "VIII")


def _span(text: str, word: str) -> tuple[int, int]:
    start = text.index(word)
    return start, start + len(word)


def test_a_worker_request_carries_the_lexicon_entries_of_its_text(engine: Engine, tmp_path: Path) -> None:
    text = "Zorbulon waved to Quillithorpe."
    request = Request(
        id="c1",
        text=text,
        out_wav=str(tmp_path / "c1.wav"),
        voice=VoiceSpec.parse("af_test"),
        lexicon=parse(NAMES).touching(text).text(),
    )
    answer = worker.synthesize(engine, request)
    assert answer.ok, answer.error
    assert answer.phonemes == count_phonemes(prepare(text, "a", parse(NAMES)).phonemes)
    assert answer.phonemes != count_phonemes(prepare(text, "a").phonemes)


# ---- settings ------------------------------------------------------------------------------------


def test_settings_record_the_normalizer_and_the_lexicon(test_model_dir: Path, names: Path) -> None:
    request = SettingsRequest(backend="torch", model=str(test_model_dir))
    plain = resolve(request)
    assert plain.normalizer == NORMALIZER_VERSION and plain.lexicon == ""
    with_names = resolve(dataclasses.replace(request, lexicon=str(names)))
    assert with_names.lexicon == parse(NAMES).sha256()
    assert Settings.from_dict(with_names.to_dict()) == with_names


def test_a_job_from_before_the_normalizer_loads_as_made_without_one(test_model_dir: Path) -> None:
    data = resolve(SettingsRequest(backend="torch", model=str(test_model_dir))).to_dict()
    del data["normalizer"], data["lexicon"]
    old = Settings.from_dict(data)
    assert old.normalizer == "" and old.lexicon == ""


def test_a_bad_lexicon_fails_before_anything_is_written(tmp_path: Path, test_model_dir: Path) -> None:
    book = tmp_path / "papers.md"
    book.write_text(BOOK, encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("Zorbulon = /zorbulon/\n", encoding="utf-8")
    request = SettingsRequest(backend="torch", model=str(test_model_dir), lexicon=str(bad))
    with pytest.raises(LexiconError, match=rf"{bad}:1: 'o' is not in Kokoro's English phonemes"):
        runner.plan(book, tmp_path / "job", request)
    assert not (tmp_path / "job").exists()


def test_plan_copies_the_lexicon_into_the_job_and_a_missing_one_is_one_error_line(
    tmp_path: Path, test_model_dir: Path, names: Path
) -> None:
    book = tmp_path / "papers.md"
    book.write_text(BOOK, encoding="utf-8")
    flags = ["--backend", "torch", "--model", str(test_model_dir), "--max-chunk-chars", "200"]
    result = CliRunner().invoke(
        cli, ["plan", str(book), "--job-dir", str(tmp_path / "job"), *flags, "--lexicon", str(names)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "job" / "lexicon.txt").read_text(encoding="utf-8") == NAMES
    assert jobs.load(tmp_path / "job").settings.lexicon == parse(NAMES).sha256()
    missing = CliRunner().invoke(
        cli, ["plan", str(book), "--job-dir", str(tmp_path / "other"), *flags, "--lexicon", str(tmp_path / "no.txt")]
    )
    assert missing.exit_code == 2
    assert missing.output == f"Error: {tmp_path / 'no.txt'}: no such lexicon file\n"
    assert not (tmp_path / "other").exists()


# ---- jobs: a lexicon edit redoes only the chunks it touches ------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, test_model_dir: Path) -> Path:
    """A three-chapter job built once with the names lexicon; tests resume copies of it."""
    root = tmp_path_factory.mktemp("built")
    book = root / "papers.md"
    book.write_text(BOOK, encoding="utf-8")
    names = root / "names.txt"
    names.write_text(NAMES, encoding="utf-8")
    request = SettingsRequest(backend="torch", model=str(test_model_dir), max_chunk_chars=200, lexicon=str(names))
    result = runner.build(book, root / "job", request, None, _wav(), _run())
    assert not result.failed
    return root / "job"


def _wav() -> OutputChanges:
    return OutputChanges(format="wav", loudnorm=False)


def _run() -> runner.RunOptions:
    return runner.RunOptions(device="cpu", quiet=True, workers=1, threads=1)


def _copy(built: Path, tmp_path: Path) -> Path:
    job_dir = tmp_path / "copy" / "job"
    shutil.copytree(built, job_dir)
    return job_dir


def _wav_times(job_dir: Path) -> dict[str, int]:
    return {c.id: (job_dir / c.wav).stat().st_mtime_ns for c in jobs.load(job_dir).chunks}


def _chunk_with(job_dir: Path, word: str) -> str:
    job = jobs.load(job_dir)
    return next(c.id for c in job.chunks if word in job.chunk_text(c))


def test_a_built_job_records_what_each_chunk_was_made_with(built: Path) -> None:
    job = jobs.load(built)
    assert (built / "lexicon.txt").read_text(encoding="utf-8") == NAMES
    assert job.settings.lexicon == parse(NAMES).sha256() and job.settings.normalizer == NORMALIZER_VERSION
    lexicon = parse(NAMES)
    for chunk in job.chunks:
        assert chunk.normalizer == NORMALIZER_VERSION
        assert chunk.lexicon_entries == lexicon.fingerprint(job.chunk_text(chunk))
    assert sum(bool(c.lexicon_entries) for c in job.chunks) == 2  # the chunks with Zorbulon and Quillithorpe
    assert jobs.verify(job) == []


def test_editing_the_jobs_lexicon_redoes_only_the_chunks_it_touches(built: Path, tmp_path: Path) -> None:
    job_dir = _copy(built, tmp_path)
    before = _wav_times(job_dir)
    (job_dir / "lexicon.txt").write_text(NAMES.replace("Quill-ith-orp", "Quill-ee-thorp"), encoding="utf-8")
    result = runner.resume(job_dir, run=_run())
    assert not result.failed and result.export is not None
    after = _wav_times(job_dir)
    assert [cid for cid in before if before[cid] != after[cid]] == [_chunk_with(job_dir, "Quillithorpe")]
    assert result.job.settings.lexicon == parse((job_dir / "lexicon.txt").read_text()).sha256()
    assert jobs.verify(jobs.load(job_dir)) == []


def test_an_entry_in_the_users_lexicon_redoes_only_the_chunks_it_touches(
    built: Path, tmp_path: Path, user_config: Path
) -> None:
    job_dir = _copy(built, tmp_path)
    before = _wav_times(job_dir)
    user_config.write_text("keeper = /kˈipəɹ/\n", encoding="utf-8")  # chapters I and III say "keeper"
    result = runner.resume(job_dir, run=_run())
    after = _wav_times(job_dir)
    keeper = {c.id for c in result.job.chunks if "keeper" in result.job.chunk_text(c)}
    assert len(keeper) == 2 and {cid for cid in before if before[cid] != after[cid]} == keeper
    assert result.job.settings.lexicon == parse(NAMES).over(parse(user_config.read_text())).sha256()


def test_a_new_lexicon_on_resume_replaces_the_jobs_copy(built: Path, tmp_path: Path) -> None:
    job_dir = _copy(built, tmp_path)
    before = _wav_times(job_dir)
    new_names = tmp_path / "new-names.txt"
    new_names.write_text(NAMES.replace("/zˈɔɹbjəlɑn/", "/zˈɔɹbjulɑn/"), encoding="utf-8")
    result = runner.resume(job_dir, SettingsRequest(lexicon=str(new_names)), run=_run())
    after = _wav_times(job_dir)
    assert [cid for cid in before if before[cid] != after[cid]] == [_chunk_with(job_dir, "Zorbulon")]
    assert (job_dir / "lexicon.txt").read_text(encoding="utf-8") == new_names.read_text(encoding="utf-8")
    assert result.job.settings.lexicon == parse(new_names.read_text()).sha256()


def test_another_normalizer_version_is_reported_once_and_nothing_is_redone(
    built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_dir = _copy(built, tmp_path)
    data = json.loads((job_dir / "job.json").read_text())
    data["settings"]["normalizer"] = "0"
    for chunk in data["chunks"]:
        chunk["normalizer"] = "0"
    (job_dir / "job.json").write_text(json.dumps(data))
    before = _wav_times(job_dir)
    with caplog.at_level(logging.WARNING, logger="audiobook"):
        result = runner.resume(job_dir, run=_run())
    assert not result.failed and _wav_times(job_dir) == before
    said = [r.getMessage() for r in caplog.records if "normaliser" in r.getMessage()]
    assert len(said) == 1
    assert (
        f"were read with text normaliser version 0; this run uses text normaliser version {NORMALIZER_VERSION}"
        in (said[0])
    )
    assert result.job.settings.normalizer == NORMALIZER_VERSION
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="audiobook"):
        runner.resume(job_dir, run=_run())
    assert not [r for r in caplog.records if "normaliser" in r.getMessage()]
