"""The HTTP app: the JSON API, the event stream, metrics, streamed speech, and the web page.

Every route is one call into :class:`~.library.Library` (or its :class:`~.speech.Speaker`); the web page is
static HTML and JavaScript that reads the very same JSON API, so whatever the page shows, a client can ask
for. FastAPI on uvicorn: the request and response records below are the API's OpenAPI description
(``/openapi.json``), generated from the code that checks them, so the two cannot drift apart. The bundled
API explorers are off: they load their scripts from a CDN, and this service works offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError

from .. import __version__
from ..errors import (
    AudiobookError,
    BadInputError,
    JobError,
    NotFoundError,
    OutsideLibraryError,
    RunStopped,
    SynthesisError,
    TooLargeError,
)
from . import audio
from .guard import Guard
from .library import BookChoices, Library
from .speech import MAX_INPUT_CHARS

STATIC = Path(__file__).parent / "static"
NO_STORE = {"Cache-Control": "no-store"}
"""A chunk's audio changes at the same address when it is redone."""
KEEP_ALIVE_S = 15.0

STATUS_BY_ERROR: list[tuple[type[AudiobookError], int]] = [
    (NotFoundError, 404),
    (OutsideLibraryError, 403),
    (TooLargeError, 413),
    (JobError, 409),
    (SynthesisError, 500),
    (RunStopped, 503),
    (BadInputError, 400),
    (AudiobookError, 400),
]


# ---- records (the OpenAPI description) -----------------------------------------------------------


class BookOptions(BaseModel):
    """What a book added over the API may choose; anything left out takes the service's default."""

    chapters: str | None = Field(None, description="Chapters to narrate, as `audiobook inspect` numbers them.")
    voice: str | None = Field(None, description="A voice name or blend, e.g. af_heart*0.7+af_bella*0.3.")
    speed: float | None = Field(None, ge=0.5, le=2.0)
    lang: str | None = Field(None, description="Kokoro language code or language tag [the book's].")
    seed: int | None = None
    format: Literal["m4b", "mp3", "opus", "flac", "wav"] | None = Field(
        None, description="The audiobook's format [m4b]."
    )

    def choices(self) -> BookChoices:
        return BookChoices(**self.model_dump(include=set(BookOptions.model_fields)))


class AddBook(BookOptions):
    path: str = Field(description="A book file inside the library directory, relative to it.")


class Move(BaseModel):
    position: int = Field(ge=0, description="The book's new place in the queue; 0 is first.")


class EditChunk(BaseModel):
    text: str = Field(description="The chunk's new text; only this chunk is synthesized again.")


class ChunkCounts(BaseModel):
    pending: int
    done: int
    failed: int


class BookSummary(BaseModel):
    id: str
    title: str
    author: str
    book: str = Field(description="The book file, relative to the library directory.")
    state: Literal["queued", "running", "paused", "cancelled", "done", "failed", "error"]
    busy: bool = Field(description="Workers are on it: running, or paused with chunks still in flight.")
    error: str | None
    position: int
    added: str
    chunks: ChunkCounts
    chunks_total: int
    chars_done: int
    chars_total: int
    percent: float
    audio_done_s: float
    eta_s: int | None = Field(description="Seconds until this book is finished, books ahead of it included.")
    voice: str
    speed: float
    format: str
    download: str | None


class ChunkRow(BaseModel):
    id: str
    chapter: int
    status: Literal["pending", "done", "failed"]
    chars: int
    seconds: float | None
    attempts: int
    error: str | None
    audio: str | None


class ChunkDetail(ChunkRow):
    text: str


class Chapter(BaseModel):
    index: int
    title: str
    done: bool
    audio: str
    chunks: list[ChunkRow]


class BookDetail(BookSummary):
    chapters: list[Chapter]


class Status(BaseModel):
    version: str
    library: str
    ready: bool = Field(description="Whether the workers for streamed speech have loaded their model.")
    books: int


class Voices(BaseModel):
    voices: list[str]
    default: str


