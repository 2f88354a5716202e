"""Batched synthesis against the batch-1 reference, on kokoro's real architecture.

The reference for every row is kokoro's own ``KModel.forward`` on that piece alone after
``torch.manual_seed(seed)``: exactly what ``TorchBackend.infer`` runs. Two tolerances, for two regimes:

* Random weights (the ``test_model_dir`` fixture and a real-size decoder): a row may differ from the reference
  by at most ``MAX_ABS_DIFF`` in any sample, with a signal-to-difference ratio of at least ``MIN_SNR_DB``.
  Measured on a 2-core x86 CPU: at most 4e-6 (peaks near 3) and 118-122 dB on both decoders; batch 1 itself
  moves by 6e-7 (123 dB) on two threads instead of one. The bounds sit at the resolution of the 16-bit WAV
  every chunk is written as (one step is 3e-5 of full scale, about 96 dB of range): any padding that leaked
  into a row (a mask missed in a norm, a convolution or an LSTM) would show far above them. Random weights
  predict F0 under kokoro's 10 Hz voicing threshold, so these rows are unvoiced.
* Real weights (the bundled model converted, ``converted_model_dir``), which are voiced: the harmonic source
  integrates F0 over the whole piece, so a last-bit difference in F0 (another kernel, another summation order)
  becomes a small phase drift of the harmonics that grows with the piece. Batch 1 drifts from itself the same
  way: on two threads instead of one it differs by 41-62 dB SNR, up to 0.011 in a sample, 0.004 (log10) in
  mean log-mel energy, on the pieces below; the batched rows measured 43-59 dB, 0.008, 0.003. The bounds,
  ``REAL_MIN_SNR_DB`` and ``REAL_MAX_LOG_MEL``, leave room for longer pieces and other CPUs; a mask that leaked
  would break them by orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiobook.engine.batched import (
    SAMPLES_PER_FRAME,
    BatchRunner,
    batch_cost,
    infer_batch,
    is_out_of_memory,
    piece_tokens,
    plan_batches,
)
from audiobook.engine.core import piece_seed
from audiobook.engine.voices import style_for
from audiobook.errors import SynthesisError

MAX_ABS_DIFF = 1e-4
MIN_SNR_DB = 90.0
REAL_MIN_SNR_DB = 30.0
REAL_MAX_LOG_MEL = 0.01
"""Mean absolute difference of log10 mel energies (0.01 is 0.1 dB)."""


def phoneme_piece(vocab: dict[str, int], length: int, seed: int) -> str:
    """A reproducible string of ``length`` symbols from the model's vocabulary, spaces included."""
    rng = np.random.default_rng(seed)
    symbols = sorted(vocab)
    return "".join(symbols[i] for i in rng.integers(0, len(symbols), length)).strip() or symbols[1]


