"""The ``audiobook`` command. Thin: each command parses options and calls one library function."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .devices import DEVICE_CHOICES
from .engine.g2p import LANG_CODES
from .engine.loading import BACKENDS
from .errors import AudiobookError, RunStopped
from .outputs import FORMATS, NO_SUBTITLES, READ_ALONG, SUBTITLE_FORMATS, OutputChanges
from .settings import CHUNK_CHARS_RANGE, MAX_SPEED, MIN_SPEED, SettingsRequest

if TYPE_CHECKING:
    from .runner import RunOptions

log = logging.getLogger("audiobook")

EXIT_USER_ERROR = 2
EXIT_FAILED_CHUNKS = 1
EXIT_STOPPED = 75
"""The run stopped for a reason outside the book (a full disk, a lost GPU): fix it, then resume (EX_TEMPFAIL)."""
EXIT_INTERRUPTED = 130


class UserError(click.ClickException):
    exit_code = EXIT_USER_ERROR


class StoppedError(click.ClickException):
    exit_code = EXIT_STOPPED


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors become one ``Error: ...`` line and exit status 2 (75 for a stopped run); Ctrl-C becomes
    a resume hint."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AudiobookError as e:
            log.debug("user error", exc_info=True)
            message = str(e).splitlines()[0] if not _verbose() else str(e)
            raise (StoppedError if isinstance(e, RunStopped) else UserError)(message) from e
        except OSError as e:  # a directory we may not write, a file that vanished: the user can fix it
            log.debug("system error", exc_info=True)
            where = f"{e.filename}: " if e.filename else ""
            raise UserError(f"{where}{e.strerror or e}") from e
        except KeyboardInterrupt:
            job_dir = kwargs.get("job_dir") or (default_job_dir(kwargs["book"]) if kwargs.get("book") else None)
            hint = f"; continue with: audiobook resume {job_dir}" if job_dir else ""
            click.echo(f"\nInterrupted: finished chunks are saved{hint}", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper


def _verbose() -> bool:
    return logging.getLogger("audiobook").getEffectiveLevel() <= logging.DEBUG


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audiobook")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs, and full details on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, warnings and errors only.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Turn ebooks into audiobooks with Kokoro-82M, on your own machine.

    \b
    Example:
      audiobook build book.epub            # plan, synthesize, write book.m4b
      audiobook resume book-audiobook/     # after a crash or Ctrl-C
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("audiobook").setLevel(level)
    ctx.obj = {"quiet": quiet}


# ---- shared options ------------------------------------------------------------------------------


def _options(*options: Callable[..., Any]) -> Callable[..., Any]:
    """One decorator applying several click options, listed in the order --help shows them."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


_synthesis_options = _options(
    click.option("--voice", help="Voice name, .pt pack, or blend like 'af_heart*0.7+af_bella*0.3'."),
    click.option("--speed", type=click.FloatRange(MIN_SPEED, MAX_SPEED), help="Speaking speed, 0.5-2.0 [1.0]."),
    click.option("--lang", help=f"Kokoro language code ({', '.join(LANG_CODES)}) or a tag like en-GB [the book's]."),
    click.option("--seed", type=int, help="Job seed for reproducible audio [0]."),
    click.option("--backend", type=click.Choice(BACKENDS), help="Synthesis backend [auto]."),
    click.option("--model", help="HF repo id, local model directory, .onnx file, 'bundled' or 'bundled-float32'."),
    click.option(
        "--max-chunk-chars",
        type=click.IntRange(*CHUNK_CHARS_RANGE),
        help="Largest chunk, in characters (the unit of resume and scheduling) [2000].",
    ),
    click.option(
        "--lexicon",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Pronunciation lexicon (WRITTEN = SPOKEN lines), copied into the job as lexicon.txt; "
        "your own ~/.config/audiobook/lexicon.txt applies too.",
    ),
)


_run_options = _options(
    click.option(
        "--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True, help="Where the model runs."
    ),
    click.option(
        "--workers",
        type=click.IntRange(1, 64),
        default=None,
        help="Worker processes [4 on a CUDA GPU, 1 on MPS, one per core up to 4 on a CPU].",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=None,
        help="CPU threads per worker [the cores shared out between the workers].",
    ),
)


