"""The shared Engine over the real torch backend and the session's random-weight model."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile

from audiobook import SAMPLE_RATE
from audiobook.engine.base import MAX_PHONEMES
from audiobook.engine.core import Engine, limit_peaks, write_wav
from audiobook.engine.g2p import phonemize
from audiobook.engine.torch_backend import TorchBackend
from audiobook.engine.voices import VoiceSpec
from audiobook.errors import ModelError

WORDS = ["garden", "window", "river", "candle", "mountain", "pencil", "button", "yellow", "forest", "copper"]


class Recording:
    """Wraps a backend and records every phoneme string it is fed."""

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend
        self.fed: list[str] = []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.backend, name)

    def infer_batch(self, pieces, *args, **kwargs) -> list:  # noqa: ANN001, ANN002, ANN003
        self.fed += pieces
        return self.backend.infer_batch(pieces, *args, **kwargs)


def test_paragraph_ends_mark_each_paragraph_but_the_last(engine: Engine) -> None:
    result = engine.synthesize("First one.\n\nSecond one here.\n\nThird.", VoiceSpec.parse("af_test"), 1.0, "a", seed=1)
    assert result.audio.dtype == np.float32 and result.audio.ndim == 1
    assert len(result.paragraph_ends) == 2
    assert 0 < result.paragraph_ends[0] < result.paragraph_ends[1] < len(result.audio)
    assert result.phonemes_synth == result.phonemes_in > 0
    # About 60 ms a phoneme: a realistic speaking rate, not 8x too slow.
    assert 0.03 < result.seconds / result.phonemes_in < 0.1


def test_same_seed_same_audio_other_seed_other_audio(engine: Engine) -> None:
    first = engine.synthesize("Reproducible audio.", VoiceSpec.parse("am_test"), 1.0, "a", seed=7).audio
    again = engine.synthesize("Reproducible audio.", VoiceSpec.parse("am_test"), 1.0, "a", seed=7).audio
    other = engine.synthesize("Reproducible audio.", VoiceSpec.parse("am_test"), 1.0, "a", seed=8).audio
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_blend_is_its_own_voice(engine: Engine) -> None:
    single = engine.synthesize("A blended voice.", VoiceSpec.parse("af_test"), 1.0, "a", seed=3).audio
    blend = engine.synthesize("A blended voice.", VoiceSpec.parse("af_test*0.7+am_test*0.3"), 1.0, "a", seed=3).audio
    comma = engine.synthesize("A blended voice.", VoiceSpec.parse("af_test,am_test"), 1.0, "a", seed=3).audio
    assert not np.array_equal(single, blend) and not np.array_equal(blend, comma)


def test_unknown_voice_is_a_clear_error_even_past_the_resolver(engine: Engine) -> None:
    with pytest.raises(ModelError) as error:
        engine.synthesize("Hello.", VoiceSpec.parse("af_hart"), 1.0, "a")
    assert str(error.value) == (
        "voice 'af_hart' not found; available: af_test, am_test, bf_test (see `audiobook voices`)"
    )


@pytest.mark.parametrize("speed", [0.49, 2.01, 0.0])
def test_speed_out_of_range(engine: Engine, speed: float) -> None:
    with pytest.raises(ModelError, match=r"speed .* out of range; use 0.5 to 2.0"):
        engine.synthesize("Hello.", VoiceSpec.parse("af_test"), speed, "a")


@pytest.mark.slow
def test_long_paragraph_without_punctuation_is_spoken_whole(torch_backend) -> None:  # noqa: ANN001
    text = " ".join(WORDS[i % len(WORDS)] for i in range(450))[:3000].rsplit(" ", 1)[0]
    assert len(text) > 2900 and not re.search(r"[.,;:!?]", text)
    backend = Recording(torch_backend)
    result = Engine(backend).synthesize(text, VoiceSpec.parse("af_test"), 2.0, "a", seed=0)

    assert result.phonemes_synth == result.phonemes_in > 5 * MAX_PHONEMES
    assert all(len(piece) <= MAX_PHONEMES for piece in backend.fed) and len(backend.fed) >= 6
    spoken = " ".join(backend.fed)
    assert spoken == phonemize(text, "a")
    for word in WORDS:
        assert spoken.split().count(phonemize(word, "a")) == text.split().count(word)
    assert result.seconds > 60  # ~2700 phonemes at 2x speed


def test_wav_is_24khz_mono_pcm16_written_atomically(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    result = engine.synthesize("Write me.", VoiceSpec.parse("af_test"), 1.0, "a", seed=0)
    out = tmp_path / "c1.wav"
    write_wav(out, result.audio)
    info = soundfile.info(out)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SAMPLE_RATE, 1, "PCM_16", len(result.audio))
    assert [p.name for p in tmp_path.iterdir()] == ["c1.wav"]


def test_peaks_are_limited_before_16_bit() -> None:
    loud = np.array([0.0, 3.0, -6.0], np.float32)
    assert np.max(np.abs(limit_peaks(loud))) == pytest.approx(0.98)
    quiet = np.array([0.1, -0.5], np.float32)
    assert np.array_equal(limit_peaks(quiet), quiet)


def test_local_model_loads_offline_and_lists_voices(torch_backend: TorchBackend) -> None:
    assert torch_backend.voice_names() == ["af_test", "am_test", "bf_test"]
    assert (torch_backend.name, torch_backend.device) == ("torch", "cpu")


def test_unreachable_hub_with_empty_cache_is_a_model_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="not in the local cache"):
        TorchBackend.load("hexgrad/Kokoro-82M", "cpu")


def test_model_directory_without_weights_is_a_model_error(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"exactly one \.pth"):
        TorchBackend.load(str(tmp_path), "cpu")
