"""The device's wall clock at any moment of a recording, from what the manifest keeps.

A manifest stamps only the trigger with UTC; every other moment is device
time. The device's wall clock ran with device time except where it was
stepped (NTP, GPS: ``wall_clock_steps``), so its reading at device time ``t``
is the trigger's stamp, plus the device seconds since, plus every step
taken between the two (minus those between, for a moment before the
trigger). These are the stamps the device itself wrote at those moments
(the audit log's ``utc``), not a corrected true time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from camera.evidence.audit import format_utc


def parse_utc(text: str) -> datetime | None:
    """A manifest's ``wall_time`` (``2026-01-01T08:00:03.000Z``), or None if it is not one."""
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class WallClock:
    """The wall clock anchored at the trigger; ``steps`` are (device time, seconds)."""

    anchor_time: float
    anchor_wall: datetime | None
    steps: Sequence[tuple[float, float]] = ()

    def _moment(self, t: float, offset: float = 0.0) -> datetime | None:
        if self.anchor_wall is None:
            return None
        stepped = sum(s * ((at <= t) - (at <= self.anchor_time)) for at, s in self.steps)
        try:
            return self.anchor_wall + timedelta(
                seconds=round(t - self.anchor_time + stepped + offset, 6)
            )
        except OverflowError:  # a hostile manifest's step of 1e300 seconds
            return None

    def at(self, t: float) -> str | None:
        """The wall clock at device time ``t`` (a step at ``t`` already taken), or None."""
        moment = self._moment(t)
        return None if moment is None else format_utc(moment)

    def around_step(self, at: float, seconds: float) -> tuple[str | None, str | None]:
        """The wall clock just before and just after a step of ``seconds`` at ``at``."""
        before = self._moment(at, -seconds)
        return (None if before is None else format_utc(before)), self.at(at)
