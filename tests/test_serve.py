"""`audiobook serve` in-process: the ASGI app called through an HTTP client (Starlette's TestClient), with real
worker processes and the random-weight model. The real server in a subprocess is in test_serve_server.py."""

from __future__ import annotations

import contextlib
import io
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from epub_factory import billion_laughs, make_epub
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from audiobook import job as jobs
from audiobook import report
from audiobook.errors import TooLargeError
from audiobook.outputs import OutputChanges
from audiobook.serve.app import create_app
from audiobook.serve.guard import token_for
from audiobook.serve.library import Library, ServiceOptions
from audiobook.settings import SettingsRequest

BOOK = """# The Small Book

## Chapter One

The first lamp was lit at dusk. It burned until the morning came.

A second paragraph follows here, short and plain.

## Chapter Two

The boats came home one by one. Each captain waved at the light.
"""

TIMEOUT_S = 300


def service_options(model: Path, **overrides) -> ServiceOptions:  # noqa: ANN003
    settings = SettingsRequest(backend="torch", model=str(model), max_chunk_chars=200, seed=7)
    values = {
        "settings": settings,
        "output": OutputChanges(format="wav", loudnorm=False),
        "device": "cpu",
        "workers": 1,
        "threads": 1,
        "warm_up": False,
        **overrides,
    }
    return ServiceOptions(**values)


@contextlib.contextmanager
def running(root: Path, model: Path, token: str | None = None, **overrides) -> Iterator[TestClient]:  # noqa: ANN003
    library = Library(root, service_options(model, **overrides))
    with TestClient(create_app(library, token), base_url="http://127.0.0.1") as client:
        yield client


def wait_for(client: TestClient, book_id: str, ready, what: str) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        book = client.get(f"/api/books/{book_id}").json()
        if ready(book):
            return book
        time.sleep(0.2)
    pytest.fail(f"book {book_id} never got {what}: {book}")


def metrics(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, parsed by prometheus-client's own parser, by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def wav_frames(data: bytes) -> int:
    return soundfile.info(io.BytesIO(data)).frames


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "books").mkdir(parents=True)
    (root / "books" / "small.md").write_text(BOOK, encoding="utf-8")
    return root


def test_a_book_through_the_api(library_dir: Path, test_model_dir: Path) -> None:
    """Add by path -> progress -> chunks and chapters to listen to -> download -> edit one chunk -> only it is
    redone and the book written again; the job directory is an ordinary one; /metrics counts it all."""
    with running(library_dir, test_model_dir) as client:
        added = client.post("/api/books", json={"path": "books/small.md"})
        assert added.status_code == 201, added.text
        book = added.json()
        assert book["id"] == "small" and book["title"] == "The Small Book" and book["state"] in ("queued", "running")
        book = wait_for(client, "small", lambda b: b["state"] == "done", "done")
        job_dir = library_dir / "jobs" / "small"
        job = jobs.load(job_dir)
        assert book["chunks"] == {"pending": 0, "done": len(job.chunks), "failed": 0} and book["percent"] == 100.0
        assert [c["title"] for c in book["chapters"]] == ["Chapter One", "Chapter Two"]
        assert report.status(job_dir)["output"] == str(library_dir / "jobs" / "small.wav")  # the CLI sees it too

        first = book["chapters"][0]["chunks"][0]
        chunk_audio = client.get(first["audio"])
        assert chunk_audio.headers["content-type"] == "audio/wav"
        assert wav_frames(chunk_audio.content) == job.chunk(first["id"]).frames

        chapter = client.get(book["chapters"][0]["audio"])
        header, pcm = chapter.content[:44], chapter.content[44:]
        frames = struct.unpack("<I", header[40:44])[0] // 2
        assert header[:4] == b"RIFF" and len(pcm) == 2 * frames == int(chapter.headers["content-length"]) - 44
        chunk_frames = sum(job.chunk(cid).frames for cid in job.chapters[0].chunks)
        assert frames > chunk_frames  # the chunks plus the pauses after the title and paragraphs
        assert np.array_equal(  # the chapter starts with its first chunk's audio, sample for sample
            np.frombuffer(pcm[: 2 * job.chunk(first["id"]).frames], "<i2")[:1000],
            soundfile.read(str(job_dir / job.chunk(first["id"]).wav), dtype="int16")[0][:1000],
        )

        download = client.get(book["download"])
        assert download.status_code == 200
        assert download.content == (library_dir / "jobs" / "small.wav").read_bytes()
        assert 'filename="small.wav"' in download.headers["content-disposition"]

        before = {c.id: (c.attempts, (job_dir / c.wav).stat().st_mtime_ns) for c in job.chunks}
        edited = client.put(f"/api/books/small/chunks/{first['id']}", json={"text": "The first lamp was lit."})
        assert edited.status_code == 200 and edited.json()["text"] == "The first lamp was lit."
        assert client.get("/api/books/small").json()["state"] in ("queued", "running")
        wait_for(client, "small", lambda b: b["state"] == "done", "done again")
        after = {c.id: (c.attempts, (job_dir / c.wav).stat().st_mtime_ns) for c in jobs.load(job_dir).chunks}
        assert [cid for cid in before if before[cid] != after[cid]] == [first["id"]]
        assert client.get(book["download"]).content != download.content

        seen = metrics(client)
        labels = (("backend", "torch"), ("device", "cpu"))
        assert seen[("audiobook_chunks_done_total", labels)] == len(job.chunks) + 1
        assert seen[("audiobook_chunk_synthesis_seconds_count", labels)] == len(job.chunks) + 1
        characters = sum(c.chars for c in job.chunks) + len("The first lamp was lit.")
        assert seen[("audiobook_synthesized_characters_total", (*labels, ("kind", "book")))] == characters
        assert seen[("audiobook_synthesized_audio_seconds_total", (*labels, ("kind", "book")))] > 0
        assert seen[("audiobook_queue_books", (("state", "done"),))] == 1
        assert seen[("audiobook_queue_chunks", ())] == 0
        assert seen[("audiobook_worker_restarts_total", labels)] == 0
        assert ("audiobook_chunks_failed_total", labels) not in seen  # nothing failed: no series yet


