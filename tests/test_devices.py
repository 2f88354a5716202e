"""Device names, detection and the one policy: ``auto`` takes the best usable device; a named one must exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiobook import devices
from audiobook.errors import ModelError


def test_the_cpu_is_always_there() -> None:
    assert "cpu" in devices.machine_devices()
    for backend in ("torch", "onnx"):
        assert devices.backend_devices(backend)[-1] == "cpu"
        assert devices.resolve_device("cpu", backend) == "cpu"


def test_auto_takes_the_best_device_the_backend_can_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "machine_devices", lambda: frozenset({"cpu", "cuda"}))
    monkeypatch.setattr(devices, "onnx_devices", lambda: frozenset({"cpu"}))
    assert devices.resolve_device("auto", "torch") == "cuda"
    assert devices.resolve_device(None, "onnx") == "cpu"  # the CPU build of onnxruntime: no CUDA provider
    monkeypatch.setattr(devices, "onnx_devices", lambda: frozenset({"cpu", "cuda"}))
    assert devices.resolve_device("auto", "onnx") == "cuda"


def test_a_named_device_that_is_missing_is_an_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    if "cuda" in devices.machine_devices():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ModelError, match=r"device 'cuda' is not available to the torch backend.*available: cpu"):
        devices.resolve_device("cuda", "torch")
    monkeypatch.setattr(devices, "machine_devices", lambda: frozenset({"cpu", "cuda"}))
    monkeypatch.setattr(devices, "onnx_devices", lambda: frozenset({"cpu"}))
    with pytest.raises(ModelError, match="pip install onnxruntime-gpu"):
        devices.resolve_device("cuda", "onnx")


def test_onnxruntime_gpu_on_a_machine_without_a_gpu_still_runs_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "machine_devices", lambda: frozenset({"cpu"}))
    monkeypatch.setattr(devices, "onnx_devices", lambda: frozenset({"cpu", "cuda"}))
    assert devices.resolve_device("auto", "onnx") == "cpu"


def test_unknown_names_and_torch_names() -> None:
    with pytest.raises(ModelError, match="unknown device 'tpu'; choose one of auto, cpu, cuda, rocm, mps"):
        devices.resolve_device("tpu", "torch")
    assert devices.torch_device("rocm") == "cuda" and devices.torch_device("mps") == "mps"


def test_every_device_list_is_the_one_list() -> None:
    """click, the worker's argparse and both backends take their names from ``DEVICE_CHOICES``."""
    from audiobook import cli, worker

    click_choices = next(p for p in cli.build.params if p.name == "device").type.choices
    assert tuple(click_choices) == devices.DEVICE_CHOICES
    argparse_choices = next(a for a in worker.build_parser()._actions if a.dest == "device").choices
    assert tuple(argparse_choices) == devices.DEVICE_CHOICES
    assert set(devices.ONNX_PROVIDERS) == set(devices.DEVICE_CHOICES) - {"auto"}


def test_directml_is_an_onnx_device_that_torch_cannot_see(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows GPUs through onnxruntime-directml (cannot be measured here: no Windows, no DirectX)."""
    monkeypatch.setattr(devices, "machine_devices", lambda: frozenset({"cpu"}))
    monkeypatch.setattr(devices, "onnx_devices", lambda: frozenset({"cpu", "directml"}))
    assert devices.resolve_device("auto", "onnx") == "directml"
    assert devices.resolve_device("auto", "torch") == "cpu"
    with pytest.raises(ModelError, match="DirectML runs the onnx backend only: use --backend onnx"):
        devices.resolve_device("directml", "torch")


def test_a_provider_this_onnxruntime_lacks_names_the_package_to_install() -> None:
    import onnxruntime

    from audiobook.engine.onnx_backend import create_session

    have = set(onnxruntime.get_available_providers())
    for device, provider, package in (
        ("directml", "DmlExecutionProvider", "onnxruntime-directml"),
        ("mps", "CoreMLExecutionProvider", "onnxruntime"),
    ):
        if provider in have:
            continue
        with pytest.raises(ModelError, match=f"no provider for {device} .*pip install .*{package}"):
            create_session(Path(__file__), device, 1)  # refused before the file is read
