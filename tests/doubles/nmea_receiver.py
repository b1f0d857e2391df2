"""A GPS receiver's side of the line: NMEA sentences built with pynmeagps, checksums right.

``NMEAMessage(...).serialize()`` computes each checksum, so a test that wants
a bad one breaks it on purpose. Times and dates are always given: left out,
pynmeagps would fill in the host's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynmeagps import GET, NMEAMessage

#: The first epoch's UTC.
T0 = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)


def rmc(
    utc: datetime | None,
    lat: float | None = 51.5007,
    lon: float | None = -0.1246,
    *,
    knots: float = 2.9,
    course: float = 87.5,
    status: str = "A",
    talker: str = "GP",
) -> bytes:
    """One RMC; ``lat=None`` leaves the position empty, ``utc=None`` the time and date too."""
    fields: dict[str, object] = {"status": status, "posMode": "A" if status == "A" else "N"}
    fields |= {"time": utc.time() if utc else "", "date": utc.date() if utc else ""}
    if lat is not None and lon is not None:
        fields |= {"lat": lat, "NS": "N" if lat >= 0 else "S", "lon": lon}
        fields |= {"EW": "E" if lon >= 0 else "W", "spd": knots, "cog": course}
    else:
        fields |= {"lat": "", "lon": "", "spd": "", "cog": ""}
    return NMEAMessage(talker, "RMC", GET, **fields).serialize()


def gga(
    utc: datetime | None,
    lat: float | None = 51.5007,
    lon: float | None = -0.1246,
    *,
    quality: int = 1,
    satellites: int = 9,
    hdop: float = 0.8,
    talker: str = "GP",
) -> bytes:
    fields: dict[str, object] = {"time": utc.time() if utc else ""}
    fields |= {"quality": quality, "numSV": satellites, "HDOP": hdop}
    if lat is not None and lon is not None:
        fields |= {"lat": lat, "NS": "N" if lat >= 0 else "S", "lon": lon}
        fields |= {"EW": "E" if lon >= 0 else "W"}
    else:
        fields |= {"lat": "", "lon": ""}
    return NMEAMessage(talker, "GGA", GET, **fields).serialize()


def epoch(second: int, *, talker: str = "GP") -> bytes:
    """A valid RMC+GGA pair ``second`` seconds after T0, moving north 1e-5 degree a second."""
    utc = T0 + timedelta(seconds=second)
    lat = 51.5 + 1e-5 * second
    return rmc(utc, lat, talker=talker) + gga(utc, lat, talker=talker)
