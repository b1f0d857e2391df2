"""Where the camera is: the receiver's fixes turned into the recording's position and track.

SPEC 14 asks for the last fix at the trigger (``trigger.position``) and a
track at 1 Hz while recording, with a lost fix recorded as lost, never
invented. :class:`PositionLog` runs on the loop and gets every :class:`Fix`
the reader posts (after the clock discipline has seen it). It keeps:

- the latest fix, valid or not (the console's STATUS), and the valid fixes
  of the last ``retain`` seconds, so :meth:`PositionLog.position_at` can
  answer for a trigger dated at its first edge, before it was recognised;
- a small ring of the last ``retain`` seconds of track points, so a
  recording's track covers its pre-event too: the seconds before the
  trigger are the ones a reviewer most wants to place, and the frames of
  them are in the recording, so their positions should be as well. The
  ring is the video ring's retention (pre-event plus recognition delay):
  bounded, and never longer than the video it goes with.

Track points are made as epochs arrive and handed to ``listeners`` (the
recorder, which keeps those of a recording in progress):

- an epoch with a fix: a :class:`TrackPoint` with what the receiver said,
  and ``offset`` = GPS UTC minus the device's wall clock at that moment, so a
  clock error shows in the evidence instead of hiding in it;
- an epoch without one: a :class:`TrackLost`, reason ``no_fix``;
- a second in which the receiver said nothing at all (stalled, unplugged,
  never opened): a :class:`TrackLost`, reason ``no_data``, from a 1 Hz timer
  on the clock. The timer ticks at whole seconds from :meth:`start`, and a
  tick finds the receiver silent when no epoch arrived in the last
  :data:`SILENT` seconds: more than one 1 Hz period, so a receiver whose
  sentences arrive a little late or early never reads as lost, and each
  whole second of silence after that is one point.

At most one epoch per second of GPS time goes into the track (one per
:data:`UNTIMED_PERIOD` of device time for epochs without a GPS time, which
a cold receiver sends): SPEC 14's 1 Hz, whatever rate the receiver runs
at. A 10 Hz or a flooding receiver therefore costs the journal one line per
second, not one per epoch, while STATUS and the trigger's position still
see every fix. Nothing here reads a clock but the HAL's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime

from camera.evidence.audit import format_utc
from camera.evidence.records import LostReason, Position, TrackEntry, TrackLost, TrackPoint, r6
from hal.clock import Clock, Timer
from hal.gps import Fix

#: Seconds without any epoch after which a 1 Hz tick records ``no_data``.
SILENT = 1.5
#: Least device seconds between track points of epochs that carry no GPS time:
#: half a 1 Hz period, so arrival jitter never costs a 1 Hz receiver a point.
UNTIMED_PERIOD = 0.5
#: Upper bound on the ring's points per second kept (1 Hz track, plus lost ticks).
RING_RATE = 4

#: ``listener(point)``, on the loop thread, for every track point made.
TrackListener = Callable[[TrackEntry], None]


def _utc(when: datetime | None) -> str | None:
    return None if when is None else format_utc(when)


def _second(when: datetime) -> int:
    """The whole GPS second an epoch belongs to (its track slot)."""
    return math.floor(when.timestamp())


class PositionLog:
    """The receiver's fixes on the loop: latest, recent valid ones, and the track."""

    def __init__(self, clock: Clock, retain: float) -> None:
        """``retain``: seconds of recent fixes and track points kept (the pre-event's reach)."""
        self.clock = clock
        self.retain = retain
        #: Whether a receiver is expected (``[gps] enabled``): see :meth:`start`.
        self.enabled = False
        #: The latest fix the receiver sent, valid or not.
        self.latest: Fix | None = None
        #: The latest valid fix.
        self.last_valid: Fix | None = None
        self.listeners: list[TrackListener] = []
        self._valid: deque[Fix] = deque()
        self._ring: deque[TrackEntry] = deque(maxlen=math.ceil(retain * RING_RATE) + 16)
        #: Device time of the latest epoch (any), for the silence ticks.
        self._heard: float | None = None
        #: The track slot of the last epoch that made a point: its GPS second,
        #: or, for an epoch without GPS time, its device time.
        self._slot: int | None = None
        self._slot_time: float | None = None
        self._started_at = 0.0
        #: Device time the receiver was first expected (silence counts from it).
        self._heard_since = 0.0
        self._tick: Timer | None = None

    # -- life cycle -----------------------------------------------------------
    def start(self) -> None:
        """A receiver is expected from now on: silence is recorded as ``no_data``."""
        self.enabled = True
        self._started_at = self._heard_since = self.clock.now()
        self._schedule(1)

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def _schedule(self, n: int) -> None:
        self._tick = self.clock.call_at(self._started_at + n, lambda: self._on_tick(n))

    def _on_tick(self, n: int) -> None:
        now = self.clock.now()
        last = self._heard if self._heard is not None else self._heard_since
        if now - last >= SILENT:
            self._emit(TrackLost(time=r6(now), utc=None, lost=LostReason.NO_DATA))
        self._schedule(n + 1)

    # -- fixes ------------------------------------------------------------------
    def on_fix(self, fix: Fix) -> None:
        """Every epoch the reader posts, on the loop, in arrival order."""
        self.latest = fix
        self._heard = fix.time
        if fix.valid and fix.lat is not None and fix.lon is not None:
            self.last_valid = fix
            self._valid.append(fix)
            self._trim_valid(fix.time)
        if self._new_slot(fix):
            self._emit(self._point(fix))

    def _new_slot(self, fix: Fix) -> bool:
        """Whether this epoch is the first of its GPS second (else it makes no point)."""
        if fix.utc is not None:
            slot = _second(fix.utc)
            if slot == self._slot:
                return False
            self._slot, self._slot_time = slot, fix.time
            return True
        if self._slot_time is not None and fix.time - self._slot_time < UNTIMED_PERIOD:
            return False
        self._slot, self._slot_time = None, fix.time
        return True

    def _point(self, fix: Fix) -> TrackEntry:
        utc = _utc(fix.utc)
        if not fix.valid or fix.lat is None or fix.lon is None:
            return TrackLost(time=r6(fix.time), utc=utc, lost=LostReason.NO_FIX)
        return TrackPoint(
            time=r6(fix.time),
            utc=utc,
            lat=fix.lat,
            lon=fix.lon,
            speed=fix.speed,
            course=fix.course,
            quality=fix.quality,
            satellites=fix.satellites,
            hdop=fix.hdop,
            offset=None if fix.utc is None else r6(self.offset(fix.time, fix.utc)),
        )

    def offset(self, t: float, utc: datetime) -> float:
        """GPS UTC minus the device's wall clock as it read at device time ``t``.

        The clock discipline sees a fix first and may step the wall clock on
        it; the offset is the error it found, so steps taken at or after ``t``
        are undone here (the step itself is in ``wall_clock_steps``).
        """
        since = 0.0
        for step in reversed(self.clock.wall_steps):
            if step[0] < t:
                break
            since += step[1]
        return (utc - self.clock.wall(t)).total_seconds() + since

    def _emit(self, point: TrackEntry) -> None:
        ring = self._ring
        ring.append(point)
        while ring and ring[0].time < point.time - self.retain:
            ring.popleft()
        for listener in self.listeners:
            listener(point)

    def _trim_valid(self, now: float) -> None:
        """Drop valid fixes older than ``retain``, but always keep one at or before it."""
        valid = self._valid
        while len(valid) > 1 and valid[1].time <= now - self.retain:
            valid.popleft()

    # -- what the recorder and the console ask ------------------------------------
    def position_at(self, t: float) -> Position | None:
        """The last valid fix at or before device time ``t``, with its age; None if none.

        Exact for any ``t`` within ``retain`` seconds of the latest fix (a
        trigger's first edge, recognised later); never a fix from after ``t``.
        """
        for fix in reversed(self._valid):
            if fix.time <= t:
                assert fix.lat is not None and fix.lon is not None
                return Position(
                    time=r6(fix.time),
                    age=r6(t - fix.time),
                    utc=_utc(fix.utc),
                    lat=fix.lat,
                    lon=fix.lon,
                    speed=fix.speed,
                    quality=fix.quality,
                    satellites=fix.satellites,
                )
        return None

    def points_from(self, t: float) -> list[TrackEntry]:
        """The ring's track points at or after device time ``t``, oldest first (a pre-event)."""
        return [p for p in self._ring if p.time >= t]

    def fix_state(self) -> str:
        """``off`` (no receiver expected), ``valid`` (the latest epoch, not older than
        :data:`SILENT`, is a fix) or ``none``: what the console's STATUS says."""
        if not self.enabled:
            return "off"
        latest = self.latest
        if latest is None or not latest.valid or self.clock.now() - latest.time >= SILENT:
            return "none"
        return "valid"

    def age(self) -> float | None:
        """Seconds since the last valid fix arrived, or None if there never was one."""
        return None if self.last_valid is None else self.clock.now() - self.last_valid.time
