"""Capture times to (frame number, device time), shared by the real-camera backends.

A real camera knows when it captured a frame better than the thread that
reads it: the read happens a buffer or a scheduling delay later, and that
delay wanders. So a frame is dated with the driver's capture timestamp
(CLOCK_MONOTONIC seconds: a V4L2 buffer timestamp, libcamera's
``SensorTimestamp``) converted to device time by the clock.

When the driver has no timestamp, or gives one that cannot be right (after
the read, or more than :data:`MAX_AGE` before it), the frame is dated from
its read instead. One odd frame among driver-dated ones goes on their grid:
as many whole periods after the previous frame as passed between the two
reads, so neither read jitter nor the queue's latency turns it into a
phantom gap or pushes the next frames off their times. Otherwise (no driver
timestamps at all, as with a video file) it is the read time, less the
latency the last good driver timestamp showed, if any. Times never go back:
a time earlier than the previous frame's is held at that time.

Numbers count frames from boot: the first frame is ``round(t * fps)`` and
each later one advances by the elapsed periods, rounded half up, at least
one. Jitter of under half a period never skips a number; a dropout of more
than 1.5 periods does, and downstream the skipped numbers are a declared
camera gap rather than silently compressed time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from hal.clock import Clock

log = logging.getLogger(__name__)

#: A driver timestamp older than this at the read is not believed: a real
#: queue is a few frames deep, so such a value is a wrong clock or a bug.
MAX_AGE = 1.0
#: A driver timestamp may exceed the read time by this much (float rounding
#: between the two conversions), never by more: a capture cannot follow its read.
FUTURE_SLACK = 0.001


def step(dt: float, fps: int) -> int:
    """How far the frame number advances across ``dt`` seconds: whole periods, at least 1."""
    return max(1, math.floor(dt * fps + 0.5))


class FrameTimer:
    """Dates and numbers one sensor's frames; lives as long as the sensor.

    It survives stop()/start(), so numbers keep counting across a restart and
    the pause shows up as a gap. Called only from the sensor's reader thread.
    """

    def __init__(self, clock: Clock, fps: int, name: str) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.name = name
        # Only a real clock can place a CLOCK_MONOTONIC reading on its axis;
        # on a simulated clock every frame is stamped at the read.
        self._from_monotonic: Callable[[float], float] | None = getattr(
            clock, "from_monotonic", None
        )
        self._last: tuple[int, float] | None = None
        self._last_read = -math.inf
        #: Whether the previous frame was dated by its driver timestamp.
        self._driven = False
        #: Read time minus capture time of the last believed driver timestamp.
        self._latency = 0.0
        #: Frames whose driver timestamp was given but not believed.
        self.rejected = 0

    def stamp(self, captured: float | None, read: float) -> tuple[int, float]:
        """(number, device time) of a frame the driver captured at ``captured``, read at ``read``.

        ``captured`` is None when the driver gave no timestamp.
        """
        t = self.device_time(captured, read)
        return self.number(t), t

    def device_time(self, captured: float | None, read: float) -> float:
        """The driver's capture time on the device axis when plausible, else an estimate.

        Never earlier than the previous frame's time.
        """
        last_read, self._last_read = self._last_read, read
        driven, self._driven = self._driven, False
        floor = self._last[1] if self._last is not None else -math.inf
        if captured is not None:
            if self._from_monotonic is not None:
                t = self._from_monotonic(captured)
                if read - MAX_AGE <= t <= read + FUTURE_SLACK:
                    self._latency = max(0.0, read - t)
                    self._driven = True
                    return max(t, floor)
            self.rejected += 1
            if self.rejected == 1:  # once: this runs per frame
                log.warning(
                    "camera %s: a driver timestamp is missing a clock to convert it or is "
                    "implausible; such frames are dated from their read",
                    self.name,
                )
        if driven:
            return floor + step(read - last_read, self.fps) / self.fps
        return max(read - self._latency, floor)

    def number(self, t: float) -> int:
        """The frame number of a frame at device time ``t`` (times must not decrease)."""
        if self._last is None:
            n = max(0, round(t * self.fps))
        else:
            last_n, last_t = self._last
            n = last_n + step(t - last_t, self.fps)
        self._last = (n, t)
        return n


#: Pause after a failed device read before trying again, doubling per failure
#: up to MAX_RETRY_DELAY.
RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0


def retry_delay(failures: int) -> float:
    """Backoff after ``failures`` consecutive failed reads (>= 1)."""
    return min(MAX_RETRY_DELAY, RETRY_DELAY * 2 ** (failures - 1))
