"""The simulated world's pins: gpiozero's MockFactory, with stimulus methods."""

from __future__ import annotations

from hal.clock import Clock
from hal.gpio.gpiozero_pins import GpiozeroGpio


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
