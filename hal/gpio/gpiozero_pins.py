"""gpiozero backend: pins from a pin factory (the Pi's default, or MockFactory).

Inputs use gpiozero's pin layer (raw level, pull, edge callbacks) because the
firmware needs raw levels and its own debounce on HAL timestamps: MockPin
ignores ``bounce_time`` and the Pi libraries disagree on what it means.
Outputs are gpiozero devices. Every pin the firmware uses is reserved in the
factory the way gpiozero's own devices reserve theirs, so a second gpiozero
device on one of them (a script's ``Button(27, pin_factory=...)``) raises
``GPIOPinInUse`` naming the pin and the firmware's input, instead of silently
taking over its edge callback: a recording that never starts and tells nobody.

The factory is passed in (the simulator gives each firmware a MockFactory of
its own); without one it is gpiozero's choice for any device in this process.

Edges are stamped with the pin library's own timestamp (lgpio: the kernel's
line-event time), converted to device time, not with the time the callback
thread got to run: a busy Python process can delay that thread by
milliseconds, which would stretch and shift the pulses the debouncer judges.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

from hal.clock import Clock
from hal.errors import HardwareMissing
from hal.gpio import EdgeCallback, Gpio, Pull

_PULLS = {"up": "up", "down": "down", "none": "floating"}
#: A pin library's edge older than this (or in the future) is not believed:
#: its clock is not the one we think, so the edge is stamped on arrival.
MAX_EDGE_AGE = 1.0


def default_factory() -> Factory:
    """The factory a gpiozero device built here would get.

    ``Device.pin_factory`` when this process already chose one (so the firmware
    and a script's own devices share one reservation table), otherwise the one
    ``GPIOZERO_PIN_FACTORY`` names, or gpiozero's default (lgpio on a Pi 5 and
    current Raspberry Pi OS). The global is read, never set: opening a board
    does not change what a later ``Button(5)`` gets.

    Off a Pi gpiozero warns once per library it tries and then fails; that
    becomes one line naming what is missing.
    """
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    if Device.pin_factory is not None:
        return Device.pin_factory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return Device._default_pin_factory()
        except BadPinFactory:
            raise HardwareMissing(
                "pin factory: no GPIO library could open the pins (tried lgpio, RPi.GPIO, "
                "pigpio, native; is this a Raspberry Pi with python3-lgpio installed?)"
            ) from None


def edge_time(clock: Clock, factory: Factory, ticks: Any) -> float:
    """Device time of an edge the pin library stamped ``ticks``.

    The age of the edge comes from the factory's own clock (``ticks_diff``
    against ``ticks()`` now), so no assumption is made about which system
    clock the library uses. On the virtual clock the edge happens now:
    reading a host clock there would make simulated runs depend on the host.
    """
    now = clock.now()
    if clock.virtual or ticks is None:
        return now
    try:
        age = factory.ticks_diff(factory.ticks(), ticks)
    except (TypeError, ValueError, OverflowError):
        return now
    return now - age if 0.0 <= age <= MAX_EDGE_AGE else now


class Claim:
    """The firmware's reservation of one input pin in a factory's table.

    gpiozero asks each holder ``_conflicts_with`` and names it by ``repr`` in
    ``GPIOPinInUse``, so this is what a colliding script reads.
    """

    def __init__(self, name: str, pin: int) -> None:
        self.name = name
        self.pin = pin

    def _conflicts_with(self, other: object) -> bool:
        return True  # the firmware shares its inputs with nobody

    def __repr__(self) -> str:
        return f"<bodycam firmware input {self.name!r} on GPIO{self.pin}>"


class FirmwareOutput(DigitalOutputDevice):
    """A gpiozero output (it reserves its pin) whose ``repr`` names the firmware's output."""

    def __init__(self, name: str, pin: int, factory: Factory) -> None:
        self.output_name = name  # set before gpiozero freezes the attribute set
        self.output_pin = pin
        super().__init__(pin, pin_factory=factory)

    def __repr__(self) -> str:
        return f"<bodycam firmware output {self.output_name!r} on GPIO{self.output_pin}>"


class GpiozeroGpio(Gpio):
    def __init__(self, clock: Clock, factory: Factory | None = None) -> None:
        super().__init__(clock)
        if factory is None:
            factory = default_factory()
        self.factory = factory
        self._inputs: dict[str, tuple[Any, bool]] = {}
        self._handlers: dict[
            str, Callable[[Any, bool], None]
        ] = {}  # strong refs: gpiozero keeps weak ones
        self._devices: dict[str, FirmwareOutput] = {}
        self._claims: dict[str, Claim] = {}  # strong refs: the factory keeps weak ones

    def add_input(
        self, name: str, pin: int, active_high: bool, pull: Pull, on_edge: EdgeCallback
    ) -> None:
        claim = Claim(name, pin)
        self.factory.reserve_pins(claim, pin)  # GPIOPinInUse if a device holds it
        try:
            p = self.factory.pin(pin)
            p.function = "input"
            p.pull = _PULLS[pull]
            p.edges = "both"
        except BaseException:
            self.factory.release_pins(claim, pin)
            raise
        self._claims[name] = claim
        clock, factory = self.clock, self.factory

        def handler(ticks: Any, state: bool) -> None:
            # Runs on the pin library's thread: stamp, hand over, never block.
            t = edge_time(clock, factory, ticks)
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

    def pin(self, name: str) -> Any:
        """The gpiozero pin behind input ``name`` (inputs exist from the firmware's boot)."""
        try:
            return self._inputs[name][0]
        except KeyError:
            known = ", ".join(sorted(self._inputs)) or "none yet: inputs are watched from boot()"
            raise KeyError(f"no input {name!r} (inputs: {known})") from None

    def _add_output(self, name: str, pin: int) -> None:
        self._devices[name] = FirmwareOutput(name, pin, self.factory)

    def _set_output(self, name: str, on: bool) -> None:
        device = self._devices[name]
        device.on() if on else device.off()

    def close(self) -> None:
        for pin, _ in self._inputs.values():
            pin.when_changed = None
            pin.close()
        for claim in self._claims.values():
            self.factory.release_pins(claim, claim.pin)
        for device in self._devices.values():
            device.close()
        self._inputs.clear()
        self._handlers.clear()
        self._claims.clear()
        self._devices.clear()
