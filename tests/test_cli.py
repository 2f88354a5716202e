"""The command line in-process (click's CliRunner): help, exit codes, the one-line errors, JSON outputs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from audiobook.cli import cli

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_example_epub import make_book  # noqa: E402

COMMANDS = ["inspect", "plan", "build", "resume", "status", "export", "voices", "pronounce", "words", "serve"]


@pytest.fixture(scope="module")
def example_epub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_book(tmp_path_factory.mktemp("example") / "keeper.epub")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"audiobook {command}" in result.output


def test_inspect_json_has_the_documented_shape(example_epub: Path) -> None:
    result = invoke("inspect", str(example_epub), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert set(data) >= {"title", "author", "language", "chapters"}
    assert data["title"] == "The Keeper of Small Lights" and data["author"] == "The audiobook project"
    narrated = [c["title"] for c in data["chapters"] if not c["skipped"]]
    assert narrated == [
        "Chapter 1: The Lamp on the Point",
        "Chapter 2: The Winter Without Oil",
        "Chapter 3: What the Boats Saw",
    ]
    skipped = {c["title"]: c["reason"] for c in data["chapters"] if c["skipped"]}
    assert skipped["Copyright"] == "copyright page" and skipped["Title Page"] == "title page"
    for chapter in data["chapters"]:
        assert set(chapter) >= {"index", "title", "chars", "words", "skipped", "reason"}


def test_inspect_table(example_epub: Path) -> None:
    result = invoke("inspect", str(example_epub))
    assert result.exit_code == 0
    assert "skipped: copyright page" in result.output and "Chapter 2: The Winter Without Oil" in result.output


def test_plan_writes_a_job_that_status_reads(tmp_path: Path, example_epub: Path) -> None:
    job_dir = tmp_path / "job"
    result = invoke(
        "plan", str(example_epub), "--job-dir", str(job_dir), "--max-chunk-chars", "300", "--chapters", "2-3"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((job_dir / "job.json").read_text())
    assert {c["chapter"] for c in data["chunks"]} == {2, 3}
    for chunk in data["chunks"]:
        text = (job_dir / chunk["text"]).read_text(encoding="utf-8")
        assert 0 < len(text) <= 300 and chunk["chars"] == len(text)
    status = invoke("status", str(job_dir), "--json")
    info = json.loads(status.output)
    assert info["chunks"] == {"pending": len(data["chunks"]), "done": 0, "failed": 0}
    assert info["output"] is None
    assert "chunks: 0 done" in invoke("status", str(job_dir)).output


def _one_error_line(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert "Traceback" not in result.output


def test_bad_inputs_are_one_line_and_exit_2(tmp_path: Path, example_epub: Path) -> None:
    missing = tmp_path / "missing.epub"
    _one_error_line(invoke("inspect", str(missing)), "no such file")
    junk = tmp_path / "junk.epub"
    junk.write_bytes(b"\x00\x01 not a zip")
    _one_error_line(invoke("inspect", str(junk)), "junk.epub")
    _one_error_line(invoke("plan", str(junk), "--job-dir", str(tmp_path / "j")), "junk.epub")
    assert not (tmp_path / "j" / "job.json").exists()
    _one_error_line(invoke("status", str(tmp_path)), "no job.json here")
    _one_error_line(invoke("resume", str(tmp_path)), "no job.json here")
    _one_error_line(invoke("export", str(tmp_path)), "no job.json here")
    for command in ("status", "resume", "export"):  # a job directory that is not there at all
        _one_error_line(invoke(command, str(tmp_path / "nowhere")), "nowhere: no job.json here")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / ".lock").exists()
    _one_error_line(invoke("plan", str(example_epub), "--job-dir", str(tmp_path / "k"), "--chapters", "99"), "99")


def test_planning_twice_into_one_directory_is_refused(tmp_path: Path, example_epub: Path) -> None:
    assert invoke("plan", str(example_epub), "--job-dir", str(tmp_path / "job")).exit_code == 0
    _one_error_line(invoke("plan", str(example_epub), "--job-dir", str(tmp_path / "job")), "already planned")


def test_export_of_an_unfinished_job_names_the_fix(tmp_path: Path, example_epub: Path) -> None:
    invoke("plan", str(example_epub), "--job-dir", str(tmp_path / "job"))
    _one_error_line(invoke("export", str(tmp_path / "job")), "audiobook resume")


def test_out_of_range_options_are_usage_errors(example_epub: Path) -> None:
    result = invoke("build", str(example_epub), "--speed", "3")
    assert result.exit_code == 2 and "0.5" in result.output


def test_voices_lists_the_models_voices(test_model_dir: Path) -> None:
    result = invoke("voices", "--model", str(test_model_dir))
    assert result.exit_code == 0, result.output
    assert "* af_test" in result.output and "  bf_test" in result.output


def test_unknown_voice_is_one_error_before_any_chunk_and_can_be_fixed(
    tmp_path: Path, example_epub: Path, test_model_dir: Path
) -> None:
    args = [
        "-q",
        "build",
        str(example_epub),
        "--job-dir",
        str(tmp_path / "job"),
        "--chapters",
        "4",
        "--model",
        str(test_model_dir),
        "--format",
        "wav",
        "--no-loudnorm",
        "--device",
        "cpu",
        "--workers",
        "1",
    ]
    _one_error_line(invoke(*args, "--voice", "af_nobody"), "voice 'af_nobody' not found; available: af_test")
    # nothing was synthesized, so the corrected voice needs no --allow-settings-change
    result = invoke(*args, "--voice", "bf_test")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "job" / "job.json").read_text())["settings"]["voice"] == "bf_test"


def test_the_same_command_with_relative_paths_resumes_without_complaint(
    tmp_path: Path, test_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-running the very command that crashed is the first thing people do; relative paths must match."""
    shutil.copytree(test_model_dir, tmp_path / "model")
    (tmp_path / "book.md").write_text("# Book\n\n## One\n\nA short chapter to read twice.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    args = ["-q", "build", "book.md", "--model", "./model", "--voice", "./model/voices/am_test.pt", "--format", "wav"]
    args += ["--no-loudnorm", "--device", "cpu", "--workers", "1"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "other settings" not in again.output
    monkeypatch.chdir(tmp_path / "model")  # and from another directory, with the same files named differently
    resumed = invoke("-q", "resume", "../book-audiobook", "--model", ".", "--voice", "voices/am_test.pt")
    assert resumed.exit_code == 0, resumed.output


def test_an_unknown_language_fails_at_once_and_writes_nothing(tmp_path: Path, example_epub: Path) -> None:
    _one_error_line(
        invoke("build", str(example_epub), "--job-dir", str(tmp_path / "job"), "--lang", "xx"),
        "language 'xx' is not supported by kokoro",
    )
    assert list(tmp_path.iterdir()) == []


def test_out_and_format_that_disagree_are_one_error(tmp_path: Path, example_epub: Path, test_model_dir: Path) -> None:
    args = ["build", str(example_epub), "--job-dir", str(tmp_path / "job"), "--model", str(test_model_dir)]
    _one_error_line(invoke(*args, "--format", "mp3", "--out", str(tmp_path / "b.wav")), "b.wav is a .wav file name")


def test_a_job_directory_that_cannot_be_made_is_one_error_line(tmp_path: Path, example_epub: Path) -> None:
    """An OSError from the system (here: a --job-dir under a plain file, which even root cannot create) is the
    user's to fix: one line, exit 2, no traceback."""
    (tmp_path / "a-file").write_text("not a directory")
    _one_error_line(invoke("plan", str(example_epub), "--job-dir", str(tmp_path / "a-file" / "job")), "a-file")
