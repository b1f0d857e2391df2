"""The simulated image sensor: a perfect camera on the clock, plus faults on demand.

Frame ``n`` is due at exactly ``n / fps`` device seconds, numbered from boot,
so a run on the virtual clock is deterministic and tests can compare times
with ``==``. Only the next frame is ever scheduled: a sensor that runs for
hours must not fill the event heap, and stop() has one timer to cancel.
"""

from __future__ import annotations

import math

from hal.clock import Clock, Timer
from hal.sensor import FrameCallback, Sensor
from sim.scene import SyntheticScene


class SyntheticSensor(Sensor):
    """Renders :class:`SyntheticScene` frames on schedule; ``disconnect()`` drops some."""

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        return cls(clock, width, height, fps, seed=seed)

    def __init__(self, clock: Clock, width: int, height: int, fps: int, seed: int = 0) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        super().__init__(clock, width, height, fps)
        self.scene = SyntheticScene(width, height, seed)
        self.missed = 0  # frames lost to disconnect(): the gap a recording must show
        self._down_until = -math.inf
        self._timer: Timer | None = None
        self._on_frame: FrameCallback | None = None

    def start(self, on_frame: FrameCallback) -> None:
        if self._timer is not None:
            raise RuntimeError("sensor already started")
        self._on_frame = on_frame
        now = self.clock.now()
        n = max(0, math.ceil(now * self.fps))
        # ceil() of a product can be off by one against the n / fps we schedule at.
        while n / self.fps < now:
            n += 1
        while n > 0 and (n - 1) / self.fps >= now:
            n -= 1
        self._schedule(n)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._on_frame = None

    def disconnect(self, until: float) -> None:
        """Fail until device time ``until``: frames due before it are never delivered."""
        self._down_until = max(self._down_until, until)

    def _schedule(self, n: int) -> None:
        self._timer = self.clock.call_at(n / self.fps, lambda: self._tick(n))

    def _tick(self, n: int) -> None:
        on_frame = self._on_frame
        if on_frame is None:
            return
        t = n / self.fps
        # Schedule first: on_frame may call stop(), which must then cancel this one.
        self._schedule(n + 1)
        if t < self._down_until:
            self.missed += 1
            return
        on_frame(self.scene.render(n, t), n, t)
