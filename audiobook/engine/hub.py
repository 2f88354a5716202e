"""Kokoro models on the Hugging Face hub: one snapshot, pinned to a commit, from the network or the cache."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ModelError

log = logging.getLogger(__name__)

WEIGHT_FILES = {"hexgrad/Kokoro-82M": "kokoro-v1_0.pth", "hexgrad/Kokoro-82M-v1.1-zh": "kokoro-v1_1-zh.pth"}
"""The weights file of each known repo; other repos must hold exactly one ``.pth``."""


def is_repo_id(model: str) -> bool:
    """``owner/name``, not a local path."""
    return model.count("/") == 1 and not model.startswith((".", "/", "~")) and not Path(model).exists()


def snapshot(repo_id: str, revision: str | None = None, weights: bool = True) -> Path:
    """The directory of a repo snapshot with config.json, voices/*.pt and (``weights``) the ``.pth``.

    Downloads what is missing; without a network, the cache alone. The directory's name is the commit it
    holds (the hub's cache layout), which is what a job pins as its model revision.
    """
    if not is_repo_id(repo_id):
        raise ModelError(f"model {repo_id!r} is neither a local directory nor a Hugging Face repo id")
    from huggingface_hub import snapshot_download

    patterns = ["config.json", "voices/*.pt"] + ([WEIGHT_FILES.get(repo_id, "*.pth")] if weights else [])
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except Exception as online_error:  # noqa: BLE001 - any hub failure: try the cache before giving up
        try:
            return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
        except Exception:  # noqa: BLE001
            raise ModelError(
                f"cannot get {repo_id} from the Hugging Face hub ({type(online_error).__name__}: "
                f"{online_error}) and it is not in the local cache; connect once to download it, pass "
                f"--model DIR for a local copy, or use --backend onnx"
            ) from online_error
