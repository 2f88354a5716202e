"""audiobook: ebooks to audiobooks with Kokoro-82M, resumable and chapter-accurate."""

__version__ = "0.1.0"

SAMPLE_RATE = 24000
"""Kokoro speaks at 24 kHz; every chunk WAV and the assembled book use this rate."""
