"""gpiozero backend: pins from a pin factory (the Pi's default, or MockFactory).

Inputs use gpiozero's pin layer (raw level, pull, edge callbacks) because the
firmware needs raw levels and its own debounce on HAL timestamps: MockPin
ignores ``bounce_time`` and the Pi libraries disagree on what it means.
Outputs are gpiozero devices. The factory is per instance, never the global
``Device.pin_factory``, so two firmwares (or tests) never share pins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

from hal.clock import Clock
from hal.gpio import EdgeCallback, Gpio, Pull

_PULLS = {"up": "up", "down": "down", "none": "floating"}


class GpiozeroGpio(Gpio):
    def __init__(self, clock: Clock, factory: Factory | None = None) -> None:
        super().__init__(clock)
        if factory is None:
            from gpiozero import Device

            factory = Device._default_pin_factory()
        self.factory = factory
        self._inputs: dict[str, tuple[Any, bool]] = {}
        self._handlers: dict[
            str, Callable[[Any, bool], None]
        ] = {}  # strong refs: gpiozero keeps weak ones
        self._devices: dict[str, DigitalOutputDevice] = {}

    def add_input(
        self, name: str, pin: int, active_high: bool, pull: Pull, on_edge: EdgeCallback
    ) -> None:
        p = self.factory.pin(pin)
        p.function = "input"
        p.pull = _PULLS[pull]
        p.edges = "both"
        clock = self.clock

        def handler(_ticks: Any, state: bool) -> None:
            # Runs on the pin library's thread: stamp now, hand over, never block.
            t = clock.now()
            active = bool(state) == active_high
            clock.call_soon_threadsafe(lambda: on_edge(name, t, active))

        self._inputs[name] = (p, active_high)
        self._handlers[name] = handler
        self._settle(name)
        p.when_changed = handler

    def _settle(self, name: str) -> None:
        """Hook before edges are watched: real pins are whatever the world makes them."""

    def is_active(self, name: str) -> bool:
        pin, active_high = self._inputs[name]
        return bool(pin.state) == active_high

    def pin_of(self, name: str) -> Any:
        return self._inputs[name][0]

    def _add_output(self, name: str, pin: int) -> None:
        self._devices[name] = DigitalOutputDevice(pin, pin_factory=self.factory)

    def _set_output(self, name: str, on: bool) -> None:
        device = self._devices[name]
        device.on() if on else device.off()

    def close(self) -> None:
        for pin, _ in self._inputs.values():
            pin.when_changed = None
            pin.close()
        for device in self._devices.values():
            device.close()
        self._inputs.clear()
        self._handlers.clear()
        self._devices.clear()


class MockGpio(GpiozeroGpio):
    """gpiozero's MockFactory, with stimulus methods for the simulated world."""

    def __init__(self, clock: Clock) -> None:
        from gpiozero.pins.mock import MockFactory

        super().__init__(clock, MockFactory())

    def _settle(self, name: str) -> None:
        # The simulated world starts at rest: weapon holstered, button up.
        self.drive(name, False)

    def drive(self, name: str, active: bool) -> None:
        """Drive an input to its active or inactive level (a real pin edge)."""
        pin, active_high = self._inputs[name]
        high = active == active_high
        pin.drive_high() if high else pin.drive_low()

    def close(self) -> None:
        super().close()
        self.factory.reset()
