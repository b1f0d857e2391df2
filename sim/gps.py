"""The simulated GPS receiver: a seeded route and the NMEA bytes a u-blox would send about it.

Two pure parts, no I/O (the pty that carries the bytes is :mod:`sim.gps_pty`):

- :class:`Route`: where the officer is at any second. A walk (1.2-1.6 m/s,
  gentle heading changes) for ``walk_seconds``, then a drive on a street grid
  (8-15 m/s, straight blocks, turns of 90 degrees at the corners). Legs of
  constant velocity are drawn in order from ``default_rng(seed)`` and kept,
  so :meth:`Route.at` is exact, cheap (a bisection and a few multiplications)
  and gives the same answer whatever order it is asked in. Metres become
  degrees on the local tangent plane of each leg's start (north / R, east /
  (R cos lat)): legs are at most a few hundred metres, where that projection
  is good to well under a centimetre.
- :class:`Receiver`: the receiver's output per navigation epoch, a pure
  function of (seed, epoch): RMC, GGA, GSA and GSV built with pynmeagps
  (checksums are the library's, never ours), and the faults a scenario asks
  for (cold start, fix loss, stalls, corrupted sentences, junk lines, a
  flooding navigation rate). Epochs sit on whole seconds of GPS UTC (or its
  1/rate fractions), which is not whole seconds of device time when the
  device's clock is off by a fraction: that is what a receiver does.

A cold receiver says nothing about time either (``$GPRMC,,V,...``): a
u-blox without a backup battery has no time until it has decoded it from
the satellites, which in practice comes with (or just before) the first
fix, so the simulator models "no time before the first fix". A receiver
that *loses* its fix keeps its time (its clock runs on), so fix-loss epochs
carry UTC and date with status V and quality 0, and no position.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from pynmeagps import GET, NMEAMessage

__all__ = [
    "DEFAULT_START",
    "EARTH_RADIUS_M",
    "Epoch",
    "Position",
    "Receiver",
    "Route",
    "Window",
    "distance_m",
    "nmea_sentences",
]

#: Mean Earth radius (IUGG), metres: the projection and distance_m share it.
EARTH_RADIUS_M = 6_371_008.8
#: Westminster Bridge: somewhere plausible for a patrol.
DEFAULT_START = (51.5007, -0.1246)
KNOTS_PER_MS = 3600.0 / 1852.0

#: Walking: speed range (m/s), leg length range (s), heading change per leg (deg, sd and cap).
WALK_SPEED = (1.2, 1.6)
WALK_LEG = (3.0, 8.0)
WALK_TURN_SD, WALK_TURN_MAX = 10.0, 25.0
#: Driving: speed range (m/s), block length range (s), chance of going straight on at a corner.
DRIVE_SPEED = (8.0, 15.0)
DRIVE_LEG = (15.0, 45.0)
STRAIGHT_ON = 0.3
#: The drive turns away from a pole beyond this latitude, so the projection stays honest.
MAX_LAT = 80.0
#: Navigation epochs are stamped in hundredths of a second (NMEA hhmmss.ss).
_CS_PER_S = 100
_US_PER_CS = 10_000
_US_PER_S = 1_000_000
#: Streams of the scenario seed: the route, and each epoch's noise.
_ROUTE_STREAM = 1
_NOISE_STREAM = 2
_SAT_STREAM = 3
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
#: What a corrupted byte becomes: printable, never a delimiter ($ , * CR LF).
_CORRUPT_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-"
#: Junk line bytes: anything but '$' (a sentence start) and CR/LF (a line end).
_JUNK_BYTES = np.frombuffer(bytes(b for b in range(256) if b not in b"$\r\n"), np.uint8)


class Position(NamedTuple):
    """Where the route is: degrees (+N, +E), speed over ground (m/s), course (deg true)."""

    lat: float
    lon: float
    speed: float
    course: float


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points, in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _wrap_lon(lon: float) -> float:
    return lon if -180.0 <= lon < 180.0 else (lon + 180.0) % 360.0 - 180.0


def _move(
    lat: float, lon: float, speed: float, course: float, seconds: float
) -> tuple[float, float]:
    """(lat, lon) after ``seconds`` at constant velocity, on the tangent plane at (lat, lon)."""
    d = speed * seconds
    c = math.radians(course)
    north, east = d * math.cos(c), d * math.sin(c)
    lat2 = lat + math.degrees(north / EARTH_RADIUS_M)
    lon2 = lon + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat2, _wrap_lon(lon2)


@dataclass(frozen=True, slots=True)
class _Leg:
    t: float  # route seconds at the leg's start
    lat: float
    lon: float
    speed: float
    course: float


class Route:
    """A seeded walk-then-drive route; ``at(seconds or utc)`` is where it is then.

    ``t0`` is the GPS UTC of route second 0 (the runner uses the receiver's
    UTC at boot), so ``at(utc)`` and ``at((utc - t0).total_seconds())`` agree.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: tuple[float, float] = DEFAULT_START,
        walk_seconds: float = 60.0,
        t0: datetime | None = None,
    ) -> None:
        lat, lon = start
        if not -MAX_LAT <= lat <= MAX_LAT or not -180.0 <= lon <= 180.0:
            raise ValueError(f"start {start!r} is not within +-{MAX_LAT:g} lat, +-180 lon")
        if walk_seconds < 0:
            raise ValueError(f"walk_seconds must be >= 0, got {walk_seconds!r}")
        self.seed = seed
        self.start = (float(lat), float(lon))
        self.walk_seconds = float(walk_seconds)
        self.t0 = t0 if t0 is not None else datetime(2026, 1, 1, 8, tzinfo=UTC)
        self._rng = np.random.default_rng((seed, _ROUTE_STREAM))
        course = float(self._rng.uniform(0.0, 360.0))
        self._legs: list[_Leg] = []
        self._starts: list[float] = []
        self._next = _Leg(0.0, self.start[0], self.start[1], 0.0, course)  # speed set on use

    def at(self, when: datetime | float) -> Position:
        """The route at ``when``: route seconds since ``t0``, or a UTC datetime."""
        t = (when - self.t0).total_seconds() if isinstance(when, datetime) else float(when)
        if not t >= 0.0:  # also NaN
            raise ValueError(f"the route starts at 0 s ({self.t0.isoformat()}), asked for {t!r}")
        while not self._legs or self._next.t <= t:
            self._grow()
        leg = self._legs[bisect.bisect_right(self._starts, t) - 1]
        lat, lon = _move(leg.lat, leg.lon, leg.speed, leg.course, t - leg.t)
        return Position(lat, lon, leg.speed, leg.course)

    def legs(self, until: float) -> list[tuple[float, float, float, float, float]]:
        """(start s, lat, lon, speed, course) of every leg starting before ``until``: for plots."""
        self.at(until)
        return [(g.t, g.lat, g.lon, g.speed, g.course) for g in self._legs if g.t < until]

    def _grow(self) -> None:
        """Draw the next leg: its speed and length here, its end as the one after's start."""
        rng, nxt = self._rng, self._next
        if nxt.t < self.walk_seconds:
            speed = float(rng.uniform(*WALK_SPEED))
            length = min(float(rng.uniform(*WALK_LEG)), self.walk_seconds - nxt.t)
            turn = float(np.clip(rng.normal(0.0, WALK_TURN_SD), -WALK_TURN_MAX, WALK_TURN_MAX))
        else:
            speed = float(rng.uniform(*DRIVE_SPEED))
            length = float(rng.uniform(*DRIVE_LEG))
            turn = 0.0 if rng.random() < STRAIGHT_ON else float(rng.choice((-90.0, 90.0)))
        leg = _Leg(nxt.t, nxt.lat, nxt.lon, speed, nxt.course)
        self._legs.append(leg)
        self._starts.append(leg.t)
        lat, lon = _move(leg.lat, leg.lon, speed, leg.course, length)
        course = (leg.course + turn) % 360.0
        if abs(lat) > MAX_LAT and math.cos(math.radians(course)) * lat > 0:
            course = (180.0 - course) % 360.0  # heading poleward: mirror it towards the equator
        self._next = _Leg(leg.t + length, lat, lon, 0.0, course)


