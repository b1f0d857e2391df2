"""Serial ports: the console opens, and the GPS port opens and speaks NMEA.

A port that opens but stays silent is a warning, not a failure: a GPS
receiver indoors may say nothing yet. On the simulated board the console is
skipped: ``bodycam run --console`` serves it on a pty of its own, so there
is no configured port to find.
"""

from __future__ import annotations

import math
import re
from typing import Any

from camera.config import Config
from camera.doctor.result import Result, why
from camera.errors import BackendError
from hal.board import Parts
from hal.serial import open_serial

__all__ = ["GPS_ENOUGH_LINES", "GPS_WINDOW", "SERIAL_TIMEOUT", "check_console", "check_gps"]

#: Seconds the GPS port is listened to; enough NMEA lines end it early.
GPS_WINDOW = 2.0
GPS_ENOUGH_LINES = 5
#: Seconds one read of a port may wait.
SERIAL_TIMEOUT = 0.1
_NMEA = re.compile(rb"^\$G[A-Z]")


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


def check_gps(config: Config, board: Parts, *, window: float = GPS_WINDOW) -> Result:
    """The configured GPS port opens, and NMEA sentences come out of it.

    The listening window is bounded twice: by the HAL clock on a real clock,
    and by a count of reads that each wait at most the port's timeout, which
    is what bounds it on the virtual clock (where time stands still).
    """
    g = config.gps
    if not g.enabled:
        return Result("gps", "skip", "not enabled ([gps] enabled = false)")
    details: dict[str, Any] = {"port": g.port, "baudrate": g.baudrate}
    try:
        port = open_serial(g.port, g.baudrate, timeout=SERIAL_TIMEOUT)
    except BackendError as exc:
        return Result("gps", "fail", str(exc), details)
    clock = board.clock
    start = clock.now()
    buffer, lines = b"", 0
    try:
        for _ in range(max(1, math.ceil(window / SERIAL_TIMEOUT))):
            buffer += port.read(4096)
            *complete, buffer = buffer.split(b"\n")
            lines += sum(1 for line in complete if _NMEA.match(line.strip()))
            if lines >= GPS_ENOUGH_LINES or clock.now() - start >= window:
                break
    except OSError as exc:
        return Result("gps", "fail", f"{g.port}: read failed: {why(exc)}", details)
    finally:
        port.close()
    details["nmea_lines"] = lines
    if not lines:
        text = f"{g.port} opens at {g.baudrate} baud, but no NMEA sentences in {window:g} s"
        return Result("gps", "warn", text, details)
    return Result("gps", "ok", f"{g.port}: {lines} NMEA sentences at {g.baudrate} baud", details)
