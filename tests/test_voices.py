"""Voice specs: names, pack files, weighted blends, kokoro's comma average, unknown voices."""

from __future__ import annotations

import numpy as np
import pytest

from audiobook.engine.base import Backend
from audiobook.engine.voices import VoiceSpec, default_voice_for, load_voice, style_for, unknown_voice
from audiobook.errors import ModelError


class PackShelf(Backend):
    """A backend that only holds voice packs (constant rows, so blends are easy to check)."""

    name, device, model_id = "shelf", "cpu", "shelf"

    def __init__(self) -> None:
        self.packs = {
            "af_one": np.full((510, 1, 256), 1.0, np.float32),
            "am_two": np.full((510, 1, 256), 2.0, np.float32),
            "bf_four": np.full((510, 1, 256), 4.0, np.float32),
        }

    def voice_names(self) -> list[str]:
        return sorted(self.packs)

    def voice_pack(self, name: str) -> np.ndarray:
        if name not in self.packs:
            raise unknown_voice(name, self.voice_names())
        return self.packs[name]

    def infer(self, phonemes: str, style: np.ndarray, speed: float, seed: int) -> np.ndarray:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("af_heart", [("af_heart", 1.0)]),
        ("af_heart*0.7+af_bella*0.3", [("af_heart", 0.7), ("af_bella", 0.3)]),
        ("af_heart * 3 + af_bella", [("af_heart", 0.75), ("af_bella", 0.25)]),
        ("af_heart,af_bella", [("af_heart", 0.5), ("af_bella", 0.5)]),
    ],
)
def test_parse_voice_spec_normalises_weights(spec: str, expected: list) -> None:
    terms = VoiceSpec.parse(spec).terms
    assert [name for name, _ in terms] == [name for name, _ in expected]
    assert [weight for _, weight in terms] == pytest.approx([weight for _, weight in expected])


@pytest.mark.parametrize("spec", ["", "af_heart*0", "af_heart*-1+af_bella", "a*0.5,b", "a+b,c", "a*x"])
def test_parse_voice_spec_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ModelError):
        VoiceSpec.parse(spec)


def test_weighted_blend_mixes_packs() -> None:
    blend = load_voice(VoiceSpec.parse("af_one*0.75+bf_four*0.25"), PackShelf())
    assert blend.dtype == np.float32 and blend.shape == (510, 1, 256)
    assert np.allclose(blend, 1.75)


def test_comma_blend_is_an_equal_average() -> None:
    assert np.allclose(load_voice(VoiceSpec.parse("af_one,am_two,bf_four"), PackShelf()), 7 / 3)


def test_unknown_voice_lists_the_available_ones() -> None:
    with pytest.raises(ModelError) as error:
        load_voice(VoiceSpec.parse("af_one*0.5+af_hart*0.5"), PackShelf())
    assert str(error.value) == (
        "voice 'af_hart' not found; available: af_one, am_two, bf_four (see `audiobook voices`)"
    )


def test_pack_files_load_by_path(tmp_path) -> None:  # noqa: ANN001
    import torch

    npy, pt = tmp_path / "mine.npy", tmp_path / "other.pt"
    np.save(npy, np.full((20, 256), 3.0, np.float32))  # (N, 256) is accepted too
    torch.save(torch.full((30, 1, 256), 5.0), pt)
    assert load_voice(VoiceSpec.parse(str(npy)), PackShelf()).shape == (20, 1, 256)
    assert np.allclose(load_voice(VoiceSpec.parse(f"{npy}*0.5+{pt}*0.5"), PackShelf()), 4.0)
    with pytest.raises(ModelError, match="not found"):
        VoiceSpec.parse(str(tmp_path / "missing.pt"))


def test_bad_pack_shape_is_an_error(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 2, 128), np.float32))
    with pytest.raises(ModelError, match=r"expected \(N, 1, 256\)"):
        load_voice(VoiceSpec.parse(str(bad)), PackShelf())


def test_style_row_follows_phoneme_count() -> None:
    pack = np.arange(510, dtype=np.float32)[:, None, None] * np.ones((1, 1, 256), np.float32)
    assert style_for(pack, 1)[0, 0] == 0
    assert style_for(pack, 100)[0, 0] == 99
    assert style_for(pack, 9999)[0, 0] == 509


def test_default_voice_prefers_kokoros_choice() -> None:
    assert default_voice_for("a", ["af_bella", "af_heart"]) == "af_heart"
    assert default_voice_for("b", ["af_heart", "bm_george"]) == "bm_george"
    assert default_voice_for("f", ["af_heart"]) == "af_heart"


def test_a_parsed_voice_reads_back_from_its_canonical_form(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """job.json stores ``str(voice)``; reading it back must give the very same voice, or every resume would
    look like a settings change."""
    np.save(tmp_path / "mine.npy", np.zeros((5, 256), np.float32))
    monkeypatch.chdir(tmp_path)
    for spec in ("af_heart", "a+b+c", "af_heart*3+af_bella", "af_heart,af_bella", "mine.npy*0.2+af_heart*0.8"):
        voice = VoiceSpec.parse(spec)
        assert VoiceSpec.parse(str(voice)) == voice
        assert VoiceSpec.from_json(voice.to_json()) == voice
    relative = VoiceSpec.parse("mine.npy")
    assert relative.terms == ((str(tmp_path / "mine.npy"), 1.0),) and relative.names == []
    assert VoiceSpec.parse("./mine.npy") == relative  # the same file named two ways is the same voice


def test_check_names_the_missing_voice() -> None:
    VoiceSpec.parse("af_one*0.5+bf_four*0.5").check(["af_one", "bf_four"])
    with pytest.raises(ModelError, match="voice 'af_hart' not found; available: af_one"):
        VoiceSpec.parse("af_one+af_hart").check(["af_one"])
