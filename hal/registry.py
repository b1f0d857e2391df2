"""Backends by name, imported lazily (the python-can model).

Importing :mod:`hal` never touches hardware: a backend's module is imported
only when configuration asks for it by name, and a backend that cannot load
raises one :class:`~camera.errors.BackendError` naming it.
"""

from __future__ import annotations

import importlib
from typing import Any

from camera.errors import BackendError

# kind -> name -> "module:attribute"
BACKENDS: dict[str, dict[str, str]] = {
    "clock": {
        "monotonic": "hal.clock.monotonic:MonotonicClock",
        "virtual": "sim.clock:VirtualClock",
        "paced": "sim.clock:PacedClock",
    },
    "gpio": {
        "gpiozero": "hal.gpio.gpiozero_pins:GpiozeroGpio",
        "mock": "hal.gpio.gpiozero_pins:MockGpio",
    },
    "sensor": {
        "opencv": "hal.sensor.opencv:OpenCVSensor",
        "synthetic": "sim.sensor:SyntheticSensor",
    },
    "storage": {
        "local": "hal.storage.local:LocalStorage",
        "sim": "sim.storage:SimStorage",
    },
    "worker": {
        "thread": "hal.worker.thread:ThreadWorker",
        "virtual": "sim.worker:VirtualWorker",
    },
}


def names(kind: str) -> list[str]:
    """The backend names known for one kind, for error messages and --help."""
    return sorted(BACKENDS.get(kind, {}))


def load(kind: str, name: str) -> Any:
    """Import and return the class registered as ``name`` for ``kind``."""
    try:
        target = BACKENDS[kind][name]
    except KeyError:
        raise BackendError(
            f"unknown {kind} backend {name!r}: expected one of {', '.join(names(kind))}"
        ) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"{kind} backend {name!r} cannot load: {exc}") from exc
    return getattr(module, attr)
