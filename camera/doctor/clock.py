"""Clock: the wall clock is set, did not step while the checks ran, and NTP agrees.

Evidence is stamped with wall time, so a Pi without an RTC that booted
before NTP answered would record 1970. The clock is read before the other
checks and judged after them, so a step anywhere during the doctor shows.
Asking the OS about NTP is the HAL's (:mod:`hal.clock.ntp`); it is a
parameter here, so tests give the answer instead of a host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camera.doctor.result import Result
from hal.board import Parts
from hal.clock import Clock
from hal.clock.ntp import ntp_synchronized

__all__ = ["MAX_WALL_STEP", "WALL_CLOCK_SET_YEAR", "ClockReading", "check_clock"]

#: A wall-clock year before this means nobody set the clock (no RTC, no NTP).
WALL_CLOCK_SET_YEAR = 2025
#: Wall minus device time moving more than this during the checks is a step.
MAX_WALL_STEP = 1.0


@dataclass(frozen=True)
class ClockReading:
    """Device and wall time read together, before and after the other checks."""

    device: float
    wall: datetime

    @classmethod
    def take(cls, clock: Clock) -> ClockReading:
        t = clock.now()
        return cls(t, clock.wall(t))


def check_clock(
    board: Parts,
    before: ClockReading,
    *,
    ntp: Callable[[], bool | None] = ntp_synchronized,
) -> Result:
    """Compare with ``before``; NTP is asked on a real clock only (a simulated one has none)."""
    clock = board.clock
    after = ClockReading.take(clock)
    step = (after.wall - before.wall).total_seconds() - (after.device - before.device)
    wall = after.wall.strftime("%Y-%m-%d %H:%M:%S UTC")
    details: dict[str, Any] = {
        "wall": after.wall.isoformat(),
        "step_seconds": round(step, 6),
        "checked_seconds": round(after.device - before.device, 6),
    }
    warns = []
    if after.wall.year < WALL_CLOCK_SET_YEAR:
        warns.append(f"wall clock not set (no RTC, no NTP yet): {wall}")
    if abs(step) > MAX_WALL_STEP:
        warns.append(f"wall clock stepped by {step:+.1f} s during the check")
    if clock.virtual:
        details["ntp"] = None
        ntp_text = "simulated clock"
    else:
        synced = ntp()
        details["ntp"] = synced
        ntp_text = {True: "NTP synchronized", None: "NTP state unknown"}.get(synced, "")
        if synced is False:
            warns.append("NTP not synchronized")
    if warns:
        return Result("clock", "warn", "; ".join(warns), details)
    text = f"{wall}, steady over {after.device - before.device:.1f} s of checks, {ntp_text}"
    return Result("clock", "ok", text, details)
