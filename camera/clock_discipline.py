"""The wall clock follows the best time there is: GPS while it has a fix, else the OS (NTP).

A Pi has no real-time clock: it boots with whatever date it last saved, and
only NTP (a network) or GPS (a sky) can tell it better. Device time never
moves for either (it is monotonic); wall time is device time plus an offset
the clock keeps, and this module decides when GPS moves that offset.

- A valid fix's UTC, plus the receiver's configured latency (``[gps]
  latency_ms``: the epoch arrives after the second it names), is compared
  with the wall clock at the fix's arrival. Beyond :data:`STEP_THRESHOLD`
  the wall clock is stepped to it (source ``gps``), and the step is listed
  in a running recording's ``wall_clock_steps``. The threshold is the OS
  comparison's (:data:`hal.clock.monotonic.WALL_STEP_THRESHOLD`) for the same
  reason: NMEA time without a PPS pulse is good to a few tenths of a second
  (output delay, 9600 baud), so smaller differences are the receiver's
  jitter, and following them would list noise as steps. The clock keeps its
  rate between fixes, so after the first step it moves again only if it has
  drifted half a second away (hours, for a crystal).
- While a valid fix came within :data:`HOLDOVER` seconds, GPS disciplines the
  clock: the real clock stops comparing itself with the OS
  (:meth:`~hal.clock.Clock.hold_wall`), whose stale or NTP-slewed time would
  otherwise fight GPS. Thirty seconds ride out a doorway or an underpass (the
  clock drifts microseconds meanwhile) without letting a receiver that lost
  the sky for good hold the clock forever. After that the OS is followed
  again (:meth:`~hal.clock.Clock.release_wall`): its steps are listed as
  ``ntp`` when NTP synchronises it, else ``system``.
- Only a fix the receiver calls valid, with a UTC, counts: a receiver's time
  before its first fix comes from its own RTC or nothing, no better than ours.

:attr:`ClockDiscipline.source` says what wall time follows now: ``gps``,
``ntp`` (the OS, synchronised), ``system`` (the OS, or a free-running clock,
with nothing to vouch for it) or ``sim`` (the simulated world's time, the
truth by definition). The overlay marks the burnt-in time while it is not
:attr:`~ClockDiscipline.disciplined`.

Everything here runs on the clock's loop: fixes are posted to it, and the
holdover is a timer on it, so a simulated run stays deterministic.
"""

from __future__ import annotations

from datetime import UTC

from camera.config import GpsConfig
from hal.clock import Clock, Timer
from hal.gps import Fix

__all__ = ["HOLDOVER", "STEP_THRESHOLD", "ClockDiscipline"]

#: A GPS time further than this (seconds) from the wall clock is stepped to.
STEP_THRESHOLD = 0.5
#: GPS disciplines the wall clock for this long (seconds) after its last valid fix.
HOLDOVER = 30.0
#: The sources under which wall time is trustworthy: no marker on the overlay.
DISCIPLINED = frozenset({"gps", "ntp", "sim"})


class ClockDiscipline:
    """Steps the wall clock to GPS time and says which source wall time follows."""

    def __init__(
        self,
        clock: Clock,
        config: GpsConfig | None = None,
        *,
        threshold: float = STEP_THRESHOLD,
        holdover: float = HOLDOVER,
    ) -> None:
        self.clock = clock
        #: Seconds between the second a fix names and its arrival (``[gps] latency_ms``).
        self.latency = config.latency_ms / 1000 if config is not None else 0.0
        self.threshold = threshold
        self.holdover = holdover
        #: Device time of the last valid fix with a UTC (None: none yet).
        self.last_fix: float | None = None
        #: GPS UTC minus wall time at the last such fix (seconds), before any step it caused.
        self.last_offset: float | None = None
        self._release: Timer | None = None

    @property
    def source(self) -> str:
        """``gps`` while a fix disciplines the clock, else what the clock follows itself."""
        return "gps" if self._release is not None else self.clock.wall_source()

    @property
    def disciplined(self) -> bool:
        """Whether wall time has a source that vouches for it (GPS, NTP, or simulation)."""
        return self.source in DISCIPLINED

    def on_fix(self, fix: Fix) -> None:
        """Take a fix's time (on the loop): hold the clock off the OS, step it if far off."""
        if not fix.valid or fix.utc is None:
            return
        utc = fix.utc if fix.utc.tzinfo is not None else fix.utc.replace(tzinfo=UTC)
        offset = (utc - self.clock.wall(fix.time)).total_seconds() + self.latency
        self.last_fix, self.last_offset = fix.time, offset
        if self._release is None:
            self.clock.hold_wall()
            self._release = self.clock.call_at(fix.time + self.holdover, self._expire)
        if abs(offset) > self.threshold:
            self.clock.step_wall(offset, "gps")

    def _expire(self) -> None:
        """The holdover after the last fix is over: the OS may set wall time again.

        One timer, re-armed when fixes came since it was set, rather than one
        per fix.
        """
        assert self.last_fix is not None
        due = self.last_fix + self.holdover
        if self.clock.now() < due:
            self._release = self.clock.call_at(due, self._expire)
            return
        self._release = None
        self.clock.release_wall()
