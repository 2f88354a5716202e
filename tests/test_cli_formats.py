"""Every native format through the command line: inspect, plan, a small end-to-end build, and bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import soundfile
from click.testing import CliRunner
from format_factory import fb2, make_docx, make_html
from pdf_typesetter import font_dir, typeset

from audiobook.cli import cli

TITLE, AUTHOR = "The Small Book", "Ann Author"
CHAPTERS = [
    ("Chapter One", ["The first lamp was lit at dusk.", "It burned until the morning came."]),
    ("Chapter Two", ["The boats came home one by one.", "Each captain waved at the light."]),
]


def make(kind: str, folder: Path) -> Path:
    if kind == "html":
        return make_html(folder / "small.html", TITLE, AUTHOR, CHAPTERS)
    if kind == "docx":
        return make_docx(folder / "small.docx", TITLE, AUTHOR, CHAPTERS)
    if kind == "fb2":
        path = folder / "small.fb2"
        path.write_bytes(fb2(TITLE, AUTHOR, CHAPTERS, notes=False))
        return path
    if font_dir() is None:
        pytest.skip("no DejaVu fonts for the PDF typesetter (apt install fonts-dejavu-core)")
    return typeset(folder / "small.pdf", TITLE, AUTHOR, CHAPTERS)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("kind", ["html", "docx", "fb2", "pdf"])
def test_inspect_and_plan_every_format(tmp_path, kind):
    book = make(kind, tmp_path)
    result = invoke("inspect", str(book), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["title"] == TITLE and data["author"] == AUTHOR
    assert [c["title"] for c in data["chapters"]][-2:] == ["Chapter One", "Chapter Two"]
    plan = invoke("plan", str(book), "--job-dir", str(tmp_path / "job"), "--chapters", "all")
    assert plan.exit_code == 0, plan.output
    job = json.loads((tmp_path / "job" / "job.json").read_text())
    texts = [(tmp_path / "job" / c["text"]).read_text(encoding="utf-8") for c in job["chunks"]]
    assert "The boats came home one by one." in " ".join(texts)


@pytest.mark.parametrize("kind", ["html", "docx", "fb2", pytest.param("pdf", marks=pytest.mark.slow)])
def test_build_end_to_end(tmp_path, kind, test_model_dir):
    book = make(kind, tmp_path)
    last = len(json.loads(invoke("inspect", str(book), "--json").output)["chapters"]) - 1
    out = tmp_path / "small.wav"
    result = invoke(
        "-q",
        "build",
        str(book),
        "--job-dir",
        str(tmp_path / "job"),
        "--out",
        str(out),
        "--model",
        str(test_model_dir),
        "--format",
        "wav",
        "--no-loudnorm",
        "--device",
        "cpu",
        "--workers",
        "1",
        "--max-chunk-chars",
        "200",
        "--chapters",
        str(last),
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "output.json").read_text())
    assert [c["title"] for c in meta["chapters"]] == ["Chapter Two"]
    assert soundfile.info(str(out)).frames > 0


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("junk.html", os.urandom(3000), "this is binary data, not HTML"),
        ("junk.docx", b"PK\x03\x04 not really a zip", "not a zip archive"),
        ("junk.fb2", b"<FictionBook><body>unclosed", "no readable text"),
        ("junk.pdf", b"%PDF-1.7\n garbage without an end", "truncated"),
    ],
)
def test_bad_files_are_one_error_line_and_nothing_is_written(tmp_path, name, data, fragment):
    path = tmp_path / name
    path.write_bytes(data)
    for command in ("inspect", "plan"):
        args = [command, str(path)] + (["--job-dir", str(tmp_path / "job")] if command == "plan" else [])
        result = invoke(*args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert lines[0].startswith(f"Error: {path}: ") and fragment in lines[0], lines[0]
    assert not (tmp_path / "job").exists()
