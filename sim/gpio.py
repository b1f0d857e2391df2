"""The simulated world's pins: a MockFactory of the firmware's own, with stimulus methods.

Each :class:`MockGpio` builds its own factory, whatever ``GPIOZERO_PIN_FACTORY``,
``GPIOZERO_MOCK_REVISION``, ``GPIOZERO_MOCK_PIN_CLASS`` or ``Device.pin_factory``
say: two simulated devices in one process never share a pin, and a run does
not change with the shell it was started from.

A script may drive the firmware's pins as wires (``pin("holster").drive_high()``)
and put gpiozero devices of its own on free pins of :attr:`factory`. It may not
take a firmware pin: a gpiozero device there raises ``GPIOPinInUse`` (the
reservation, :mod:`hal.gpio.gpiozero_pins`), and so does replacing or clearing
a watched pin's edge callback by hand (:class:`WatchedPin`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPin

from hal.clock import Clock
from hal.gpio import EdgeCallback, Pull
from hal.gpio.gpiozero_pins import GpiozeroGpio

#: The board the simulator pretends to be: a Raspberry Pi 5 (8 GB), the product's board.
PI5_REVISION = "d04170"


class WatchedPin(MockPin):
    """A MockPin that refuses a second edge callback while the firmware watches it.

    gpiozero keeps one ``when_changed`` per pin; a script's assignment would
    replace the firmware's without a word.
    """

    def __init__(self, factory: Any, info: Any) -> None:
        #: (input name, the firmware's callback) while the firmware watches this pin.
        self.watcher: tuple[str, Callable[..., None]] | None = None
        super().__init__(factory, info)

    def _set_when_changed(self, value: Callable[..., None] | None) -> None:
        if self.watcher is not None and value is not self.watcher[1]:
            raise GPIOPinInUse(
                f"pin {self.info.name} is watched by the firmware's input {self.watcher[0]!r}; "
                "replacing its when_changed would silence the firmware: drive the pin "
                "(drive_high/drive_low) or use SimDevice.set_input instead"
            )
        super()._set_when_changed(value)


class MockGpio(GpiozeroGpio):
    """A MockFactory of this instance's own, with stimulus methods for the simulated world."""

    factory: MockFactory

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock, MockFactory(revision=PI5_REVISION, pin_class=WatchedPin))

    def add_input(
        self, name: str, pin: int, active_high: bool, pull: Pull, on_edge: EdgeCallback
    ) -> None:
        super().add_input(name, pin, active_high, pull, on_edge)
        self.pin(name).watcher = (name, self._handlers[name])

    def _settle(self, name: str) -> None:
        # The simulated world starts at rest: weapon holstered, button up.
        self.drive(name, False)

    def pin(self, name: str) -> WatchedPin:
        """The MockPin wired to input ``name``: ``drive_high()``/``drive_low()`` set the wire.

        Levels are electrical: an active-low button is pressed by ``drive_low()``.
        :meth:`drive` (and ``SimDevice.set_input``) speak active/inactive instead.
        """
        pin: WatchedPin = super().pin(name)
        return pin

    def drive(self, name: str, active: bool) -> None:
        """Drive an input to its active or inactive level (a real pin edge)."""
        pin, active_high = self._inputs[name]
        high = active == active_high
        pin.drive_high() if high else pin.drive_low()

    def close(self) -> None:
        for pin, _ in self._inputs.values():
            pin.watcher = None
        super().close()
        self.factory.reset()
