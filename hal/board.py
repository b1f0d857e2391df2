"""A board is a set of backends, one per kind, chosen by name.

Presets (``pi`` here, ``sim`` registered by the simulator) live in the
registry; any kind can be overridden by name from the configuration's
``[hal]`` table. Backends load lazily, so choosing ``sim`` never imports a
Pi library and vice versa.

Opening a board tries every part before giving up, so ``--board pi`` off a
Pi names everything that is missing (pin factory, camera) in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from hal import registry
from hal.audio import AudioSource
from hal.clock import Clock
from hal.errors import BackendError, HardwareMissing
from hal.gpio import Gpio
from hal.gps import GpsSource
from hal.sensor import Sensor
from hal.storage import Storage
from hal.worker import Worker

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class Hal:
    clock: Clock
    gpio: Gpio
    sensor: Sensor
    storage: Storage
    worker: Worker
    #: The backend name chosen for each kind (for logs, reports and doctor).
    names: Mapping[str, str] = field(default_factory=dict)
    #: The board's preset (its name, and whether it is the simulated world).
    board: registry.Board = field(default_factory=lambda: registry.Board("custom"))
    #: The microphone; None when the board has none or it did not open (then
    #: ``audio_problem`` says why: the camera records pictures without sound
    #: rather than nothing).
    audio: AudioSource | None = None
    audio_problem: str | None = None
    #: The GPS receiver; None when ``[gps]`` is off, the backend is ``none``,
    #: or it did not open (then ``gps_problem`` says why: a recording without
    #: a position is still evidence, so a GPS is never fatal).
    gps: GpsSource | None = None
    gps_problem: str | None = None

    def close(self) -> None:
        if self.gps is not None:
            self.gps.close()
        self.sensor.stop()
        if self.audio is not None:
            self.audio.stop()
        self.worker.close()
        self.gpio.close()


def backend_names(board: str, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    names = dict(registry.board(board).backends)
    for kind, name in (overrides or {}).items():
        if name:
            names[kind] = name
    return names


@dataclass
class Parts:
    """A board's parts, each opened on its own: what opened, and why the rest did not.

    ``problems`` maps a kind ("storage", "gpio", "sensor") to one line saying
    why its part is None. A run refuses a board with any problem
    (:func:`open_hal`); ``bodycam doctor`` reports each on its own line, so a
    missing camera does not hide whether the pins are free.
    """

    board: registry.Board
    names: dict[str, str]
    clock: Clock
    storage: Storage | None
    gpio: Gpio | None
    sensor: Sensor | None
    problems: dict[str, str] = field(default_factory=dict)
    #: None when the board has no microphone kind or audio was not asked for.
    audio: AudioSource | None = None
    #: None when the board has no gps kind, GPS was not asked for, or it is ``none``.
    gps: GpsSource | None = None

    def close(self) -> None:
        """Release what opened; safe to call twice."""
        if self.gps is not None:
            self.gps.close()
        if self.sensor is not None:
            self.sensor.stop()
        if self.audio is not None:
            self.audio.stop()
        if self.gpio is not None:
            self.gpio.close()


def open_parts(
    board: str,
    *,
    storage_root: str | Path,
    width: int,
    height: int,
    fps: int,
    overrides: Mapping[str, str | None] | None = None,
    camera_source: str = "0",
    seed: int = 0,
    start: datetime | None = None,
    audio: tuple[int, int] | None = None,
    microphone: str = "default",
    gps: tuple[str, int] | None = None,
) -> Parts:
    """Every part of ``board`` that opens; the others as lines in ``problems``.

    ``audio`` is (rate, channels) when sound is wanted; then the board's
    microphone (``microphone`` names it) is opened too. ``gps`` is (port,
    baudrate) when ``[gps]`` is enabled; then the board's receiver is opened
    on that port.

    An unknown board or backend name is still an error (:class:`BackendError`):
    that is a wrong configuration, not a missing part.
    """
    preset = registry.board(board)
    names = backend_names(board, overrides)
    classes = {kind: registry.load(kind, name) for kind, name in names.items()}
    problems: dict[str, str] = {}

    def part(kind: str, what: str, make: Callable[[], T]) -> T | None:
        try:
            return make()
        except HardwareMissing as exc:
            problems[kind] = str(exc)
        except (BackendError, OSError) as exc:
            problems[kind] = f"{what}: {exc}"
        return None

    clock = classes["clock"](start)
    mic = None
    if audio is not None and "audio" in classes:
        rate, channels = audio
        mic = part(
            "audio",
            "microphone",
            lambda: classes["audio"].open(clock, rate, channels, seed=seed, source=microphone),
        )
    receiver = None
    if gps is not None and "gps" in classes:
        port, baudrate = gps
        receiver = part("gps", "GPS", lambda: classes["gps"].open(clock, port, baudrate))
    return Parts(
        preset,
        names,
        clock,
        part("storage", "storage", lambda: classes["storage"](storage_root)),
        part("gpio", "pins", lambda: classes["gpio"](clock)),
        part(
            "sensor",
            "camera",
            lambda: classes["sensor"].open(
                clock, width, height, fps, seed=seed, source=camera_source
            ),
        ),
        problems,
        mic,
        receiver,
    )


def open_hal(
    board: str,
    *,
    storage_root: str | Path,
    width: int,
    height: int,
    fps: int,
    overrides: Mapping[str, str | None] | None = None,
    camera_source: str = "0",
    seed: int = 0,
    start: datetime | None = None,
    audio: tuple[int, int] | None = None,
    microphone: str = "default",
    gps: tuple[str, int] | None = None,
) -> Hal:
    """Every backend of ``board``; :class:`HardwareMissing` names all that cannot open.

    Except the microphone: a board without one records pictures without sound
    (``Hal.audio_problem`` says why), never nothing. And the GPS: a receiver
    that does not open is logged and kept in ``Hal.gps_problem``; the
    recordings then carry no position, which is still evidence.
    """
    parts = open_parts(
        board,
        storage_root=storage_root,
        width=width,
        height=height,
        fps=fps,
        overrides=overrides,
        camera_source=camera_source,
        seed=seed,
        start=start,
        audio=audio,
        microphone=microphone,
        gps=gps,
    )
    audio_problem = parts.problems.pop("audio", None)
    gps_problem = parts.problems.pop("gps", None)
    if parts.problems or parts.storage is None or parts.gpio is None or parts.sensor is None:
        parts.close()
        raise HardwareMissing(f"board {board!r}: " + "; ".join(parts.problems.values()))
    if gps_problem is not None:
        log.warning("%s; recordings will carry no position", gps_problem)
    worker = registry.load("worker", parts.names["worker"])(parts.clock, parts.storage)
    return Hal(
        parts.clock,
        parts.gpio,
        parts.sensor,
        parts.storage,
        worker,
        parts.names,
        parts.board,
        parts.audio,
        audio_problem,
        parts.gps,
        gps_problem,
    )
