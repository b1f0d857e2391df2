"""NMEA bytes in, :class:`~hal.gps.Fix` out: lines cut in bounded memory, epochs assembled.

Pure and single-threaded (the reader thread of :mod:`hal.gps.nmea` owns
one), so every rule here is testable without a port or a thread.

Why it is built this way:

- **pynmeagps parses, we only cut lines.** ``NMEAReader.parse(line,
  validate=VALCKSUM)`` checks the checksum (raising ``NMEAParseError`` when it
  is wrong), returns None for a line it cannot take apart or a sentence type
  it does not know, and decodes the fields (``lat``/``lon`` signed degrees,
  ``time``/``date`` as ``datetime`` objects, an empty or unreadable field as
  ``""``). ``NMEAReader`` itself reads its stream a byte at a time and with
  ``readline``, which neither bounds a line's length nor tells us how many
  bytes it consumed; the byte count is what
  :meth:`~hal.gps.nmea.NmeaGps.wait_handled` promises, so lines are cut here.
- **Bounded memory.** A line longer than :data:`MAX_LINE` (NMEA 0183 caps a
  sentence at 82 characters; 256 leaves room for longer proprietary ones)
  cannot be a sentence: what precedes its last ``$`` is dropped and
  counted as garbage, so a receiver flooding bytes without a newline costs at
  most :data:`MAX_LINE` bytes, and a sentence that follows junk on the same
  line is still read.
- **Epochs.** A fix is one receiver epoch: RMC (status, date, speed, course)
  and GGA (quality, satellites, HDOP) of one UTC time of day, from any GNSS
  talker (GP, GN, GL, GA, BD, ...). An epoch is complete when both have
  arrived; when only one does, it is emitted when a sentence of another
  epoch arrives (a different time, or a second RMC or GGA of the same one,
  as a receiver that repeats its time would send). Never on a timeout: a
  simulated run must not depend on how fast the host is.
- **The receiver's verdict.** A fix is valid only if every sentence of its
  epoch says so (RMC status ``A``, GGA quality > 0) and a position could be
  read (a checksum-correct sentence can still carry an unreadable field); an
  invalid fix has no position, speed or course. Nothing is carried over from
  an earlier epoch except the date, which GGA lacks: a GGA-only epoch takes
  the last RMC's date, a day later when its time of day is more than twelve
  hours before that RMC's (it crossed midnight UTC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day

from pynmeagps import NMEAMessage, NMEAReader
from pynmeagps.exceptions import (
    NMEAMessageError,
    NMEAParseError,
    NMEAStreamError,
    NMEATypeError,
)
from pynmeagps.nmeatypes_core import VALCKSUM

from hal.gps import Fix, GpsStats

__all__ = ["KNOTS", "MAX_LINE", "TALKERS", "NmeaDecoder"]

log = logging.getLogger(__name__)

#: Metres per second in one knot (RMC speed is in knots).
KNOTS = 1852 / 3600
#: Longest line kept while waiting for its newline, in bytes.
MAX_LINE = 256
#: GNSS talkers whose RMC/GGA make fixes: GPS, any GNSS, GLONASS, Galileo,
#: BeiDou (both spellings), QZSS, NavIC.
TALKERS = frozenset({"GP", "GN", "GL", "GA", "BD", "GB", "GQ", "GI"})
#: A GGA whose time of day is this far before the last RMC's is on the next day.
_HALF_DAY = timedelta(hours=12)


@dataclass(slots=True)
class _Epoch:
    """The RMC and GGA of one time of day, as they arrive."""

    key: time_of_day | None
    #: The last RMC's (date, time of day) when this epoch began: GGA has no date.
    date_hint: tuple[date, time_of_day] | None
    rmc: NMEAMessage | None = None
    gga: NMEAMessage | None = None
    last: float = 0.0  # device time its latest sentence arrived


def _float(value: object) -> float | None:
    """A decoded numeric field; pynmeagps gives ``""`` for an empty or unreadable one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: object) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


