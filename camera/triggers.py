"""The trigger module: pin edges in, gestures out.

Each configured input gets a detector (debounce plus, for the button, double
press and hold). Edges arrive on the loop thread with their HAL timestamps;
each detector's next deadline is one timer on the clock, so recognition
happens at exactly the right device time on a Pi and on the virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from camera.gestures import Gesture, InputDetector, make_detector
from hal.clock import Clock, Timer
from hal.gpio import Gpio

GestureHandler = Callable[[Gesture], None]

ROLE_DETECTOR = {"holster": "level", "button": "button"}


class Triggers:
    def __init__(
        self,
        clock: Clock,
        gpio: Gpio,
        inputs: Mapping[str, Any],
        on_gesture: GestureHandler,
        *,
        double_press_window: float = 1.0,
        hold_seconds: float = 3.0,
    ) -> None:
        self.clock = clock
        self.gpio = gpio
        self.inputs = inputs
        self.on_gesture = on_gesture
        self.roles: dict[str, str] = {}
        self.detectors: dict[str, InputDetector] = {}
        self._timers: dict[str, Timer | None] = {}
        self._options = {"double_press_window": double_press_window, "hold": hold_seconds}

    def start(self) -> None:
        for name, cfg in self.inputs.items():
            self.gpio.add_input(name, cfg.pin, cfg.active == "high", cfg.pull, self._edge)
            # The initial level fires no callback: a holster already open at boot is read here.
            active = self.gpio.is_active(name)
            kind = ROLE_DETECTOR[cfg.role]
            options = self._options if kind == "button" else {}
            self.detectors[name] = make_detector(
                name, kind, cfg.debounce_ms / 1000.0, active=active, **options
            )
            self.roles[name] = cfg.role
            self._timers[name] = None

    def _edge(self, name: str, t: float, active: bool) -> None:
        detector = self.detectors[name]
        self._emit(detector.poll(t))  # anything due up to the edge resolves first
        detector.edge(t, active)
        self._schedule(name)

    def _fire(self, name: str) -> None:
        self._timers[name] = None
        self._emit(self.detectors[name].poll(self.clock.now()))
        self._schedule(name)

    def _schedule(self, name: str) -> None:
        timer = self._timers.get(name)
        if timer is not None:
            timer.cancel()
        deadline = self.detectors[name].deadline()
        self._timers[name] = (
            None if deadline is None else self.clock.call_at(deadline, lambda: self._fire(name))
        )

    def _emit(self, gestures: list[Gesture]) -> None:
        for gesture in gestures:
            self.on_gesture(gesture)

    def close(self) -> None:
        for timer in self._timers.values():
            if timer is not None:
                timer.cancel()
        self._timers.clear()
