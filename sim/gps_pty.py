"""The simulated receiver on a pty: the firmware reads it through the same serial path as on a Pi.

The firmware's reader (hal.gps.nmea) opens the pty's *slave* path, e.g.
``/dev/pts/7``, with pyserial exactly as it opens ``/dev/serial0``; this
module writes the receiver's bytes to the *master*. One callback on the
virtual clock per navigation epoch (at the epoch plus the receiver's
latency) writes that epoch's bytes and then holds the loop until the reader
has read and handled every byte written so far (``wait_handled``, the G1/G2
contract). So the reader stamps exactly that device time, the fix it posts
runs on the loop before the next event, and a run is byte-identical however
fast the host's threads are.

Decisions, and why:

- The slave is raw (``tty.setraw``) before anything is written and this end
  keeps a descriptor on it for the pair's lifetime: no echo, no CR/LF
  translation, and no hang-up if the reader closes and reopens the port.
- The master is non-blocking. Bytes the pty cannot take are dropped and
  counted (a receiver does not wait for a reader either), so a dead reader
  can never block the loop.
- A reader that does not answer within ``timeout`` real seconds (it closed,
  or its port failed) is logged once and then no longer waited for: the run
  goes on at full speed, the firmware without fixes, as on a Pi whose
  receiver was unplugged.
- The firmware's config names the port :data:`SIM_PORT`, never the
  ``/dev/pts/N`` the OS happened to hand out: the config's hash is in the
  audit log and every manifest, so a path that differs from run to run
  would make two runs of one scenario differ. The ``pty`` GPS backend
  (:class:`PtyGps`, ``[hal] gps = "pty"``) resolves that name to the pty
  being served (:func:`serving`, a context variable: per thread, so
  concurrent runs never see each other's) and opens it with the firmware's
  own reader, :class:`hal.gps.nmea.NmeaGps`.
"""

from __future__ import annotations

import errno
import logging
import os
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hal.clock import Clock, Timer
from hal.gps import GpsSource
from hal.gps.nmea import NmeaGps
from sim.gps import Epoch, Receiver, Route, Window

if TYPE_CHECKING:
    from sim.scenario import Scenario

__all__ = [
    "SIM_PORT",
    "GpsPty",
    "HandledReader",
    "PtyGps",
    "SimulatedGps",
    "receiver_for",
    "serving",
]

log = logging.getLogger(__name__)

#: Real seconds to wait for the reader to handle an epoch before giving up on it.
HANDLED_TIMEOUT = 5.0
#: The port a simulated run's ``[config.gps]`` names (resolved by :class:`PtyGps`).
SIM_PORT = "sim:gps"
#: Port name -> pty slave path, for the device being built in this context.
_SERVED: ContextVar[dict[str, str] | None] = ContextVar("sim_gps_served", default=None)


@runtime_checkable
class HandledReader(Protocol):
    """What the simulated receiver needs of the firmware's reader (hal.gps.nmea.NmeaGps)."""

    def wait_handled(self, n_bytes: int, timeout: float) -> bool: ...


