"""The serial console: a line protocol for bench rigs, scripts and a person at a terminal.

The protocol (every command, reply, ``ERR``, the ``EVT`` format, the timing,
an example session) is written down for users in the README, section
"Serial console"; this is its summary. One command per line, words split on
whitespace, command names case-insensitive::

    HELP [<command>]    -> INFO lines, then OK | ERR HELP: ...
    VERSION             -> OK bodycam <version>
    STATUS              -> OK state=<state> time=<now> frames=<captured> recording=<id or -> ...
                           ... gps_fix=<valid|none|off> gps_satellites gps_age clock_source
    TRIGGER [<detail>]  -> OK | ERR TRIGGER: ...  (starts a recording; while recording, a marker)
    STOP                -> OK | ERR STOP: not recording   (stop reason "console")
    MARK                -> OK | ERR MARK: not recording   (a marker, source "console")
    EVENTS ON|OFF       -> OK   (asynchronous EVT lines; off when the console starts)
    ECHO ON|OFF         -> OK   (echo and visible line editing; ``[console] echo`` at start)
    DOCK                -> OK | ERR DOCK: ...  (offload to ``[offload]`` server, in the background)

Every command gets exactly one final line, ``OK ...`` or ``ERR ...``, and
only ``HELP`` sends ``INFO`` lines before it: a client reads until the first
line that starts with ``OK`` or ``ERR``. Every ``ERR`` names the command (or
the line's fault: ``unknown command``, ``line too long``, ``not printable
ascii``) and what was expected, and changes nothing.

A TRIGGER is recorded as what it is: source ``console``, never as the input it
may stand in for. Its optional argument, one of :data:`TRIGGER_DETAILS`
(case-insensitive, stored lower-case), goes into the manifest beside it as
``detail`` (``trigger: {source: "console", detail: "holster", ...}``, and the
same in a marker), so a bench that simulates a holster draw cannot make a
recording look like a real draw, and a typo cannot invent a trigger source.

Lines the device sends end in CR LF; lines it reads may end in CR, LF or CR
LF, and are edited as a terminal would (:mod:`camera.console_lines`:
backspace, Ctrl-C and Ctrl-U; blank lines are ignored). With events on, the
firmware's log is echoed as ``EVT <device time> <kind> key=value ...`` (see
:func:`format_event`); the reply to a command always comes before the EVT
lines the command caused, other EVT lines may come between any two lines
(never inside a multi-line reply).

A command's device time (a TRIGGER's trigger time, a STOP's stop time) is the
moment its line arrived, stamped by the reader like a pin interrupt stamps an
edge; the command then runs on the loop as a timer at that time, so after
every frame captured before it, even when the loop lags.

Why it is built this way: the console must never disturb recording. Nothing
here touches the firmware from another thread: a reader thread only cuts bytes
into lines (bounded, so garbage cannot grow memory) and posts each to the loop
with ``clock.call_soon_threadsafe``, where commands run between frames like
any other event; STATUS reads the ring, the recorder and the storage there
too. And the loop never waits on the port: replies, events and echo go into
a bounded outbox that a writer thread drains, so a client that stops reading
(or a UART held by flow control) costs dropped console lines, never a
dropped frame. Echo is queued by the reader itself, as bytes arrive, ahead
of the line it belongs to, so a person sees the Enter before the reply.
"""

from __future__ import annotations

import logging
import math
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import camera
from camera.console_lines import Echo, LineSplitter
from camera.firmware import Firmware
from camera.state import State
from hal.serial import Port

if TYPE_CHECKING:
    from camera.dock import Dock

__all__ = ["COMMANDS", "Console", "LineSplitter", "format_event", "format_value", "parse_event"]

log = logging.getLogger(__name__)

