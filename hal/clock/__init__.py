"""The clock: device time plus the one scheduler every firmware event runs on.

Like gpiozero's ``Factory.ticks()`` and SimPy's environment, the clock owns
time so the core never reads it itself. Device time is monotonic seconds since
boot; wall time (UTC) is device time plus an offset the clock keeps, so a wall
clock step never reorders anything. Frames, pin edges, debounce timers and the
writer's completions are all callbacks on this one loop, run in time order on
one thread; other threads hand work in with :meth:`Clock.call_soon_threadsafe`.

Wall time has a source (SPEC 14): what last set it, and so how far it can be
trusted. A simulated world's time is the truth by definition (``sim``); a
real clock follows the OS, which is right when NTP says it is synchronised
(``ntp``) and otherwise may be the stale date a Pi boots with (``system``);
a GPS fix beats both while it lasts (``gps``, set by the firmware's clock
discipline, which holds the clock off the OS meanwhile). Every step says
which source made it, so a recording lists not only that its UTC stamps
moved but why.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

Callback = Callable[[], None]

#: What can step the wall clock: a GPS fix, the OS clock set by NTP, or the OS
#: clock set otherwise (by hand, a restored date, a simulated jump).
STEP_SOURCES = ("gps", "ntp", "system")
#: What wall time can follow: a step's sources, or a simulated world's time.
WALL_SOURCES = (*STEP_SOURCES, "sim")


class WallClockStep(NamedTuple):
    """One wall-clock step: UTC stamps after device ``time`` moved by ``seconds``."""

    time: float
    seconds: float
    source: str


#: ``listener(device_time, seconds, source)``, on the loop thread, for each step.
WallListener = Callable[[float, float, str], None]


class Timer:
    """A scheduled callback; cancel() makes it a no-op without touching the heap."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback: Callback | None = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = None


class EventHeap:
    """(time, sequence) ordered timers: equal times run in the order scheduled."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def push(self, timer: Timer) -> None:
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))

    def next_time(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timer | None:
        when = self.next_time()
        if when is None or when > now:
            return None
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


class Clock(ABC):
    """Device time, wall time and a scheduler."""

    #: True when time is simulated (jumps from event to event).
    virtual: bool = False

    def __init__(self, start: datetime | None = None) -> None:
        self._heap = EventHeap()
        self._stopped = False
        self._wall_origin = start if start is not None else datetime(2026, 1, 1, 8, tzinfo=UTC)
        self.wall_steps: list[WallClockStep] = []
        #: Told (device time, step, source) on each wall-clock step, e.g. to journal it.
        self.wall_listeners: list[WallListener] = []
        #: True while a better source than the OS (GPS) sets wall time: see :meth:`hold_wall`.
        self.wall_held = False

    # -- time -------------------------------------------------------------
    @abstractmethod
    def now(self) -> float:
        """Monotonic device seconds since boot."""

    def wall(self, t: float | None = None) -> datetime:
        """UTC wall time at device time ``t`` (default: now)."""
        t = self.now() if t is None else t
        return self._wall_origin + timedelta(seconds=t)

    def step_wall(self, seconds: float, source: str = "system") -> None:
        """Step the wall clock (an NTP, GPS or manual correction); device time is untouched."""
        if source not in STEP_SOURCES:
            raise ValueError(f"wall-clock step source {source!r}, expected one of {STEP_SOURCES}")
        now = self.now()
        self.wall_steps.append(WallClockStep(now, seconds, source))
        self._wall_origin += timedelta(seconds=seconds)
        for listener in self.wall_listeners:
            listener(now, seconds, source)

    def wall_source(self) -> str:
        """What wall time follows when no GPS holds it: one of :data:`WALL_SOURCES`.

        Cheap (a frame's overlay asks): a clock that must ask the OS caches
        the answer. This base follows nothing but its start, so ``system``.
        """
        return "system"

    def hold_wall(self) -> None:
        """A better source (GPS) sets wall time from now on: stop following the OS.

        Otherwise the two would fight: the OS's stale or NTP-slewed clock
        stepping back what GPS just set. Only a clock that follows the OS
        does anything more than note it.
        """
        self.wall_held = True

    def release_wall(self) -> None:
        """The better source is gone: wall time may follow the OS again."""
        self.wall_held = False

    # -- scheduling -------------------------------------------------------
    def call_at(self, when: float, callback: Callback) -> Timer:
        timer = Timer(when, callback)
        self._push(timer)
        return timer

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return self.call_at(self.now() + delay, callback)

    def _push(self, timer: Timer) -> None:
        self._heap.push(timer)

    @abstractmethod
    def call_soon_threadsafe(self, callback: Callback) -> None:
        """Run ``callback`` on the loop thread as soon as possible (any thread may call)."""

    @abstractmethod
    def run_posted(self) -> None:
        """Run callbacks handed over from other threads, now, on this thread."""

    @abstractmethod
    def run(self, until: float | None = None) -> None:
        """Run events in time order until device time ``until`` or :meth:`stop`."""

    def stop(self) -> None:
        self._stopped = True

    def _run_due(self, now: float) -> bool:
        """Run one due timer; False when none is due."""
        timer = self._heap.pop_due(now)
        if timer is None:
            return False
        callback = timer.callback
        if callback is not None:
            callback()
        return True
