"""The serial console: a line protocol for bench rigs and for scripting a device.

Commands (one per line; case-insensitive; words split on any whitespace)::

    VERSION             -> OK bodycam <version>
    STATUS              -> OK state=<state> time=<now> frames=<captured> recording=<id or ->
    TRIGGER [<detail>]  -> OK | ERR refused  (starts a recording; while recording, a marker)
    STOP                -> OK | ERR not recording   (stop reason "console")
    MARK                -> OK | ERR not recording   (a marker, source "console")
    EVENTS ON|OFF       -> OK   (asynchronous EVT lines; off when the console starts)

A TRIGGER is recorded as what it is: source ``console``, never as the input it
may stand in for. Its optional argument, one of :data:`TRIGGER_DETAILS`
(case-insensitive, stored lower-case), goes into the manifest beside it as
``detail`` (``trigger: {source: "console", detail: "holster", ...}``, and the
same in a marker), so a bench that simulates a holster draw cannot make a
recording look like a real draw, and a typo cannot invent a trigger source.

Anything else gets exactly one ``ERR <reason>`` line and changes nothing.
Lines the device sends end in CR LF; lines it reads may end in CR, LF or CR
LF (a terminal sends CR alone); blank lines are ignored. With events on, the
firmware's log is echoed as ``EVT <device time> <kind> key=value ...`` (see
:func:`format_event`); the reply to a command always comes before the EVT
lines the command caused, other EVT lines may come between any two lines.

A command's device time (a TRIGGER's trigger time, a STOP's stop time) is the
moment its line arrived, stamped by the reader like a pin interrupt stamps an
edge; the command then runs on the loop as a timer at that time, so after
every frame captured before it, even when the loop lags.

Why it is built this way: the console must never disturb recording. Nothing
here touches the firmware from another thread: a reader thread only cuts bytes
into lines (bounded, so garbage cannot grow memory) and posts each to the loop
with ``clock.call_soon_threadsafe``, where commands run between frames like
any other event. And the loop never waits on the port: replies and events go
into a bounded outbox that a writer thread drains, so a client that stops
reading (or a UART held by flow control) costs dropped console lines, never a
dropped frame.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

import camera
from camera.firmware import Firmware
from camera.state import State
from hal.serial import Port

__all__ = ["Console", "LineSplitter", "format_event", "format_value"]

log = logging.getLogger(__name__)

SOURCE = "console"  # the trigger and marker source of everything the console starts
#: What a console TRIGGER may say it stands for (the manifest's ``detail``).
TRIGGER_DETAILS = ("bench", "button", "holster", "remote", "test")
TRIGGER_EXPECTED = f"no argument or one of {', '.join(TRIGGER_DETAILS)}"
#: Bytes a command line may hold: printable ASCII and tab.
PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t"
#: Characters sent as they are in an EVT value; everything else is %XX-escaped
#: (UTF-8), so a value never holds a space, a control character or non-ASCII.
SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '%"\\')
#: Event kinds echoed as EVT lines (gesture activate/deactivate becomes ``transition``).
EVENT_KINDS = frozenset({"start", "stop", "marker", "error", "refused", "durable", "saved"})
#: Fields holding device times, sent with microsecond resolution for bench latencies.
TIME_FIELDS = frozenset({"at", "time"})
USAGE = {
    "VERSION": "VERSION",
    "STATUS": "STATUS",
    "TRIGGER": "TRIGGER [<detail>]",
    "STOP": "STOP",
    "MARK": "MARK",
    "EVENTS": "EVENTS ON|OFF",
}


def format_value(key: str, value: Any) -> str:
    """One EVT value, never containing a space, a newline or a non-ASCII byte.

    Times are ``%.6f``, other numbers as Python prints them, booleans ``1``/``0``,
    ``None`` is ``-``, and text is percent-encoded outside printable ASCII
    (space, ``%``, ``"`` and ``\\`` included): ``urllib.parse.unquote``
    gives the original back.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and key in TIME_FIELDS and math.isfinite(value):
        return f"{value:.6f}"
    if isinstance(value, int | float):
        return str(value)
    return urllib.parse.quote(str(value), safe=SAFE)


def format_event(entry: dict[str, Any]) -> str | None:
    """The EVT line (without CR LF) for a firmware event-log entry, or None to skip it.

    ``gesture`` entries for activate/deactivate become ``transition input=<name>
    active=1|0 at=<first edge>``; the kinds in :data:`EVENT_KINDS` keep their
    fields in the firmware's order; every other kind is not sent.
    """
    kind = entry.get("kind")
    if kind == "gesture":
        if entry.get("gesture") not in ("activate", "deactivate"):
            return None
        fields: dict[str, Any] = {
            "input": entry.get("input"),
            "active": entry.get("gesture") == "activate",
            "at": entry.get("at"),
        }
        kind = "transition"
    elif kind in EVENT_KINDS:
        fields = {k: v for k, v in entry.items() if k not in ("time", "kind")}
    else:
        return None
    words = ["EVT", format_value("time", float(entry.get("time", 0.0))), str(kind)]
    words += [f"{k}={format_value(k, v)}" for k, v in fields.items()]
    return " ".join(words)


def parse_event(line: str) -> dict[str, Any] | None:
    """An EVT line back into a firmware-style entry (the client side, e.g. a bench PC).

    ``transition`` lines become ``gesture`` entries again so a client can use
    the same bookkeeping as in-process listeners; values stay strings except
    ``time`` and ``at`` (floats). None for anything that is not an EVT line.
    """
    words = line.strip().split()
    if len(words) < 3 or words[0] != "EVT":
        return None
    try:
        entry: dict[str, Any] = {"time": float(words[1]), "kind": words[2]}
        for word in words[3:]:
            key, _, value = word.partition("=")
            entry[key] = float(value) if key == "at" else urllib.parse.unquote(value)
    except ValueError:
        return None
    if entry["kind"] == "transition":
        entry["kind"] = "gesture"
        entry["gesture"] = "activate" if entry.pop("active", "0") == "1" else "deactivate"
    return entry


TERMINATOR = re.compile(rb"[\r\n]")


def _clip(text: str, limit: int = 32) -> str:
    """``text`` short enough to quote back in a one-line reply."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LineSplitter:
    """Cuts a byte stream into lines in bounded memory, however the bytes are chunked.

    CR, LF and CR LF all end a line. Blank lines (whitespace only) are dropped.
    A line longer than ``max_line`` bytes gives one ``None`` as soon as it
    passes the limit, and the rest of it, up to its terminator, is discarded:
    so garbage without newlines costs one ERR and at most ``max_line`` bytes.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        """The lines ``data`` completes, in order; ``None`` for each over-long one."""
        out: list[bytes | None] = []
        pieces = TERMINATOR.split(data)
        for i, piece in enumerate(pieces):
            if not self._discarding:
                if len(self._buf) + len(piece) > self.max_line:
                    self._discarding = True
                    self._buf.clear()
                    out.append(None)
                else:
                    self._buf += piece
            if i == len(pieces) - 1:
                break  # the unterminated rest waits for more bytes
            if not self._discarding and self._buf.strip():
                out.append(bytes(self._buf))
            self._buf.clear()
            self._discarding = False
        return out


class Console:
    """Serves the line protocol on ``port`` for ``firmware``; owns the port from start().

    ``max_line`` bounds a command line in bytes (terminator excluded);
    ``max_pending`` bounds both the lines waiting for the loop and the lines
    waiting for the port. Call :meth:`start` once, :meth:`close` once done
    (from any thread but the loop's, since it joins the threads).
    """

    def __init__(
        self,
        firmware: Firmware,
        port: Port,
        *,
        max_line: int = 256,
        max_pending: int = 256,
    ) -> None:
        if max_line < 1 or max_pending < 1:
            raise ValueError("max_line and max_pending must be positive")
        self.firmware = firmware
        self.clock = firmware.clock
        self.port = port
        self.max_line = max_line
        self.events_on = False  # loop thread only
        self._held: list[str] | None = None  # loop thread: EVT lines held back for a reply
        self.dropped_lines = 0  # replies/events lost because the client did not read
        self.failed: BaseException | None = None  # the port error that ended the console
        self._closing = threading.Event()
        self._outbox: deque[bytes] = deque()
        self._max_outbox = max_pending
        self._out_cond = threading.Condition()
        # Lines posted to the loop but not handled yet: the reader waits for a
        # slot, so a flood backs up into the port's buffers, not the loop's queue.
        self._slots = threading.Semaphore(max_pending)
        self._threads: list[threading.Thread] = []
        self._handlers: dict[str, Callable[[list[str], float], str]] = {
            "VERSION": self._version,
            "STATUS": self._status,
            "TRIGGER": self._trigger,
            "STOP": self._stop,
            "MARK": self._mark,
            "EVENTS": self._events,
        }

    # -- life cycle ------------------------------------------------------------
    def start(self) -> None:
        """Start the reader and writer threads and subscribe to the firmware's events."""
        if self._threads:
            raise RuntimeError("console already started")
        # The listener list belongs to the loop: join it there.
        self.clock.call_soon_threadsafe(lambda: self.firmware.listeners.append(self._on_event))
        for name, target in (("reader", self._read_loop), ("writer", self._write_loop)):
            thread = threading.Thread(target=target, name=f"bodycam-console-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop both threads, unsubscribe and close the port. Idempotent."""
        self._closing.set()
        with self._out_cond:
            self._out_cond.notify_all()
        for name in ("cancel_read", "cancel_write"):
            cancel = getattr(self.port, name, None)
            if callable(cancel):
                try:
                    cancel()
                except Exception:  # an already closed port: nothing left to wake
                    log.debug("console: %s failed", name, exc_info=True)
        for thread in self._threads:
            thread.join(timeout)
        try:
            self.port.close()
        except Exception:
            log.debug("console: closing the port failed", exc_info=True)

        def unsubscribe() -> None:
            if self._on_event in self.firmware.listeners:
                self.firmware.listeners.remove(self._on_event)

        self.clock.call_soon_threadsafe(unsubscribe)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for both threads to end (after close() or a port error); True if they did."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _fail(self, exc: BaseException, where: str) -> None:
        """A port error ends the console quietly; the firmware goes on without it."""
        if self._closing.is_set():
            return  # close() pulled the port from under a blocked call
        self.failed = exc
        if isinstance(exc, OSError):
            log.warning("console %s: port error, console stopped: %s", where, exc)
        else:
            log.error("console %s: unexpected error, console stopped", where, exc_info=exc)
        self._closing.set()
        with self._out_cond:
            self._out_cond.notify_all()

    # -- reader thread -----------------------------------------------------------
    def _read_loop(self) -> None:
        splitter = LineSplitter(self.max_line)
        try:
            while not self._closing.is_set():
                data = self.port.read(self.port.in_waiting or 1)
                for line in splitter.feed(data):  # b"" on a read timeout: nothing
                    if line is None:
                        self._post(lambda t: self._send("ERR line too long"))
                    else:
                        self._post(lambda t, line=line: self._on_line(line, t))
        except Exception as exc:
            self._fail(exc, "reader")

    def _post(self, callback: Callable[[float], None]) -> None:
        """Hand ``callback(t)`` to the loop, ``t`` the device time the line arrived.

        The loop runs it as a timer at ``t``, so after every event due by then:
        a command posted while the loop lags behind (at boot, or busy
        encoding) still sees every frame captured before it arrived, and a
        TRIGGER's pre-event counts back from when the bench sent it. Waits
        while too many lines are in flight.
        """
        t = self.clock.now()  # like a pin interrupt's timestamp: where it happened
        while not self._slots.acquire(timeout=0.1):
            if self._closing.is_set():
                return

        def run() -> None:
            self._slots.release()
            callback(t)

        self.clock.call_soon_threadsafe(lambda: self.clock.call_at(t, run))

    # -- writer thread -------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                with self._out_cond:
                    while not self._outbox and not self._closing.is_set():
                        self._out_cond.wait()
                    if self._closing.is_set():
                        return
                    data = b"".join(self._outbox)
                    self._outbox.clear()
                self.port.write(data)
        except Exception as exc:
            self._fail(exc, "writer")

    def _send(self, line: str) -> None:
        """Queue one line for the port (loop thread); drop it if the client lags."""
        data = line.encode("ascii", "replace") + b"\r\n"
        with self._out_cond:
            if self._closing.is_set():
                return
            if len(self._outbox) >= self._max_outbox:
                if self.dropped_lines == 0 or self.dropped_lines % 1000 == 0:
                    log.warning("console: client not reading, %d lines dropped", self.dropped_lines)
                self.dropped_lines += 1
                return
            self._outbox.append(data)
            self._out_cond.notify()

    # -- loop thread: events ---------------------------------------------------------
    def _on_event(self, entry: dict[str, Any]) -> None:
        """Firmware listener: an observer must never break the firmware that calls it."""
        if not self.events_on or self._closing.is_set():
            return
        try:
            line = format_event(entry)
        except Exception:
            log.exception("console: cannot format event %r", entry)
            return
        if line is None:
            return
        if self._held is not None:
            self._held.append(line)
        else:
            self._send(line)

    # -- loop thread: commands -------------------------------------------------------
    def _on_line(self, raw: bytes, t: float) -> None:
        if raw.translate(None, PRINTABLE):
            self._send("ERR not printable ascii")
            return
        words = raw.decode("ascii").split()
        if not words:
            return
        handler = self._handlers.get(words[0].upper())
        if handler is None:
            self._send("ERR unknown command")
            return
        # The reply goes first, then the events the command caused (a client
        # reads up to OK/ERR and then follows the EVT lines).
        self._held = []
        try:
            reply = handler(words[1:], t)
        finally:
            held, self._held = self._held, None
        self._send(reply)
        for line in held:
            self._send(line)

    def _ready(self) -> bool:
        return self.firmware.state in (State.BUFFERING, State.RECORDING)

    def _usage(self, command: str) -> str:
        return f"ERR usage: {USAGE[command]}"

    def _version(self, args: list[str], t: float) -> str:
        return self._usage("VERSION") if args else f"OK bodycam {camera.__version__}"

    def _status(self, args: list[str], t: float) -> str:
        if args:
            return self._usage("STATUS")
        fw = self.firmware
        rec = fw.recorder.recording
        return (
            f"OK state={fw.state.value} time={self.clock.now():.6f}"
            f" frames={fw.capture.frames_captured}"
            f" recording={format_value('recording', rec.id if rec else None)}"
        )

    def _trigger(self, args: list[str], t: float) -> str:
        detail = args[0].lower() if len(args) == 1 else None
        if len(args) > 1 or (detail is not None and detail not in TRIGGER_DETAILS):
            got = f"{len(args)} arguments" if len(args) > 1 else repr(_clip(args[0]))
            return f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got {got}"
        if not self._ready():
            return "ERR not ready"
        self.firmware.trigger(SOURCE, t, detail)
        # Started, or marked the recording in progress; not active means refused.
        return "OK" if self.firmware.recorder.active else "ERR refused"

    def _stop(self, args: list[str], t: float) -> str:
        if args:
            return self._usage("STOP")
        if not self._ready():
            return "ERR not ready"
        if not self.firmware.recorder.active:
            return "ERR not recording"
        self.firmware.stop_recording("console", t)
        return "OK"

    def _mark(self, args: list[str], t: float) -> str:
        if args:
            return self._usage("MARK")
        if not self._ready():
            return "ERR not ready"
        if not self.firmware.recorder.active:
            return "ERR not recording"
        self.firmware.trigger(SOURCE, t)  # while recording: a marker
        return "OK"

    def _events(self, args: list[str], t: float) -> str:
        if len(args) != 1 or args[0].upper() not in ("ON", "OFF"):
            return self._usage("EVENTS")
        self.events_on = args[0].upper() == "ON"
        return "OK"
