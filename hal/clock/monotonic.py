"""The real clock: ``time.monotonic`` since boot of the firmware, wall from the OS.

Callbacks posted from other threads (pin interrupts, the camera reader, the
writer) wait in a queue guarded by a condition; the loop sleeps until the next
timer or the next post, whichever comes first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime

from hal.clock import Callback, Clock, Timer


class MonotonicClock(Clock):
    virtual = False

    def __init__(self, start: datetime | None = None) -> None:
        # Device time 0 is now; wall time comes from the OS unless a start is given.
        self._t0 = time.monotonic()
        super().__init__(start if start is not None else datetime.now(UTC))
        self._cond = threading.Condition()
        self._posted: deque[Callback] = deque()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _push(self, timer: Timer) -> None:
        with self._cond:
            super()._push(timer)
            self._cond.notify()

    def call_soon_threadsafe(self, callback: Callback) -> None:
        with self._cond:
            self._posted.append(callback)
            self._cond.notify()

    def run_posted(self) -> None:
        while True:
            with self._cond:
                if not self._posted:
                    return
                callback = self._posted.popleft()
            callback()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self, until: float | None = None) -> None:
        self._stopped = False
        while True:
            with self._cond:
                while self._posted:
                    callback = self._posted.popleft()
                    self._cond.release()
                    try:
                        callback()
                    finally:
                        self._cond.acquire()
                if self._stopped:
                    return
                now = self.now()
                if until is not None and now >= until:
                    return
                timer = self._heap.pop_due(now)
                if timer is None:
                    nxt = self._heap.next_time()
                    limits = [x for x in (nxt, until) if x is not None]
                    timeout = max(0.0, min(limits) - now) if limits else None
                    self._cond.wait(timeout)
                    continue
            if timer.callback is not None:
                timer.callback()
