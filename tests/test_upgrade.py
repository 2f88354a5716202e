"""A job written by audiobook 0.1.0 (job.json version 1) loads, resumes and exports after the upgrade.

The job directory in tests/data/job-v1 was written by that version itself (see tests/data/README.md): one
chunk done, one that failed all its attempts and waits for a resume, the book file long gone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile

from audiobook import job as jobs
from audiobook import report, runner
from audiobook.engine import bundled

DATA = Path(__file__).resolve().parent / "data"

needs_bundled = pytest.mark.skipif(not bundled.is_installed(), reason="bundled model not installed ('[offline]')")


@pytest.fixture
def old_job(tmp_path: Path) -> Path:
    job_dir = tmp_path / "job-v1"
    shutil.copytree(DATA / "job-v1", job_dir)
    return job_dir


@needs_bundled
def test_a_version_1_job_is_read_as_version_2_without_writing(old_job: Path) -> None:
    before = (old_job / "job.json").read_bytes()
    job = jobs.load(old_job)
    assert job.upgraded_from == 1
    assert (job.settings.backend, job.settings.model, str(job.settings.voice)) == ("onnx", "bundled", "jf_gongitsune")
    assert job.settings.max_chunk_chars == 200 and job.selection == "all"
    assert job.output.options.format == "wav" and job.output.options.loudnorm is False
    assert [c.status for c in job.chunks] == ["done", "failed"]
    assert job.runs[0].chunks_done == 1 and job.runs[0].device == "cpu"
    state = report.status(old_job)  # a read-only command never rewrites the file
    assert state["chunks"] == {"pending": 0, "done": 1, "failed": 1}
    assert (old_job / "job.json").read_bytes() == before


@needs_bundled
@pytest.mark.slow
def test_a_version_1_job_resumes_and_exports_after_the_upgrade(old_job: Path, caplog: pytest.LogCaptureFixture) -> None:
    done_wav = (old_job / "wav" / "001-0000.wav").read_bytes()
    result = runner.resume(old_job, run=runner.RunOptions(device="cpu", workers=1, quiet=True))
    assert not result.failed and result.export is not None
    upgraded = json.loads((old_job / "job.json").read_text())
    assert upgraded["version"] == jobs.VERSION and upgraded["settings"]["voice"] == "jf_gongitsune"
    assert json.loads((old_job / "job.v1.json").read_text())["version"] == 1  # the old file is kept
    assert sum("upgraded job.json from version 1 to 2" in r.getMessage() for r in caplog.records) == 1

    # only the waiting chunk was synthesized, exactly as 0.1.0 would have made it
    assert (old_job / "wav" / "001-0000.wav").read_bytes() == done_wav
    assert (old_job / "wav" / "002-0000.wav").read_bytes() == (DATA / "job-v1-reference-002-0000.wav").read_bytes()
    assert [c["attempts"] for c in upgraded["chunks"]] == [1, 4]

    out = result.export.path
    assert out == old_job.parent / "tiny.wav"  # named after the book it was planned from
    assert soundfile.info(str(out)).frames == result.export.frames
    jobs.load(old_job)  # and it reads back as a version-2 job
    assert jobs.load(old_job).upgraded_from is None
