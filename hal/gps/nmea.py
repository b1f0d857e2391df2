"""An NMEA 0183 receiver on a serial port (pyserial): a reader thread posts fixes to the loop.

The same backend serves a Pi (``/dev/serial0``, ``/dev/ttyACM0``) and the
simulator, whose receiver speaks on a pty: the firmware reads both through
this one path, so a simulated run exercises the real reader.

Why it is built this way:

- **Off the loop, bounded.** One daemon thread owns the port. Reads wait at
  most :data:`READ_TIMEOUT` (so :meth:`NmeaGps.close` is prompt, with
  pyserial's ``cancel_read`` making it immediate) and take what is waiting,
  never blocking for a full buffer. :class:`~hal.gps.decode.NmeaDecoder` cuts
  and parses the bytes in bounded memory. At most :data:`MAX_IN_FLIGHT`
  fixes wait on the loop at once; beyond that a fix is counted in
  ``stats.dropped`` and not posted, so a receiver at 50 Hz (or a busy loop)
  never piles work onto the capture loop.
- **Stamped at arrival.** Each read is stamped with ``clock.now()`` as it
  returns; a fix carries the stamp of the read that completed its epoch's
  last sentence, like a pin edge. On the virtual clock the simulated
  receiver holds the loop (and so time) in :meth:`NmeaGps.wait_handled`
  until the reader has handled what it wrote, which makes the stamps exact
  and a simulated run reproducible.
- **Never fatal.** A port that fails (a USB receiver unplugged, a pty whose
  other end closed) is logged once and counted in ``stats.extra["errors"]``;
  the thread ends and the firmware carries on without positions, which the
  position log records as lost. A fault in decoding one chunk is logged and
  the chunk skipped: bad input never stops the reader.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

from hal.errors import BackendError
from hal.gps import Fix, FixCallback, GpsError, GpsSource, GpsStats
from hal.gps.decode import NmeaDecoder
from hal.serial import Port, open_serial

if TYPE_CHECKING:
    from hal.clock import Clock

__all__ = ["CHUNK", "JOIN_TIMEOUT", "MAX_IN_FLIGHT", "READ_TIMEOUT", "NmeaGps"]

log = logging.getLogger(__name__)

#: Longest a read waits for a byte (s): how soon the thread notices close().
READ_TIMEOUT = 0.1
#: Most bytes taken per read.
CHUNK = 4096
#: Most fixes posted to the loop and not yet delivered.
MAX_IN_FLIGHT = 8
#: How long close() waits for the reader thread (a wedged driver must not hang shutdown).
JOIN_TIMEOUT = 2.0


class NmeaGps(GpsSource):
    """Fixes from NMEA sentences on ``port`` (anything with pyserial's read/in_waiting/close).

    ``name`` is for log lines (the port's path or URL).
    """

    @classmethod
    def open(
        cls,
        clock: Clock,
        port: str,
        baudrate: int,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> NmeaGps:
        """Open ``port`` (a device path or pyserial URL); :class:`GpsError` if it cannot be."""
        try:
            serial_port = open_serial(port, baudrate, timeout=READ_TIMEOUT)
        except BackendError as exc:
            raise GpsError(str(exc)) from exc
        return cls(clock, serial_port, name=port, max_in_flight=max_in_flight)

    def __init__(
        self,
        clock: Clock,
        port: Port,
        *,
        name: str = "gps",
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.clock = clock
        self.port = port
        self.name = name
        self.max_in_flight = max_in_flight
        self.stats = GpsStats()
        self.stats.extra.update(bytes=0, errors=0)
        self.decoder = NmeaDecoder(self.stats)
        #: Set when the reader thread has ended (closed, or the port failed).
        self.finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._generation = 0  # fixes posted before close() are not delivered
        self._lock = threading.Lock()
        self._in_flight = 0
        self._handled = threading.Condition()
        self._bytes_handled = 0

    # -- GpsSource ---------------------------------------------------------
    def start(self, on_fix: FixCallback) -> None:
        if self._closed:
            raise RuntimeError(f"GPS {self.name}: closed")
        if self._thread is not None:
            raise RuntimeError(f"GPS {self.name}: already started")
        self._thread = threading.Thread(
            target=self._read,
            args=(on_fix, self._generation),
            name=f"gps {self.name}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._generation += 1
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except Exception as exc:  # a vanished device; the read times out anyway
                log.debug("GPS %s: cancel_read failed: %s", self.name, exc)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("GPS %s: reader did not stop within %.1f s", self.name, JOIN_TIMEOUT)
        try:
            self.port.close()
        except Exception as exc:
            log.warning("GPS %s: close failed: %s", self.name, exc)
        if thread is None:
            self._end()

    # -- the simulator's handshake -----------------------------------------
    @property
    def bytes_handled(self) -> int:
        """Bytes read from the port and fully handled (decoded, fixes posted)."""
        with self._handled:
            return self._bytes_handled

    def wait_handled(self, n_bytes: int, timeout: float) -> bool:
        """True once the first ``n_bytes`` bytes ever read have been handled.

        False after ``timeout`` seconds, or as soon as the reader has ended
        (closed, or its port failed): a writer must never hang on a reader
        that is gone.
        """
        with self._handled:
            self._handled.wait_for(
                lambda: self._bytes_handled >= n_bytes or self.finished.is_set(), timeout
            )
            return self._bytes_handled >= n_bytes

    # -- reader thread -----------------------------------------------------
    def _read(self, on_fix: FixCallback, generation: int) -> None:
        try:
            while not self._stop.is_set():
                try:
                    waiting = self.port.in_waiting
                    data = self.port.read(min(waiting, CHUNK) if waiting else 1)
                except Exception as exc:  # SerialException, OSError, a port closed under us
                    if not self._stop.is_set():
                        self.stats.extra["errors"] += 1
                        log.warning(
                            "GPS %s: read failed (%s); no more fixes from this receiver",
                            self.name,
                            exc,
                        )
                    return
                if data:
                    self._handle(data, on_fix, generation)
        finally:
            self._end()

    def _handle(self, data: bytes, on_fix: FixCallback, generation: int) -> None:
        now = self.clock.now()
        try:
            fixes = self.decoder.feed(data, now)
        except Exception:  # a decoder bug must not end the reader; these bytes are lost
            log.exception("GPS %s: %d bytes could not be decoded", self.name, len(data))
            self.stats.extra["decode_errors"] = self.stats.extra.get("decode_errors", 0) + 1
            fixes = []
        for fix in fixes:
            self._post(fix, on_fix, generation)
        self.stats.extra["bytes"] += len(data)
        with self._handled:
            self._bytes_handled += len(data)
            self._handled.notify_all()

    def _end(self) -> None:
        with self._handled:
            self.finished.set()
            self._handled.notify_all()

    # -- to the loop -------------------------------------------------------
    def _post(self, fix: Fix, on_fix: FixCallback, generation: int) -> None:
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                self.stats.dropped += 1
                if self.stats.dropped == 1:
                    log.warning(
                        "GPS %s: the loop is behind (%d fixes waiting); dropping fixes",
                        self.name,
                        self._in_flight,
                    )
                return
            self._in_flight += 1
            self.stats.fixes += 1
        self.clock.call_soon_threadsafe(functools.partial(self._deliver, fix, on_fix, generation))

    def _deliver(self, fix: Fix, on_fix: FixCallback, generation: int) -> None:
        with self._lock:
            self._in_flight -= 1
        if generation == self._generation:
            on_fix(fix)
