"""Batched synthesis: many phoneme pieces through kokoro's ``KModel`` in one forward pass.

Upstream ``KModel.forward`` speaks one utterance. ``infer_batch`` runs the same modules and weights on a padded
batch, and every place where a row could see another row's padding is masked:

* ALBERT gets an attention mask; the text encoder and duration encoder get kokoro's own lengths and masks.
* Every LSTM reads a packed sequence (``pack_padded_sequence``), so the padding never enters the recurrence.
* Durations are zeroed on padded tokens after kokoro's ``round().clamp(min=1)``; each row's alignment comes from
  its own cumulative durations, so its frames are exactly the batch-1 frames.
* Instance norm (AdaIN) statistics are taken over each row's own frames only, and padded frames are set back
  to zero before every convolution, so a kernel at a row's edge sees the zeros that batch-1 padding gives it.
* The decoder's harmonic source runs per row, on the row's own F0 and length, its noise drawn from a generator
  seeded with that row's seed in the order and shapes kokoro draws it from the global generator; the STFT and
  inverse STFT run per row too, so the reflect padding and the overlap-add at the row's end are batch-1's.
* Each row has its own style (the caller picks it by the row's own phoneme count, as kokoro does) and speed.

A row therefore equals ``KModel.forward`` on that piece alone, seeded with ``torch.manual_seed(seed)``, up to
float rounding: different shapes run different kernels that sum in another order. In unvoiced audio that stays
at the last bits (about 120 dB SNR). In voiced audio the harmonic source integrates F0 over the whole piece, so
the last bits of F0 become a small phase drift; batch 1 drifts from itself just as much when torch runs it on two
threads instead of one (about 40-60 dB SNR, 0.1 dB of spectrum). ``tests/test_batched.py`` holds both.

``BatchRunner`` cuts one chunk's pieces into batches (longest first, cut by a padded-token budget) and splits a
batch that runs out of device memory in halves, learning a lower limit, instead of failing the chunk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import SynthesisError
from .base import MAX_PHONEMES, SAMPLES_PER_FRAME, PieceAudio

log = logging.getLogger(__name__)

DEFAULT_BATCH_TOKENS = 4096
"""Padded tokens (rows x longest row, boundary tokens included) per batch; eight full 510-phoneme pieces."""


def token_ids(vocab: dict[str, int], phonemes: str) -> tuple[list[int], str]:
    """Vocab ids for ``phonemes`` and the characters they stand for; unknown characters dropped, as kokoro does."""
    kept = "".join(char for char in phonemes if vocab.get(char) is not None)
    return [vocab[char] for char in kept], kept


def infer_batch(
    model,  # noqa: ANN001 - kokoro's KModel, imported lazily
    phoneme_pieces: Sequence[str],
    styles: np.ndarray | Sequence[np.ndarray],
    speeds: Sequence[float],
    seeds: Sequence[int],
) -> list[PieceAudio]:
    """Synthesize every piece in one forward pass of ``model`` (a kokoro ``KModel`` in eval mode).

    ``styles`` holds one (1, 256) or (256,) style vector per piece, ``speeds`` and ``seeds`` one number per piece;
    rows come back in the order given. Each row matches ``model(piece, style, speed)`` after
    ``torch.manual_seed(seed)`` up to float rounding.
    """
    import torch

    count = len(phoneme_pieces)
    if not count == len(styles) == len(speeds) == len(seeds):
        raise ValueError(f"{count} pieces but {len(styles)} styles, {len(speeds)} speeds, {len(seeds)} seeds")
    if count == 0:
        return []
    device = model.device
    encoded = [token_ids(model.vocab, piece) for piece in phoneme_pieces]
    longest = max(len(ids) for ids, _ in encoded)
    if longest + 2 > model.context_length:
        raise SynthesisError(f"{longest} phonemes in one piece; the model takes {MAX_PHONEMES}")
    with torch.inference_mode():
        ids, lengths = _pad_tokens([ids for ids, _ in encoded], device)
        style = torch.as_tensor(np.stack([np.asarray(s, dtype=np.float32).reshape(-1) for s in styles]), device=device)
        speed = torch.tensor([float(s) for s in speeds], dtype=torch.float32, device=device)
        durations, d, t_en = _encode(model, ids, lengths, style[:, 128:], speed)
        frames = durations.sum(dim=1)
        token_of_frame = _token_of_frame(durations, int(frames.max()))
        en = _expand(d.transpose(-1, -2), token_of_frame, frames)
        asr = _expand(t_en, token_of_frame, frames)
        f0, noise = _prosody(model.predictor, en, style[:, 128:], frames)
        generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
        audio = _decode(model.decoder, asr, f0, noise, style[:, :128], frames, generators)
    rows = []
    for index, (_, kept) in enumerate(encoded):
        row_durations = durations[index, : len(kept) + 2].cpu().numpy().astype(np.int64)
        row_audio = audio[index].float().cpu().numpy().astype(np.float32, copy=False)
        if len(row_audio) != SAMPLES_PER_FRAME * int(row_durations.sum()):  # a bug here, never the input's fault
            raise SynthesisError(f"row {index}: {len(row_audio)} samples for {row_durations.sum()} frames")
        rows.append(PieceAudio(row_audio, kept, row_durations))
    return rows


# ---- batching one chunk's pieces -----------------------------------------------------------------------------


def piece_tokens(vocab: dict[str, int], phonemes: str) -> int:
    """Tokens a piece occupies in a batch: its known phonemes plus kokoro's two boundary tokens."""
    return len(token_ids(vocab, phonemes)[0]) + 2


