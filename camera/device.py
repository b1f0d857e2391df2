"""One device assembly: a config and a board in, the firmware on its HAL, one run report out.

The Pi loop (:mod:`camera.live`), the simulator (:mod:`sim.device`,
:mod:`sim.runner`) and the trigger bench are thin layers over this, so the
board is decided in one place, the key is chosen by one rule, and every run
reports the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from camera.config import Config
from camera.evidence.keys import DeviceKey, load_key, test_key
from camera.evidence.records import StopReason
from camera.firmware import Firmware
from camera.report import RunReport
from hal.board import Hal, open_hal


class Device:
    """The firmware on a board, built from a config.

    ``board`` defaults to ``config.device.board``; ``overrides`` replace
    backends by name on top of the config's ``[hal]`` table (the bench runs
    the sim board on the real clock). The key follows the board: a simulated
    board signs with a test key derived from the device id and ``seed`` (so
    reruns are byte-identical, and every manifest says it is a test key); any
    other board with the provisioned key, without which it does not start.
    """

    def __init__(
        self,
        config: Config,
        *,
        board: str | None = None,
        storage: str | Path | None = None,
        overrides: Mapping[str, str | None] | None = None,
        key: DeviceKey | None = None,
        seed: int = 0,
        start: datetime | None = None,
    ) -> None:
        v = config.video
        self.config = config
        self.board = board or config.device.board
        #: As given (relative paths stay relative in reports).
        self.storage_root = Path(storage if storage is not None else config.device.storage)
        self.hal: Hal = open_hal(
            self.board,
            storage_root=self.storage_root,
            width=v.width,
            height=v.height,
            fps=v.fps,
            overrides={**config.hal.backends(), **(overrides or {})},
            camera_source=config.hal.camera,
            seed=seed,
            start=start,
            audio=(config.audio.rate, config.audio.channels) if config.audio.enabled else None,
            microphone=config.hal.microphone,
            gps=(config.gps.port, config.gps.baudrate) if config.gps.enabled else None,
        )
        try:
            if key is None:
                simulated = self.hal.board.simulated
                key = (
                    test_key(config.device.id, seed)
                    if simulated
                    else load_key(config.device.key_file)
                )
            self.storage_root.mkdir(parents=True, exist_ok=True)
            self.firmware = Firmware(config, self.hal, key)
        except BaseException:
            self.hal.close()
            raise
        self.clock = self.hal.clock

    def boot(self) -> Device:
        self.firmware.boot()
        return self

    def run(self, until: float | None = None) -> None:
        """Run the loop until device time ``until``, or until the clock is stopped."""
        self.clock.run(until=until)

    def shutdown(self, reason: StopReason = StopReason.END_OF_RUN) -> list[dict[str, Any]]:
        """Close any recording with ``reason``, wait for the writer, release the board."""
        self.firmware.shutdown(reason)
        self.hal.close()
        return self.firmware.recordings

    def report(
        self,
        *,
        recordings: Sequence[dict[str, Any]] | None = None,
        device_seconds: float | None = None,
        wall_seconds: float | None = None,
        scenario: str | None = None,
        expectations: Sequence[dict[str, Any]] = (),
        interrupted: str | None = None,
    ) -> RunReport:
        """The run so far; on a real clock host time is device time."""
        reached = self.clock.now() if device_seconds is None else device_seconds
        return RunReport(
            board=self.board,
            storage=self.storage_root,
            recordings=list(self.firmware.recordings if recordings is None else recordings),
            frames_captured=self.firmware.capture.frames_captured,
            device_seconds=reached,
            wall_seconds=reached if wall_seconds is None else wall_seconds,
            scenario=scenario,
            expectations=list(expectations),
            interrupted=interrupted,
        )
