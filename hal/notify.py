"""systemd's service notification protocol (sd_notify), for ``Type=notify`` and the watchdog.

Written by hand because it is one datagram: ``KEY=value`` lines sent to the
AF_UNIX socket named in ``NOTIFY_SOCKET`` (a path, or an abstract name when it
starts with ``@``). The Python bindings (systemd-python) need libsystemd's
headers to build, and the pure-Python ``sdnotify`` package neither reads the
watchdog interval nor keeps a send error from reaching the caller.

Under systemd the unit (``deploy/bodycam.service``) says ``Type=notify`` and
``WatchdogSec=``: the service counts as started only once it sends
``READY=1``, and systemd kills and restarts it when ``WATCHDOG=1`` stops
arriving. Off systemd (``NOTIFY_SOCKET`` unset: a terminal, a test, the
simulator) every call is a no-op.

Nothing here ever raises into the firmware: a camera that stops recording
because its supervisor's socket went away would be the worse failure. A send
error is logged once and later ones are dropped quietly.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

from hal.clock import Clock, Timer

__all__ = ["KeepAlive", "Notifier", "keep_alive"]

log = logging.getLogger(__name__)


def _address(spec: str) -> str | None:
    """The ``sendto`` address for ``NOTIFY_SOCKET``, or None for a form we cannot use.

    systemd accepts an absolute path or ``@name`` (Linux abstract namespace,
    a leading NUL byte); newer versions also ``vsock:``, which a Pi never gets.
    """
    if spec.startswith("@") and len(spec) > 1:
        return "\0" + spec[1:]
    if spec.startswith("/"):
        return spec
    return None


class Notifier:
    """Tells systemd we are ready, alive, stopping, and what we are doing.

    ``environ`` and ``pid`` default to this process's; tests pass their own.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self._warned = False
        self._pid = os.getpid() if pid is None else pid
        self._spec = env.get("NOTIFY_SOCKET", "")
        self._address = _address(self._spec) if self._spec else None
        self._interval = self._watchdog(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        if self._spec and self._address is None:
            self._warn(f"NOTIFY_SOCKET={self._spec!r} is not a path or @name; not notifying")

    # -- what the firmware says ----------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """True when running under systemd with a socket we can send to."""
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """Start-up is complete: systemd starts the unit's dependants and the watchdog."""
        self._send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> None:
        """A line ``systemctl status`` shows, e.g. "recording BWC-0001_..."."""
        self._send(f"STATUS={_one_line(text)}")

    def stopping(self) -> None:
        """Shutdown has begun (closing the open recording), so a slow stop is not a hang."""
        self._send("STOPPING=1")

    def ping(self) -> None:
        """The watchdog keep-alive: the firmware's loop is still turning."""
        self._send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """``WatchdogSec`` in seconds, when systemd watches this process; ping at half of it."""
        return self._interval

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    # -- the datagram --------------------------------------------------------------------
    def _watchdog(self, env: Mapping[str, str]) -> float | None:
        """``WATCHDOG_USEC``, unless ``WATCHDOG_PID`` says it is meant for another process."""
        usec = env.get("WATCHDOG_USEC", "")
        if not usec:
            return None
        pid = env.get("WATCHDOG_PID", "")
        if pid and pid != str(self._pid):
            return None  # inherited from a parent that systemd watches, not us
        try:
            value = int(usec)
        except ValueError:
            self._warn(f"WATCHDOG_USEC={usec!r} is not an integer; no watchdog pings")
            return None
        return value / 1e6 if value > 0 else None

    def _send(self, *fields: str) -> None:
        if self._address is None:
            return
        data = ("\n".join(fields) + "\n").encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never blocks: a systemd that stopped reading (a full
                # datagram queue) must not wedge the camera's loop.
                self._sock.sendto(data, socket.MSG_DONTWAIT, self._address)
            except OSError as exc:
                self._warn(f"cannot notify systemd at {self._spec}: {exc.strerror or exc}")

    def _warn(self, text: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("%s (logged once)", text)


def _one_line(text: str) -> str:
    """A newline would end the assignment and start a bogus one."""
    return " ".join(text.split("\n"))


class KeepAlive:
    """The watchdog pings scheduled on a clock's loop; :meth:`stop` ends them."""

    def __init__(self, clock: Clock, notifier: Notifier, period: float) -> None:
        self._clock, self._notifier, self.period = clock, notifier, period
        self._timer: Timer | None = None
        self._stopped = False

    def _tick(self) -> None:
        if self._stopped:
            return
        self._notifier.ping()
        self._timer = self._clock.call_later(self.period, self._tick)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()


def keep_alive(clock: Clock, notifier: Notifier) -> KeepAlive | None:
    """Ping the watchdog every half interval from the firmware's own loop; None if unwatched.

    The pings are callbacks on the HAL clock's loop, the same loop that runs
    frames, pin edges and the writer's completions, and deliberately not a
    thread of their own: if that loop wedges (a callback that never returns, a
    deadlock), the pings stop, systemd declares the watchdog timeout, kills
    the process and ``Restart=`` starts it again, which recovers any
    interrupted recording at boot. A separate pinging thread would keep a
    wedged camera looking alive.
    """
    interval = notifier.watchdog_interval()
    if interval is None or not notifier.enabled:
        return None
    pinger = KeepAlive(clock, notifier, interval / 2)
    pinger._timer = clock.call_later(0.0, pinger._tick)
    return pinger
