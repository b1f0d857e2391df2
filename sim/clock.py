"""The virtual clock: device time jumps from event to event (SimPy's model).

A simulated run is as fast as the host allows and fully deterministic: time
only moves when the loop takes the next event, and equal times run in the
order they were scheduled. :class:`PacedClock` overrides one step to sleep
until the wall clock catches up, so the very same processes run at real speed
for ``--realtime``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime

from hal.clock import Callback, Clock


class VirtualClock(Clock):
    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(start)
        #: What the simulated wall clock stands for: ``sim`` (the world's time, the
        #: truth by definition) or ``system`` (a device clock nothing vouches for:
        #: a run with a GPS receiver, whose clock is right only once GPS says so).
        self.source = "sim"
        self._now = 0.0
        self._posted: deque[Callback] = deque()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def wall_source(self) -> str:
        """``sim`` unless the run made the device's clock one GPS must discipline."""
        return self.source

    def call_soon_threadsafe(self, callback: Callback) -> None:
        with self._lock:
            self._posted.append(callback)

    def run_posted(self) -> None:
        while True:
            with self._lock:
                if not self._posted:
                    return
                callback = self._posted.popleft()
            callback()

    def _advance(self, when: float) -> None:
        """Move time forward to ``when`` (never backwards)."""
        if when > self._now:
            self._now = when

    def run(self, until: float | None = None) -> None:
        self._stopped = False
        while not self._stopped:
            self.run_posted()
            if self._stopped:
                break
            nxt = self._heap.next_time()
            if nxt is None or (until is not None and nxt > until):
                if until is not None:
                    self._advance(until)
                return
            self._advance(nxt)
            self._run_due(self._now)


class PacedClock(VirtualClock):
    """Virtual time paced to the wall clock (``--realtime``), ``speed`` x real time."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        super().__init__(start)
        self.speed = speed
        self._wall0: float | None = None

    def _advance(self, when: float) -> None:
        if self._wall0 is None:
            self._wall0 = time.monotonic() - self._now / self.speed
        delay = self._wall0 + when / self.speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        super()._advance(when)
