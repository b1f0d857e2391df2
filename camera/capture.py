"""The capture path: sensor -> overlay -> encoder -> ring buffer -> listeners.

Runs on the loop thread, one picture at a time, and never touches storage:
the recorder listens for frames and hands them to the writer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from camera.encoders import Encoder
from camera.frames import EncodedFrame
from camera.overlay import Overlay
from camera.ring import RingBuffer
from hal.clock import Clock
from hal.sensor import Sensor

Listener = Callable[[EncodedFrame], None]


class Capture:
    def __init__(
        self,
        clock: Clock,
        sensor: Sensor,
        encoder: Encoder,
        ring: RingBuffer,
        overlay: Overlay | None = None,
    ) -> None:
        self.clock = clock
        self.sensor = sensor
        self.encoder = encoder
        self.ring = ring
        self.overlay = overlay
        self.listeners: list[Listener] = []
        self.frames_captured = 0
        self.last_number: int | None = None
        self.last_time: float | None = None

    def start(self) -> None:
        self.sensor.start(self._on_frame)

    def stop(self) -> None:
        self.sensor.stop()
        self._emit(self.encoder.flush())

    def _on_frame(self, image: np.ndarray, number: int, time: float) -> None:
        if self.overlay is not None:
            self.overlay.draw(image, self.clock.wall(time))
        self.frames_captured += 1
        self.last_number, self.last_time = number, time
        self._emit(self.encoder.encode(image, number, time))

    def _emit(self, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            self.ring.append(frame)
            for listener in self.listeners:
                listener(frame)
