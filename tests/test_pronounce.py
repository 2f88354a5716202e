"""`audiobook pronounce` and `audiobook words` through the CLI, and the unknown-words analysis behind `words`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
from click.testing import CliRunner

from audiobook.cli import cli
from audiobook.engine.core import count_phonemes
from audiobook.engine.g2p import phonemize
from audiobook.words import unknown_words

BOOK = """\
# The Quillithorpe Papers

## Chapter I

Zorbulon met Quillithorpe at the gate. Quillithorpe waved.

“Zorbulon!” cried Quillithorpe. Quillithorpe laughed, and the dog barked.

## Chapter II

Quillithorpe's hat blew away.
"""


@pytest.fixture(autouse=True)
def no_user_lexicon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "papers.md"
    path.write_text(BOOK, encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_pronounce_json_is_what_the_model_receives() -> None:
    result = invoke("pronounce", "CHAPTER XII. Henry VIII at 10:15.", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data == {
        "input": "CHAPTER XII. Henry VIII at 10:15.",
        "spoken": "CHAPTER twelve. Henry the eighth at ten fifteen.",
        "phonemes": phonemize("CHAPTER twelve. Henry the eighth at ten fifteen.", "a"),
    }


def test_pronounce_shows_input_spoken_and_phonemes() -> None:
    result = invoke("pronounce", "Mt. Everest")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "input:    Mt. Everest",
        "spoken:   Mount Everest",
        f"phonemes: {phonemize('Mount Everest', 'a')}",
    ]


def test_pronounce_applies_a_lexicon(tmp_path: Path) -> None:
    lexicon = tmp_path / "names.txt"
    lexicon.write_text("Quillithorpe = /kwˈɪlɪθɔɹp/\n", encoding="utf-8")
    result = invoke("pronounce", "Quillithorpe waved.", "--lexicon", str(lexicon), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["spoken"] == "[Quillithorpe](/kwˈɪlɪθɔɹp/) waved."
    assert data["phonemes"].startswith("kwˈɪlɪθɔɹp ")


def test_pronounce_reports_a_bad_lexicon_line_in_one_line(tmp_path: Path) -> None:
    lexicon = tmp_path / "names.txt"
    lexicon.write_text("# names\nQuillithorpe = /kwɪlɪθorp/\n", encoding="utf-8")
    result = invoke("pronounce", "Quillithorpe", "--lexicon", str(lexicon))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {lexicon}:2: 'o' is not in Kokoro's English phonemes")
    assert len(result.output.strip().splitlines()) == 1


def test_pronounce_other_languages_pass_through() -> None:
    result = invoke("pronounce", "Chapitre XII", "--lang", "f", "--json")
    assert json.loads(result.output)["spoken"] == "Chapitre XII"


def test_pronounce_out_speaks_the_same_phonemes(test_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "henry.wav"
    result = invoke(
        "pronounce",
        "Henry VIII",
        "--out",
        str(out),
        "--model",
        str(test_model_dir),
        "--backend",
        "torch",
        "--voice",
        "af_test",
    )
    assert result.exit_code == 0, result.output
    audio, rate = soundfile.read(out)
    assert rate == 24_000 and len(audio) > 0
    phonemes = phonemize("Henry the eighth", "a")
    assert f"phonemes: {phonemes}" in result.output
    # about 2.4 frames per phoneme in the test model: the audio is of these phonemes, not of "vee eye eye eye"
    assert len(audio) > 600 * count_phonemes(phonemes) / 24


def test_words_lists_unknown_words_most_frequent_first(book: Path) -> None:
    result = invoke("words", str(book), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["lang"] == "a" and data["unknown"] == len(data["words"])
    counts = {w["word"]: w["count"] for w in data["words"]}
    assert counts["Quillithorpe"] == 5 and counts["Zorbulon"] == 2
    assert data["words"][0]["word"] == "Quillithorpe" and data["words"][0]["phonemes"]
    assert "gate" not in counts and "dog" not in counts


def test_words_text_output_and_limit(book: Path) -> None:
    result = invoke("words", str(book), "--limit", "1")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].endswith("words outside the G2P lexicon (espeak-ng reads them):")
    assert len(lines) == 2 and lines[1].split()[:2] == ["5", "Quillithorpe"]


def test_words_leaves_out_what_the_lexicon_covers(book: Path, tmp_path: Path) -> None:
    lexicon = tmp_path / "names.txt"
    lexicon.write_text("Quillithorpe = /kwˈɪlɪθɔɹp/\nZorbulon = Zor-bew-lon\n", encoding="utf-8")
    data = json.loads(invoke("words", str(book), "--json", "--lexicon", str(lexicon)).output)
    assert {w["word"] for w in data["words"]}.isdisjoint({"Quillithorpe", "Zorbulon"})


def test_words_of_a_missing_book_is_one_error_line(tmp_path: Path) -> None:
    result = invoke("words", str(tmp_path / "absent.epub"))
    assert result.exit_code == 2 and result.output.startswith("Error: ") and "no such file" in result.output


def test_unknown_words_are_counted_once_whatever_their_capitals_and_possessives() -> None:
    found = unknown_words(["Zorbulon came. zorbulon, Zorbulon. Zorbulon's hat, Zorbulon’s hat."], "a")
    assert [(w.word, w.count) for w in found] == [("Zorbulon", 5)]


def test_unknown_words_is_english_only() -> None:
    from audiobook.errors import AudiobookError

    with pytest.raises(AudiobookError, match="English"):
        unknown_words(["Bonjour"], "f")
