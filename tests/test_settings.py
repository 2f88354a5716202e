"""The settings resolver: the one place defaults are applied, paths made absolute, voices and languages checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from audiobook import settings as settings_module
from audiobook.engine.voices import VoiceSpec
from audiobook.errors import JobError, ModelError
from audiobook.settings import Settings, SettingsRequest, changes, resolve


@pytest.fixture
def model(test_model_dir: Path) -> str:
    return str(test_model_dir)


def test_defaults_table(model: str) -> None:
    """Every audio setting a user leaves out, and where its default comes from."""
    resolved = resolve(SettingsRequest(model=model), None, "en-US")
    assert resolved == Settings(
        backend="torch",  # from the model: a directory is a torch model
        model=model,  # absolute
        voice=VoiceSpec.parse("af_test"),  # the model's default voice for the language
        speed=settings_module.DEFAULT_SPEED,
        lang="a",  # from the book's language
        seed=settings_module.DEFAULT_SEED,
        max_chunk_chars=2000,  # the chunker's measured default
        revision=None,  # local models have no hub revision
    )
    assert resolve(SettingsRequest(model=model), None, "en-GB").voice == VoiceSpec.parse("bf_test")


@pytest.mark.parametrize(
    ("given", "field", "expected"),
    [
        (SettingsRequest(speed=1.25), "speed", 1.25),
        (SettingsRequest(seed=9), "seed", 9),
        (SettingsRequest(lang="en-gb"), "lang", "b"),
        (SettingsRequest(lang="b"), "lang", "b"),
        (
            SettingsRequest(voice="am_test*2+af_test"),
            "voice",
            VoiceSpec((("am_test", 0.666667), ("af_test", 0.333333))),
        ),
        (SettingsRequest(max_chunk_chars=500), "max_chunk_chars", 500),
    ],
)
def test_given_values_win(model: str, given: SettingsRequest, field: str, expected: object) -> None:
    resolved = resolve(dataclasses.replace(given, model=model), None, "en")
    assert getattr(resolved, field) == expected


def test_recorded_values_are_kept_and_not_checked_again(model: str) -> None:
    recorded = resolve(SettingsRequest(model=model, voice="bf_test", speed=1.5, seed=4, lang="b"), None, "en")
    assert resolve(SettingsRequest(), recorded, "fr") == recorded  # the book's language matters only once
    assert resolve(SettingsRequest(backend="auto"), recorded, "en") == recorded  # auto: keep the job's backend
    assert changes(recorded, resolve(SettingsRequest(speed=1.0), recorded, "en")) == {"speed": (1.5, 1.0)}


def test_the_same_command_line_from_anywhere_resolves_the_same(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure issue 9 began with: relative --model and --voice paths re-run after a crash."""
    model_path = Path(model)
    monkeypatch.chdir(model_path.parent)
    relative = SettingsRequest(model=model_path.name, voice=f"{model_path.name}/voices/af_test.pt")
    first = resolve(relative, None, "en")
    assert first.model == model and str(first.voice) == str(model_path / "voices" / "af_test.pt")
    monkeypatch.chdir(model_path / "voices")
    again = SettingsRequest(model="..", voice="af_test.pt")
    assert changes(first, resolve(again, first, "en")) == {}
    assert changes(first, Settings.from_dict(first.to_dict())) == {}  # and through job.json


@pytest.mark.parametrize(
    ("given", "book_language", "message"),
    [
        (SettingsRequest(lang="xx"), "en", "language 'xx' is not supported by kokoro"),
        (SettingsRequest(), "de", "the book's language 'de' is not one kokoro speaks; pass --lang"),
        (SettingsRequest(voice="af_nobody"), "en", "voice 'af_nobody' not found; available: af_test"),
        (SettingsRequest(voice="voices/missing.pt"), "en", "voice pack file voices/missing.pt not found"),
        (SettingsRequest(voice="a*0"), "en", "weight of 'a' must be above 0"),
        (SettingsRequest(speed=3.0), "en", "speed 3.0 is out of range"),
        (SettingsRequest(backend="tf"), "en", "unknown backend 'tf'"),
        (SettingsRequest(backend="onnx"), "en", "the onnx backend loads a .onnx file or 'bundled'"),
    ],
)
def test_what_cannot_work_is_one_clear_error(
    model: str, given: SettingsRequest, book_language: str, message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        resolve(dataclasses.replace(given, model=given.model or model), None, book_language)


def test_chunk_size_out_of_range(model: str) -> None:
    with pytest.raises(JobError, match="--max-chunk-chars 50 is out of range; use 200 to 100000"):
        resolve(SettingsRequest(model=model, max_chunk_chars=50), None, "en")


def test_a_new_model_must_have_the_recorded_voice(model: str, tmp_path: Path) -> None:
    recorded = resolve(SettingsRequest(model=model, voice="am_test"), None, "en")
    other = tmp_path / "other-model"
    (other / "voices").mkdir(parents=True)
    (other / "voices" / "xf_only.pt").write_bytes(b"")
    with pytest.raises(ModelError, match="voice 'am_test' not found; available: xf_only"):
        resolve(SettingsRequest(model=str(other)), recorded, "en")


def test_the_bundled_model_needs_no_network_to_resolve() -> None:
    resolved = resolve(SettingsRequest(model="bundled"), None, "en")
    assert (resolved.backend, resolved.model, str(resolved.voice)) == ("onnx", "bundled", "jf_gongitsune")