SOURCE = "console"  # the trigger and marker source of everything the console starts
#: What a console TRIGGER may say it stands for (the manifest's ``detail``).
TRIGGER_DETAILS = ("bench", "button", "holster", "remote", "test")
TRIGGER_EXPECTED = f"no argument or one of {', '.join(TRIGGER_DETAILS)}"
DETAILS_OR = f"{', '.join(TRIGGER_DETAILS[:-1])} or {TRIGGER_DETAILS[-1]}"
#: Bytes a command line may hold: printable ASCII and tab.
PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t"
#: Characters sent as they are in an EVT value; everything else is %XX-escaped
#: (UTF-8), so a value never holds a space, a control character or non-ASCII.
SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '%"\\')
#: Event kinds echoed as EVT lines (gesture activate/deactivate becomes ``transition``).
EVENT_KINDS = frozenset(
    {"start", "stop", "marker", "error", "refused", "durable", "saved"}
    | {"offloaded", "kept", "docked"}  # a DOCK's progress (camera.dock)
)
#: Fields holding device times, sent with microsecond resolution for bench latencies.
TIME_FIELDS = frozenset({"at", "time"})


@dataclass(frozen=True)
class Command:
    """What HELP says about a command: its usage, one line, and the detail for HELP <command>."""

    usage: str
    summary: str
    detail: tuple[str, ...]


#: Every command, in the order HELP lists them.
COMMANDS: dict[str, Command] = {
    "HELP": Command(
        "HELP [<command>]",
        "list the commands, or explain one",
        (
            "Lists every command, or shows one command's usage, meaning and replies.",
            "Replies: INFO lines, then OK. Only HELP sends INFO lines.",
        ),
    ),
    "VERSION": Command(
        "VERSION",
        "the firmware version",
        ("Replies: OK bodycam <version>.",),
    ),
    "STATUS": Command(
        "STATUS",
        "state, ring, pre-event, storage, trigger, GPS, clock",
        (
            "Replies OK and key=value pairs (- when there is none):",
            "state time frames recording ring_seconds ring_bytes ring_capacity",
            "pre_event storage_free last_trigger last_trigger_source uptime",
            "gps_fix gps_satellites gps_age clock_source.",
            "pre_event: the seconds of pre-event a TRIGGER now would record.",
            "gps_fix: valid, none (no fix now) or off; gps_age: seconds since the",
            "last valid fix; clock_source: what UTC follows (gps, ntp, system, sim).",
        ),
    ),
    "TRIGGER": Command(
        "TRIGGER [<detail>]",
        "start a recording; while recording, add a marker",
        (
            "Starts a recording, its pre-event counted back from when the line",
            "arrived; while one runs, adds a marker to it instead.",
            f"<detail>: {DETAILS_OR}, kept as detail.",
            "Replies: OK, or ERR TRIGGER: not ready | refused (<why>).",
        ),
    ),
    "STOP": Command(
        "STOP",
        "stop the recording in progress (reason console)",
        ("Replies: OK, or ERR STOP: not recording | not ready.",),
    ),
    "MARK": Command(
        "MARK",
        "add a marker to the recording in progress",
        ("Replies: OK, or ERR MARK: not recording | not ready.",),
    ),
    "EVENTS": Command(
        "EVENTS ON|OFF",
        "send the firmware's events as EVT lines, or stop",
        (
            "With events on, EVT <time> <kind> key=value ... lines follow what happens:",
            "start, stop, marker, transition, durable, saved, refused, error.",
            "Replies: OK. Off when the console starts.",
        ),
    ),
    "ECHO": Command(
        "ECHO ON|OFF",
        "echo what is typed, for a person at a terminal",
        (
            "With echo on, typed characters, backspace and Enter are shown as typed.",
            "Backspace, Ctrl-C and Ctrl-U edit the line whether echo is on or off.",
            "Replies: OK. Starts as [console] echo in the config (off by default).",
        ),
    ),
    "DOCK": Command(
        "DOCK",
        "offload the closed recordings to the evidence server",
        (
            "Uploads every closed recording to [offload] server in the background,",
            "recording going on (the recording in progress is never sent), and deletes",
            "each on a receipt signed by [offload] server_key (delete_after_upload).",
            "EVT offloaded or kept for each recording, then EVT docked with the counts.",
            "Replies: OK, or ERR DOCK: not ready | no evidence server (...) |",
            "already docking | server key: <why>.",
        ),
    ),
}
USAGE = {name: command.usage for name, command in COMMANDS.items()}
USAGE_HELP = f"usage: {USAGE['HELP']}"
#: A reply: one final OK/ERR line, or INFO lines ending with one.
Reply = str | list[str]


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


