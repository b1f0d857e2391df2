"""A simulated device: the firmware on the ``sim`` board, plus stimulus helpers.

This is the programmatic way in (tests, notebooks, the scenario runner): build
one from a config, schedule input levels at virtual times, run, shut down.
The assembly itself is :class:`camera.device.Device`; this adds the world.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
    def storage(self) -> SimStorage:
        assert isinstance(self.hal.storage, SimStorage), "faults need the sim storage backend"
        return self.hal.storage

    def set_input(self, t: float, name: str, active: bool) -> None:
        """Drive input ``name`` to its active/inactive level at virtual time ``t``."""
        self.clock.call_at(t, lambda: self.gpio.drive(name, active))

    def pulse(self, t: float, name: str, duration: float) -> None:
        self.set_input(t, name, True)
        self.set_input(t + duration, name, False)
