"""GPS: does the configured port speak NMEA, how fast, and does the receiver have a fix?

The board's own reader (:attr:`hal.board.Parts.gps`, the backend a run
uses) listens for a window, so what is checked is what the firmware will
read: sentences parsed by the same decoder, bad checksums and garbage
counted the same way.

- **fail**: the port does not open, stays silent (wiring, power, or the
  console still on the UART), or sends bytes that are never NMEA (most
  often the wrong ``baudrate``);
- **warn**: sentences with bad checksums (noise on the line), or no fix yet
  (normal for a cold start or indoors: recordings are then marked lost);
- **ok**: sentences, clean, with a fix.

Why the window is real time and not the HAL clock's (unlike
:func:`camera.doctor.listen.listen`, which times sources the clock itself
drives): a receiver talks on its own crystal, and on the virtual clock, time
stands still between events, so a window on it would end before a real
receiver said anything. The check waits in slices of :data:`SLICE` seconds,
handing the fixes the reader posted to the loop between slices.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from camera.config import Config
from camera.doctor.result import Result, part_problem, why
from hal.board import Parts
from hal.gps import Fix, GpsStats

__all__ = ["GPS_WINDOW", "SLICE", "check_gps"]

#: Seconds the receiver is listened to (a receiver speaks at least once a second).
GPS_WINDOW = 3.0
#: Seconds between handing posted fixes over to the check.
SLICE = 0.1


def check_gps(config: Config, board: Parts, *, window: float = GPS_WINDOW) -> Result:
    """Listen to the board's receiver for ``window`` seconds and judge what it said."""
    g = config.gps
    if not g.enabled:
        return Result("gps", "skip", "not enabled ([gps] enabled = false)")
    backend = board.names.get("gps")
    details: dict[str, Any] = {"port": g.port, "baudrate": g.baudrate, "backend": backend}
    source = board.gps
    if source is None:
        if backend == "none":
            return Result("gps", "skip", 'no receiver ([hal] gps = "none")', details)
        problem = part_problem(board, "gps", "GPS")
        return Result("gps", "fail", problem, details)
    fixes: list[Fix] = []
    clock = board.clock
    slices = max(1, math.ceil(window / SLICE))
    pause = threading.Event()  # never set: each wait is one slice of real time
    t0 = clock.now()
    try:
        source.start(fixes.append)
        for _ in range(slices):
            pause.wait(SLICE)
            clock.run_posted()
    except Exception as exc:
        return Result("gps", "fail", f"{g.port}: {why(exc)}", details)
    finally:
        source.close()
    clock.run_posted()  # whatever was posted before close(), undelivered by design
    measured = clock.now() - t0
    elapsed = measured if measured > 0 else slices * SLICE  # the virtual clock stood still
    return _verdict(config, source.stats, fixes, elapsed, details)


def _verdict(
    config: Config, stats: GpsStats, fixes: list[Fix], elapsed: float, details: dict[str, Any]
) -> Result:
    g = config.gps
    details |= {
        "seconds": round(elapsed, 2),
        "bytes": stats.extra.get("bytes", 0),
        "sentences": stats.sentences,
        "bad_checksum": stats.bad_checksum,
        "garbage": stats.garbage,
        "epochs": stats.fixes,
        "valid_fixes": sum(f.valid for f in fixes),
    }
    if stats.extra.get("errors"):
        return Result("gps", "fail", f"{g.port}: the port failed while reading", details)
    if stats.sentences == 0:
        if stats.extra.get("bytes", 0):
            text = (
                f"{g.port}: {details['bytes']} bytes in {elapsed:.1f} s but no NMEA sentence "
                f"(is {g.baudrate} baud the receiver's rate?)"
            )
        else:
            text = f"{g.port} opens at {g.baudrate} baud, but said nothing in {elapsed:.1f} s"
        return Result("gps", "fail", text, details)
    rate = stats.sentences / elapsed
    details["rate"] = round(rate, 2)
    text = f"{g.port}: {stats.sentences} NMEA sentences in {elapsed:.1f} s ({rate:.1f}/s)"
    last = fixes[-1] if fixes else None
    satellites = next((f.satellites for f in reversed(fixes) if f.satellites is not None), None)
    details["satellites"] = satellites
    seen = "" if satellites is None else f", {satellites} satellites"
    warns = []
    if stats.bad_checksum:
        warns.append(f"{stats.bad_checksum} bad checksums (noise on the line?)")
    if last is None or not last.valid:
        warns.append(f"no fix yet{seen} (normal for a cold start or indoors)")
    if warns:
        return Result("gps", "warn", f"{text}; " + "; ".join(warns), details)
    details |= {"lat": last.lat, "lon": last.lon, "hdop": last.hdop}
    where = f"fix {last.lat or 0.0:.5f}, {last.lon or 0.0:.5f}{seen}"  # a valid fix has both
    if last.hdop is not None:
        where += f", HDOP {last.hdop:g}"
    return Result("gps", "ok", f"{text}; {where}", details)
