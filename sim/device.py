"""A simulated device: the firmware on the ``sim`` board, plus stimulus helpers.

This is the programmatic way in (tests, notebooks, the scenario runner): build
one from a config, schedule input levels at virtual times, run, shut down.
The assembly itself is :class:`camera.device.Device`; this adds the world.

Scripts that prefer gpiozero get the device's own pin factory
(:attr:`SimDevice.pin_factory`) and the MockPin behind each input
(``device.gpio.pin("holster")``); the firmware's pins are reserved in that
factory, so a gpiozero device on one raises ``GPIOPinInUse`` (README, "Driving
a simulated device from Python").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from camera.config import Config
from camera.device import Device
from sim.gpio import MockGpio
from sim.storage import SimStorage

DEFAULT_START = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)


class SimDevice(Device):
    def __init__(
        self,
        config: Config,
        storage_root: str | Path | None = None,
        *,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        board: str = "sim",
    ) -> None:
        super().__init__(config, board=board, storage=storage_root, seed=seed, start=start)

    @property
    def gpio(self) -> MockGpio:
        assert isinstance(self.hal.gpio, MockGpio), "stimulus needs the mock GPIO backend"
        return self.hal.gpio

    @property
    def pin_factory(self) -> MockFactory:
        """This device's own MockFactory: pass it as ``pin_factory=`` to gpiozero devices.

        Never gpiozero's global ``gpiozero.Device.pin_factory``: two simulated devices have
        separate pins, whatever ``GPIOZERO_PIN_FACTORY`` says.
        """
        return self.gpio.factory

    @property
    def storage(self) -> SimStorage:
        assert isinstance(self.hal.storage, SimStorage), "faults need the sim storage backend"
        return self.hal.storage

    def set_input(self, t: float, name: str, active: bool) -> None:
        """Drive input ``name`` to its active/inactive level at virtual time ``t``."""
        self.clock.call_at(t, lambda: self.gpio.drive(name, active))

    def pulse(self, t: float, name: str, duration: float) -> None:
        """Input ``name`` active from virtual time ``t`` for ``duration`` seconds."""
        self.set_input(t, name, True)
        self.set_input(t + duration, name, False)