_output_options = _options(
    click.option(
        "--format",
        "fmt",
        type=click.Choice([*FORMATS, READ_ALONG]),
        help=f"Output format [m4b]; {READ_ALONG}: the book's EPUB with the narration, highlighted as it is read.",
    ),
    click.option(
        "--out",
        "out_path",
        type=click.Path(dir_okay=True, path_type=Path),
        help="Output file (a folder with --split chapters) [<book>.<format> beside the job].",
    ),
    click.option("--split", type=click.Choice(["none", "chapters"]), help="One file per chapter."),
    click.option("--pause-paragraph", type=click.FloatRange(0, 10), help="Seconds after a paragraph."),
    click.option("--pause-title", type=click.FloatRange(0, 10), help="Seconds after a chapter title."),
    click.option("--pause-chapter", type=click.FloatRange(0, 30), help="Seconds between chapters."),
    click.option("--loudnorm/--no-loudnorm", default=None, help="EBU R128 loudness normalisation [on]."),
    click.option("--loudness", type=click.FloatRange(-40, -5), help="Loudness target in LUFS [-18]."),
    click.option(
        "--subtitles",
        type=click.Choice([*SUBTITLE_FORMATS, NO_SUBTITLES]),
        help="Sentence subtitles beside each audio file (book.srt beside book.m4b) [none].",
    ),
    click.option(
        "--subtitle-words/--no-subtitle-words",
        default=None,
        help="Word timing in the subtitles: WebVTT karaoke timestamps, one SRT cue per word [off].",
    ),
)


def _settings(flags: dict[str, Any]) -> SettingsRequest:
    """The synthesis flags (``_synthesis_options``) as a settings request."""
    names = ("backend", "model", "voice", "speed", "lang", "seed", "max_chunk_chars")
    lexicon = flags["lexicon"]
    return SettingsRequest(**{name: flags[name] for name in names}, lexicon=None if lexicon is None else str(lexicon))


def _output(flags: dict[str, Any]) -> OutputChanges:
    """The output flags (``_output_options``) as output changes."""
    split = flags["split"]
    return OutputChanges(
        format=flags["fmt"],
        split_chapters=None if split is None else split == "chapters",
        pause_paragraph=flags["pause_paragraph"],
        pause_title=flags["pause_title"],
        pause_chapter=flags["pause_chapter"],
        loudnorm=flags["loudnorm"],
        loudness_target=flags["loudness"],
        subtitles=flags["subtitles"],
        subtitle_words=flags["subtitle_words"],
        out=flags["out_path"],
    )


def _run(ctx: click.Context, flags: dict[str, Any]) -> RunOptions:
    """The run flags (``_run_options``) as run options."""
    from .runner import RunOptions

    return RunOptions(
        device=flags["device"], workers=flags["workers"], threads=flags["threads"], quiet=ctx.obj["quiet"]
    )


def _finish(result: Any) -> None:
    """Print where the book is, or name the failed chunks and exit non-zero."""
    if result.failed:
        ids = ", ".join(c.id for c in result.failed)
        click.echo(f"{len(result.failed)} chunk(s) failed: {ids}", err=True)
        for chunk in result.failed[:5]:
            click.echo(f"  {chunk.id}: {chunk.error}", err=True)
        click.echo(f"Fix the cause (see {result.job.dir}/logs), then: audiobook resume {result.job.dir}", err=True)
        sys.exit(EXIT_FAILED_CHUNKS)
    export = result.export
    click.echo(f"Wrote {export.path} ({_hms(export.duration_s)}, {len(export.chapters)} chapters)")


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


BOOK = click.Path(exists=False, dir_okay=False, path_type=Path)
JOB = click.Path(file_okay=False, path_type=Path)


def default_job_dir(book: Path) -> Path:
    """``./<book stem>-audiobook`` in the working directory."""
    return Path.cwd() / f"{book.stem}-audiobook"


# ---- commands ------------------------------------------------------------------------------------


@cli.command()
@click.argument("book", type=BOOK)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def inspect(book: Path, as_json: bool) -> None:
    """Show a book's chapters as they will be narrated, and what is skipped.

    \b
    Example:
      audiobook inspect book.epub
      audiobook inspect book.epub --json | jq '.chapters[] | select(.skipped)'
    """
    from .chapters import book_summary
    from .readers import read_book

    summary = book_summary(read_book(book))
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=1))
        return
    click.echo(f"{summary['title']}\nby {summary['author'] or 'unknown'} ({summary['language']})\n")
    for ch in summary["chapters"]:
        state = f"skipped: {ch['reason']}" if ch["skipped"] else _hms(ch.get("seconds", 0.0))
        click.echo(f"{ch['index']:>4}  {ch['title'][:56]:<56} {ch['chars']:>8,} chars {ch['words']:>7,} words  {state}")