class GpsPty:
    """A pty pair whose master this end writes; ``path`` is the slave for the firmware."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            self.path = os.ttyname(slave)
            os.set_blocking(master, False)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self.closed = False

    def write(self, data: bytes) -> int:
        """Write what the pty takes now; returns how many bytes that was."""
        if self.closed:
            return 0
        view = memoryview(data)
        written = 0
        while written < len(view):
            try:
                written += os.write(self._master, view[written:])
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: nobody holds the slave (cannot happen here)
                    raise
                break
        return written

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise


class SimulatedGps:
    """Plays a :class:`~sim.gps.Receiver` onto a :class:`GpsPty`, one clock event per epoch.

    Open it before the device and build the device inside :func:`serving`
    (the firmware's reader opens the pty then), :meth:`start` it once the
    device exists (its clock and its reader), and
    :meth:`stop` it before the device shuts down (so no epoch waits on a
    reader that is closing); :meth:`close` releases the pty.
    """

    def __init__(self, receiver: Receiver, *, timeout: float = HANDLED_TIMEOUT) -> None:
        self.receiver = receiver
        self.timeout = timeout
        self.pty = GpsPty()
        #: Counters: epochs played, bytes written and dropped, reader timeouts.
        self.epochs = 0
        self.written = 0
        self.dropped = 0
        self.timeouts = 0
        self._clock: Clock | None = None
        self._reader: HandledReader | None = None
        self._timer: Timer | None = None
        self._schedule: Iterator[tuple[float, Epoch]] | None = None

    @property
    def path(self) -> str:
        return self.pty.path

    def start(self, clock: Clock, reader: object | None) -> None:
        """Play epochs from ``clock.now()`` on; wait for ``reader`` if it can be waited for."""
        if self._timer is not None:
            raise RuntimeError("simulated GPS already started")
        self._clock = clock
        self._reader = reader if isinstance(reader, HandledReader) else None
        if self._reader is None:
            log.warning(
                "simulated GPS: no reader to wait for (%r); writing without holding", reader
            )
        self._schedule = self.receiver.schedule()
        now = clock.now()
        for when, epoch in self._schedule:
            if when >= now:
                self._timer = clock.call_at(when, lambda e=epoch: self._tick(e))
                return

    def stop(self) -> None:
        """No more epochs (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
        self._schedule = None

    def close(self) -> None:
        self.stop()
        self.pty.close()

    def _tick(self, epoch: Epoch) -> None:
        if self._schedule is None or self._clock is None:
            return
        # Schedule first: a stop() during the wait below must cancel this one.
        when, nxt = next(self._schedule)
        self._timer = self._clock.call_at(when, lambda: self._tick(nxt))
        self.epochs += 1
        data = self.receiver.output(epoch)
        if not data:
            return  # stalled: silence
        n = self.pty.write(data)
        self.written += n
        if n < len(data):
            if not self.dropped:
                log.warning("simulated GPS: the pty is full, dropping bytes (is the reader gone?)")
            self.dropped += len(data) - n
        reader = self._reader
        if reader is not None and not reader.wait_handled(self.written, self.timeout):
            self.timeouts += 1
            self._reader = None
            log.warning(
                "simulated GPS: the reader did not handle %d bytes within %g s at t=%.3f; "
                "no longer waiting for it",
                self.written,
                self.timeout,
                self._clock.now(),
            )


def receiver_for(scenario: Scenario) -> Receiver:
    """The receiver ``scenario``'s ``[gps]`` table describes (its route starts at boot)."""
    gps = scenario.gps
    route = Route(
        scenario.gps_seed,
        start=(gps.start.lat, gps.start.lon),
        walk_seconds=gps.walk_seconds,
        t0=scenario.start + timedelta(seconds=gps.time_offset),
    )
    return Receiver(
        route,
        seed=scenario.gps_seed,
        rate_hz=gps.flood_hz or 1,
        latency=gps.latency,
        cold_start=gps.cold_start,
        fix_loss=[Window(w.at, w.duration) for w in gps.fix_loss],
        stall=[Window(w.at, w.duration) for w in gps.stall],
        corrupt_rate=gps.corrupt_rate,
        garbage_rate=gps.garbage_rate,
    )


@contextmanager
def serving(gps: SimulatedGps, port: str = SIM_PORT) -> Iterator[None]:
    """While open, :class:`PtyGps` resolves ``port`` to ``gps``'s pty (in this context only)."""
    token = _SERVED.set({**(_SERVED.get() or {}), port: gps.path})
    try:
        yield
    finally:
        _SERVED.reset(token)


class PtyGps:
    """``[hal] gps = "pty"``: the firmware's NMEA reader on the pty a run is serving.

    Not a reader of its own: ``open`` resolves the port name (see
    :func:`serving`; any other name is used as given, e.g. a pty path) and
    returns :class:`hal.gps.nmea.NmeaGps` on it, so simulation exercises the
    Pi's reader, pyserial and a real tty.
    """

    @classmethod
    def open(cls, clock: Clock, port: str, baudrate: int) -> GpsSource:
        path = (_SERVED.get() or {}).get(port, port)
        log.info("simulated GPS: %s is %s", port, path)
        return NmeaGps.open(clock, path, baudrate)
