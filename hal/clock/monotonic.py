"""The real clock: ``time.monotonic`` since boot of the firmware, wall from the OS.

Callbacks posted from other threads (pin interrupts, the camera reader, the
writer) wait in a queue guarded by a condition; the loop sleeps until the next
timer or the next post, whichever comes first.

Wall time follows the system clock (SPEC 14). A Pi has no real-time clock:
it boots with a stale date and NTP steps it later, maybe mid-recording. So,
when wall time comes from the OS, the loop compares the OS's UTC with its own
about once a second (:data:`WALL_CHECK_INTERVAL`, on the loop itself, no
extra thread) and takes a difference beyond :data:`WALL_STEP_THRESHOLD` as a
step: :meth:`~hal.clock.Clock.step_wall`, which a recording in progress lists
in ``wall_clock_steps``. Smaller differences are left alone: CLOCK_MONOTONIC
already runs at NTP's corrected rate, so the two clocks part only by steps
and by the offsets NTP slews in (at most 0.5 ms per second); following each
of those would list clock-discipline noise as steps, and a slewed offset
that adds up past the threshold is then listed once, as the step it became.

A step's source is ``ntp`` when the kernel says NTP synchronises the OS clock
(:func:`~hal.clock.ntp.kernel_ntp_synchronized`, asked at each comparison),
else ``system``. While GPS holds the wall clock (:meth:`hold_wall`) the OS is
not compared at all. Once GPS has set it, an OS clock that NTP does not
synchronise is not followed again, even after GPS is lost: it is free-running
like ours, and likely the stale date the Pi booted with, so following it would
step a GPS-set clock back to a known-wrong one. It is followed again once NTP
synchronises it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from hal.clock import Callback, Clock, Timer
from hal.clock.ntp import kernel_ntp_synchronized

#: An OS clock that differs from ours by more than this (seconds) was stepped.
WALL_STEP_THRESHOLD = 0.5
#: How often (device seconds) the loop compares its wall time with the OS's.
WALL_CHECK_INTERVAL = 1.0


def os_utc() -> datetime:
    """The system clock's UTC: the one place the real clock reads it."""
    return datetime.now(UTC)


class MonotonicClock(Clock):
    virtual = False

    def __init__(
        self,
        start: datetime | None = None,
        *,
        utc_now: Callable[[], datetime] = os_utc,
        ntp: Callable[[], bool | None] = kernel_ntp_synchronized,
        check_interval: float = WALL_CHECK_INTERVAL,
        step_threshold: float = WALL_STEP_THRESHOLD,
    ) -> None:
        """Device time 0 is now; wall time comes from ``utc_now`` unless a ``start`` is given.

        Only wall time from the OS follows the OS: a given ``start`` (a
        replay, a test) is kept as it is. ``utc_now``, ``ntp`` and the
        interval are for tests, which step a fake OS clock without waiting
        and say whether NTP synchronises it.
        """
        self._t0 = time.monotonic()
        #: Reads the OS's UTC; followed only while ``follows_os``.
        self.utc_now = utc_now
        #: Asks whether NTP synchronises the OS clock (None: cannot say, taken as no).
        self.ntp = ntp
        self.follows_os = start is None
        self.check_interval = check_interval
        self.step_threshold = step_threshold
        self._next_check = check_interval
        #: The last answer of ``ntp``: asked at each comparison, not per frame.
        self.ntp_synced = bool(ntp()) if self.follows_os else False
        #: False once GPS has set the wall clock: an unsynchronised OS is then no better.
        self._trust_unsynced_os = True
        super().__init__(start if start is not None else utc_now())
        self._cond = threading.Condition()
        self._posted: deque[Callback] = deque()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def from_monotonic(self, seconds: float) -> float:
        """Device time of a CLOCK_MONOTONIC reading, e.g. a driver's capture timestamp.

        V4L2 buffers and libcamera's ``SensorTimestamp`` date frames on the
        kernel's monotonic clock, the one :func:`time.monotonic` reads, so a
        frame keeps the time it was captured instead of the later time a
        thread got round to reading it.
        """
        return seconds - self._t0

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

    @property
    def _following(self) -> bool:
        return self.follows_os and not self.wall_held

    def wall_source(self) -> str:
        return "ntp" if self.follows_os and self.ntp_synced else "system"

    def hold_wall(self) -> None:
        super().hold_wall()
        self._trust_unsynced_os = False

    def release_wall(self) -> None:
        """Follow the OS again from the next comparison (due at once: none ran while held)."""
        super().release_wall()
        if self.follows_os:
            self.ntp_synced = bool(self.ntp())

    def follow_os(self, now: float | None = None) -> float | None:
        """Compare wall time with the OS's; a difference past the threshold is a step.

        Returns the step taken (seconds), or None. Runs on the loop thread
        (the run loop calls it every ``check_interval``), where wall-clock
        listeners expect to be told.
        """
        now = self.now() if now is None else now
        self._next_check = now + self.check_interval
        if not self._following:
            return None
        self.ntp_synced = bool(self.ntp())
        if not (self.ntp_synced or self._trust_unsynced_os):
            return None
        diff = (self.utc_now() - self.wall(now)).total_seconds()
        if abs(diff) <= self.step_threshold:
            return None
        self.step_wall(diff, "ntp" if self.ntp_synced else "system")
        return diff

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
                check = self._following and now >= self._next_check
                timer = self._heap.pop_due(now)
                if timer is None and not check:
                    nxt = self._heap.next_time()
                    wake = self._next_check if self._following else None
                    limits = [x for x in (nxt, until, wake) if x is not None]
                    timeout = max(0.0, min(limits) - now) if limits else None
                    self._cond.wait(timeout)
                    continue
            if check:
                self.follow_os(now)  # outside the lock: listeners may schedule
            if timer is not None and timer.callback is not None:
                timer.callback()