class SpeechRequest(BaseModel):
    """OpenAI's ``/v1/audio/speech`` request."""

    model: str = Field("kokoro", description="Accepted for compatibility; the service speaks with its own model.")
    input: str = Field(max_length=MAX_INPUT_CHARS)
    voice: str | None = Field(None, description="A voice of the model, or a blend [the service's default].")
    response_format: Literal["wav", "mp3", "opus", "pcm"] = "mp3"
    speed: float = 1.0
    lang: str | None = Field(None, description="Not in OpenAI's API: the language [the voice's].")


ADD_BOOK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": AddBook.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The book file."},
                    **BookOptions.model_json_schema()["properties"],
                },
            }
        },
    },
}


# ---- the app -------------------------------------------------------------------------------------


def create_app(library: Library, token: str | None = None) -> Guard:
    """The service's ASGI app for ``library``; ``token``, when given, is required of every request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(library.start)
        yield
        await run_in_threadpool(library.close)

    app = FastAPI(
        title="audiobook",
        version=__version__,
        description="Turn ebooks into audiobooks: a queue of books, their chapters and chunks, and streamed speech.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    _errors(app)
    _pages(app)
    _api(app, library)
    _speech(app, library)
    return Guard(app, token, library.options.max_upload_bytes + (1 << 20))


def _errors(app: FastAPI) -> None:
    @app.exception_handler(AudiobookError)
    async def audiobook_error(request: Request, error: AudiobookError) -> JSONResponse:
        status = next(code for kind, code in STATUS_BY_ERROR if isinstance(error, kind))
        return JSONResponse({"error": str(error).splitlines()[0]}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _one_line(error.errors()), "detail": error.errors()}, status_code=422)


def _pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # the script and style addresses carry a digest of their content, so a browser never runs a stale copy
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(STATIC.iterdir()))).hexdigest()[:12]
    html = (STATIC / "index.html").read_text(encoding="utf-8").replace("STATIC_VERSION", digest)

    @app.get("/", include_in_schema=False)
    @app.get("/books/{book_id}", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(html, headers=NO_STORE)


def _api(app: FastAPI, library: Library) -> None:
    @app.get("/api/status", response_model=Status)
    def status() -> dict[str, Any]:
        return {
            "version": __version__,
            "library": str(library.root),
            "ready": library.ready,
            "books": len(library.books()),
        }

    @app.get("/api/voices", response_model=Voices)
    def voices() -> dict[str, Any]:
        speaker = _speaker(library)
        return {"voices": speaker.voices(), "default": str(speaker.settings.voice)}

    @app.get("/api/books", response_model=list[BookSummary])
    def books() -> list[dict[str, Any]]:
        return library.books()

    @app.post("/api/books", response_model=BookSummary, status_code=201, openapi_extra={"requestBody": ADD_BOOK_BODY})
    async def add_book(request: Request) -> dict[str, Any]:
        """Add a book: JSON ``{"path": ...}`` for a file inside the library directory, or a multipart upload."""
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=16)
            try:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise BadInputError("upload", "no file in the form (send it as the field 'file')")
                options = _validated(BookOptions, {k: v for k, v in form.items() if k != "file" and v != ""})
                return await run_in_threadpool(library.upload, upload.filename, upload.file, options.choices())
            finally:
                await form.close()
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInputError("request", f'not JSON ({e}); send {{"path": ...}} or a multipart upload') from None
        body = _validated(AddBook, data)
        return await run_in_threadpool(library.add, body.path, body.choices())

    @app.get("/api/books/{book_id}", response_model=BookDetail)
    def book(book_id: str) -> dict[str, Any]:
        return library.book(book_id)

    @app.post("/api/books/{book_id}/pause", response_model=BookSummary)
    def pause(book_id: str) -> dict[str, Any]:
        """Stop a book, keeping its place: chunks in flight finish, the rest wait."""
        return library.pause(book_id)

    @app.post("/api/books/{book_id}/resume", response_model=BookSummary)
    def resume(book_id: str) -> dict[str, Any]:
        """Queue a paused, cancelled, failed or stopped book again."""
        return library.resume(book_id)

    @app.post("/api/books/{book_id}/cancel", response_model=BookSummary)
    def cancel(book_id: str) -> dict[str, Any]:
        """Take a book out of the work; its finished chunks stay, and resume brings it back."""
        return library.cancel(book_id)

    @app.post("/api/books/{book_id}/move", response_model=list[BookSummary])
    def move(book_id: str, body: Move) -> list[dict[str, Any]]:
        """Reorder the queue."""
        return library.move(book_id, body.position)

    @app.get("/api/books/{book_id}/chunks/{chunk_id}", response_model=ChunkDetail)
    def chunk(book_id: str, chunk_id: str) -> dict[str, Any]:
        return library.chunk(book_id, chunk_id)

    @app.put("/api/books/{book_id}/chunks/{chunk_id}", response_model=ChunkDetail)
    def edit_chunk(book_id: str, chunk_id: str, body: EditChunk) -> dict[str, Any]:
        """Replace a chunk's text: only this chunk is synthesized again, then the audiobook is rewritten."""
        return library.edit_chunk(book_id, chunk_id, body.text)

    @app.get("/api/books/{book_id}/chunks/{chunk_id}/audio", response_class=FileResponse)
    def chunk_audio(book_id: str, chunk_id: str) -> FileResponse:
        """A finished chunk's WAV (24 kHz mono)."""
        return FileResponse(library.chunk_wav(book_id, chunk_id), media_type="audio/wav", headers=NO_STORE)

    @app.get("/api/books/{book_id}/chapters/{index}/audio", response_class=StreamingResponse)
    def chapter_audio(book_id: str, index: int) -> StreamingResponse:
        """A finished chapter as WAV, assembled from its chunks as it is sent (pauses included)."""
        frames, pcm = library.chapter_audio(book_id, index)
        headers = {**NO_STORE, "Content-Length": str(len(audio.wav_header(frames)) + frames * audio.BYTES_PER_FRAME)}
        return StreamingResponse(audio.as_wav(pcm, frames), media_type="audio/wav", headers=headers)

    @app.get("/api/books/{book_id}/download", response_class=FileResponse)
    def download(book_id: str) -> FileResponse:
        """The finished audiobook."""
        path = library.output_file(book_id)
        return FileResponse(path, filename=f"{book_id}{path.suffix}", headers=NO_STORE)

    @app.get("/api/events", response_class=StreamingResponse)
    async def events() -> StreamingResponse:
        """Live progress as server-sent events: one JSON object per ``data:`` line (``type`` chunk, book or
        queue)."""
        listener = library.events.listen()
        return StreamingResponse(
            _event_stream(library, listener),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/metrics", response_class=Response)
    def metrics() -> Response:
        """Prometheus' text format."""
        return Response(library.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _speech(app: FastAPI, library: Library) -> None:
    responses = {200: {"content": {media: {} for media in audio.SPEECH_FORMATS.values()}}}

    @app.post("/v1/audio/speech", response_class=StreamingResponse, responses=responses)
    async def speech(body: SpeechRequest) -> StreamingResponse:
        """OpenAI-compatible speech, streamed while it is made. Waits at most for the book chunk in flight."""
        speaker = _speaker(library)
        stream = await run_in_threadpool(speaker.speak, body.input, body.voice, body.speed, body.lang)
        blocks = audio.encode(stream, body.response_format)
        try:  # a failure before the first byte is still an HTTP error
            first = await run_in_threadpool(next, blocks, b"")
        except BaseException:
            stream.close()
            raise
        return StreamingResponse(_prepend(first, blocks), media_type=audio.SPEECH_FORMATS[body.response_format])


async def _event_stream(library: Library, listener: Any) -> AsyncIterator[str]:
    _, queue = listener
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if message is None:
                return
            yield f"data: {json.dumps(message, ensure_ascii=False)}\n\n"
    finally:
        library.events.forget(listener)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _speaker(library: Library) -> Any:
    if library.speaker is None:
        raise JobError("the service is still starting")
    return library.speaker


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadInputError("request", _one_line(e.errors())) from None


def _one_line(errors: Any) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid request"
