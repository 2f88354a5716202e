"""The bundled int8 ONNX model converted into kokoro's KModel: the pieces of the conversion, then the real thing.

The real-weight checks compare the converted torch model with the bundled graph on the same phonemes and voice.
Measured on a 2-core x86 CPU (the first paragraph of ``test_intelligibility``): against the float graph made
from the same weights, the same durations to the frame, F0 within 6e-4 Hz, the decoder's input within 5e-5 of
35; the audio differs in three ways that are not the weights': the graph has no source noise (kokoro's torch code
draws it), the graph's inverse STFT is 1.5 times louder than kokoro's, and the phases of numerically-zero STFT
bins in the graph's noise-free silences are arbitrary. Word error rate by pocketsphinx on the four paragraphs:
torch 0.104, int8 graph 0.160.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiobook.engine import bundled, convert
from audiobook.engine.convert import _conv_weight, _dequantize, _module_path, _torch_gates

TEMPLATE = {
    key: ()
    for key in (
        "text_encoder.cnn.0.0.weight_v",
        "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight",
        "predictor.F0.1.pool.weight_v",
        "predictor.shared.weight_ih_l0",
        "predictor.F0_proj.weight",
        "predictor.text_encoder.lstms.0.weight_ih_l0",
        "decoder.asr_res.0.weight_v",
        "decoder.generator.ups.0.weight_v",
    )
}


@pytest.mark.parametrize(
    ("node", "module"),
    [
        ("/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant", "text_encoder.cnn.0.0"),
        (
            "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query/MatMul_quant",
            "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query",
        ),
        (
            "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_7/MatMul_quant",
            "bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query",
        ),  # ALBERT's shared layer, 8th call
        ("/encoder/F0.1/pool/ConvTranspose", "predictor.F0.1.pool"),  # called from F0Ntrain: no predictor scope
        ("/encoder/shared/LSTM_quant", "predictor.shared"),
        ("/encoder/F0_proj/Conv_quant", "predictor.F0_proj"),
        ("/encoder/predictor/text_encoder/lstms.0/LSTM_quant", "predictor.text_encoder.lstms.0"),
        ("/decoder/decoder/asr_res/asr_res.0/Conv_quant", "decoder.asr_res.0"),
        ("/decoder/decoder/generator/ups.0/ConvTranspose", "decoder.generator.ups.0"),
        ("/decoder/decoder/generator/istft/stft/ConvTranspose", None),
        ("Gather_token_1", None),  # an optimizer-made node outside every module
    ],
)
def test_node_scopes_name_kmodel_modules(node: str, module: str | None) -> None:
    assert _module_path(node, TEMPLATE) == module


def test_dequantize_per_tensor_and_per_column() -> None:
    q = np.array([[0, 255], [128, 130]], dtype=np.uint8)
    assert np.array_equal(_dequantize(q, np.uint8(128), np.float32(0.5)), [[-64.0, 63.5], [0.0, 1.0]])
    q8 = np.array([[-2, 4], [3, -1]], dtype=np.int8)
    per_column = _dequantize(q8, np.array([0, 1], dtype=np.int8), np.array([1.0, 0.25], dtype=np.float32))
    assert per_column.dtype == np.float32 and np.array_equal(per_column, [[-2.0, 0.75], [3.0, -0.5]])


def test_lstm_gates_go_from_onnx_order_to_torch_order() -> None:
    hidden = 2
    onnx_order = np.repeat(np.array(["i", "o", "f", "c"]), hidden)[:, None]  # (4 * hidden, 1)
    assert "".join(_torch_gates(onnx_order, hidden)[::hidden, 0]) == "ifco"


def test_weight_norm_rebuilds_folded_weights_even_an_all_zero_channel() -> None:
    weight = np.random.default_rng(0).normal(size=(4, 3, 5)).astype(np.float32)
    weight[2] = 0.0  # a channel that quantized to zeros
    parts = dict(_conv_weight("conv", weight, {"conv.weight_v": (4, 3, 5)}))
    rebuilt = torch._weight_norm(torch.from_numpy(parts["conv.weight_v"]), torch.from_numpy(parts["conv.weight_g"]), 0)
    assert torch.isfinite(rebuilt).all()
    assert np.allclose(rebuilt.numpy(), weight, rtol=1e-6, atol=1e-7)
    assert dict(_conv_weight("plain", weight, {"plain.weight": (4, 3, 5)})).keys() == {"plain.weight"}


@pytest.fixture(scope="module")
def converted(converted_model_dir: Path) -> Path:
    return converted_model_dir


@pytest.mark.slow
def test_converted_model_is_a_kokoro_model_directory_made_once(converted: Path) -> None:
    names = [p.name for p in converted.parent.iterdir()]
    assert converted.name in names
    assert not [name for name in names if name.startswith(".")]  # no temporary directory left behind
    config = json.loads((converted / "config.json").read_text(encoding="utf-8"))
    assert config["vocab"] == bundled.vocab() and config["converted_from"]["sha256"] == bundled.MODEL_SHA256
    assert sorted(p.stem for p in (converted / "voices").glob("*.pt")) == sorted(bundled.VOICES)
    weights = torch.load(converted / convert.WEIGHTS_NAME, weights_only=True)
    assert set(weights) == set(convert.COMPONENTS)
    assert all(torch.isfinite(t).all() for part in weights.values() for t in part.values())
    stamp = (converted / convert.WEIGHTS_NAME).stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIOBOOK_CACHE", str(converted.parent))
        assert convert.model_dir() == converted
    assert (converted / convert.WEIGHTS_NAME).stat().st_mtime_ns == stamp


def log_mel(audio: np.ndarray, n_fft: int = 1024, hop: int = 240, bands: int = 64, rate: int = 24000) -> np.ndarray:
    """log10 mel energies per 10 ms frame."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, n_fft // 2), n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = 2595 * np.log10(1 + np.linspace(0, rate / 2, n_fft // 2 + 1) / 700)
    edges = np.linspace(0, mel[-1], bands + 2)
    bank = np.clip(
        np.minimum(
            (mel[None] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
            (edges[2:, None] - mel[None]) / (edges[2:, None] - edges[1:-1, None]),
        ),
        0,
        None,
    )
    return np.log10(np.maximum(power @ bank.T, 1e-10))


@pytest.mark.slow
def test_torch_speaks_like_the_onnx_graph(converted: Path) -> None:
    from audiobook.engine.g2p import phonemize
    from audiobook.engine.onnx_backend import OnnxBackend
    from audiobook.engine.torch_backend import TorchBackend
    from audiobook.engine.voices import style_for

    phonemes = phonemize("The old house stood at the end of a quiet street.", "a")
    style = style_for(bundled.voices()[bundled.DEFAULT_VOICE], len(phonemes))
    torch_audio = TorchBackend.load(str(converted), "cpu").infer(phonemes, style, 1.0, 0)
    onnx_audio = OnnxBackend.load("bundled", "cpu", 1).infer(phonemes, style, 1.0, 0)
    # Durations: int8 activations may round one duration the other way, no more.
    assert abs(len(torch_audio) - len(onnx_audio)) <= 2 * 600
    # The graph's iSTFT has 1.5 times kokoro's gain; the rest is the same spectrum, frame by frame.
    assert 1.3 < np.abs(onnx_audio).max() / np.abs(torch_audio).max() < 1.7
    a, b = log_mel(torch_audio), log_mel(onnx_audio)
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n].ravel(), b[:n].ravel())[0, 1] > 0.85


