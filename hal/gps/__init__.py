"""GPS receivers push fixes into the loop: one :class:`Fix` per NMEA epoch.

Push, as with microphones (:mod:`hal.audio`): a receiver talks at its own
rate (1 Hz, or 10 Hz, or garbage) on its own serial line, so a reader thread
owns the port and hands each fix to the loop with
``clock.call_soon_threadsafe``. Nothing the receiver sends can slow the
capture loop: the reader parses off the loop, counts and skips what it
cannot parse, and bounds what it posts (a flooding receiver loses fixes,
never frames).

A fix says only what the receiver said. ``valid`` is the receiver's own
verdict (RMC status ``A``, GGA quality > 0); position fields of an invalid
fix are None, and nothing here ever interpolates or invents a position. The
fix's device time is when the sentence that completed its epoch arrived
(stamped by the reader like a pin edge), never the GPS time in it: the
difference between the two is exactly the clock error SPEC 14 makes
visible.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Fix:
    """What one NMEA epoch (RMC and/or GGA of one UTC second) said."""

    #: Device time the epoch's last sentence arrived (reader's stamp).
    time: float
    #: GPS UTC of the epoch (RMC date + time); None if the receiver has no time yet.
    utc: datetime | None
    #: The receiver says this is a fix (RMC status A, GGA quality > 0).
    valid: bool
    lat: float | None = None  # degrees, + north
    lon: float | None = None  # degrees, + east
    speed: float | None = None  # m/s over ground
    course: float | None = None  # degrees true
    #: GGA fix quality (0 none, 1 GPS, 2 DGPS, ...); None without a GGA.
    quality: int | None = None
    satellites: int | None = None
    hdop: float | None = None


@dataclass(slots=True)
class GpsStats:
    """Counters since the reader started; read from any thread (plain ints)."""

    sentences: int = 0  # parsed NMEA sentences (any type)
    bad_checksum: int = 0  # sentences whose checksum failed: skipped
    garbage: int = 0  # lines or bytes that were not NMEA at all: skipped
    fixes: int = 0  # epochs posted to the loop (valid or not)
    dropped: int = 0  # epochs not posted because the loop had too many pending
    last_sentence: float | None = None  # device time of the last parsed sentence
    extra: dict[str, int] = field(default_factory=dict)


#: ``on_fix(fix)``, called on the loop thread.
FixCallback = Callable[[Fix], None]


class GpsError(OSError):
    """The GPS port could not be opened or read."""


class GpsSource(ABC):
    """A receiver on a port: :meth:`start` begins posting fixes to the loop."""

    stats: GpsStats

    @abstractmethod
    def start(self, on_fix: FixCallback) -> None:
        """Start reading; ``on_fix`` runs on the clock's loop for every epoch."""

    @abstractmethod
    def close(self) -> None:
        """Stop reading and close the port (idempotent; from any thread but the loop's)."""