@dataclass(frozen=True, slots=True)
class Window:
    """A device-time interval ``[at, at + duration)``."""

    at: float
    duration: float

    def __contains__(self, t: object) -> bool:
        return isinstance(t, float | int) and self.at <= t < self.at + self.duration


@dataclass(frozen=True, slots=True)
class Epoch:
    """What the receiver knows at one navigation epoch."""

    index: int
    #: Device time of the epoch (when GPS UTC reaches ``utc`` on the device's timeline).
    time: float
    utc: datetime
    #: The receiver has time (False while cold: no time before the first fix).
    has_time: bool
    #: The receiver has a fix (status A, quality 1); then ``position`` is set.
    fix: bool
    position: Position | None
    satellites: int
    hdop: float


def nmea_sentences(epoch: Epoch, talker: str = "GP") -> list[bytes]:
    """RMC, GGA, GSA and GSV for ``epoch``, serialized by pynmeagps (CR LF terminated).

    Every field is given: pynmeagps fills a missing time or date with the
    host's clock, which would make a run depend on when it ran.
    """
    time = epoch.utc.time() if epoch.has_time else ""
    date = epoch.utc.date() if epoch.has_time else ""
    p = epoch.position if epoch.fix else None
    lat = p.lat if p is not None else ""
    lon = p.lon if p is not None else ""
    rmc = NMEAMessage(
        talker,
        "RMC",
        GET,
        time=time,
        status="A" if p is not None else "V",
        lat=lat,
        lon=lon,
        spd=round(p.speed * KNOTS_PER_MS, 3) if p is not None else "",
        cog=round(p.course, 2) if p is not None else "",
        date=date,
        mv="",
        mvEW="",
        posMode="A" if p is not None else "N",
        navStatus="V",
    )
    gga = NMEAMessage(
        talker,
        "GGA",
        GET,
        time=time,
        lat=lat,
        lon=lon,
        quality=1 if p is not None else 0,
        numSV=epoch.satellites if p is not None else 0,
        HDOP=epoch.hdop if p is not None else 99.99,
        alt=11.0 if p is not None else "",
        altUnit="M" if p is not None else "",
        sep=45.7 if p is not None else "",
        sepUnit="M" if p is not None else "",
        diffAge="",
        diffStation="",
    )
    used = list(range(2, 2 + 2 * epoch.satellites, 2))[:12] if p is not None else []
    svids = {f"svid_{i:02d}": (used[i - 1] if i <= len(used) else "") for i in range(1, 13)}
    gsa = NMEAMessage(
        talker,
        "GSA",
        GET,
        opMode="A",
        navMode=3 if p is not None else 1,
        **svids,
        PDOP=round(epoch.hdop * 1.6, 2) if p is not None else 99.99,
        HDOP=epoch.hdop if p is not None else 99.99,
        VDOP=round(epoch.hdop * 1.3, 2) if p is not None else 99.99,
        systemId="1",
    )
    out = [rmc.serialize(), gga.serialize(), gsa.serialize()]
    # Satellites in view (more than used), four per GSV sentence.
    view = [(2 * i + 2, 20 + (37 * i) % 60, (83 * i) % 360, 25 + (11 * i) % 20) for i in range(12)]
    view = view[: epoch.satellites + 2] if p is not None else view[:4]
    pages = [view[i : i + 4] for i in range(0, len(view), 4)]
    for n, page in enumerate(pages, 1):
        sats: dict[str, object] = {}
        for i, (svid, elv, az, cno) in enumerate(page, 1):
            sats |= {f"svid_{i:02d}": svid, f"elv_{i:02d}": elv, f"az_{i:02d}": az}
            sats[f"cno_{i:02d}"] = cno if p is not None else ""
        gsv = NMEAMessage(
            talker,
            "GSV",
            GET,
            numMsg=len(pages),
            msgNum=n,
            numSV=len(view),
            **sats,
            signalID="1",
        )
        out.append(gsv.serialize())
    return out