@cli.command()
@click.argument("book", type=BOOK)
@click.option("--job-dir", type=JOB, help="Where to write the job [./<book>-audiobook].")
@click.option(
    "--chapters",
    "selection",
    default="all",
    show_default=True,
    help="Chapters to narrate, as `inspect` numbers them: all, 1-3,7, or everything (skipped too).",
)
@_synthesis_options
@_user_errors
def plan(book: Path, job_dir: Path | None, selection: str, **flags: Any) -> None:
    """Write a job directory (job.json and one text file per chunk) without synthesizing.

    Read or edit the chunk texts, then run `audiobook resume JOB_DIR`.

    \b
    Example:
      audiobook plan book.epub --job-dir book-job --chapters 1-3
      $EDITOR book-job/chunks/001-0000.txt
      audiobook resume book-job
    """
    from .runner import plan as plan_job

    job = plan_job(book, job_dir or default_job_dir(book), _settings(flags), selection)
    click.echo(f"Planned {len(job.chunks)} chunks in {len(job.chapters)} chapters: {job.dir}")


@cli.command()
@click.argument("book", type=BOOK)
@click.option("--job-dir", type=JOB, help="Job directory [./<book>-audiobook].")
@click.option("--chapters", "selection", help="Chapters to narrate: all, 1-3,7, everything [all].")
@click.option(
    "--allow-settings-change",
    is_flag=True,
    help="Re-synthesize an existing job with new voice/speed/seed/model settings.",
)
@_synthesis_options
@_run_options
@_output_options
@click.pass_context
@_user_errors
def build(
    ctx: click.Context,
    book: Path,
    job_dir: Path | None,
    selection: str | None,
    allow_settings_change: bool,
    **flags: Any,
) -> None:
    """Make an audiobook: plan the book, synthesize every chunk, write the final file.

    Run it again (or `resume`) after a crash: finished chunks are kept.

    \b
    Example:
      audiobook build book.epub                       # -> ./book.m4b
      audiobook build book.epub --voice af_heart --speed 1.1 --format mp3 --out ~/Books/book.mp3
      audiobook build book.epub --subtitles vtt       # -> ./book.m4b and ./book.vtt
    """
    from .runner import build as build_book

    job_dir = job_dir or default_job_dir(book)
    result = build_book(
        book, job_dir, _settings(flags), selection, _output(flags), _run(ctx, flags), allow_settings_change
    )
    _finish(result)


@cli.command()
@click.argument("job_dir", type=JOB)
@click.option(
    "--allow-settings-change",
    is_flag=True,
    help="Accept new voice/speed/seed/model settings and re-synthesize every chunk.",
)
@click.option("--retime", is_flag=True, help="Also redo finished chunks that have no timings (older jobs).")
@_synthesis_options
@_run_options
@_output_options
@click.pass_context
@_user_errors
def resume(ctx: click.Context, job_dir: Path, allow_settings_change: bool, retime: bool, **flags: Any) -> None:
    """Continue a job from its job.json: redo only what is missing, failed or edited.

    \b
    Example:
      audiobook resume book-audiobook/
      audiobook resume book-audiobook/ --workers 2
      audiobook resume book-audiobook/ --retime      # timings for chunks made by an older version
    """
    from .runner import resume as resume_job

    result = resume_job(
        job_dir, _settings(flags), _output(flags), _run(ctx, flags), allow_settings_change, retime=retime
    )
    _finish(result)


@cli.command()
@click.argument("job_dir", type=JOB)
@_output_options
@_user_errors
def export(job_dir: Path, **flags: Any) -> None:
    """Write a finished job in another format, layout or loudness, synthesizing nothing.

    \b
    Example:
      audiobook export book-audiobook/ --format mp3
      audiobook export book-audiobook/ --format opus --split chapters --out book-opus/
      audiobook export book-audiobook/ --subtitles srt --subtitle-words
      audiobook export book-audiobook/ --format epub3    # -> ./book.read-along.epub
    """
    from .export import export_job

    result = export_job(job_dir, _output(flags))
    click.echo(f"Wrote {result.path} ({_hms(result.duration_s)}, {len(result.chapters)} chapters)")


