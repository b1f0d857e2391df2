"""The console on a pty pair: a real serial device for the client, in simulation.

The client (a bench PC, a script, ``screen``, ``miniterm``) opens the pty's
*slave* path, e.g. ``/dev/pts/7``, with pyserial or any terminal program,
exactly as it would open a USB serial adapter. The device end is the pty
*master*, which has no path pyserial could open, so :class:`PtyMasterPort`
wraps its file descriptor in the few methods :class:`hal.serial.Port` asks for.

Decisions, and why:

- The line discipline is set raw (``tty.setraw``) before anything is written:
  with the default echo on, every line the device wrote would come back to it
  as input, and the console would answer its own replies forever.
- The device keeps a descriptor on the slave open for the pair's lifetime, so
  a client may close and reopen the port (a bench re-run) without the master
  seeing a hang-up. Lines written while no client is attached wait in the
  slave's input queue, and pyserial flushes them when it opens the port.
- The master is non-blocking and every wait is a ``select`` that
  ``cancel_read``/``cancel_write`` can interrupt, so closing never hangs on a
  client that stopped reading.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import select
import termios
import tty

import serial

from camera.console import Console
from camera.firmware import Firmware

__all__ = ["PtyMasterPort", "open_pty_console"]


class PtyMasterPort:
    """The device end of a pty pair, with pyserial's semantics for what Console uses.

    ``read`` returns what is there (up to ``size``) or ``b""`` after
    ``timeout`` seconds; ``write`` blocks until all is written or
    ``cancel_write`` is called. Failures raise ``serial.SerialException``.
    """

    def __init__(self, master_fd: int, slave_fd: int, timeout: float = 0.1) -> None:
        self.fd = master_fd
        self._slave_fd = slave_fd  # held open: no hang-up while a client is away
        self.timeout = timeout
        os.set_blocking(master_fd, False)
        self._abort_read = os.pipe()
        self._abort_write = os.pipe()
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def in_waiting(self) -> int:
        self._check_open()
        buf = array.array("i", [0])
        fcntl.ioctl(self.fd, termios.FIONREAD, buf, True)
        return buf[0]

    def read(self, size: int = 1) -> bytes:
        self._check_open()
        abort = self._abort_read[0]
        ready, _, _ = select.select([self.fd, abort], [], [], self.timeout)
        if abort in ready:
            os.read(abort, 1024)
            return b""
        if not ready:
            return b""
        try:
            return os.read(self.fd, max(1, size))
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise serial.SerialException(f"pty read failed: {exc}") from exc

    def write(self, data: bytes) -> int:
        self._check_open()
        view = memoryview(data)
        abort = self._abort_write[0]
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                raise serial.SerialException(f"pty write failed: {exc}") from exc
            view = view[n:]
            if view:
                aborted, _, _ = select.select([abort], [self.fd], [])
                if aborted:
                    os.read(abort, 1024)
                    break
        return len(data) - len(view)

    def cancel_read(self) -> None:
        if self._open:
            os.write(self._abort_read[1], b"x")

    def cancel_write(self) -> None:
        if self._open:
            os.write(self._abort_write[1], b"x")

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for fd in (self.fd, self._slave_fd, *self._abort_read, *self._abort_write):
            try:
                os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise

    def _check_open(self) -> None:
        if not self._open:
            raise serial.PortNotOpenError()


def open_pty_console(
    firmware: Firmware, *, max_line: int = 256, echo: bool | None = None
) -> tuple[Console, str]:
    """Serve ``firmware``'s console on a new pty pair; returns (started console, slave path).

    Open the path with ``serial.Serial(path)`` on the client side (or
    ``picocom``); close the console (which closes the pair) when done.
    ``echo`` as :class:`~camera.console.Console` takes it (None: the config's).
    """
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
        port = PtyMasterPort(master, slave)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    console = Console(firmware, port, max_line=max_line, echo=echo)
    console.start()
    return console, path