def _utc_us(when: datetime) -> int:
    """Microseconds since 1970 (exact: datetimes are whole microseconds)."""
    return (when - _UNIX) // timedelta(microseconds=1)


class Receiver:
    """A u-blox-like receiver on ``route``: the bytes of each epoch, faults included.

    The route's ``t0`` is GPS UTC at device time 0 (the scenario's start
    plus ``time_offset``), so route seconds are device seconds. Windows are
    in device seconds; an epoch belongs to one when its device
    :attr:`Epoch.time` does. ``rate_hz`` is the navigation
    rate: 1 normally, 50 for a receiver flooding RMC+GGA pairs. Rates and
    probabilities apply per sentence: ``corrupt_rate`` replaces one payload
    byte (the checksum no longer matches), and
    ``garbage_rate`` puts a line of junk bytes before it.
    """

    def __init__(
        self,
        route: Route,
        *,
        seed: int = 0,
        rate_hz: int = 1,
        latency: float = 0.1,
        cold_start: float = 0.0,
        fix_loss: Iterable[Window] = (),
        stall: Iterable[Window] = (),
        corrupt_rate: float = 0.0,
        garbage_rate: float = 0.0,
        talker: str = "GP",
    ) -> None:
        if not 1 <= rate_hz <= _CS_PER_S:
            raise ValueError(f"rate_hz must be a whole number in 1..{_CS_PER_S}, got {rate_hz!r}")
        self.route = route
        self.boot_utc = route.t0
        self.seed = seed
        self.rate_hz = int(rate_hz)
        self.latency = float(latency)
        self.cold_start = float(cold_start)
        self.fix_loss: Sequence[Window] = tuple(fix_loss)
        self.stall: Sequence[Window] = tuple(stall)
        self.corrupt_rate = float(corrupt_rate)
        self.garbage_rate = float(garbage_rate)
        self.talker = talker
        self._boot_us = _utc_us(route.t0)
        # The first epoch of the receiver's grid at or after boot.
        m = (self._boot_us // _US_PER_S) * self.rate_hz
        while self._grid_cs(m) * _US_PER_CS < self._boot_us:
            m += 1
        self._first = m
        # Satellites drift slowly; the phase makes two seeds look different.
        self._sat_phase = float(
            np.random.default_rng((seed, _NOISE_STREAM)).uniform(0, 2 * math.pi)
        )

    def _grid_cs(self, m: int) -> int:
        """GPS UTC of grid epoch ``m`` in hundredths since 1970: ``rate_hz`` epochs per second,
        the first of each on the whole second (as a receiver aligns them)."""
        second, j = divmod(m, self.rate_hz)
        return second * _CS_PER_S + (j * _CS_PER_S) // self.rate_hz

    def epoch(self, index: int) -> Epoch:
        """Epoch ``index`` (0 is the first at or after boot): a function of the settings alone."""
        cs = self._grid_cs(self._first + index)
        utc = _UNIX + timedelta(microseconds=cs * _US_PER_CS)
        t = (cs * _US_PER_CS - self._boot_us) / 1e6
        cold = t < self.cold_start
        fix = not cold and not any(t in w for w in self.fix_loss)
        sats = 9 + round(2.5 * math.sin(2 * math.pi * t / 240.0 + self._sat_phase))
        return Epoch(
            index=index,
            time=t,
            utc=utc,
            has_time=not cold,
            fix=fix,
            position=self.route.at(utc) if fix else None,
            satellites=sats,
            hdop=round(0.5 + 4.0 / sats, 2),
        )

    def output(self, epoch: Epoch) -> bytes:
        """The bytes sent for ``epoch``: empty while stalled."""
        if any(epoch.time in w for w in self.stall):
            return b""
        rng = np.random.default_rng((self.seed, _NOISE_STREAM, epoch.index))
        out = bytearray()
        for sentence in nmea_sentences(epoch, self.talker):
            if rng.random() < self.garbage_rate:
                junk = rng.choice(_JUNK_BYTES, int(rng.integers(1, 80)))
                out += junk.tobytes() + b"\r\n"
            if rng.random() < self.corrupt_rate:
                sentence = _corrupt(sentence, rng)
            out += sentence
        return bytes(out)

    def schedule(self, start: int = 0) -> Iterator[tuple[float, Epoch]]:
        """(device time the epoch's bytes are written, epoch), in time order, forever."""
        index = start
        while True:
            epoch = self.epoch(index)
            yield epoch.time + self.latency, epoch
            index += 1


def _corrupt(sentence: bytes, rng: np.random.Generator) -> bytes:
    """``sentence`` with one payload byte (after the address, before ``*``) replaced.

    The address is left alone so the sentence is still recognisably an RMC or
    a GGA whose checksum fails, which is what a reader must count.
    """
    star = sentence.rindex(b"*")
    at = int(rng.integers(sentence.index(b",") + 1, star))
    choices = [c for c in _CORRUPT_ALPHABET if c != sentence[at]]
    out = bytearray(sentence)
    out[at] = choices[int(rng.integers(0, len(choices)))]
    return bytes(out)
