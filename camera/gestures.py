"""Gestures on debounced inputs (SPEC 5), as pure state machines on device time.

A detector wraps a :class:`~camera.debounce.Debouncer` and turns its accepted
transitions into gestures: every input reports ``activate``/``deactivate``; the
button also reports ``double_press`` and ``hold``. Like the debouncer, a
detector reads no clock and owns no timer: the firmware feeds raw edges stamped
by the HAL clock and calls :meth:`InputDetector.poll` at
:meth:`InputDetector.deadline`. Gestures are dated by when things happened on
the input (first edges), and recognised at the device time the rule was
satisfied, never at the time ``poll`` happened to run, so the outcome does not
depend on timer latency.

Why a gesture's ``time`` is a first edge: it becomes the trigger time, and the
pre-event part of a recording is measured back from it; dating it at the
confirmation would cut the pre-event coverage by the bounce and the debounce
(and, for a double press, by the whole gap between the presses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from camera.debounce import Debouncer, Transition

__all__ = [
    "ButtonDetector",
    "Gesture",
    "GestureKind",
    "InputDetector",
    "LevelDetector",
    "make_detector",
]

GestureKind = Literal["activate", "deactivate", "double_press", "hold"]


@dataclass(frozen=True, slots=True)
class Gesture:
    """Something an input did, as the firmware acts on it."""

    input: str  # the input's name, e.g. "holster" or "button"
    kind: GestureKind
    time: float  # when it happened: the first edge of the (first) press, device seconds
    recognised_at: float  # device time at which the rule was satisfied


class InputDetector:
    """Base of the detectors: one debounced input, polled on device time.

    ``poll(t)`` processes every event due at or before ``t`` (accepted or
    rejected bursts, and a subclass's own timers) in time order, so one late
    call gives the same gestures as calls at each deadline. At equal times the
    debouncer's event is processed before a subclass timer.
    """

    name: str

    def __init__(self, name: str, debounce: float, active: bool = False) -> None:
        self.name = name
        self._debouncer = Debouncer(debounce, active)

    @property
    def active(self) -> bool:
        """The debounced level, as of the last poll."""
        return self._debouncer.active

    @property
    def debouncer(self) -> Debouncer:
        """The underlying debouncer (read it; feed edges through :meth:`edge`)."""
        return self._debouncer

    def edge(self, t: float, active: bool) -> None:
        """A raw edge on the input at device time ``t`` (see :meth:`Debouncer.edge`)."""
        self._debouncer.edge(t, active)

    def deadline(self) -> float | None:
        """When :meth:`poll` must next be called; None if nothing is pending."""
        own = self._own_deadline()
        deb = self._debouncer.deadline()
        if own is None:
            return deb
        if deb is None:
            return own
        return min(own, deb)

    def poll(self, t: float) -> list[Gesture]:
        """Process everything due at or before ``t``; gestures in order of recognition."""
        out: list[Gesture] = []
        while True:
            deb = self._debouncer.deadline()
            own = self._own_deadline()
            if deb is not None and deb <= t and (own is None or deb <= own):
                # Only this one burst is due at ``deb``: the next burst starts at least
                # ``debounce`` later, so its deadline is later still (or, with a zero
                # debounce, every burst is accepted).
                tr = self._debouncer.poll(deb)
                if tr is None:
                    self._on_rejected(deb, out)
                else:
                    kind: GestureKind = "activate" if tr.active else "deactivate"
                    out.append(Gesture(self.name, kind, tr.time, tr.accepted_at))
                    self._on_transition(tr, out)
            elif own is not None and own <= t:
                self._on_own_deadline(own, out)
            else:
                return out

    # Hooks for subclasses. They must make progress: after _on_own_deadline(at)
    # the own deadline is no longer ``at``.

    def _own_deadline(self) -> float | None:
        return None

    def _on_transition(self, tr: Transition, out: list[Gesture]) -> None:
        pass

    def _on_rejected(self, at: float, out: list[Gesture]) -> None:
        pass

    def _on_own_deadline(self, at: float, out: list[Gesture]) -> None:
        raise AssertionError("no own deadline was set")  # pragma: no cover


class LevelDetector(InputDetector):
    """An input whose level is what matters (the holster): activate/deactivate only."""


class ButtonDetector(InputDetector):
    """A push button: activate/deactivate, plus double press and hold.

    - Double press: two presses (accepted activations) whose first edges are at
      most ``double_press_window`` apart (inclusive, computed as
      ``second <= first + window``). Recognised when the second press is
      accepted, dated at the first press's first edge. It consumes both presses:
      the next press starts a new pair, so a triple press is one double press.
    - Hold: active for ``hold`` seconds without an accepted release, dated at the
      press's first edge and recognised at that edge + ``hold``. If a release
      burst that started before that moment is still unresolved then, the hold
      waits for it: a real release (accepted, so dated before the mark) cancels
      it; a glitch (rejected) lets it be recognised when the glitch is resolved.
      A hold also consumes its press for double-press purposes, and the press
      that completes a double press never becomes a hold, however long it is
      held (SPEC 5: a press that completes a start gesture is never also a stop).
    - An input already active at start-up is not a press: no hold or double
      press comes from it.
    """

    def __init__(
        self,
        name: str,
        debounce: float,
        active: bool = False,
        double_press_window: float = 1.0,
        hold: float = 3.0,
    ) -> None:
        super().__init__(name, debounce, active)
        if not (math.isfinite(double_press_window) and double_press_window >= 0.0):
            raise ValueError(
                f"double_press_window must be finite and >= 0, got {double_press_window!r}"
            )
        if not (math.isfinite(hold) and hold > 0.0):
            raise ValueError(f"hold must be finite and > 0, got {hold!r}")
        self.double_press_window = float(double_press_window)
        self.hold = float(hold)
        self._first_press: float | None = None  # first edge of a press awaiting its partner
        self._press: Transition | None = None  # the press being held, if a hold is still possible
        self._hold_waiting = False  # the hold mark passed during an unresolved release burst

    def _hold_mark(self) -> float | None:
        """Press first edge + hold, not before the press was accepted (pathological bounce)."""
        if self._press is None:
            return None
        return max(self._press.time + self.hold, self._press.accepted_at)

    def _own_deadline(self) -> float | None:
        return None if self._hold_waiting else self._hold_mark()

    def _recognise_hold(self, at: float, out: list[Gesture]) -> None:
        assert self._press is not None
        out.append(Gesture(self.name, "hold", self._press.time, at))
        self._press = None
        self._hold_waiting = False
        self._first_press = None

    def _on_transition(self, tr: Transition, out: list[Gesture]) -> None:
        if not tr.active:  # an accepted release: no hold from this press
            self._press = None
            self._hold_waiting = False
            return
        first = self._first_press
        self._hold_waiting = False
        if first is not None and tr.time <= first + self.double_press_window:
            out.append(Gesture(self.name, "double_press", first, tr.accepted_at))
            self._first_press = None
            # The press that completes a start gesture is never also a stop (SPEC 5):
            # an officer who keeps the second press down must not end what it started.
            self._press = None
        else:
            self._first_press = tr.time
            self._press = tr

    def _on_rejected(self, at: float, out: list[Gesture]) -> None:
        if self._hold_waiting:  # the release burst straddling the mark was a glitch
            self._recognise_hold(at, out)

    def _on_own_deadline(self, at: float, out: list[Gesture]) -> None:
        assert self._press is not None
        pending = self._debouncer.pending_since
        if pending is not None and pending < self._press.time + self.hold:
            # A release burst began before the mark and is not resolved yet; wait for it.
            self._hold_waiting = True
        else:
            self._recognise_hold(at, out)


def make_detector(
    name: str,
    role: Literal["level", "button"],
    debounce: float,
    active: bool = False,
    **kw: Any,
) -> InputDetector:
    """Build the detector for an input's configured role.

    Extra keywords go to the detector (``double_press_window`` and ``hold`` for a
    button); a level input takes none, and unknown ones raise ``TypeError``.
    """
    if role == "level":
        return LevelDetector(name, debounce, active, **kw)
    if role == "button":
        return ButtonDetector(name, debounce, active, **kw)
    raise ValueError(
        f"unknown input role {role!r} for input {name!r}: expected 'level' or 'button'"
    )
