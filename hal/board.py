"""A board is a set of backends, one per kind, chosen by name.

``sim`` and ``pi`` are presets; any kind can be overridden by name from the
configuration's ``[hal]`` table. Backends load lazily through the registry,
so choosing ``sim`` never imports a Pi library and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hal import registry
from hal.clock import Clock
from hal.gpio import Gpio
from hal.sensor import Sensor
from hal.storage import Storage
from hal.worker import Worker

BOARDS: dict[str, dict[str, str]] = {
    "sim": {
        "clock": "virtual",
        "gpio": "mock",
        "sensor": "synthetic",
        "storage": "sim",
        "worker": "virtual",
    },
    "pi": {
        "clock": "monotonic",
        "gpio": "gpiozero",
        "sensor": "opencv",
        "storage": "local",
        "worker": "thread",
    },
}


@dataclass
class Hal:
    clock: Clock
    gpio: Gpio
    sensor: Sensor
    storage: Storage
    worker: Worker

    def close(self) -> None:
        self.sensor.stop()
        self.worker.close()
        self.gpio.close()


def backend_names(board: str, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    names = dict(BOARDS[board])
    for kind, name in (overrides or {}).items():
        if name:
            names[kind] = name
    return names


def open_hal(
    board: str,
    *,
    storage_root: str | Path,
    width: int,
    height: int,
    fps: int,
    overrides: dict[str, str | None] | None = None,
    camera_source: str = "0",
    seed: int = 0,
    start: datetime | None = None,
) -> Hal:
    names = backend_names(board, overrides)
    clock = registry.load("clock", names["clock"])(start)
    storage = registry.load("storage", names["storage"])(storage_root)
    gpio = registry.load("gpio", names["gpio"])(clock)
    sensor = registry.load("sensor", names["sensor"]).open(
        clock, width, height, fps, seed=seed, source=camera_source
    )
    worker = registry.load("worker", names["worker"])(clock, storage)
    return Hal(clock, gpio, sensor, storage, worker)
