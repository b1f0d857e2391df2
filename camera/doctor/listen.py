"""Run a source (camera, microphone) for a window that starts at its first delivery.

A slow-starting source (a CSI stack, a USB microphone) is given
``first_timeout`` to deliver anything, so its start-up is not counted as a
slow rate; the window is on the HAL clock, simulated time on the virtual one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from hal.clock import Clock, Timer

#: (data, number from boot, device time): what sensors and microphones deliver.
Delivery = Callable[[np.ndarray, int, float], None]


class Source(Protocol):
    def start(self, on_item: Delivery) -> None: ...

    def stop(self) -> None: ...


def listen(
    clock: Clock, source: Source, on_item: Delivery, *, window: float, first_timeout: float
) -> float:
    """Every delivery to ``on_item``, until ``window`` after the first; returns the start time."""
    timers: list[Timer] = []
    started = False

    def first_then(data: np.ndarray, number: int, t: float) -> None:
        nonlocal started
        if not started:
            started = True
            timers.append(clock.call_at(t + window, clock.stop))
        on_item(data, number, t)

    def nothing_yet() -> None:
        if not started:
            clock.stop()

    t0 = clock.now()
    timers.append(clock.call_at(t0 + first_timeout, nothing_yet))
    try:
        source.start(first_then)
        clock.run(until=t0 + first_timeout + window + 1.0)
    finally:
        source.stop()
        for timer in timers:
            timer.cancel()
    return t0