@pytest.mark.slow
def test_pause_cancel_reorder_and_resume(library_dir: Path, test_model_dir: Path) -> None:
    """A book moved to the front goes next (the running one lets its chunk in flight finish); a cancelled book
    never runs; a paused one stops after its chunk in flight and finishes when resumed."""
    long_book = BOOK.replace(
        "\n## Chapter Two", "\n" + "The tide turned twice that night. " * 25 + "\n\n## Chapter Two"
    )
    (library_dir / "books" / "long.md").write_text(long_book, encoding="utf-8")
    (library_dir / "books" / "tiny.md").write_text("# Tiny\n\nOne short line.\n", encoding="utf-8")
    with running(library_dir, test_model_dir) as client:
        for name in ("long", "small", "tiny"):
            assert client.post("/api/books", json={"path": f"books/{name}.md"}).status_code == 201
        wait_for(client, "long", lambda b: b["state"] == "running", "running")
        order = client.post("/api/books/tiny/move", json={"position": 0}).json()
        assert [b["id"] for b in order] == ["tiny", "long", "small"]
        assert client.post("/api/books/small/cancel").json()["state"] == "cancelled"
        wait_for(client, "tiny", lambda b: b["state"] == "done", "done")
        assert client.get("/api/books/long").json()["state"] in ("queued", "running")

        wait_for(client, "long", lambda b: b["chunks"]["done"] >= 2, "two chunks done")
        paused = client.post("/api/books/long/pause").json()
        assert paused["state"] == "paused"
        settled = wait_for(client, "long", lambda b: not b["busy"], "settled")  # the chunk in flight finished
        assert settled["chunks"]["done"] - paused["chunks"]["done"] <= 1  # one worker: at most one in flight
        time.sleep(2.0)  # nothing else starts
        done = client.get("/api/books/long").json()["chunks"]["done"]
        assert done == settled["chunks"]["done"] < settled["chunks_total"]

        assert client.post("/api/books/long/resume").json()["state"] in ("queued", "running")
        wait_for(client, "long", lambda b: b["state"] == "done", "done")
        small = client.get("/api/books/small").json()
        assert small["state"] == "cancelled" and small["chunks"]["done"] == 0
        exported = {name: jobs.load(library_dir / "jobs" / name).output.exported for name in ("tiny", "long")}
        assert exported["tiny"] <= exported["long"]


