"""Running the firmware for real: the ``pi`` board, until interrupted.

Kept apart from the simulator: this is what a prototype runs at power-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from typing import Any

from camera.config import Config
from camera.evidence.keys import load_key
from camera.firmware import Firmware
from hal.board import open_hal


def run_live(config: Config, out: str | None = None, as_json: bool = False) -> int:
    # The provisioned key first: without it nothing the camera writes could be
    # proven, so it does not start (one line, exit 2: run `bodycam provision`).
    key = load_key(config.device.key_file)
    v = config.video
    hal = open_hal(
        "pi",
        storage_root=out or config.device.storage,
        width=v.width,
        height=v.height,
        fps=v.fps,
        overrides=config.hal.model_dump(exclude={"camera"}),
        camera_source=config.hal.camera,
    )
    hal.storage.root.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    firmware = Firmware(config, hal, key)
    signal.signal(signal.SIGTERM, lambda *_: hal.clock.stop())
    firmware.boot()
    console = None
    if config.console.enabled:
        from camera.console import Console
        from hal.serial import open_serial

        console = Console(firmware, open_serial(config.console.port, config.console.baudrate))
        console.start()
    with contextlib.suppress(KeyboardInterrupt):
        hal.clock.run()
    if console is not None:
        console.close()
    firmware.shutdown("end_of_run")
    hal.close()
    summary: dict[str, Any] = {
        "recordings": [m.get("recording_id") for m in firmware.recordings],
        "frames_captured": firmware.capture.frames_captured,
        "dropped_frames": firmware.recorder.dropped_frames,
    }
    print(json.dumps(summary) if as_json else summary)
    return 0