@cli.command()
@click.argument("job_dir", type=JOB)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def status(job_dir: Path, as_json: bool) -> None:
    """Show a job's progress: chunks by status, characters and audio done, failures, the final file.

    \b
    Example:
      audiobook status book-audiobook/
    """
    from .report import status as job_status

    info = job_status(job_dir)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=1))
        return
    counts = info["chunks"]
    pct = 100.0 * info["chars_done"] / info["chars_total"] if info["chars_total"] else 100.0
    click.echo(f"{info['title']} ({info['job_dir']})")
    click.echo(
        f"chunks: {counts['done']} done, {counts['pending']} pending, {counts['failed']} failed "
        f"of {info['chunks_total']}"
    )
    click.echo(f"text:   {info['chars_done']:,} of {info['chars_total']:,} characters ({pct:.1f}%)")
    total = info["audio_estimated_total_s"]
    click.echo(f"audio:  {_hms(info['audio_done_s'])} done" + (f", about {_hms(total)} in all" if total else ""))
    s = info["settings"]
    click.echo(
        f"model:  {s['backend']} {s['model'] or '(not resolved yet)'}, voice {s['voice'] or 'default'}, "
        f"speed {s['speed']}"
    )
    for failure in info["failures"]:
        click.echo(f"failed: {failure['id']} after {failure['attempts']} attempts: {failure['error']}")
    click.echo(f"output: {info['output'] or 'not written yet'}")


@cli.command()
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True)
@click.option("--model", help="HF repo id, local model directory, .onnx file, 'bundled' or 'bundled-float32'.")
@click.option("--lang", default="a", show_default=True, help="Language whose default voice to mark (* ).")
@_user_errors
def voices(backend: str, model: str | None, lang: str) -> None:
    """List the voices the resolved model offers (the default one is marked *), without loading it.

    \b
    Example:
      audiobook voices
      audiobook voices --model ./Kokoro-82M
    """
    from .engine.g2p import lang_code_for
    from .engine.loading import choose_model, default_voice, model_voices

    source = choose_model(backend, model)
    names = model_voices(source)
    default = default_voice(source, lang_code_for(lang), names)
    click.echo(f"{source.backend} model {source.model}:")
    for name in names:
        click.echo(f"{'*' if name == default else ' '} {name}")


# ---- pronunciation: what the model receives, and the words it does not know --------------------

LEXICON_FILE = click.Path(dir_okay=False, path_type=Path)


@cli.command()
@click.argument("text")
@click.option("--lang", default="a", show_default=True, help="Kokoro language code (a, b, e, f, h, i, j, p, z).")
@click.option(
    "--lexicon",
    "lexicon_path",
    type=LEXICON_FILE,
    help="A pronunciation lexicon, laid over your own (~/.config/audiobook/lexicon.txt).",
)
@click.option("--json", "as_json", is_flag=True, help='One JSON object: {"input", "spoken", "phonemes"}.')
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="Also speak it into this WAV file."
)
@click.option("--voice", help="Voice for --out [the language's default].")
@click.option("--model", help="Model for --out: HF repo id, local directory, .onnx file, or 'bundled'.")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="Backend for --out.",
)
@_user_errors
def pronounce(
    text: str,
    lang: str,
    lexicon_path: Path | None,
    as_json: bool,
    out_path: Path | None,
    voice: str | None,
    model: str | None,
    backend: str,
) -> None:
    """Show what the model will receive for TEXT: the text as it is spoken, and its exact phonemes.

    Numerals, abbreviations, units and the like are made narration-ready first, and your lexicon applied,
    exactly as in a build. Use it to check a name before a long synthesis, and to write a lexicon entry.

    \b
    Example:
      audiobook pronounce "CHAPTER XII. Mr. Holmes at 221B Baker St."
      audiobook pronounce "Hermione" --lexicon names.txt --out hermione.wav
      audiobook pronounce "Henry VIII" --json
    """
    from .lexicon import load_lexicons
    from .speech import prepare

    lexicon = load_lexicons(lexicon_path)
    prepared = prepare(text, lang, lexicon)
    if as_json:
        click.echo(
            json.dumps({"input": text, "spoken": prepared.spoken, "phonemes": prepared.phonemes}, ensure_ascii=False)
        )
    else:
        click.echo(f"input:    {text}\nspoken:   {prepared.spoken}")
        click.echo("phonemes: " + "\n          ".join(prepared.paragraphs))
    if out_path is not None:
        from .speech import speak

        seconds, spoken_by = speak(text, lang, lexicon, out_path, voice, model, backend)
        if not as_json:
            click.echo(f"Wrote {out_path} ({seconds:.1f} s, voice {spoken_by})")