def reference(model, piece: str, style: np.ndarray, speed: float, seed: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """kokoro's batch-1 forward, seeded as ``TorchBackend.infer`` seeds it: (audio, pred_dur)."""
    with torch.inference_mode():
        torch.manual_seed(seed)
        out = model(piece, torch.from_numpy(style).reshape(1, -1), speed, return_output=True)
    return out.audio.numpy().reshape(-1), out.pred_dur.numpy().reshape(-1)


def snr_db(reference_audio: np.ndarray, audio: np.ndarray) -> float:
    error = np.sum((reference_audio.astype(np.float64) - audio) ** 2)
    return float(10 * np.log10(np.sum(reference_audio.astype(np.float64) ** 2) / max(error, 1e-30)))


def check_rows_match_batch_one(backend, lengths: list[int], speeds: list[float], voices: list[str]) -> None:  # noqa: ANN001
    model = backend.model
    pieces = [phoneme_piece(model.vocab, n, seed=n) for n in lengths]
    styles = [style_for(backend.voice_pack(v), len(p)) for p, v in zip(pieces, voices, strict=True)]
    seeds = [piece_seed(7, i) for i in range(len(pieces))]
    rows = infer_batch(model, pieces, styles, speeds, seeds)
    assert len(rows) == len(pieces)
    for row, piece, style, speed, seed in zip(rows, pieces, styles, speeds, seeds, strict=True):
        audio, durations = reference(model, piece, style, speed, seed)
        assert row.phonemes == "".join(c for c in piece if c in model.vocab)
        assert row.durations.dtype == np.int64 and np.array_equal(row.durations, durations)
        assert len(row.durations) == len(row.phonemes) + 2 and row.durations.min() >= 1
        assert len(row.audio) == len(audio) == SAMPLES_PER_FRAME * int(row.durations.sum())
        assert row.audio.dtype == np.float32
        assert np.abs(row.audio - audio).max() <= MAX_ABS_DIFF
        assert snr_db(audio, row.audio) >= MIN_SNR_DB


def test_rows_match_batch_one_across_very_different_lengths(torch_backend) -> None:  # noqa: ANN001
    check_rows_match_batch_one(
        torch_backend, [160, 3, 40, 75], [1.0, 1.0, 1.4, 0.7], ["af_test", "am_test", "bf_test", "af_test"]
    )


@pytest.mark.slow
def test_longest_piece_beside_a_tiny_one(torch_backend) -> None:  # noqa: ANN001
    check_rows_match_batch_one(torch_backend, [2, 510], [1.0, 1.2], ["am_test", "af_test"])


@pytest.fixture(scope="module")
def real_decoder_backend(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Kokoro-82M's real iSTFTNet decoder (upsampling 10 x 6, hop 5, three residual kernels), random weights."""
    from support.random_model import build_random_model

    from audiobook.engine.torch_backend import TorchBackend

    model_dir = build_random_model(tmp_path_factory.mktemp("kokoro-real-decoder"), seed=1, fast=False)
    return TorchBackend.load(str(model_dir), "cpu")


@pytest.mark.slow
def test_rows_match_batch_one_with_the_real_size_decoder(real_decoder_backend) -> None:  # noqa: ANN001
    check_rows_match_batch_one(real_decoder_backend, [8, 100, 40], [1.0, 0.9, 1.1], ["af_test", "am_test", "af_test"])


def test_a_row_does_not_depend_on_its_batch_beyond_float_rounding(torch_backend) -> None:  # noqa: ANN001
    model = torch_backend.model
    pieces = [phoneme_piece(model.vocab, n, seed=100 + n) for n in (30, 24, 50)]
    styles = [style_for(torch_backend.voice_pack("af_test"), len(p)) for p in pieces]
    alone = infer_batch(model, pieces[:1], styles[:1], [1.0], [5])[0]
    again = infer_batch(model, pieces[:1], styles[:1], [1.0], [5])[0]
    padded = infer_batch(model, pieces[::-1], styles[::-1], [1.0] * 3, [9, 8, 5])[2]
    assert alone.audio.tobytes() == again.audio.tobytes()  # same batch, same bytes
    assert np.array_equal(alone.durations, padded.durations)
    assert np.abs(alone.audio - padded.audio).max() <= MAX_ABS_DIFF


def test_plan_sorts_longest_first_and_cuts_by_padded_tokens() -> None:
    tokens = [12, 40, 12, 33, 7, 40, 90]
    plan = plan_batches(tokens, budget=100)
    assert sorted(i for batch in plan for i in batch) == list(range(len(tokens)))
    assert plan[0] == [6]  # 90 tokens: a second row would cost 180
    assert plan[1] == [1, 5]  # ties keep the caller's order
    flat = [tokens[i] for batch in plan for i in batch]
    assert flat == sorted(flat, reverse=True)
    assert all(batch_cost(tokens, batch) <= 100 for batch in plan)
    assert plan_batches(tokens, budget=100) == plan
    assert plan_batches([600, 5], budget=100) == [[0], [1]]  # a piece over the budget still gets a batch
    assert plan_batches([], budget=100) == []


class SmallDevice:
    """``infer_batch`` on a device with room for ``capacity`` padded tokens: a larger batch raises torch's own
    out-of-memory error before it runs. Records the cost of every batch tried."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.tried: list[int] = []

    def __call__(self, model, pieces, styles, speeds, seeds):  # noqa: ANN001, ANN204
        cost = len(pieces) * max(piece_tokens(model.vocab, p) for p in pieces)
        self.tried.append(cost)
        if cost > self.capacity:
            raise torch.OutOfMemoryError(f"CUDA out of memory: a batch of {cost} tokens")
        return infer_batch(model, pieces, styles, speeds, seeds)


def one_chunk(backend, lengths: list[int], seed: int = 3):  # noqa: ANN001, ANN201
    pieces = [phoneme_piece(backend.model.vocab, n, seed=200 + i) for i, n in enumerate(lengths)]
    styles = [style_for(backend.voice_pack("am_test"), len(p)) for p in pieces]
    return pieces, styles, [1.0] * len(pieces), [piece_seed(seed, i) for i in range(len(pieces))]


def test_a_batch_out_of_memory_is_split_and_the_limit_learned(torch_backend) -> None:  # noqa: ANN001
    pieces, styles, speeds, seeds = one_chunk(torch_backend, [20, 18, 16, 9, 8, 6])
    tokens = [piece_tokens(torch_backend.model.vocab, p) for p in pieces]
    device = SmallDevice(capacity=2 * max(tokens))
    runner = BatchRunner(torch_backend.model, budget=1000, infer=device)
    rows = runner.synthesize(pieces, styles, speeds, seeds)

    assert [row.phonemes for row in rows] == pieces  # every piece, in the caller's order
    assert runner.splits >= 1 and runner.limit is not None and runner.limit < 6 * max(tokens)
    assert max(device.tried) == 6 * max(tokens)  # the planned batch was tried once, then split
    for row, piece, style, seed in zip(rows, pieces, styles, seeds, strict=True):
        audio, _ = reference(torch_backend.model, piece, style, 1.0, seed)
        assert np.abs(row.audio - audio).max() <= MAX_ABS_DIFF

    # The next chunk is split by the learned limit before it is tried: no second error, and since splitting
    # only ever halves the planned batch, the same chunk comes out with the same batches and the same bytes.
    device.tried.clear()
    again = runner.synthesize(pieces, styles, speeds, seeds)
    assert max(device.tried) <= device.capacity
    assert [r.audio.tobytes() for r in again] == [r.audio.tobytes() for r in rows]


def test_a_single_piece_that_does_not_fit_fails_clearly(torch_backend) -> None:  # noqa: ANN001
    pieces, styles, speeds, seeds = one_chunk(torch_backend, [30, 4])
    runner = BatchRunner(torch_backend.model, budget=1000, infer=SmallDevice(capacity=10))
    with pytest.raises(SynthesisError, match=r"one piece of \d+ tokens does not fit in device memory"):
        runner.synthesize(pieces, styles, speeds, seeds)


def test_other_errors_are_not_taken_for_memory(torch_backend) -> None:  # noqa: ANN001
    def broken(*args):  # noqa: ANN002, ANN202
        raise ValueError("not a memory problem")

    pieces, styles, speeds, seeds = one_chunk(torch_backend, [5, 6])
    with pytest.raises(ValueError, match="not a memory problem"):
        BatchRunner(torch_backend.model, infer=broken).synthesize(pieces, styles, speeds, seeds)
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_same_chunk_same_budget_same_bytes_whatever_ran_before(torch_backend) -> None:  # noqa: ANN001
    pieces, styles, speeds, seeds = one_chunk(torch_backend, [25, 12, 30, 7, 19])
    other = one_chunk(torch_backend, [40, 3], seed=11)
    first = BatchRunner(torch_backend.model, budget=64).synthesize(pieces, styles, speeds, seeds)
    runner = BatchRunner(torch_backend.model, budget=64)
    runner.synthesize(*other)
    second = runner.synthesize(pieces, styles, speeds, seeds)
    assert [r.audio.tobytes() for r in first] == [r.audio.tobytes() for r in second]
    # Another budget gives other batches: the same audio within the batch-1 tolerance, not the same bytes.
    whole = BatchRunner(torch_backend.model, budget=10_000).synthesize(pieces, styles, speeds, seeds)
    for a, b in zip(first, whole, strict=True):
        assert np.array_equal(a.durations, b.durations) and np.abs(a.audio - b.audio).max() <= MAX_ABS_DIFF


@pytest.mark.slow
def test_rows_match_batch_one_with_real_weights(converted_model_dir) -> None:  # noqa: ANN001
    from test_convert import log_mel

    from audiobook.engine import bundled
    from audiobook.engine.g2p import phonemize
    from audiobook.engine.torch_backend import TorchBackend

    backend = TorchBackend.load(str(converted_model_dir), "cpu")
    texts = [
        "Yes.",
        "She walked to the station in the rain, and the train was late.",
        "The old house stood at the end of a quiet street. Every morning the baker opened his shop, and the smell "
        "of fresh bread filled the air while the children ran past on their way to school.",
    ]
    pieces = [phonemize(text, "a") for text in texts]
    pack = backend.voice_pack(bundled.DEFAULT_VOICE)
    styles = [style_for(pack, len(p)) for p in pieces]
    speeds, seeds = [1.0, 1.2, 0.9], [piece_seed(5, i) for i in range(3)]
    rows = infer_batch(backend.model, pieces, styles, speeds, seeds)
    for row, piece, style, speed, seed in zip(rows, pieces, styles, speeds, seeds, strict=True):
        audio, durations = reference(backend.model, piece, style, speed, seed)
        assert np.array_equal(row.durations, durations) and len(row.audio) == len(audio)
        assert snr_db(audio, row.audio) >= REAL_MIN_SNR_DB
        assert np.abs(log_mel(audio) - log_mel(row.audio)).mean() <= REAL_MAX_LOG_MEL


# ---- the engine: a chunk's pieces through the backend's batches -------------------------------------------


CHUNK_TEXT = (
    "The lamp was lit at dusk. Nobody saw who lit it, and nobody asked.\n\n"
    "Down by the harbour the boats knocked together, and a gull complained about the weather, the fish, the "
    "tide, and the people who never fed it. The keeper wrote all of this in a small book.\n\n"
    "Then it rained."
)


def test_engine_batches_a_chunk_and_accounts_for_every_phoneme(test_model_dir) -> None:  # noqa: ANN001
    from audiobook.engine.core import Engine, limit_peaks
    from audiobook.engine.torch_backend import TorchBackend
    from audiobook.engine.voices import VoiceSpec

    voice = VoiceSpec.parse("af_test")
    one_by_one = Engine(TorchBackend.load(str(test_model_dir), "cpu", batch_tokens=0))
    batched = Engine(TorchBackend.load(str(test_model_dir), "cpu", batch_tokens=10_000))
    a = one_by_one.synthesize(CHUNK_TEXT, voice, 1.0, "a", seed=3)
    b = batched.synthesize(CHUNK_TEXT, voice, 1.0, "a", seed=3)
    assert a.pieces == b.pieces >= 3 and a.phonemes_synth == b.phonemes_synth == a.phonemes_in
    assert a.paragraph_ends == b.paragraph_ends and len(a.paragraph_ends) == 2
    assert np.abs(a.audio - b.audio).max() <= MAX_ABS_DIFF

    # The reference: kokoro's batch-1 forward on each piece, seeded as the engine seeds it.
    from audiobook.engine.core import split_paragraphs, split_phonemes
    from audiobook.engine.g2p import phonemize

    model = one_by_one.backend.model
    pieces = [p for para in split_paragraphs(CHUNK_TEXT) for p in split_phonemes(phonemize(para, "a"))]
    pack = one_by_one.voice_pack(voice)
    expected = limit_peaks(
        np.concatenate(
            [reference(model, p, style_for(pack, len(p)), 1.0, piece_seed(3, i))[0] for i, p in enumerate(pieces)]
        )
    )
    assert len(expected) == len(b.audio) and np.abs(expected - b.audio).max() <= MAX_ABS_DIFF


class SwappingRows:
    """A torch backend whose batches come back in the wrong order: a bug the engine must catch."""

    def __init__(self, backend) -> None:  # noqa: ANN001
        self.backend = backend

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.backend, name)

    def infer_batch(self, pieces, styles, speeds, seeds, timed=False):  # noqa: ANN001, ANN201
        rows = self.backend.infer_batch(pieces, styles, speeds, seeds, timed)
        return rows[::-1]


def test_engine_refuses_rows_that_belong_to_other_pieces(torch_backend) -> None:  # noqa: ANN001
    from audiobook.engine.core import Engine
    from audiobook.engine.voices import VoiceSpec

    with pytest.raises(SynthesisError, match="belongs to another piece"):
        Engine(SwappingRows(torch_backend)).synthesize(CHUNK_TEXT, VoiceSpec.parse("af_test"), 1.0, "a")
