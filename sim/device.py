"""A simulated device: the firmware on the ``sim`` board, plus stimulus helpers.

This is the programmatic way in (tests, notebooks, the scenario runner): build
one from a config, schedule input levels at virtual times, run, shut down.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from camera.config import Config
from camera.evidence.keys import test_key
from camera.firmware import Firmware
from hal.board import Hal, open_hal
from hal.gpio.gpiozero_pins import MockGpio
from sim.storage import SimStorage

DEFAULT_START = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)


class SimDevice:
    def __init__(
        self,
        config: Config,
        storage_root: str | Path | None = None,
        *,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        board: str = "sim",
    ) -> None:
        v = config.video
        self.config = config
        self.hal: Hal = open_hal(
            board,
            storage_root=storage_root if storage_root is not None else config.device.storage,
            width=v.width,
            height=v.height,
            fps=v.fps,
            overrides=config.hal.model_dump(exclude={"camera"}),
            camera_source=config.hal.camera,
            seed=seed,
            start=start,
        )
        Path(self.hal.storage.root).mkdir(parents=True, exist_ok=True)
        # A test key from the device id and the seed: reruns sign byte-identically.
        self.firmware = Firmware(config, self.hal, test_key(config.device.id, seed))
        self.clock = self.hal.clock

    @property
    def gpio(self) -> MockGpio:
        assert isinstance(self.hal.gpio, MockGpio), "stimulus needs the mock GPIO backend"
        return self.hal.gpio

    @property
    def storage(self) -> SimStorage:
        assert isinstance(self.hal.storage, SimStorage), "faults need the sim storage backend"
        return self.hal.storage

    def boot(self) -> SimDevice:
        self.firmware.boot()
        return self

    def set_input(self, t: float, name: str, active: bool) -> None:
        """Drive input ``name`` to its active/inactive level at virtual time ``t``."""
        self.clock.call_at(t, lambda: self.gpio.drive(name, active))

    def pulse(self, t: float, name: str, duration: float) -> None:
        self.set_input(t, name, True)
        self.set_input(t + duration, name, False)

    def run(self, until: float) -> None:
        self.firmware.run(until)

    def shutdown(self) -> list[dict]:
        self.firmware.shutdown("end_of_run")
        self.hal.close()
        return self.firmware.recordings
