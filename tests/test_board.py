"""One device assembly (camera/device.py) over boards chosen by name (hal/registry.py).

The Pi board is opened here for real: this machine has no GPIO library and no
camera, which is exactly the case `--board pi` must report in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from camera.config import load_config
from camera.device import Device
from camera.evidence.keys import DeviceKeyError, generate_key, save_key, test_key
from hal import registry
from hal.board import open_hal
from hal.errors import BackendError, HardwareMissing
from hal.gpio.gpiozero_pins import MAX_EDGE_AGE, edge_time
from sim.clock import VirtualClock

SMALL = {"video": {"width": 640, "height": 360, "fps": 10, "gop": 10, "bitrate": 500_000}}
#: The pi board with the simulated world's pins and picture, on the real clock:
#: what the Pi path does, on a machine without a Pi.
PI_WITHOUT_HARDWARE = {"device": {"board": "pi"}, "hal": {"gpio": "mock", "sensor": "synthetic"}}


def test_sim_registers_its_backends_through_the_entry_point() -> None:
    """hal/ names no sim backend; the `bodycam.backends` entry point adds them."""
    source = Path(registry.__file__).read_text()
    assert "sim." not in source.replace("sim.backends", "")
    assert registry.board("sim").simulated
    assert not registry.board("pi").simulated
    assert "mock" in registry.names("gpio") and "synthetic" in registry.names("sensor")


def test_unknown_board_and_backend_are_one_line() -> None:
    with pytest.raises(BackendError, match=r"unknown board 'x86': expected one of .*pi.*sim"):
        registry.board("x86")
    with pytest.raises(BackendError, match=r"unknown gpio backend 'nope': expected one of"):
        registry.load("gpio", "nope")


def test_register_adds_a_backend_by_name() -> None:
    registry.register("clock", "test-virtual", "sim.clock:VirtualClock")
    try:
        assert registry.load("clock", "test-virtual") is VirtualClock
    finally:
        del registry.BACKENDS["clock"]["test-virtual"]


def test_pi_board_off_a_pi_names_every_missing_part(tmp_path: Path) -> None:
    with pytest.raises(HardwareMissing) as caught:
        open_hal("pi", storage_root=tmp_path, width=320, height=240, fps=10, camera_source="7")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("board 'pi': pin factory: no GPIO library could open the pins")
    assert "camera: " in message and "'7'" in message


def test_run_board_pi_here_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The issue's first symptom: four pin-factory warnings and a traceback, exit 1."""
    done = subprocess.run(
        [sys.executable, "-m", "camera", "run", "--board", "pi", "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bodycam run: board 'pi': pin factory: ")
    assert "camera: " in lines[0]
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_the_simulated_board_signs_with_a_test_key(tmp_path: Path) -> None:
    config = load_config(None, SMALL)
    device = Device(config, board="sim", storage=tmp_path, seed=3)
    try:
        assert device.firmware.key.key_id == test_key(config.device.id, 3).key_id
        assert device.firmware.key.test
    finally:
        device.hal.close()


def test_a_real_board_needs_its_provisioned_key(tmp_path: Path) -> None:
    missing = tmp_path / "no.key"
    config = load_config(
        None, {**SMALL, **PI_WITHOUT_HARDWARE, "device": {"board": "pi", "key_file": str(missing)}}
    )
    with pytest.raises(DeviceKeyError, match="bodycam provision"):
        Device(config, storage=tmp_path / "store")
    key = generate_key()
    save_key(key, missing)
    device = Device(config, storage=tmp_path / "store")
    try:
        assert device.firmware.key.key_id == key.key_id and not device.firmware.key.test
        assert not device.clock.virtual
    finally:
        device.hal.close()


def test_one_report_for_every_board(tmp_path: Path) -> None:
    config = load_config(None, SMALL)
    device = Device(config, board="sim", storage=tmp_path).boot()
    device.run(until=2.0)
    device.firmware.trigger("console", device.clock.now())
    device.run(until=3.0)
    recordings = device.shutdown()
    summary = device.report().summary()
    assert summary["board"] == "sim" and summary["scenario"] is None
    # Time reached, closing included; on a virtual clock the host's time is not read.
    assert 3.0 <= summary["device_seconds"] == pytest.approx(summary["wall_seconds"], abs=1e-3)
    [rec] = summary["recordings"]
    assert rec["path"] == str(tmp_path / recordings[0]["recording_id"])
    assert rec["frames"] == recordings[0]["frames"] > 0
    assert summary["ok"] and summary["interrupted"] is None


class Ticks:
    """A pin factory's clock as gpiozero exposes it: ticks() and ticks_diff()."""

    def __init__(self, now: float) -> None:
        self.now = now

    def ticks(self) -> float:
        return self.now

    @staticmethod
    def ticks_diff(later: float, earlier: float) -> float:
        return later - earlier


class RealClockAt:
    virtual = False

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("stamped", "expected"),
    [
        (99.996, 9.996),  # 4 ms before the callback ran: the edge is 4 ms earlier
        (100.0, 10.0),
        (100.5, 10.0),  # in the future: another clock; stamped on arrival
        (100.0 - MAX_EDGE_AGE - 0.1, 10.0),  # implausibly old: stamped on arrival
        (None, 10.0),
    ],
)
def test_edges_keep_the_pin_librarys_timestamp(stamped: Any, expected: float) -> None:
    t = edge_time(RealClockAt(10.0), Ticks(100.0), stamped)  # type: ignore[arg-type]
    assert t == pytest.approx(expected)


def test_virtual_edges_happen_now_whatever_the_host_clock_says() -> None:
    clock = VirtualClock()
    clock.run(until=5.0)
    assert edge_time(clock, Ticks(100.0), 99.0) == 5.0  # type: ignore[arg-type]