class NmeaDecoder:
    """Feed it bytes as they arrive; it returns the fixes those bytes completed.

    ``stats`` is updated in place (shared with the reader that owns this):
    ``sentences`` parsed (any type), ``bad_checksum``, ``garbage`` (lines
    holding bytes that were not NMEA, counted per line however the reads cut
    it, so the count does not depend on the host's pace) and, in ``extra``,
    ``garbage_bytes``, ``unknown`` (checksum right, a type pynmeagps does not
    know) and ``ignored`` (parsed, but not an RMC or GGA of a GNSS talker).
    """

    def __init__(self, stats: GpsStats | None = None, *, max_line: int = MAX_LINE) -> None:
        self.stats = stats if stats is not None else GpsStats()
        self.max_line = max_line
        self._buf = bytearray()
        self._pending: _Epoch | None = None
        self._last_date: tuple[date, time_of_day] | None = None
        self._line_has_junk = False  # garbage already counted for the line being read
        for key in ("garbage_bytes", "unknown", "ignored"):
            self.stats.extra.setdefault(key, 0)

    @property
    def buffered(self) -> int:
        """Bytes of a partial line held for its newline (at most ``max_line``)."""
        return len(self._buf)

    # -- bytes to lines ----------------------------------------------------
    def feed(self, data: bytes, now: float) -> list[Fix]:
        """Take ``data``, which arrived at device time ``now``; return the fixes it completed."""
        fixes: list[Fix] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._buf += data[start:]
                self._bound()
                return fixes
            self._buf += data[start:end]
            start = end + 1
            self._bound()
            line = bytes(self._buf)
            self._buf.clear()
            fixes += self._line(line, now)
            self._line_has_junk = False

    def _bound(self) -> None:
        """Keep the partial line within ``max_line``: junk before its last ``$`` goes."""
        if len(self._buf) <= self.max_line:
            return
        keep = self._buf.rfind(b"$")
        if keep < 0 or len(self._buf) - keep > self.max_line:
            keep = len(self._buf)
        self._junk(keep)
        del self._buf[:keep]

    def _junk(self, n_bytes: int) -> None:
        """Count ``n_bytes`` dropped; ``garbage`` counts lines with any, however they were read."""
        if n_bytes > 0:
            self.stats.extra["garbage_bytes"] += n_bytes
            if not self._line_has_junk:
                self._line_has_junk = True
                self.stats.garbage += 1

    # -- lines to sentences ------------------------------------------------
    def _line(self, line: bytes, now: float) -> list[Fix]:
        start = line.rfind(b"$")
        if start < 0:
            self._junk(len(line.strip()))
            return []
        self._junk(len(line[:start].strip()))
        sentence = line[start:].strip()
        if b"*" not in sentence or not sentence.isascii():
            self._junk(len(sentence))
            return []
        try:
            msg = NMEAReader.parse(sentence, validate=VALCKSUM)
        except NMEAParseError:
            self.stats.bad_checksum += 1
            return []
        except (NMEAMessageError, NMEATypeError, NMEAStreamError, ValueError) as exc:
            log.debug("GPS: unreadable sentence %r: %s", sentence, exc)
            self._junk(len(sentence))
            return []
        if msg is None:  # checksum right, type unknown to pynmeagps
            self.stats.extra["unknown"] += 1
            return []
        self.stats.sentences += 1
        self.stats.last_sentence = now
        if msg.msgID not in ("RMC", "GGA") or msg.talker not in TALKERS:
            self.stats.extra["ignored"] += 1
            return []
        return self._sentence(msg, now)

    # -- sentences to epochs -----------------------------------------------
    def _sentence(self, msg: NMEAMessage, now: float) -> list[Fix]:
        key = msg.time if isinstance(msg.time, time_of_day) else None
        kind = "rmc" if msg.msgID == "RMC" else "gga"
        fixes: list[Fix] = []
        epoch = self._pending
        if epoch is not None and (epoch.key != key or getattr(epoch, kind) is not None):
            fixes.append(self._fix(epoch))
            epoch = None
        if epoch is None:
            epoch = _Epoch(key, self._last_date)
        setattr(epoch, kind, msg)
        epoch.last = now
        if kind == "rmc" and key is not None and isinstance(msg.date, date):
            self._last_date = (msg.date, key)
        if epoch.rmc is not None and epoch.gga is not None:
            fixes.append(self._fix(epoch))
            epoch = None
        self._pending = epoch
        return fixes

    def _fix(self, epoch: _Epoch) -> Fix:
        rmc, gga = epoch.rmc, epoch.gga
        quality = _int(gga.quality) if gga is not None else None
        says_valid = (rmc is None or rmc.status == "A") and (gga is None or (quality or 0) > 0)
        lat, lon = self._position(rmc) if rmc is not None else (None, None)
        if (lat is None or lon is None) and gga is not None:
            lat, lon = self._position(gga)
        valid = says_valid and lat is not None and lon is not None
        satellites = _int(gga.numSV) if gga is not None else None
        hdop = _float(gga.HDOP) if gga is not None else None
        utc = self._utc(epoch)
        if not valid:
            return Fix(epoch.last, utc, False, quality=quality, satellites=satellites, hdop=hdop)
        knots = _float(rmc.spd) if rmc is not None else None
        return Fix(
            epoch.last,
            utc,
            True,
            lat,
            lon,
            speed=None if knots is None else knots * KNOTS,
            course=_float(rmc.cog) if rmc is not None else None,
            quality=quality,
            satellites=satellites,
            hdop=hdop,
        )

    @staticmethod
    def _position(msg: NMEAMessage) -> tuple[float | None, float | None]:
        lat, lon = _float(msg.lat), _float(msg.lon)
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None, None
        return lat, lon

    @staticmethod
    def _utc(epoch: _Epoch) -> datetime | None:
        """RMC's date and time; for a GGA-only epoch, the last RMC's date."""
        if epoch.key is None:
            return None
        rmc_date = epoch.rmc.date if epoch.rmc is not None else None
        if isinstance(rmc_date, date):
            day = rmc_date
        elif epoch.date_hint is not None:
            day, last_key = epoch.date_hint
            if _since_midnight(epoch.key) < _since_midnight(last_key) - _HALF_DAY:
                day += timedelta(days=1)
        else:
            return None
        return datetime.combine(day, epoch.key, tzinfo=UTC)


def _since_midnight(t: time_of_day) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)