def plan_batches(tokens: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of the pieces, longest first, cut into batches of at most ``budget`` padded tokens.

    A batch costs its row count times its longest row. A piece longer than the budget still gets a batch of
    its own. Ties keep the caller's order, so the plan is a pure function of the lengths and the budget.
    """
    order = sorted(range(len(tokens)), key=lambda i: (-tokens[i], i))
    batches: list[list[int]] = []
    for index in order:
        if batches and (len(batches[-1]) + 1) * tokens[batches[-1][0]] <= budget:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def batch_cost(tokens: Sequence[int], batch: Sequence[int]) -> int:
    """Padded tokens of a batch: rows times the longest row."""
    return len(batch) * max(tokens[i] for i in batch)


Infer = Callable[..., list[PieceAudio]]


@dataclass
class BatchRunner:
    """Synthesizes the pieces of one chunk at a time in batches, surviving out-of-memory errors.

    ``budget`` (padded tokens) cuts the plan; it is a setting, so the same chunk gets the same batches on every
    run. A batch that runs out of device memory is split in halves and retried, and ``limit`` drops below its
    cost: later batches above ``limit`` are split the same way before they are tried. Splitting only ever
    halves a planned batch, so a batch's rows are the same whether the halves came from an error or from
    ``limit``. ``infer`` is ``infer_batch``; tests pass a wrapper that gives the device a smaller memory.
    """

    model: object
    budget: int = DEFAULT_BATCH_TOKENS
    infer: Infer = infer_batch
    limit: int | None = None
    """The learned ceiling on a batch's padded tokens; ``None`` until a batch runs out of memory."""
    splits: int = field(default=0)
    """Batches split after running out of memory (for logs and tests)."""

    def synthesize(
        self, pieces: Sequence[str], styles: Sequence[np.ndarray], speeds: Sequence[float], seeds: Sequence[int]
    ) -> list[PieceAudio]:
        """One row per piece, in the caller's order. Pieces must come from one chunk (see the module doc)."""
        tokens = [piece_tokens(self.model.vocab, piece) for piece in pieces]
        rows: list[PieceAudio | None] = [None] * len(pieces)
        for batch in plan_batches(tokens, self.budget):
            self._run(batch, tokens, pieces, styles, speeds, seeds, rows)
        missing = [index for index, row in enumerate(rows) if row is None]
        if missing:  # a bug in the splitting, never the input's fault
            raise SynthesisError(f"pieces {missing} were never synthesized")
        return rows

    def _run(
        self,
        batch: list[int],
        tokens: Sequence[int],
        pieces: Sequence[str],
        styles: Sequence[np.ndarray],
        speeds: Sequence[float],
        seeds: Sequence[int],
        rows: list[PieceAudio | None],
    ) -> None:
        cost = batch_cost(tokens, batch)
        if len(batch) > 1 and self.limit is not None and cost > self.limit:
            for half in _halves(batch):
                self._run(half, tokens, pieces, styles, speeds, seeds, rows)
            return
        try:
            done = self.infer(
                self.model,
                [pieces[i] for i in batch],
                [styles[i] for i in batch],
                [speeds[i] for i in batch],
                [seeds[i] for i in batch],
            )
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            _release_cached_memory()
            if len(batch) == 1:
                raise SynthesisError(
                    f"one piece of {tokens[batch[0]]} tokens does not fit in device memory: {error}"
                ) from error
            self.limit = cost - 1 if self.limit is None else min(self.limit, cost - 1)
            self.splits += 1
            log.warning(
                "batch of %d pieces (%d padded tokens) ran out of memory; splitting it, and batches "
                "over %d tokens from now on",
                len(batch),
                cost,
                self.limit,
            )
            for half in _halves(batch):
                self._run(half, tokens, pieces, styles, speeds, seeds, rows)
            return
        for index, row in zip(batch, done, strict=True):
            rows[index] = row


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device running out of memory (CUDA, ROCm or MPS), which a smaller batch avoids."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _halves(batch: list[int]) -> list[list[int]]:
    middle = math.ceil(len(batch) / 2)
    return [batch[:middle], batch[middle:]]


def _release_cached_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- the forward pass, stage by stage ------------------------------------------------------------------------


def _pad_tokens(rows: list[list[int]], device):  # noqa: ANN001, ANN202 - torch types
    import torch

    lengths = torch.tensor([len(ids) + 2 for ids in rows], dtype=torch.long)
    ids = torch.zeros((len(rows), int(lengths.max())), dtype=torch.long)  # 0 is kokoro's boundary and pad token
    for index, row in enumerate(rows):
        ids[index, 1 : len(row) + 1] = torch.tensor(row, dtype=torch.long)
    return ids.to(device), lengths.to(device)


def _mask(lengths, size: int):  # noqa: ANN001, ANN202
    """(B, 1, size) float: 1 inside each row's length, 0 in its padding."""
    import torch

    positions = torch.arange(size, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).unsqueeze(1).float()


def _encode(model, ids, lengths, style, speed):  # noqa: ANN001, ANN202
    """Durations per token (0 on padding), the duration encoder's features and the text encoder's."""
    import torch

    text_mask = torch.arange(ids.shape[1], device=ids.device)[None, :] >= lengths[:, None]  # True on padding
    bert = model.bert(ids, attention_mask=(~text_mask).int())
    d_en = model.bert_encoder(bert).transpose(-1, -2)
    d = model.predictor.text_encoder(d_en, style, lengths, text_mask)
    x = _packed_lstm(model.predictor.lstm, d, lengths)
    duration = torch.sigmoid(model.predictor.duration_proj(x)).sum(dim=-1) / speed[:, None]
    durations = torch.round(duration).clamp(min=1).long().masked_fill(text_mask, 0)
    t_en = model.text_encoder(ids, lengths, text_mask)
    return durations, d, t_en


def _packed_lstm(lstm, x, lengths):  # noqa: ANN001, ANN202
    """A batch-first LSTM over each row's own length; padded steps come back as zeros."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out


def _token_of_frame(durations, frames: int):  # noqa: ANN001, ANN202
    """(B, frames): the token each frame belongs to, from each row's cumulative durations."""
    import torch

    ends = durations.cumsum(dim=1)
    positions = torch.arange(frames, device=durations.device).expand(durations.shape[0], -1).contiguous()
    return torch.searchsorted(ends, positions, right=True).clamp(max=durations.shape[1] - 1)


def _expand(features, token_of_frame, frames):  # noqa: ANN001, ANN202
    """(B, C, T) token features -> (B, C, F) frame features; zero past each row's frames.

    kokoro multiplies by a one-hot alignment matrix; gathering gives the same numbers exactly (a product with
    one 1 and zeros elsewhere adds nothing), without the (B, T, F) matrix.
    """
    index = token_of_frame[:, None, :].expand(-1, features.shape[1], -1)
    return features.gather(2, index) * _mask(frames, token_of_frame.shape[1])


def _prosody(predictor, en, style, frames):  # noqa: ANN001, ANN202
    """kokoro's ``F0Ntrain`` on a padded batch: F0 and noise curves at twice the frame rate, zero past the end."""
    x = _packed_lstm(predictor.shared, en.transpose(-1, -2), frames).transpose(-1, -2)
    curves = []
    for blocks, projection in ((predictor.F0, predictor.F0_proj), (predictor.N, predictor.N_proj)):
        y, lengths = x, frames
        for block in blocks:
            y, lengths = _adain_resblk(block, y, style, lengths)
        curves.append((projection(y) * _mask(lengths, y.shape[-1])).squeeze(1))
    return curves[0], curves[1]


def _adain(norm, x, style, mask, count):  # noqa: ANN001, ANN202
    """kokoro's ``AdaIN1d`` with instance-norm statistics over each row's own frames; zero on padding.

    ``x`` must be zero on padding (every caller keeps it so), which lets the mean skip a mask. The affine
    steps are folded into one scale and shift per row and channel: fewer passes over the largest tensors.
    """
    import torch

    gamma, beta = torch.chunk(norm.fc(style)[:, :, None], chunks=2, dim=1)
    instance = norm.norm
    mean = x.sum(dim=-1, keepdim=True) / count
    centered = (x - mean) * mask
    variance = (centered * centered).sum(dim=-1, keepdim=True) / count
    scale = (1 + gamma) / torch.sqrt(variance + instance.eps)
    shift = beta
    if instance.weight is not None:
        scale = scale * instance.weight[None, :, None]
        shift = (1 + gamma) * instance.bias[None, :, None] + beta
    return torch.addcmul(shift, centered, scale) * mask


def _adain_resblk(block, x, style, lengths):  # noqa: ANN001, ANN202
    """kokoro's ``AdainResBlk1d`` (prosody predictor and decoder) on a padded batch; returns the new lengths."""
    import torch

    mask = _mask(lengths, x.shape[-1])
    count = lengths[:, None, None].float()
    out_lengths = lengths * 2 if block.upsample_type != "none" else lengths
    residual = block.actv(_adain(block.norm1, x, style, mask, count))
    residual = block.pool(residual)
    out_mask = _mask(out_lengths, residual.shape[-1])
    out_count = out_lengths[:, None, None].float()
    residual = block.conv1(residual * out_mask).mul_(out_mask)
    residual = block.actv(_adain(block.norm2, residual, style, out_mask, out_count))
    residual = block.conv2(residual).mul_(out_mask)
    out = (residual + block._shortcut(x)) * torch.rsqrt(torch.tensor(2))
    return out, out_lengths


def _adain_resblock1(block, x, style, mask, count):  # noqa: ANN001, ANN202
    """kokoro's generator ``AdaINResBlock1`` (Snake activations) on a padded batch."""
    import torch

    for c1, c2, n1, n2, a1, a2 in zip(
        block.convs1, block.convs2, block.adain1, block.adain2, block.alpha1, block.alpha2, strict=True
    ):
        xt = _adain(n1, x, style, mask, count)
        xt = xt + (1 / a1) * (torch.sin(a1 * xt) ** 2)  # Snake: zero stays zero, so padding stays zero
        xt = c1(xt).mul_(mask)
        xt = _adain(n2, xt, style, mask, count)
        xt = xt + (1 / a2) * (torch.sin(a2 * xt) ** 2)
        xt = c2(xt).mul_(mask)
        x = xt + x
    return x


def _decode(decoder, asr, f0_curve, n_curve, style, frames, generators):  # noqa: ANN001, ANN202
    """kokoro's ``Decoder`` on a padded batch: one trimmed waveform tensor per row."""
    import torch

    double = frames * 2
    f0 = decoder.F0_conv(f0_curve.unsqueeze(1)) * _mask(frames, asr.shape[-1])
    noise = decoder.N_conv(n_curve.unsqueeze(1)) * _mask(frames, asr.shape[-1])
    x, lengths = _adain_resblk(decoder.encode, torch.cat([asr, f0, noise], dim=1), style, frames)
    asr_res = decoder.asr_res(asr) * _mask(frames, asr.shape[-1])
    residual = True
    for block in decoder.decode:
        if residual:
            x = torch.cat([x, asr_res, f0, noise], dim=1)
        x, lengths = _adain_resblk(block, x, style, lengths)
        if block.upsample_type != "none":
            residual = False
    assert bool((lengths == double).all())
    return _generate(decoder.generator, x, style, f0_curve, double, generators)


def _generate(gen, x, style, f0_curve, lengths, generators):  # noqa: ANN001, ANN202
    """kokoro's iSTFTNet ``Generator`` on a padded batch; the source and the (i)STFT run per row."""
    import torch
    import torch.nn.functional as F

    scale = int(gen.f0_upsamp.scale_factor)
    samples = lengths * scale
    har = _harmonics(gen, f0_curve, samples, generators)
    for i in range(gen.num_upsamples):
        x = F.leaky_relu(x, negative_slope=0.1)
        lengths = lengths * gen.ups[i].stride[0] + (1 if i == gen.num_upsamples - 1 else 0)
        size = x.shape[-1] * gen.ups[i].stride[0] + (1 if i == gen.num_upsamples - 1 else 0)
        mask, count = _mask(lengths, size), lengths[:, None, None].float()
        x_source = gen.noise_convs[i](har)
        x_source = _adain_resblock1(gen.noise_res[i], x_source * mask, style, mask, count)
        x = gen.ups[i](x)
        if i == gen.num_upsamples - 1:
            x = gen.reflection_pad(x)
        x = (x + x_source) * mask
        xs = None
        for j in range(gen.num_kernels):
            y = _adain_resblock1(gen.resblocks[i * gen.num_kernels + j], x, style, mask, count)
            xs = y if xs is None else xs + y
        x = xs / gen.num_kernels
    x = gen.conv_post(F.leaky_relu(x))
    spec = torch.exp(x[:, : gen.post_n_fft // 2 + 1, :])
    phase = torch.sin(x[:, gen.post_n_fft // 2 + 1 :, :])
    return [
        gen.stft.inverse(spec[b : b + 1, :, :n], phase[b : b + 1, :, :n]).reshape(-1)
        for b, n in enumerate(lengths.tolist())
    ]


def _harmonics(gen, f0_curve, samples, generators):  # noqa: ANN001, ANN202
    """The harmonic source's STFT (magnitude and phase) per row, zero-padded to the batch's longest row.

    Row by row, on the row's own length: the source's phase is a running sum over the whole row and the STFT
    phase of its quiet bins is ill-conditioned, so a last-bit difference here (a batched kernel summing in
    another order) would grow into an audible one. Row by row it is batch 1's arithmetic, on the row's F0.
    """
    import torch

    spectra = []
    for b, (n, generator) in enumerate(zip(samples.tolist(), generators, strict=True)):
        f0 = gen.f0_upsamp(f0_curve[b : b + 1, None, : n // int(gen.f0_upsamp.scale_factor)]).transpose(1, 2)
        source = _harmonic_source(gen.m_source, f0, generator)
        magnitude, phase = gen.stft.transform(source)
        spectra.append(torch.cat([magnitude, phase], dim=1)[0])
    width = max(spec.shape[-1] for spec in spectra)
    har = torch.zeros((len(spectra), spectra[0].shape[0], width), device=f0_curve.device, dtype=spectra[0].dtype)
    for b, spec in enumerate(spectra):
        har[b, :, : spec.shape[-1]] = spec
    return har


def _harmonic_source(source, f0, generator):  # noqa: ANN001, ANN202
    """kokoro's ``SourceModuleHnNSF`` for one row (1, samples, 1), its noise drawn from ``generator``.

    kokoro draws ``rand(1, harmonics)`` for the initial phases, then ``randn_like`` for the additive noise, from
    the global generator. Drawing the same shapes, in the same memory layout and order, from a generator seeded
    like batch 1's ``torch.manual_seed(seed)`` gives the row the numbers it gets alone. The noise branch kokoro
    also draws (``noi_source``) never reaches the audio, so it is not drawn.
    """
    import torch
    import torch.nn.functional as F

    sine = source.l_sin_gen
    harmonics = torch.arange(1, sine.harmonic_num + 2, device=f0.device, dtype=f0.dtype)
    rad = (f0 * harmonics[None, None, :] / sine.sampling_rate) % 1
    initial = torch.rand(1, sine.dim, generator=generator, device=f0.device)
    initial[:, 0] = 0
    rad[:, 0, :] = rad[:, 0, :] + initial
    rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / sine.upsample_scale, mode="linear").transpose(1, 2)
    phase = torch.cumsum(rad, dim=1) * 2 * torch.pi
    phase = F.interpolate(
        phase.transpose(1, 2) * sine.upsample_scale, scale_factor=sine.upsample_scale, mode="linear"
    ).transpose(1, 2)
    sines = torch.sin(phase) * sine.sine_amp
    uv = (f0 > sine.voiced_threshold).type(torch.float32)
    # randn_like keeps the layout of kokoro's (1, n, harmonics) tensor, a transposed (1, harmonics, n) one, and
    # the CPU kernel fills a strided tensor in memory order: same layout, same numbers.
    noise = torch.empty((1, sine.dim, sines.shape[1]), device=f0.device, dtype=sines.dtype).transpose(1, 2)
    noise = noise.normal_(generator=generator)
    noise_amp = uv * sine.noise_std + (1 - uv) * sine.sine_amp / 3
    waves = sines * uv + noise_amp * noise
    return source.l_tanh(source.l_linear(waves)).transpose(1, 2).squeeze(1)