@pytest.mark.slow
def test_torch_path_is_as_intelligible_as_the_onnx_path(converted: Path) -> None:
    pocketsphinx = pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (the dev extra)")
    from test_intelligibility import PARAGRAPHS, normalize, recognize, word_error_rate

    from audiobook.engine import Engine
    from audiobook.engine.onnx_backend import OnnxBackend
    from audiobook.engine.torch_backend import TorchBackend
    from audiobook.engine.voices import VoiceSpec

    decoder = pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")
    voice = VoiceSpec.parse(bundled.DEFAULT_VOICE)
    wer = {}
    for name, backend in (
        ("torch", TorchBackend.load(str(converted), "cpu")),
        ("onnx", OnnxBackend.load("bundled", "cpu", 1)),
    ):
        engine = Engine(backend)
        errors = words = 0.0
        for paragraph in PARAGRAPHS:
            heard = recognize(engine.synthesize(paragraph, voice, lang="a", seed=0).audio, decoder)
            count = len(normalize(paragraph))
            errors += word_error_rate(paragraph, heard) * count
            words += count
        wer[name] = errors / words
    assert wer["torch"] <= wer["onnx"] + 0.03, wer


@pytest.mark.slow
def test_build_with_torch_and_the_bundled_model_speaks_offline(
    converted_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``audiobook build --backend torch --model bundled``: no hub, real weights, words a recognizer hears."""
    pocketsphinx = pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (the dev extra)")
    import soundfile
    from click.testing import CliRunner
    from test_intelligibility import PARAGRAPHS, recognize, word_error_rate

    from audiobook.cli import cli

    monkeypatch.setenv("AUDIOBOOK_CACHE", str(converted_model_dir.parent))  # the workers find it converted
    book = tmp_path / "story.md"
    book.write_text(f"# A story\n\n{PARAGRAPHS[1]}\n", encoding="utf-8")
    out = tmp_path / "story.wav"
    result = CliRunner().invoke(
        cli,
        ["build", str(book), "--job-dir", str(tmp_path / "job"), "--out", str(out), "--backend", "torch"]
        + ["--model", "bundled", "--workers", "1", "--no-loudnorm"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    recorded = json.loads((tmp_path / "job" / "job.json").read_text(encoding="utf-8"))["settings"]
    assert (recorded["backend"], recorded["model"], recorded["voice"]) == ("torch", "bundled", bundled.DEFAULT_VOICE)
    audio, rate = soundfile.read(str(out), dtype="float32")
    assert rate == 24000
    heard = recognize(audio, pocketsphinx.Decoder(samprate=16000, loglevel="FATAL"))
    # The chapter title is spoken first: judge the paragraph's words among what was heard.
    assert word_error_rate("A story. " + PARAGRAPHS[1], heard) <= 0.25, heard
