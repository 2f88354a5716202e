"""Voice specs: a name, a ``.pt``/``.npy`` pack, a weighted blend ``a*0.7+b*0.3``, or kokoro's ``a,b``.

A pack is a float32 array of shape (N, 1, 256): one style vector per phoneme-count bucket. The style for a
piece of ``n`` phonemes is row ``min(n, N) - 1``, as kokoro does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from .base import STYLE_DIM

if TYPE_CHECKING:
    from .base import Backend

PACK_SUFFIXES = (".pt", ".npy")

DEFAULT_VOICES = {
    "a": "af_heart",
    "b": "bf_emma",
    "e": "ef_dora",
    "f": "ff_siwis",
    "h": "hf_alpha",
    "i": "if_sara",
    "j": "jf_alpha",
    "p": "pf_dora",
    "z": "zf_xiaobei",
}
"""Kokoro-82M's best-rated voice per language code."""

_TERM = re.compile(r"^\s*(?P<name>[^*]+?)\s*(?:\*\s*(?P<weight>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?\s*$")


def default_voice_for(lang_code: str, available: list[str]) -> str:
    """The preferred voice for a language among ``available``, else its first voice, else the first voice."""
    preferred = DEFAULT_VOICES.get(lang_code)
    if preferred in available:
        return preferred
    same_language = [name for name in available if name.startswith(lang_code)]
    if same_language:
        return same_language[0]
    if not available:
        raise ModelError("this model has no voices")
    return available[0]


@dataclass(frozen=True)
class VoiceSpec:
    """A parsed voice: (name or absolute pack path, weight) terms whose weights sum to 1.

    Parsed once, from what the user typed, by :meth:`parse`; stored in job.json as its canonical ``str``; sent
    to workers as :meth:`to_json` terms, which :meth:`from_json` takes back without parsing. Weights are rounded
    to six significant digits so the canonical form reads back to the very same value.
    """

    terms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str, base: Path | None = None, must_exist: bool = True) -> VoiceSpec:
        """``af_heart``, ``af_heart*0.7+af_bella*0.3``, ``af_heart,af_bella`` (kokoro's equal average), or pack
        files (``.pt``/``.npy``, made absolute against ``base``, default the working directory; ``must_exist``:
        a missing one is a ``ModelError``)."""
        spec = spec.strip()
        if not spec:
            raise ModelError("empty voice name")
        if "+" in spec and "," in spec:
            raise ModelError(f"voice {spec!r}: use either '+' (weighted blend) or ',' (average), not both")
        parts = spec.split("+") if "+" in spec else spec.split(",")
        terms: list[tuple[str, float]] = []
        for part in parts:
            match = _TERM.match(part)
            if match is None or "," in spec and match["weight"] is not None:
                raise ModelError(f"voice {spec!r}: cannot read {part.strip()!r}; write name or name*0.3")
            weight = float(match["weight"]) if match["weight"] is not None else 1.0
            if weight <= 0:
                raise ModelError(f"voice {spec!r}: weight of {match['name']!r} must be above 0")
            terms.append((_absolute_pack(match["name"], base, must_exist), weight))
        total = sum(weight for _, weight in terms)
        return cls(tuple((name, float(f"{weight / total:.6g}")) for name, weight in terms))

    @classmethod
    def from_json(cls, terms: list) -> VoiceSpec:
        """The terms as :meth:`to_json` wrote them."""
        return cls(tuple((str(name), float(weight)) for name, weight in terms))

    def to_json(self) -> list[list]:
        return [[name, weight] for name, weight in self.terms]

    def __str__(self) -> str:
        if len(self.terms) == 1:
            return self.terms[0][0]
        return "+".join(f"{name}*{weight:.6g}" for name, weight in self.terms)

    @property
    def names(self) -> list[str]:
        """The model voices it names (pack files left out)."""
        return [name for name, _ in self.terms if not is_pack_path(name)]

    def check(self, available: list[str]) -> None:
        """The unknown-voice error for a name the model lacks."""
        for name in self.names:
            if name not in available:
                raise unknown_voice(name, available)


def is_pack_path(name: str) -> bool:
    """Whether a voice term names a pack file rather than one of the model's voices."""
    return name.endswith(PACK_SUFFIXES) or "/" in name or "\\" in name


def _absolute_pack(name: str, base: Path | None, must_exist: bool) -> str:
    if not is_pack_path(name):
        return name
    path = Path(os.path.abspath((base or Path.cwd()) / Path(name).expanduser()))
    if must_exist and not path.is_file():
        raise ModelError(f"voice pack file {name} not found")
    return str(path)


def load_voice(spec: VoiceSpec, backend: Backend) -> np.ndarray:
    """The float32 pack (N, 1, 256) for a voice spec, blending packs as the spec says."""
    packs = [(_single_pack(name, backend), weight) for name, weight in spec.terms]
    if len(packs) == 1:
        return packs[0][0]
    rows = min(pack.shape[0] for pack, _ in packs)
    blend = sum(pack[:rows].astype(np.float64) * weight for pack, weight in packs)
    return np.asarray(blend, dtype=np.float32)


def style_for(pack: np.ndarray, phoneme_count: int) -> np.ndarray:
    """The (1, 256) style vector kokoro uses for a piece of ``phoneme_count`` phonemes."""
    row = min(max(phoneme_count, 1), pack.shape[0]) - 1
    return pack[row]


def load_pack_file(path: Path) -> np.ndarray:
    """Read a ``.pt`` (torch tensor) or ``.npy`` voice pack and check its shape."""
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            import torch

            array = torch.load(path, map_location="cpu", weights_only=True).float().numpy()
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"cannot read voice pack {path}: {e}") from e
    return check_pack(array, str(path))


def check_pack(array: np.ndarray, origin: str) -> np.ndarray:
    """Return ``array`` as float32 (N, 1, 256), accepting (N, 256); ``ModelError`` for any other shape."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2 and array.shape[1] == STYLE_DIM:
        array = array[:, None, :]
    if array.ndim != 3 or array.shape[1:] != (1, STYLE_DIM) or array.shape[0] < 1:
        raise ModelError(f"voice pack {origin} has shape {array.shape}; expected (N, 1, {STYLE_DIM})")
    return array


def _single_pack(name: str, backend: Backend) -> np.ndarray:
    return load_pack_file(Path(name)) if is_pack_path(name) else backend.voice_pack(name)


def unknown_voice(name: str, available: list[str]) -> ModelError:
    """The error for a voice the model lacks, naming the ones it has."""
    return ModelError(f"voice {name!r} not found; available: {', '.join(available)} (see `audiobook voices`)")
