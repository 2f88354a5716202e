"""Pronunciation lexicons: parsing, case and word boundaries, phrases, IPA and respellings, user and job files."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiobook.errors import LexiconError
from audiobook.lexicon import Lexicon, load, load_lexicons, parse, user_lexicon_path
from audiobook.speech import prepare, speakable

NAMES = """\
# names in this book
Hermione = Hermy-oh-nee
Ukridge = /jˈukɹɪʤ/
St. John = /sˈɪnʤən/
Reading = /ɹˈɛdɪŋ/
tear = /tˈɪɹ/
"""


@pytest.fixture(autouse=True)
def no_user_lexicon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty config directory of its own, whatever the machine's user has."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def spoken(text: str, lexicon: Lexicon) -> str:
    return speakable(text, "a", lexicon).text


def test_a_respelling_replaces_the_word() -> None:
    assert spoken("Hermione smiled.", parse(NAMES)) == "Hermy-oh-nee smiled."


def test_phonemes_become_a_misaki_link_that_reaches_the_model() -> None:
    lexicon = parse(NAMES)
    assert spoken("Ukridge laughed.", lexicon) == "[Ukridge](/jˈukɹɪʤ/) laughed."
    assert prepare("Ukridge laughed.", "a", lexicon).phonemes.startswith("jˈukɹɪʤ ")


def test_a_phrase_matches_across_spaces_and_line_breaks() -> None:
    lexicon = parse(NAMES)
    assert spoken("Then St. John came; St.\nJohn again.", lexicon) == (
        "Then [St. John](/sˈɪnʤən/) came; [St. John](/sˈɪnʤən/) again."
    )
    assert prepare("Then St. John came.", "a", lexicon).phonemes == "ðˈɛn sˈɪnʤən kˈAm."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ukridge's dog", "[Ukridge's](/jˈukɹɪʤᵻz/) dog"),  # the possessive is spoken after the entry
        ("Ukridge’s dog", "[Ukridge’s](/jˈukɹɪʤᵻz/) dog"),
        ("Ukridge-like men", "[Ukridge](/jˈukɹɪʤ/)-like men"),  # a hyphen is a boundary
        ("“Ukridge!” I said.", "“[Ukridge](/jˈukɹɪʤ/)!” I said."),
        ("'Ukridge,' he said.", "'[Ukridge](/jˈukɹɪʤ/),' he said."),  # an opening quote is not an elision
        ("Ukridges", "Ukridges"),  # not inside a longer word
        ("O'Ukridge", "O'Ukridge"),  # nor after an elision
        ("Hermione's cat", "Hermy-oh-nee's cat"),
    ],
)
def test_whole_words_only(text: str, expected: str) -> None:
    assert spoken(text, parse(NAMES)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in Reading today", "in [Reading](/ɹˈɛdɪŋ/) today"),
        ("READING GAOL", "[READING](/ɹˈɛdɪŋ/) Gaol"),  # a cased entry also matches its all-capitals form
        ("reading a book", "reading a book"),  # never another capitalisation
        ("a tear fell", "a [tear](/tˈɪɹ/) fell"),  # a lower-case entry matches any capitalisation
        ("Tear after tear", "[Tear](/tˈɪɹ/) after [tear](/tˈɪɹ/)"),
        ("TEAR", "[TEAR](/tˈɪɹ/)"),
    ],
)
def test_case_rules(text: str, expected: str) -> None:
    assert spoken(text, parse(NAMES)) == expected


def test_a_longer_entry_that_fails_its_case_leaves_a_shorter_one_to_match() -> None:
    lexicon = parse("Reading Room = /ɹˈɛdɪŋ ɹˈum/\nreading = /ɹˈidɪŋ/\n")
    assert spoken("the reading room", lexicon) == "the [reading](/ɹˈidɪŋ/) room"
    assert spoken("the Reading Room", lexicon) == "the [Reading Room](/ɹˈɛdɪŋ ɹˈum/)"


def test_the_lexicon_wins_over_the_normaliser() -> None:
    """ "St. John" would be "Saint John" by the rules; the user's entry says otherwise."""
    assert spoken("St. John and St. Paul", parse(NAMES)) == "[St. John](/sˈɪnʤən/) and Saint Paul"


def test_a_lexicon_link_is_kept_apart_from_book_brackets() -> None:
    assert spoken("[Ukridge] said", parse(NAMES)) == "([Ukridge](/jˈukɹɪʤ/)) said"