@cli.command()
@click.argument("book", type=BOOK)
@click.option("--lang", help="Kokoro language code, a or b [from the book].")
@click.option(
    "--lexicon", "lexicon_path", type=LEXICON_FILE, help="A pronunciation lexicon: the words it covers are not listed."
)
@click.option(
    "--chapters", "chapter_spec", default="all", show_default=True, help="Chapters to read, as `inspect` numbers them."
)
@click.option("--limit", type=click.IntRange(1, None), help="Show only the N most frequent words.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_user_errors
def words(
    book: Path, lang: str | None, lexicon_path: Path | None, chapter_spec: str, limit: int | None, as_json: bool
) -> None:
    """List the book's words that are not in the G2P lexicon, most frequent first, with the phonemes espeak
    will give them. Most mispronounced names are here: fix them in a lexicon before a long synthesis.

    \b
    Example:
      audiobook words book.epub --limit 30
      audiobook pronounce "Hermione" --lexicon names.txt   # try a fix, then
      audiobook build book.epub --lexicon names.txt
    """
    from .chapters import select_chapters
    from .engine.g2p import lang_code_for
    from .lexicon import load_lexicons
    from .readers import read_book
    from .words import book_unknown_words

    parsed = read_book(book)
    code = lang_code_for(lang or parsed.metadata.language)
    found = book_unknown_words(parsed, select_chapters(parsed, chapter_spec), code, load_lexicons(lexicon_path))
    shown = found[:limit] if limit else found
    if as_json:
        click.echo(
            json.dumps(
                {"book": str(book), "lang": code, "unknown": len(found), "words": [w.to_dict() for w in shown]},
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    click.echo(f"{len(found)} words outside the G2P lexicon (espeak-ng reads them):")
    for word in shown:
        click.echo(f"{word.count:>6}  {word.word:<24} {word.phonemes}")


@cli.command()
@click.option(
    "--library",
    "library_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("audiobook-library"),
    show_default=True,
    help="The library directory: the queue, uploads, job directories and finished books.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; not loopback needs a token."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--token", help="Required of every request [generated and printed when --host is not loopback].")
@click.option("--max-upload-mb", type=click.IntRange(1, 10_000), default=200, show_default=True)
@_synthesis_options
@_run_options
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), help="Output format of new books [m4b].")
@click.option("--loudnorm/--no-loudnorm", default=None, help="EBU R128 loudness normalisation [on].")
@_user_errors
def serve(library_dir: Path, host: str, port: int, token: str | None, max_upload_mb: int, **flags: Any) -> None:
    """Serve a library: a web page and a JSON API to add books, follow them, listen, fix chunks, download.

    Books are converted one after another by workers that stay warm; the queue survives a restart.
    The synthesis options are the defaults for new books. Streamed speech: POST /v1/audio/speech.

    \b
    Example:
      audiobook serve --library ~/Audiobooks      # then open http://127.0.0.1:8765/
      audiobook serve --host 0.0.0.0 --port 8765  # prints the token other machines need
    """
    from .serve import ServiceOptions, token_for
    from .serve import serve as run_service

    options = ServiceOptions(
        settings=_settings(flags),
        output=OutputChanges(format=flags["fmt"], loudnorm=flags["loudnorm"]),
        device=flags["device"],
        workers=flags["workers"],
        threads=flags["threads"],
        max_upload_bytes=max_upload_mb * 2**20,
    )
    token = token_for(host, token)
    url_host = f"[{host}]" if ":" in host else host
    click.echo(f"audiobook serve: library {library_dir.resolve()}", err=True)
    click.echo(f"Open http://{url_host}:{port}/" + (f"?token={token}" if token else ""), err=True)
    if token:
        click.echo(f"API clients send: Authorization: Bearer {token}", err=True)
    run_service(library_dir, host, port, token, options)


def main() -> None:
    cli(prog_name="audiobook")


if __name__ == "__main__":
    main()
