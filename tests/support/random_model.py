"""A random-weight Kokoro model with the real architecture, for tests, benchmarks and smoke runs.

The files look like a real local model directory (``config.json``, one ``.pth``, ``voices/*.pt``), so the real
loading and synthesis path runs without the 330 MB download. The ``.pth`` holds only the duration projection:
random weights would predict about 25 frames per phoneme (8x too much audio), so its weight is scaled down and
its bias set near -3 for a speaking rate of roughly 2.4 frames (60 ms) per phoneme. Every other weight is left
at kokoro's random init, made deterministic by ``init_seed`` in ``config.json``, which ``TorchBackend`` seeds
before building the model.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from audiobook.engine.convert import KOKORO_V1_CONFIG

HIDDEN_DIM = 512
"""Fixed by kokoro's code: the decoder's channel counts assume it."""
STYLE_DIM = 128
"""Fixed by kokoro's code: a voice pack row is two style vectors of this size."""
UPSAMPLE_INITIAL_CHANNEL = 512
"""Fixed by kokoro's code: the decoder hands the generator 512 channels."""
MAX_DUR = 50
PACK_ROWS = 510
WEIGHTS_NAME = "kokoro-random.pth"

_REAL_ISTFTNET = KOKORO_V1_CONFIG["istftnet"]
"""Kokoro-82M v1.0's own decoder sizes."""
_FAST_ISTFTNET = {
    "upsample_kernel_sizes": [11, 12],
    "upsample_rates": [5, 6],
    "gen_istft_hop_size": 10,
    "gen_istft_n_fft": 20,
    "resblock_dilation_sizes": [[1, 3, 5]],
    "resblock_kernel_sizes": [3],
    "upsample_initial_channel": UPSAMPLE_INITIAL_CHANNEL,
}

_IPA_RANGES = (
    (0x0250, 0x02AF),  # IPA extensions
    (0x02B0, 0x02FF),  # spacing modifier letters: stress marks, length
    (0x0300, 0x036F),  # combining diacritics: nasal tilde, syllabic mark
    (0x1D00, 0x1DBF),  # phonetic extensions: misaki's ᵊ and ᵻ
)


def build_random_model(
    dest: Path, seed: int = 0, voices: tuple[str, ...] = ("af_test", "am_test", "bf_test"), fast: bool = False
) -> Path:
    """Write a random-weight model directory at ``dest`` and return it. Same seed, same files.

    ``fast`` keeps the architecture but gives the decoder's generator one residual kernel instead of three and
    moves upsampling into the iSTFT (rates 5x6, hop 10 instead of 10x6, hop 5): same 600 samples per frame,
    about a quarter of the compute. Tests use it; benchmarks want the default, Kokoro-82M's real decoder.
    """
    import torch

    dest = Path(dest)
    (dest / "voices").mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    config = model_config(seed, fast)
    (dest / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")

    weight = torch.randn(MAX_DUR, HIDDEN_DIM, generator=generator) * 0.002
    bias = torch.full((MAX_DUR,), -3.0) + torch.randn(MAX_DUR, generator=generator) * 0.05
    # kokoro's loader tries each module strictly, then retries with the first 7 characters of every key
    # removed and strict=False: the "module." prefix is what lets a partial state dict load.
    state = {
        "predictor": {
            "module.duration_proj.linear_layer.weight": weight,
            "module.duration_proj.linear_layer.bias": bias,
        }
    }
    torch.save(state, dest / WEIGHTS_NAME)

    for name in voices:
        pack = torch.randn(PACK_ROWS, 1, 2 * STYLE_DIM, generator=generator) * 0.15
        torch.save(pack, dest / "voices" / f"{name}.pt")
    return dest


def model_config(seed: int = 0, fast: bool = False) -> dict:
    """Kokoro-82M's architecture with a one-layer, narrow PL-BERT and one-layer encoders."""
    symbols = phoneme_symbols()
    vocab = {symbol: i for i, symbol in enumerate(symbols, start=1)}  # 0 is kokoro's pad/boundary token
    return {
        "init_seed": seed,
        "istftnet": _FAST_ISTFTNET if fast else _REAL_ISTFTNET,
        "dim_in": 64,
        "dropout": 0.0,  # one LSTM layer: torch warns about any dropout
        "hidden_dim": HIDDEN_DIM,
        "max_conv_dim": 512,
        "max_dur": MAX_DUR,
        "multispeaker": True,
        "n_layer": 1,
        "n_mels": 80,
        "n_token": len(vocab) + 1,
        "style_dim": STYLE_DIM,
        "text_encoder_kernel_size": 5,
        "plbert": {
            "hidden_size": 64,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "max_position_embeddings": 512,
            "num_hidden_layers": 1,
            "dropout": 0.1,
        },
        "vocab": vocab,
    }


def phoneme_symbols() -> list[str]:
    """Every symbol misaki's English and espeak G2Ps can emit, collected from misaki at run time."""
    from misaki import en, espeak

    symbols: set[str] = set(en.US_VOCAB) | set(en.GB_VOCAB) | set(en.PUNCTS) | set("()-' ")
    symbols |= {char for _, out in espeak.EspeakFallback.E2M for char in out}
    for version in (None, "2.0"):
        table = espeak.EspeakG2P(language="en-us", version=version).e2m
        symbols |= {char for _, out in table for char in out}
    for lo, hi in _IPA_RANGES:
        symbols |= {chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c)) != "Cn"}
    symbols |= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZæçðøŋœβθχ")
    symbols.discard("^")  # misaki deletes its tie character before synthesis
    return sorted(symbols)


def main(argv: list[str] | None = None) -> int:
    """``python tests/support/random_model.py DEST [--seed N] [--fast]``: build one and print its path."""
    import argparse

    parser = argparse.ArgumentParser(prog="python tests/support/random_model.py", description=main.__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="the small test decoder (about 4x faster)")
    args = parser.parse_args(argv)
    print(build_random_model(args.dest, args.seed, fast=args.fast))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