def test_a_link_written_into_the_text_wins_over_the_lexicon() -> None:
    text = "[Ukridge](/jˈʊkɹɪʤ/) and Ukridge"
    assert spoken(text, parse(NAMES)) == "[Ukridge](/jˈʊkɹɪʤ/) and [Ukridge](/jˈukɹɪʤ/)"


def test_phoneme_entries_are_english_only() -> None:
    lexicon = parse(NAMES)
    assert speakable("Ukridge et Hermione", "f", lexicon).text == "Ukridge et Hermy-oh-nee"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Ukridge", "lexicon.txt:2: expected 'WRITTEN = SPOKEN', got 'Ukridge'"),
        ("Ukridge =", "lexicon.txt:2: the pronunciation is empty"),
        ("= jˈukɹɪʤ", "lexicon.txt:2: the written form is empty"),
        ("Ukridge = //", "lexicon.txt:2: no phonemes between the slashes"),
        ("Ukridge = /juːkrɪdʒ/", "lexicon.txt:2: 'r' is not in Kokoro's English phonemes; write ɹ"),
        ("Ukridge = /jeɪk/", "lexicon.txt:2: 'eɪ' is not in Kokoro's English phonemes; write A"),
        ("Ukridge = Uke(ridge)", "lexicon.txt:2: a respelling cannot contain [ ] ( ) or /"),
        ("[Ukridge] = Ukridge", "lexicon.txt:2: '[Ukridge]' is not a word or phrase"),
        ("Hermione = Hermy", "lexicon.txt:2: 'Hermione' is already on line 1"),
    ],
)
def test_errors_name_the_file_and_line(line: str, message: str) -> None:
    with pytest.raises(LexiconError) as caught:
        parse(f"Hermione = Hermy-oh-nee\n{line}\n", "lexicon.txt")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_missing_or_undecodable_file_is_a_lexicon_error(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="no such lexicon file"):
        load(tmp_path / "absent.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Ren\xe9 = Renay\n".encode("latin-1"))
    with pytest.raises(LexiconError, match="not UTF-8"):
        load(bad)


def test_the_user_lexicon_lives_in_the_config_directory(no_user_lexicon: Path) -> None:
    assert user_lexicon_path() == no_user_lexicon / "audiobook" / "lexicon.txt"


def test_user_and_job_lexicons_combine_and_the_job_wins(no_user_lexicon: Path, tmp_path: Path) -> None:
    user = no_user_lexicon / "audiobook" / "lexicon.txt"
    user.parent.mkdir(parents=True)
    user.write_text("Hermione = Her-my-oh-nee\nDinah = /dˈInə/\n", encoding="utf-8")
    job = tmp_path / "job-lexicon.txt"
    job.write_text("Hermione = Hermy-oh-nee\n", encoding="utf-8")
    assert spoken("Hermione and Dinah", load_lexicons()) == "Her-my-oh-nee and [Dinah](/dˈInə/)"
    assert spoken("Hermione and Dinah", load_lexicons(job)) == "Hermy-oh-nee and [Dinah](/dˈInə/)"
    assert spoken("Hermione and Dinah", load_lexicons(job, user=False)) == "Hermy-oh-nee and Dinah"


def test_no_lexicon_files_is_an_empty_lexicon() -> None:
    assert not load_lexicons()


def test_the_fingerprint_changes_only_with_the_entries_a_text_touches() -> None:
    before = parse(NAMES)
    after = parse(NAMES.replace("Hermy-oh-nee", "Her-my-oh-nee"))
    about_hermione, about_ukridge, about_nobody = "Hermione smiled.", "Ukridge laughed.", "Nobody came."
    assert before.fingerprint(about_nobody) == "" == after.fingerprint(about_nobody)
    assert before.fingerprint(about_ukridge) == after.fingerprint(about_ukridge) != ""
    assert before.fingerprint(about_hermione) != after.fingerprint(about_hermione)
    assert before.fingerprint(about_hermione) == parse(NAMES).fingerprint("Hermione, Hermione!")


def test_the_lexicon_text_is_canonical_and_hashed() -> None:
    shuffled = "\n".join(reversed(NAMES.splitlines())) + "\n\n# a comment\n"
    assert parse(NAMES).text() == parse(shuffled).text()
    assert parse(NAMES).sha256() == parse(shuffled).sha256() != parse("").sha256()
    assert parse(parse(NAMES).text()).text() == parse(NAMES).text()
