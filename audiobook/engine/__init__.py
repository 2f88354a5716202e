"""Synthesis: one loaded backend (torch or ONNX) behind the shared ``Engine``."""

from .base import MAX_PHONEMES, Backend
from .core import Engine, Synthesis, write_wav
from .g2p import lang_code_for

__all__ = ["MAX_PHONEMES", "Backend", "Engine", "Synthesis", "lang_code_for", "write_wav"]
