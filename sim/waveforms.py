"""Scenario actions as raw pin levels on virtual time (SPEC 9).

:func:`waveform` turns one :class:`~sim.scenario.Event` into the raw edges a
real contact would make; :func:`scenario_edges` does it for a whole scenario.
The firmware sees these edges exactly as it would see a Pi's pins, so the
debouncer and gesture detectors are exercised, not bypassed.

The rules, so that a scenario means what it says:

- The first edge of every transition is at its nominal time exactly: ``at``
  for the first, ``at + 0.15`` for a press's release, ``at + 0.4`` for a double
  press's second press, ``at + duration`` for a pulse's or hold's release.
  Contact bounce only ever *follows* it, so the debounced transition (dated at
  its first edge, SPEC 5) is dated at the nominal time.
- Bounce (``bounce_ms`` > 0): after the edge, 2, 4 or 6 toggles (seeded) at
  random times strictly inside ``(0, bounce_ms)``, ending at the new level.
  The pulses back to the old level add up to less than the debounce, so the
  transition is still exactly one accepted transition, dated at its first edge
  (SPEC 5 counts the rest at the old level cumulatively, camera/debounce.py):

  * each of the n pulses back to the old level is clamped to 0.8 x debounce / n
    (later toggles move earlier);
  * the bounce of a transition ends at least one debounce before the event's
    next transition (a press released 150 ms later with 200 ms of bounce gets
    a shorter burst), so the new level is held long enough to be accepted
    whenever the nominal waveform would be;
  * with a zero debounce nothing can be rejected, so there is no bounce.
- ``chatter``: active pulses starting at ``at`` (the first edge exactly there)
  and while before ``at + duration``, each ``uniform(0.2, 1.0) * pulse_ms`` long,
  separated by ``uniform(0.5, 3.0) * pulse_ms`` at the inactive level. A pulse
  is clamped to 0.8 x debounce, so chatter never makes an accepted transition
  whatever ``pulse_ms`` says (clamped rather than refused: "vibration that must
  not trigger" is what a chatter event means). With a debounce under a few
  microseconds no pulse can be shorter, so a chatter makes no edges at all.
- Every edge time is distinct within an event (steps of at least 1 us), and
  edges come out time-ordered. Waveforms assume the input starts the event at
  rest (inactive); the scenario validator enforces that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from sim.scenario import (
    DOUBLE_PRESS_GAP,
    PRESS_SECONDS,
    Event,
    Scenario,
    ScenarioError,
)

__all__ = ["CLAMP", "Edge", "event_seed", "scenario_edges", "waveform"]

CLAMP = 0.8  # pulses that must be rejected are at most this fraction of the debounce
_STEP = 1e-6  # seconds: the shortest interval between two generated edges
_TOGGLES = (2, 4, 6)  # bounce toggles after an edge (even: the burst ends at the new level)


@dataclass(frozen=True, slots=True)
class Edge:
    """The raw level of ``input`` becomes ``active`` at device time ``t``."""

    t: float
    input: str
    active: bool


def _nominal(event: Event) -> list[tuple[float, bool]]:
    """The event's transitions without bounce: (first edge time, new level)."""
    at = event.at
    if event.action == "activate":
        return [(at, True)]
    if event.action == "deactivate":
        return [(at, False)]
    if event.action == "press":
        return [(at, True), (at + PRESS_SECONDS, False)]
    if event.action == "double_press":
        second = at + DOUBLE_PRESS_GAP
        return [
            (at, True),
            (at + PRESS_SECONDS, False),
            (second, True),
            (second + PRESS_SECONDS, False),
        ]
    assert event.action in ("pulse", "hold") and event.duration is not None
    return [(at, True), (at + event.duration, False)]


def _bounce(window: float, debounce: float, rng: random.Random) -> list[float]:
    """Offsets in (0, window) of the toggles after an edge; old-level pulses < debounce."""
    cap = CLAMP * debounce
    if window <= 0.0 or cap < 2 * _STEP:
        return []
    k = rng.choice(_TOGGLES)
    while k and (window <= (k + 1) * _STEP or cap / (k // 2) < 2 * _STEP):
        k -= 2
    if not k:
        return []
    free = window - (k + 1) * _STEP
    offsets = sorted(rng.random() * free for _ in range(k))
    times = [o + (i + 1) * _STEP for i, o in enumerate(offsets)]  # strictly inside (0, window)
    # Toggle 2j goes back to the old level and toggle 2j+1 returns: clamp that pulse,
    # so that all k/2 of them together stay below the debounce.
    for j in range(0, k, 2):
        excess = times[j + 1] - times[j] - cap / (k // 2)
        if excess > 0:
            times[j + 1 :] = [t - excess for t in times[j + 1 :]]
    return times


def _chatter(event: Event, rng: random.Random, debounce: float) -> list[tuple[float, bool]]:
    assert event.duration is not None and event.pulse_ms is not None
    cap = CLAMP * debounce
    if cap < _STEP:
        return []
    pulse = event.pulse_ms / 1000.0
    end = event.at + event.duration
    out: list[tuple[float, bool]] = []
    t = event.at
    while t < end:
        width = max(min(rng.uniform(0.2, 1.0) * pulse, cap), _STEP)
        out += [(t, True), (t + width, False)]
        t += width + max(rng.uniform(0.5, 3.0) * pulse, _STEP)
    return out


def waveform(event: Event, rng: random.Random, debounce: float) -> list[Edge]:
    """The raw edges of ``event`` on an input debounced over ``debounce`` seconds.

    ``rng`` supplies the bounce and chatter (see :func:`scenario_edges` for the
    seeding). Edges are time-ordered with distinct times; the first is at
    ``event.at``. Raises ``ValueError`` for a negative or non-finite debounce.
    """
    if not (math.isfinite(debounce) and debounce >= 0.0):
        raise ValueError(f"debounce must be a finite number of seconds >= 0, got {debounce!r}")
    if event.action == "chatter":
        levels = _chatter(event, rng, debounce)
    else:
        levels = []
        bounce = event.bounce_ms / 1000.0
        nominal = _nominal(event)
        for i, (t, level) in enumerate(nominal):
            window = bounce
            if i + 1 < len(nominal):
                window = min(window, nominal[i + 1][0] - t - debounce)
            levels.append((t, level))
            for n, offset in enumerate(_bounce(window, debounce, rng)):
                levels.append((t + offset, level if n % 2 else not level))
    return [Edge(t, event.input, level) for t, level in levels]


def event_seed(seed: int, event: Event) -> str:
    """The seed of one event's randomness: the scenario seed and what the event is.

    Keyed by the event's content, not its position, so adding, removing or
    reordering other events never changes this event's bounce or chatter.
    (Two events on one input cannot share ``at``, so keys are unique.)
    """
    return f"{seed}:{event.input}:{event.action}:{event.at!r}"


def scenario_edges(scenario: Scenario, debounce_of: Mapping[str, float]) -> list[Edge]:
    """All events' edges, sorted by time (stable: equal times keep file order).

    ``debounce_of`` maps input names to their debounce in seconds (from the
    device config). Each event draws from ``random.Random(event_seed(...))``, so
    the same scenario and seed always give the same edges.
    """
    edges: list[Edge] = []
    for n, event in enumerate(scenario.events, 1):
        debounce = debounce_of.get(event.input)
        if debounce is None:
            raise ScenarioError(
                f"{scenario.source}: event[{n}].input: expected an input with a known debounce, "
                f"got {event.input!r}"
            )
        edges += waveform(event, random.Random(event_seed(scenario.seed, event)), debounce)
    edges.sort(key=lambda e: e.t)
    return edges
