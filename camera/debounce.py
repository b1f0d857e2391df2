"""Debouncing of raw input edges on device time, as a pure state machine.

Why we debounce in our own code, on HAL timestamps, instead of asking the GPIO
library to do it: gpiozero's ``MockPin`` ignores ``bounce_time`` entirely (so the
simulation would see every bounce the Pi would not), and the lgpio and RPi.GPIO
pin factories disagree on what ``bounce_time`` means (one drops edges for a
while after the *first* edge, the other waits for the level to go quiet), so
the same configuration would behave differently on different boards. Doing it
here means one definition (SPEC 5), identical on hardware, in simulation and
in tests.

Why a transition's time is the *first* edge of its bounce burst and not the
moment it was confirmed: a trigger's time decides how much pre-event video is
kept; dating it at the confirmation would shift it later by the bounce plus the
debounce, and the pre-event window would lose exactly that much of what
happened before the trigger.

Why the date is not always the first edge of the *burst*: a burst (edges
chained by rests shorter than the debounce) can be seconds of vibration
chatter followed by the real draw, and dating the draw at the start of the
chatter would pretend the event began seconds earlier than it did. SPEC 5 says
the burst starts at the first edge after the input last rested at its old
level for at least ``debounce``; the rest is counted *cumulatively*: walking
back from the accepted burst's last edge, add up the time the input spent at
its old level; the transition is dated at the first edge to the new level
after the point where that sum reaches ``debounce`` (``>=``), or at the burst's
first edge if it never does. So the contact bounce of one transition (whose
pulses back add up to less than the debounce) is still dated at its first
edge, while chatter that had already spent a debounce's worth at the old level
before the draw is not part of it. Acceptance (whether and when a level is
accepted) does not depend on this rule, only the date does.

Memory stays bounded: each burst keeps at most :data:`MAX_RESTS` of its latest
rests at the old level. In a burst with more rests than that inside the
debounce window (sub-millisecond chatter), the oldest are forgotten and the
transition is dated at the end of the latest forgotten one: later than the rule
says, never earlier, so a trigger never claims more pre-event than happened.

The machine never reads a clock, starts a timer or sleeps. The caller feeds it
raw edges stamped by the HAL clock and calls :meth:`Debouncer.poll` at the time
:meth:`Debouncer.deadline` names (the firmware schedules a timer for it; tests
simply call it on virtual time). The result depends only on the sequence of
edges, never on when ``poll`` happens to be called: a late poll, or an edge fed
before a poll due at the same instant, gives the same transitions with the
same times.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["MAX_RESTS", "Debouncer", "Transition"]

#: Rests at the old level remembered per burst for dating it (see the module docstring).
MAX_RESTS = 256


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted change of the stable level."""

    active: bool  # the new stable level (True = input active)
    time: float  # first edge of the transition's bounce (see the module docstring), device s
    accepted_at: float  # when it was confirmed: last edge of the burst + debounce


class _Burst:
    """Edges chained by rests shorter than the debounce, unresolved yet."""

    __slots__ = ("first", "floor", "last", "level", "old", "rests")

    def __init__(self, t: float, level: bool) -> None:
        self.first = t  # its first edge
        self.last = t  # its latest edge
        self.level = level  # the raw level after ``last``
        self.old = not level  # the level before ``first``: the stable level it departs from
        # The latest rests at ``old`` level inside the burst, as (start, end) edge times;
        # ``end`` is always an edge to the new level. At most MAX_RESTS are kept.
        self.rests: deque[tuple[float, float]] = deque()
        # Where the date falls back to when the kept rests add up to less than the
        # debounce: the first edge, or the end of the latest rest forgotten.
        self.floor = t

    def add(self, t: float, level: bool) -> None:
        """An edge at ``t`` to ``level`` inside this burst."""
        if level != self.old:  # back to the new level: the rest since ``last`` has ended
            if len(self.rests) == MAX_RESTS:
                self.floor = self.rests.popleft()[1]
            self.rests.append((self.last, t))
        self.last = t
        self.level = level

    def date(self, debounce: float) -> float:
        """The first edge to the new level after the latest ``debounce`` of rest, summed back."""
        rested = 0.0
        for start, end in reversed(self.rests):
            rested += end - start
            if rested >= debounce:
                return end
        return self.floor


