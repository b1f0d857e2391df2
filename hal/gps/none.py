"""``[hal] gps = "none"``: a board without a receiver, chosen on purpose.

Not a :class:`~hal.gps.GpsSource`: its ``open`` gives None, so the board has
no GPS and no problem to report (``[gps] enabled = true`` with this backend
is how a bench runs the GPS configuration without a receiver attached).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hal.clock import Clock
    from hal.gps import GpsSource

__all__ = ["NoGps"]


class NoGps:
    """Opens to nothing."""

    @classmethod
    def open(cls, clock: Clock, port: str, baudrate: int) -> GpsSource | None:
        return None