def _clip(text: str, limit: int = 32) -> str:
    """``text`` short enough to quote back in a one-line reply."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _got(args: list[str]) -> str:
    """What a command was given, for an ERR: nothing, 'word', or N arguments."""
    if not args:
        return "nothing"
    return repr(_clip(args[0])) if len(args) == 1 else f"{len(args)} arguments"


def _unprintable(raw: bytes) -> str | None:
    """The ERR for the first byte of ``raw`` a command may not hold, or None."""
    if not raw.translate(None, PRINTABLE):
        return None
    column = next(i for i, byte in enumerate(raw) if byte not in PRINTABLE)
    return f"ERR not printable ascii (byte 0x{raw[column]:02x} at column {column + 1})"


class Console:
    """Serves the line protocol on ``port`` for ``firmware``; owns the port from start().

    ``max_line`` bounds a command line in bytes (terminator excluded);
    ``max_pending`` bounds both the lines waiting for the loop and the lines
    waiting for the port. ``echo`` is the ECHO setting to start with (None:
    the config's ``[console] echo``). Call :meth:`start` once, :meth:`close`
    once done (from any thread but the loop's, since it joins the threads).
    """

    def __init__(
        self,
        firmware: Firmware,
        port: Port,
        *,
        max_line: int = 256,
        max_pending: int = 256,
        echo: bool | None = None,
    ) -> None:
        if max_line < 1 or max_pending < 1:
            raise ValueError("max_line and max_pending must be positive")
        self.firmware = firmware
        self.clock = firmware.clock
        self.port = port
        self.max_line = max_line
        self.events_on = False  # loop thread only
        #: Set on the loop (ECHO), read by the reader: a line typed in the same
        #: instant as ECHO ON may still arrive unechoed, nothing worse.
        self.echo = firmware.config.console.echo if echo is None else echo
        self._held: list[str] | None = None  # loop thread: EVT lines held back for a reply
        self.dropped_lines = 0  # replies/events/echo lost because the client did not read
        self.failed: BaseException | None = None  # the port error that ended the console
        self._closing = threading.Event()
        self._outbox: deque[bytes] = deque()
        self._max_outbox = max_pending
        self._out_cond = threading.Condition()
        # Lines posted to the loop but not handled yet: the reader waits for a
        # slot, so a flood backs up into the port's buffers, not the loop's queue.
        self._slots = threading.Semaphore(max_pending)
        self._threads: list[threading.Thread] = []
        self._dock: Dock | None = None  # made by the first DOCK, on the loop
        self._handlers: dict[str, Callable[[list[str], float], Reply]] = {
            "HELP": self._help,
            "VERSION": self._version,
            "STATUS": self._status,
            "TRIGGER": self._trigger,
            "STOP": self._stop,
            "MARK": self._mark,
            "EVENTS": self._events,
            "ECHO": self._echo,
            "DOCK": self._docked,
        }
        assert self._handlers.keys() == COMMANDS.keys()

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
        """Stop both threads (and an offload a DOCK started), unsubscribe, close the port.

        Idempotent."""
        self._closing.set()
        if self._dock is not None:
            self._dock.close()
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
        too_long = f"ERR line too long (max {self.max_line} bytes)"
        try:
            while not self._closing.is_set():
                data = self.port.read(self.port.in_waiting or 1)
                for item in splitter.feed(data, self.echo):  # b"" on a read timeout: nothing
                    if isinstance(item, Echo):
                        self._queue([item.data])  # ahead of the line it belongs to
                    elif item is None:
                        self._post(lambda t: self._send(too_long))
                    else:
                        self._post(lambda t, line=item: self._on_line(line, t))
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

    def _queue(self, pieces: list[bytes]) -> None:
        """Queue ``pieces`` for the port, all or none (any thread); dropped if the client lags.

        All or none, so a multi-line reply never reaches the client without
        its final OK, nor an OK without the INFO lines before it.
        """
        with self._out_cond:
            if self._closing.is_set():
                return
            if len(self._outbox) + len(pieces) > self._max_outbox:
                if self.dropped_lines == 0 or self.dropped_lines % 1000 == 0:
                    log.warning("console: client not reading, %d lines dropped", self.dropped_lines)
                self.dropped_lines += len(pieces)
                return
            self._outbox.extend(pieces)
            self._out_cond.notify()

    def _send(self, *lines: str) -> None:
        """Queue reply or EVT lines (loop thread), CR LF after each."""
        self._queue([line.encode("ascii", "replace") + b"\r\n" for line in lines])

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
        bad = _unprintable(raw)
        if bad is not None:
            self._send(bad)
            return
        words = raw.decode("ascii").split()
        if not words:
            return
        handler = self._handlers.get(words[0].upper())
        if handler is None:
            self._send(f'ERR unknown command "{_clip(words[0])}": HELP lists the commands')
            return
        # The reply goes first, then the events the command caused (a client
        # reads up to OK/ERR and then follows the EVT lines).
        self._held = []
        try:
            reply = handler(words[1:], t)
        finally:
            held, self._held = self._held, None
        self._send(*([reply] if isinstance(reply, str) else reply))
        for line in held:
            self._send(line)

    def _ready(self) -> bool:
        return self.firmware.state in (State.BUFFERING, State.RECORDING)

    def _not_ready(self, command: str) -> str:
        return f"ERR {command}: not ready (state {self.firmware.state.value})"

    def _no_args(self, command: str) -> str:
        return f"ERR {command}: takes no arguments (usage: {USAGE[command]})"

    def _help(self, args: list[str], t: float) -> Reply:
        if len(args) > 1:
            return f"ERR HELP: expected one command name at most, got {_got(args)} ({USAGE_HELP})"
        if not args:
            width = max(len(c.usage) for c in COMMANDS.values())
            lines = [f"INFO {c.usage.ljust(width)}  {c.summary}" for c in COMMANDS.values()]
            return [*lines, "OK"]
        command = COMMANDS.get(args[0].upper())
        if command is None:
            names = ", ".join(COMMANDS)
            return f'ERR HELP: no command "{_clip(args[0])}" (commands: {names})'
        return [f"INFO {command.usage}", *(f"INFO {line}" for line in command.detail), "OK"]

    def _version(self, args: list[str], t: float) -> Reply:
        return self._no_args("VERSION") if args else f"OK bodycam {camera.__version__}"

    def _status(self, args: list[str], t: float) -> Reply:
        if args:
            return self._no_args("STATUS")
        fw = self.firmware
        now = self.clock.now()
        rec = fw.recorder.recording
        ring = fw.ring
        # What a TRIGGER now would record: from the keyframe at or before
        # now - pre_event (or the oldest held frame), as Recorder.start picks it.
        start = ring.start_time(now - fw.recorder.pre_event)
        pre_event = 0.0 if start is None else max(0.0, now - start)
        try:
            free: int | None = fw.hal.storage.free_bytes()
        except OSError:  # a card pulled out: STATUS still answers
            free = None
        last = fw.last_trigger
        booted = fw.booted_at
        place = fw.positions
        fix, age = place.latest, place.age()
        fields = {
            "state": fw.state.value,
            "time": f"{now:.6f}",
            "frames": fw.capture.frames_captured,
            "recording": rec.id if rec else None,
            "ring_seconds": f"{ring.coverage:.3f}",
            "ring_bytes": ring.bytes_used,
            "ring_capacity": ring.capacity_bytes,
            "pre_event": f"{pre_event:.3f}",
            "storage_free": free,
            "last_trigger": None if last is None else f"{last[0]:.6f}",
            "last_trigger_source": None if last is None else last[1],
            "uptime": None if booted is None else f"{now - booted:.3f}",
            "gps_fix": place.fix_state(),
            "gps_satellites": None if fix is None else fix.satellites,
            "gps_age": None if age is None else f"{age:.3f}",
            "clock_source": fw.clock_discipline.source,
        }
        return "OK " + " ".join(f"{k}={format_value(k, v)}" for k, v in fields.items())

    def _trigger(self, args: list[str], t: float) -> Reply:
        detail = args[0].lower() if len(args) == 1 else None
        if len(args) > 1 or (detail is not None and detail not in TRIGGER_DETAILS):
            return f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got {_got(args)}"
        if not self._ready():
            return self._not_ready("TRIGGER")
        self.firmware.trigger(SOURCE, t, detail)
        # Started, or marked the recording in progress; not active means refused.
        if self.firmware.recorder.active:
            return "OK"
        last = self.firmware.events[-1] if self.firmware.events else {}
        why = last.get("reason") if last.get("kind") == "refused" else None
        return f"ERR TRIGGER: refused ({why or 'see the log'})"

    def _stop(self, args: list[str], t: float) -> Reply:
        if args:
            return self._no_args("STOP")
        if not self._ready():
            return self._not_ready("STOP")
        if not self.firmware.recorder.active:
            return "ERR STOP: not recording"
        self.firmware.stop_recording("console", t)
        return "OK"

    def _mark(self, args: list[str], t: float) -> Reply:
        if args:
            return self._no_args("MARK")
        if not self._ready():
            return self._not_ready("MARK")
        if not self.firmware.recorder.active:
            return "ERR MARK: not recording"
        self.firmware.trigger(SOURCE, t)  # while recording: a marker
        return "OK"

    def _on_off(self, command: str, args: list[str]) -> bool | str:
        """ON -> True, OFF -> False, anything else the ERR that says so."""
        if len(args) == 1 and args[0].upper() in ("ON", "OFF"):
            return args[0].upper() == "ON"
        return f"ERR {command}: expected ON or OFF, got {_got(args)} (usage: {USAGE[command]})"

    def _events(self, args: list[str], t: float) -> Reply:
        on = self._on_off("EVENTS", args)
        if isinstance(on, str):
            return on
        self.events_on = on
        return "OK"

    def _echo(self, args: list[str], t: float) -> Reply:
        on = self._on_off("ECHO", args)
        if isinstance(on, str):
            return on
        self.echo = on
        return "OK"

    def _docked(self, args: list[str], t: float) -> Reply:
        """The offload starts on its own thread: the reply, and the loop, wait for none of it."""
        if args:
            return self._no_args("DOCK")
        if not self._ready():
            return self._not_ready("DOCK")
        if self._dock is not None and self._dock.running:
            return "ERR DOCK: already docking"
        opts = self.firmware.config.offload
        if opts.server is None or opts.server_key is None:
            return "ERR DOCK: no evidence server (set [offload] server and server_key)"
        if self._dock is None:
            import random

            from camera.dock import Dock
            from camera.errors import InputError
            from camera.evidence.keys import load_public_key
            from camera.offload_http import RetryPolicy

            try:
                server_key, _ = load_public_key(opts.server_key)
            except InputError as exc:
                return f"ERR DOCK: server key: {' '.join(str(exc).split())}"
            self._dock = Dock(
                self.firmware,
                opts.server,
                server_key,
                retry=RetryPolicy(random.Random(), attempts=opts.attempts),
                delete=opts.delete_after_upload,
                timeout=opts.timeout,
                connect_timeout=opts.connect_timeout,
            )
        self._dock.start()
        return "OK"
