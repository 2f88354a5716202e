"""``--backend auto`` with the bundled weights: the way measured fastest on this machine, once, cached, shown."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from audiobook import calibrate
from audiobook.calibrate import Calibration, Measurement
from audiobook.devices import resolve_device
from audiobook.engine import bundled
from audiobook.settings import SettingsRequest, resolve


def test_the_fastest_way_that_ran_is_the_choice() -> None:
    results = (
        Measurement("onnx", "bundled", "cpu", 1, 24.0),
        Measurement("onnx", "bundled-float32", "cpu", 1, 27.5),
        Measurement("torch", "bundled", error="no GPU and too slow"),
    )
    calibration = Calibration("key", "2026-11-23T17:00:00+00:00", results)
    assert (calibration.best.backend, calibration.best.model) == ("onnx", "bundled-float32")
    assert calibration.summary() == (
        "onnx bundled-float32 on cpu, 27.5 chars/s per worker "
        "(others: onnx bundled 24.0, torch bundled: no GPU and too slow)"
    )
    assert Calibration.from_dict("key", json.loads(json.dumps(calibration.to_dict()))) == calibration
    nothing_ran = Calibration("key", "now", (Measurement("onnx", "bundled", error="x"),))
    assert (nothing_ran.best.backend, nothing_ran.best.model) == calibrate.CANDIDATES[0]


def test_the_switch_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("0", False), ("off", False), ("1", True), ("", True)):
        monkeypatch.setenv("AUDIOBOOK_CALIBRATE", value)
        assert calibrate.enabled() is expected


@pytest.fixture
def calibrating(converted_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Calibration on, in the cache that already holds the converted model; returns the calibration file."""
    monkeypatch.setenv("AUDIOBOOK_CALIBRATE", "1")
    monkeypatch.setenv("AUDIOBOOK_CACHE", str(converted_model_dir.parent))
    calibrate.cache_path().unlink(missing_ok=True)
    return calibrate.cache_path()


@pytest.mark.slow
def test_auto_takes_the_recorded_choice_and_says_so(calibrating: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What this machine measured decides, whatever the default is: here torch, written down beforehand."""
    caplog.set_level(logging.INFO, logger="audiobook")
    recorded = Calibration(
        calibrate.machine_key(),
        "2026-11-23T17:00:00+00:00",
        (Measurement("onnx", "bundled", "cpu", 1, 20.0), Measurement("torch", "bundled", "cpu", 1, 31.0)),
    )
    calibrating.write_text(json.dumps({recorded.key: recorded.to_dict()}), encoding="utf-8")
    settings = resolve(SettingsRequest(), None, "en")  # offline: the bundled weights
    assert (settings.backend, settings.model, str(settings.voice)) == ("torch", "bundled", bundled.DEFAULT_VOICE)
    assert "auto: torch bundled on cpu, 31.0 chars/s per worker (others: onnx bundled 20.0)" in caplog.text
    # Asked for outright, a way is never second-guessed; and a job keeps the way it started with.
    assert resolve(SettingsRequest(backend="onnx"), None, "en").model == "bundled"
    assert resolve(SettingsRequest(), settings, "en") == settings


@pytest.mark.slow
def test_the_calibration_measures_each_way_once_per_machine(
    calibrating: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="audiobook")
    first = calibrate.fastest()
    assert [(m.backend, m.model) for m in first.results] == list(calibrate.CANDIDATES)
    assert all(m.chars_per_s > 0 and not m.error for m in first.results), first.results
    assert all(m.device == resolve_device("auto", m.backend) for m in first.results)
    assert first.best.chars_per_s == max(m.chars_per_s for m in first.results)
    assert list(json.loads(calibrating.read_text(encoding="utf-8"))) == [calibrate.machine_key()]

    caplog.clear()
    again = calibrate.fastest()  # from the cache: nothing measured
    assert again == first
    assert "measuring" not in caplog.text and f"auto: {first.summary()}" in caplog.text
