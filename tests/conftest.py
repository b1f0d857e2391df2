"""Shared fixtures: small, fast simulated devices on the virtual clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from camera.config import load_config
from sim.device import SimDevice


def make_device(
    tmp_path: Path, overrides: dict[str, Any] | None = None, seed: int = 0
) -> SimDevice:
    base: dict[str, Any] = {
        "video": {"width": 640, "height": 360, "fps": 30, "bitrate": 1_500_000, "gop": 30},
    }
    from camera.config import deep_merge

    config = load_config(None, deep_merge(base, overrides or {}))
    return SimDevice(config, tmp_path / "store", seed=seed).boot()


@pytest.fixture
def device_factory(tmp_path: Path):
    made: list[SimDevice] = []

    def factory(overrides: dict[str, Any] | None = None, seed: int = 0) -> SimDevice:
        dev = make_device(tmp_path, overrides, seed)
        made.append(dev)
        return dev

    yield factory
    for dev in made:
        if dev.firmware.state.value != "stopped":
            dev.shutdown()