class Debouncer:
    """Accepts a level once the raw input has stayed there for ``debounce`` seconds.

    Edges are grouped into *bursts*: a burst starts with the first raw edge away
    from the stable level and ends when the input has been quiet (no edge) for
    ``debounce`` seconds; every edge inside it restarts that quiet timer. When a
    burst ends at a level different from the stable one the change is accepted,
    dated by the cumulative-rest rule of the module docstring (the burst's first
    edge unless the input rested a debounce's worth at its old level inside the
    burst); when it ends back at the stable level it was chatter and nothing is
    emitted. "Stayed for ``debounce``" is inclusive: a level held for exactly
    ``debounce`` seconds counts.

    Edges the caller has fed but that have not been resolved by :meth:`poll` yet
    are kept in order, so a poll that comes late (after later edges) still
    resolves each burst at its own deadline.
    """

    __slots__ = ("_bursts", "_debounce", "_last_edge", "active", "raw")

    def __init__(self, debounce: float, active: bool = False) -> None:
        """``debounce`` in seconds (>= 0); ``active`` is the initial stable (and raw) level."""
        if not (math.isfinite(debounce) and debounce >= 0.0):
            raise ValueError(f"debounce must be a finite number of seconds >= 0, got {debounce!r}")
        self._debounce: float = float(debounce)
        self.active: bool = bool(active)  # current stable (accepted) level
        self.raw: bool = self.active  # last raw level seen
        # Unresolved bursts, oldest first. Kept as bursts rather than edges so that
        # endless chatter (one long burst) costs O(1) per edge, not a rescan.
        self._bursts: deque[_Burst] = deque()
        self._last_edge: float = -math.inf

    @property
    def debounce(self) -> float:
        """The debounce interval in seconds."""
        return self._debounce

    @property
    def pending_since(self) -> float | None:
        """First edge of the unresolved burst away from the stable level, else None."""
        return self._bursts[0].first if self._bursts else None

    def edge(self, t: float, active: bool) -> None:
        """A raw edge: the input is at level ``active`` from device time ``t`` on.

        Edge times must be non-decreasing (over all edges, duplicates included);
        an edge to the level the input is already at is ignored.
        """
        if not math.isfinite(t):
            raise ValueError(f"edge time must be finite, got {t!r}")
        if t < self._last_edge:
            raise ValueError(
                f"edge at {t!r} is earlier than the previous edge at {self._last_edge!r}"
            )
        self._last_edge = t
        active = bool(active)
        if active == self.raw:
            return  # duplicate: the level did not change, so the quiet timer keeps running
        self.raw = active
        bursts = self._bursts
        if bursts and not bursts[-1].last + self._debounce <= t:
            # Within the quiet time of the previous edge: the same burst goes on.
            bursts[-1].add(t, active)
        else:
            bursts.append(_Burst(t, active))

    def deadline(self) -> float | None:
        """When :meth:`poll` must next be called; None if nothing is pending."""
        if not self._bursts:
            return None
        return self._bursts[0].last + self._debounce

    def poll(self, t: float) -> Transition | None:
        """Resolve bursts whose deadline is at or before ``t``, oldest first.

        Returns the first accepted transition (bursts that came back to the stable
        level are dropped silently on the way), or None once nothing due at or
        before ``t`` is left. At most one transition is returned per call, so a
        caller that may be late should call again until it gets None. A ``t``
        earlier than :meth:`deadline` changes nothing.
        """
        while self._bursts:
            burst = self._bursts[0]
            due = burst.last + self._debounce
            if due > t:
                return None
            self._bursts.popleft()
            if burst.level != self.active:
                self.active = burst.level
                return Transition(burst.level, burst.date(self._debounce), accepted_at=due)
            # The burst settled back at the stable level: chatter, rejected.
        return None
