"""Serial ports: the console's opens (the GPS port has a check of its own, :mod:`.gps`).

On the simulated board the console is skipped: ``bodycam run --console``
serves it on a pty of its own, so there is no configured port to find.
"""

from __future__ import annotations

from camera.config import Config
from camera.doctor.result import Result
from camera.errors import BackendError
from hal.board import Parts
from hal.serial import open_serial

__all__ = ["SERIAL_TIMEOUT", "check_console"]

#: Seconds one read of a port may wait.
SERIAL_TIMEOUT = 0.1


def check_console(config: Config, board: Parts) -> Result:
    """Open and close the configured console port (only on a real board)."""
    c = config.console
    if not c.enabled:
        return Result("console", "skip", "not enabled ([console] enabled = false)")
    if board.board.simulated:
        text = "simulated: bodycam run --console serves it on a pty of its own"
        return Result("console", "skip", text, {"port": c.port})
    details = {"port": c.port, "baudrate": c.baudrate}
    try:
        port = open_serial(c.port, c.baudrate, timeout=SERIAL_TIMEOUT)
    except BackendError as exc:
        return Result("console", "fail", str(exc), details)
    port.close()
    return Result("console", "ok", f"{c.port} opens at {c.baudrate} baud", details)
