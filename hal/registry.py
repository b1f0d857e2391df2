"""Backends and boards by name, imported lazily (the python-can model).

Importing :mod:`hal` never touches hardware: a backend's module is imported
only when configuration asks for it by name, and a backend that cannot load
raises one :class:`~hal.errors.BackendError` naming it.

hal/ knows only its own backends. Other packages add theirs with
:func:`register` and :func:`register_board`, and are found through the
``bodycam.backends`` entry point group (as python-can finds its interfaces),
so the simulator's backends register themselves without hal/ naming sim/.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from hal.errors import BackendError

#: Entry points in this group are called (no arguments) to register backends.
ENTRY_POINTS = "bodycam.backends"

# kind -> name -> "module:attribute"
BACKENDS: dict[str, dict[str, str]] = {
    "audio": {"alsa": "hal.audio.alsa:AlsaAudio"},
    "clock": {"monotonic": "hal.clock.monotonic:MonotonicClock"},
    "gpio": {"gpiozero": "hal.gpio.gpiozero_pins:GpiozeroGpio"},
    "gps": {"nmea": "hal.gps.nmea:NmeaGps", "none": "hal.gps.none:NoGps"},
    "sensor": {
        "opencv": "hal.sensor.opencv:OpenCVSensor",
        "picamera2": "hal.sensor.picamera2:Picamera2Sensor",
        "auto": "hal.sensor.auto:AutoSensor",
    },
    "storage": {"local": "hal.storage.local:LocalStorage"},
    "worker": {"thread": "hal.worker.thread:ThreadWorker"},
}


@dataclass(frozen=True)
class Board:
    """A preset: one backend name per kind.

    ``simulated`` boards are the simulated world: their device key is a test
    key anyone can recompute, never a provisioned one.
    """

    name: str
    backends: dict[str, str] = field(default_factory=dict)
    simulated: bool = False


BOARDS: dict[str, Board] = {
    "pi": Board(
        "pi",
        {
            "clock": "monotonic",
            "gpio": "gpiozero",
            "sensor": "auto",
            "storage": "local",
            "worker": "thread",
            "audio": "alsa",
            "gps": "nmea",
        },
    ),
}

_discovered = False


def register(kind: str, name: str, target: str) -> None:
    """Make ``"module:attribute"`` loadable as backend ``name`` of ``kind``."""
    BACKENDS.setdefault(kind, {})[name] = target


def register_board(board: Board) -> None:
    BOARDS[board.name] = board


def _discover() -> None:
    """Run every registered ``bodycam.backends`` entry point, once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for ep in entry_points(group=ENTRY_POINTS):
        ep.load()()


def names(kind: str) -> list[str]:
    """The backend names known for one kind, for error messages and --help."""
    _discover()
    return sorted(BACKENDS.get(kind, {}))


def board(name: str) -> Board:
    _discover()
    try:
        return BOARDS[name]
    except KeyError:
        raise BackendError(
            f"unknown board {name!r}: expected one of {', '.join(sorted(BOARDS))}"
        ) from None


def load(kind: str, name: str) -> Any:
    """Import and return the class registered as ``name`` for ``kind``."""
    if name not in BACKENDS.get(kind, {}):
        _discover()
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
