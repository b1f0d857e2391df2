"""Serial ports: the byte-stream interface the console uses, and one way to open one.

pyserial's URL handlers already are a backend registry (a device path such as
``/dev/ttyAMA0``, a pty slave path, ``loop://``, ``socket://host:port``,
``spy://`` to log traffic), so this kind has no registry entry of its own:
configuration names a URL and :func:`open_serial` hands it to
``serial.serial_for_url``. pyserial is imported only when a port is opened,
so importing :mod:`hal` never touches it (test_architecture checks that).

:class:`Port` is the subset of pyserial's ``SerialBase`` that the core relies
on, written down so ``camera/`` depends on an interface, not on pyserial, and
so a simulator can hand in any object with these methods (the pty master in
:mod:`sim.console_pty` does). Errors are ``OSError`` (pyserial's
``SerialException`` is one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hal.errors import BackendError

if TYPE_CHECKING:
    import serial

__all__ = ["Port", "open_serial"]


@runtime_checkable
class Port(Protocol):
    """What the console needs of a serial port (pyserial's ``SerialBase`` has it all).

    ``read`` returns within the port's timeout, possibly with fewer bytes (or
    none); ``write`` may block while the other end does not read. Optional,
    looked up with ``getattr``: ``cancel_read()`` / ``cancel_write()`` to
    unblock another thread's call (pyserial on POSIX, ``loop://``).
    """

    @property
    def is_open(self) -> bool: ...

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def open_serial(url: str, baudrate: int, timeout: float = 0.1) -> serial.SerialBase:
    """Open ``url`` with pyserial, reads returning after at most ``timeout`` seconds.

    The short default timeout is what lets a reader thread notice that it
    should stop. Any failure (no such device, busy, bad URL or baud rate)
    becomes one :class:`~hal.errors.BackendError` naming the port.
    """
    try:
        import serial
    except ImportError as exc:  # pragma: no cover - pyserial is a dependency
        raise BackendError(f"serial port {url!r}: pyserial is not installed ({exc})") from exc
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise BackendError(f"serial port {url!r}: {exc}") from exc