def test_paths_and_uploads_that_are_refused(library_dir: Path, test_model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(BOOK, encoding="utf-8")
    (library_dir / "escape.md").symlink_to(outside)
    (library_dir / "linked").symlink_to(tmp_path, target_is_directory=True)
    (library_dir / "books" / "fine-link.md").symlink_to(library_dir / "books" / "small.md")
    bomb = make_epub(tmp_path / "bomb.epub", extra={"OEBPS/bomb.xhtml": b"\0" * (20 << 20)})
    laughs = make_epub(tmp_path / "laughs.epub", {"a.xhtml": billion_laughs()}, [("A", "a.xhtml", [])])
    with running(library_dir, test_model_dir, max_upload_bytes=64 * 1024) as client:

        def refused(status: int, fragment: str, **request) -> None:  # noqa: ANN003
            response = client.post("/api/books", **request)
            assert response.status_code == status, response.text
            assert fragment in response.json()["error"] and "\n" not in response.json()["error"]

        refused(403, "outside the library directory", json={"path": "../outside.md"})
        refused(403, "outside the library directory", json={"path": "books/../../outside.md"})
        refused(403, "outside the library directory", json={"path": str(outside)})
        refused(403, "symbolic link that leads outside", json={"path": "escape.md"})
        refused(403, "symbolic link that leads outside", json={"path": "linked/outside.md"})
        refused(404, "no such file", json={"path": "books/missing.md"})
        refused(400, "not a regular file", json={"path": "books"})
        refused(400, "path: Field required", json={"voice": "af_test"})
        refused(400, "not JSON", content=b"{nope", headers={"content-type": "application/json"})
        refused(400, "speed", json={"path": "books/small.md", "speed": 7})
        refused(400, "voice 'af_nobody' not found", json={"path": "books/small.md", "voice": "af_nobody"})

        refused(
            413, "big.md: larger than the upload limit", files={"file": ("big.md", b"# Big\n\n" + b"word " * 20000)}
        )
        huge = b"x" * (64 * 1024 + (1 << 20) + 1)  # past what any upload of this size needs, by its Content-Length
        refused(413, "request body is larger than the limit", files={"file": ("huge.md", huge)})
        refused(400, "unknown file type", files={"file": ("setup.exe", b"MZ\x90\x00")})
        refused(400, "not a zip archive", files={"file": ("garbage.epub", bytes(range(256)) * 8)})
        refused(400, "would inflate to 20 MiB", files={"file": ("bomb.epub", bomb.read_bytes())})
        refused(400, "declares XML entities", files={"file": ("laughs.epub", laughs.read_bytes())})
        refused(400, "no file in the form", data={"voice": "af_test"}, files={"other": ("x.md", b"x")})
        assert sorted(p.name for p in (library_dir / "uploads").iterdir()) == []  # refused files are not kept

        cross_site = {"origin": "http://evil.example"}
        refused(403, "another site", json={"path": "books/small.md"}, headers=cross_site)
        rebinding = client.get("/api/books", headers={"host": "evil.example:8765"})
        assert rebinding.status_code == 403 and "only to localhost" in rebinding.json()["error"]

        # a link that stays inside is fine; an uploaded name cannot climb out of uploads/
        assert client.post("/api/books", json={"path": "books/fine-link.md"}).status_code == 201
        climbing = client.post("/api/books", files={"file": ("../../../evil name?.md", BOOK.encode())})
        assert climbing.status_code == 201, climbing.text
        assert climbing.json()["book"] == "uploads/evil name.md"
        for book in client.get("/api/books").json():
            client.post(f"/api/books/{book['id']}/cancel")
        assert not list(tmp_path.glob("evil*")) and not list(library_dir.parent.glob("evil*"))


def test_an_upload_without_a_length_is_cut_off_at_the_limit(library_dir: Path, test_model_dir: Path) -> None:
    library = Library(library_dir, service_options(test_model_dir, max_upload_bytes=1000))
    with pytest.raises(TooLargeError, match="big.md: larger than the upload limit"):
        library.upload("big.md", io.BytesIO(b"x" * 5000))
    assert not list((library_dir / "uploads").glob("*"))  # nothing half-written is left


def test_a_token_is_required_when_one_is_set(library_dir: Path, test_model_dir: Path) -> None:
    assert token_for("127.0.0.1", None) is None and token_for("::1", None) is None
    assert token_for("localhost", None) is None and token_for("127.0.0.1", "mine") == "mine"
    assert len(token_for("0.0.0.0", None) or "") >= 32 and token_for("0.0.0.0", None) != token_for("0.0.0.0", None)
    with running(library_dir, test_model_dir, token="s3cret-token") as client:
        denied = client.get("/api/books")
        assert denied.status_code == 401 and "needs its token" in denied.json()["error"]
        assert client.get("/api/books", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/books", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        page = client.get("/?token=s3cret-token")
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert client.get("/api/books").status_code == 200  # the browser's cookie from now on
        assert client.get("/metrics").status_code == 200


def test_the_openapi_description_covers_the_api(library_dir: Path, test_model_dir: Path) -> None:
    with running(library_dir, test_model_dir) as client:
        spec = client.get("/openapi.json").json()
        page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body>")[0]
    paths = spec["paths"]
    for path in (
        "/api/books",
        "/api/books/{book_id}",
        "/api/books/{book_id}/pause",
        "/api/books/{book_id}/resume",
        "/api/books/{book_id}/cancel",
        "/api/books/{book_id}/move",
        "/api/books/{book_id}/chunks/{chunk_id}",
        "/api/books/{book_id}/chunks/{chunk_id}/audio",
        "/api/books/{book_id}/chapters/{index}/audio",
        "/api/books/{book_id}/download",
        "/api/events",
        "/metrics",
        "/v1/audio/speech",
    ):
        assert path in paths, path
    assert set(paths["/api/books"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "put" in paths["/api/books/{book_id}/chunks/{chunk_id}"]
    speech = spec["components"]["schemas"]["SpeechRequest"]["properties"]
    assert speech["response_format"]["enum"] == ["wav", "mp3", "opus", "pcm"]


def test_streamed_speech_in_every_format(library_dir: Path, test_model_dir: Path, engine) -> None:  # noqa: ANN001
    """OpenAI's request shape; the PCM is the very audio the engine streams for that text, voice and seed."""
    from audiobook.engine.streaming import pcm16, synthesize_streaming
    from audiobook.engine.voices import VoiceSpec

    text = "The keeper lit the lamp at dusk, and the boats came home."
    with running(library_dir, test_model_dir) as client:

        def speak(**body) -> bytes:  # noqa: ANN003
            response = client.post("/v1/audio/speech", json={"model": "tts-1", "input": text, **body})
            assert response.status_code == 200, response.text
            return response.content

        pcm = speak(voice="am_test", response_format="pcm")
        wav = speak(voice="am_test", response_format="wav")
        mp3 = speak(response_format="mp3")
        opus = speak(response_format="opus", speed=1.3)
        errors = [
            client.post("/v1/audio/speech", json={"input": text, "voice": "alloy"}),
            client.post("/v1/audio/speech", json={"input": text, "speed": 4.0}),
            client.post("/v1/audio/speech", json={"input": "   "}),
            client.post("/v1/audio/speech", json={"input": text, "response_format": "aac"}),
        ]
        seen = metrics(client)
    pieces: list[np.ndarray] = []
    synthesize_streaming(engine, text, VoiceSpec.parse("am_test"), 1.0, "a", 7, pieces.append)
    assert pcm == b"".join(pcm16(p) for p in pieces)
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt " and wav[44:] == pcm
    assert struct.unpack("<I", wav[24:28])[0] == 24000
    assert mp3[:3] == b"ID3" or mp3[:2] == b"\xff\xf3"
    assert opus[:4] == b"OggS" and b"OpusHead" in opus[:64]
    assert [r.status_code for r in errors] == [400, 400, 400, 422]
    assert "voice 'alloy' not found; available: af_test, am_test, bf_test" in errors[0].json()["error"]
    assert "speed 4.0 is out of range" in errors[1].json()["error"]
    labels = (("backend", "torch"), ("device", "cpu"))
    assert seen[("audiobook_speech_requests_total", labels)] == 4
    assert seen[("audiobook_speech_first_byte_seconds_count", labels)] == 4


def test_serve_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    import socket

    from click.testing import CliRunner

    from audiobook.cli import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--library", str(tmp_path / "lib"), "--port", str(port)])
    assert result.exit_code == 2
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "Traceback" not in result.output
