"""Image sensors push frames into the loop: (image, frame number, device time).

Push, not pull: a real camera delivers frames on its own schedule from its
own thread, and the synthetic sensor schedules itself on the virtual clock at
exactly ``n / fps``. Either way the capture loop receives every frame as a
callback on the clock's loop thread, with a frame number counted from boot so
a gap in the sensor shows up as a gap in numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from hal.clock import Clock

FrameCallback = Callable[[np.ndarray, int, float], None]


class SensorError(OSError):
    """The sensor could not deliver a frame (disconnected, unreadable)."""


class Sensor(ABC):
    """A source of BGR uint8 frames of a fixed size."""

    def __init__(self, clock: Clock, width: int, height: int, fps: int) -> None:
        self.clock = clock
        self.width = width
        self.height = height
        self.fps = fps

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        """Build from the board's common options; each backend takes what it uses."""
        return cls(clock, width, height, fps)  # type: ignore[abstract]

    @abstractmethod
    def start(self, on_frame: FrameCallback) -> None:
        """Begin delivering frames to ``on_frame`` on the clock's loop."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering frames and release the device."""
