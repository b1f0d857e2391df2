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

__all__ = ["Debouncer", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted change of the stable level."""

    active: bool  # the new stable level (True = input active)
    time: float  # the first edge of the accepted burst (start of its bounce), device seconds
    accepted_at: float  # when it was confirmed: last edge of the burst + debounce


class Debouncer:
    """Accepts a level once the raw input has stayed there for ``debounce`` seconds.

    Edges are grouped into *bursts*: a burst starts with the first raw edge away
    from the stable level and ends when the input has been quiet (no edge) for
    ``debounce`` seconds; every edge inside it restarts that quiet timer. When a
    burst ends at a level different from the stable one the change is accepted,
    dated at the burst's first edge; when it ends back at the stable level it was
    chatter and nothing is emitted. "Stayed for ``debounce``" is inclusive: a
    level held for exactly ``debounce`` seconds counts.

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
        # Unresolved bursts, oldest first, each [first edge, last edge, level after
        # the last edge]. Kept as bursts rather than edges so that endless chatter
        # (one long burst) costs O(1) per edge, not a rescan.
        self._bursts: deque[list] = deque()
        self._last_edge: float = -math.inf

    @property
    def debounce(self) -> float:
        """The debounce interval in seconds."""
        return self._debounce

    @property
    def pending_since(self) -> float | None:
        """First edge of the unresolved burst away from the stable level, else None."""
        return self._bursts[0][0] if self._bursts else None

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
        if bursts and not bursts[-1][1] + self._debounce <= t:
            # Within the quiet time of the previous edge: the same burst goes on.
            bursts[-1][1] = t
            bursts[-1][2] = active
        else:
            bursts.append([t, t, active])

    def deadline(self) -> float | None:
        """When :meth:`poll` must next be called; None if nothing is pending."""
        if not self._bursts:
            return None
        return self._bursts[0][1] + self._debounce

    def poll(self, t: float) -> Transition | None:
        """Resolve bursts whose deadline is at or before ``t``, oldest first.

        Returns the first accepted transition (bursts that came back to the stable
        level are dropped silently on the way), or None once nothing due at or
        before ``t`` is left. At most one transition is returned per call, so a
        caller that may be late should call again until it gets None. A ``t``
        earlier than :meth:`deadline` changes nothing.
        """
        while self._bursts:
            first_time, last_time, level = self._bursts[0]
            due = last_time + self._debounce
            if due > t:
                return None
            self._bursts.popleft()
            if level != self.active:
                self.active = level
                return Transition(active=level, time=first_time, accepted_at=due)
            # The burst settled back at the stable level: chatter, rejected.
        return None
