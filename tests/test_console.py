"""The serial console (camera/console.py) on a real pty, against a device running in real time.

The firmware runs on the real clock in a background thread, as on a Pi; the
test is the bench PC, talking to the pty's slave path through pyserial. No
sleeps: every wait is a readline with a timeout, bounded in lines.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import camera
from camera.console import COMMANDS, TRIGGER_EXPECTED, Console, format_event
from camera.errors import BackendError
from camera.evidence.verify import verify_recording
from camera.report import RunReport
from hal.serial import Port, open_serial
from sim.console_pty import PtyMasterPort, open_pty_console
from sim.device import SimDevice
from sim.runner import RunResult, evaluate
from sim.scenario import parse_scenario
from tests.conftest import make_device

REALTIME = {"hal": {"clock": "monotonic", "worker": "thread"}, "buffer": {"pre_event": 1.0}}
VERSION_OK = f"OK bodycam {camera.__version__}"
EVT = re.compile(r"EVT (\d+\.\d{6}) ([a-z]+)((?: [a-z_]+=\S*)*)")


def fields(line: str) -> dict[str, str]:
    """key=value pairs of an EVT or STATUS line."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


class Rig:
    """A running device with its console on a pty, and the bench PC's end of it."""

    def __init__(self, dev: SimDevice, console: Console, path: str) -> None:
        self.dev = dev
        self.console = console
        self.path = path
        self.client = serial.Serial(path, timeout=5)
        self.backlog: list[str] = []  # EVT lines read past by command()

    def send(self, data: str | bytes) -> None:
        self.client.write(data.encode("ascii") + b"\r\n" if isinstance(data, str) else data)

    def read_line(self) -> str:
        raw = self.client.readline()
        assert raw.endswith(b"\r\n"), f"no complete line within the timeout: {raw!r}"
        assert raw.count(b"\n") == 1 and b"\r" not in raw[:-2]
        return raw[:-2].decode("ascii")

    def until(self, match: Callable[[str], bool], limit: int = 50) -> tuple[str, list[str]]:
        """The first line (backlog first) for which ``match`` holds, and the lines before it."""
        before: list[str] = []
        while self.backlog:
            line = self.backlog.pop(0)
            if match(line):
                return line, before
            before.append(line)
        for _ in range(limit):
            line = self.read_line()
            if match(line):
                return line, before
            before.append(line)
        raise AssertionError(f"no matching line in {limit} lines: {before[-5:]}")

    def reply(self, line: str | bytes) -> list[str]:
        """Send a command; its INFO lines and final OK/ERR line (EVT lines go to the backlog).

        Read as a script would: up to the first line starting with OK or ERR.
        """
        self.send(line)
        got: list[str] = []
        for _ in range(50):
            got.append(self.read_line())
            if got[-1].startswith(("OK", "ERR")):
                return got
            if got[-1].startswith("EVT "):
                self.backlog.append(got.pop())
            else:
                assert got[-1].startswith("INFO "), got
        raise AssertionError(f"no reply: {got}")

    def command(self, line: str | bytes) -> str:
        """Send a single-line command and return its OK/ERR reply."""
        *info, final = self.reply(line)
        assert info == [], info
        return final

    def raw(self, data: bytes, until: bytes) -> bytes:
        """Send bytes; everything the device sent back up to and including ``until``."""
        self.client.write(data)
        got = self.client.read_until(until)
        assert got.endswith(until), f"{until!r} not seen within the timeout: {got!r}"
        return got

    def event(self, kind: str, **want: str) -> dict[str, str]:
        """Fields of the next EVT line of ``kind`` whose fields include ``want``."""

        def match(line: str) -> bool:
            m = EVT.fullmatch(line)
            if not m or m.group(2) != kind:
                return False
            got = fields(line)
            return all(got.get(k) == v for k, v in want.items())

        line, _ = self.until(match)
        return {"time": line.split()[1], **fields(line)}

    def status(self) -> dict[str, str]:
        reply = self.command("STATUS")
        assert reply.startswith("OK state="), reply
        return fields(reply)

    def reset(self) -> None:
        """Back to buffering with events and echo off, whatever the previous test left."""
        # Whatever a failed test left: a half-typed line, echo on, unread lines.
        self.client.reset_input_buffer()
        self.send(b"\x03ECHO OFF\r\n")
        self.until(lambda line: line == "OK")
        assert self.command("EVENTS OFF") == "OK"
        assert self.command("STOP") in ("OK", "ERR STOP: not recording")
        self.backlog.clear()

    def post(self, callback: Callable[[], None]) -> None:
        self.dev.clock.call_soon_threadsafe(callback)


@contextmanager
def running(root: Path) -> Iterator[Rig]:
    """Boot a real-time device, serve its console on a pty, run the loop on a thread."""
    dev = make_device(root, REALTIME)
    console, path = open_pty_console(dev.firmware)
    crashed: list[BaseException] = []

    def loop() -> None:
        try:
            dev.clock.run()
        except BaseException as exc:  # surfaced at teardown, not lost in the thread
            crashed.append(exc)

    thread = threading.Thread(target=loop, name="test-loop", daemon=True)
    thread.start()
    rig = Rig(dev, console, path)
    try:
        yield rig
    finally:
        rig.client.close()
        console.close()
        dev.clock.call_soon_threadsafe(dev.clock.stop)
        thread.join(10)
        dev.shutdown()
    assert not thread.is_alive()
    assert crashed == []


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with running(tmp_path_factory.mktemp("console")) as rig:
        yield rig


@pytest.fixture
def rig(shared: Rig) -> Rig:
    shared.reset()
    return shared


# -- hal.serial ----------------------------------------------------------------------


def test_open_serial_by_url() -> None:
    port = open_serial("loop://", 115200)
    try:
        assert isinstance(port, Port)
        port.write(b"ping\n")
        assert port.readline() == b"ping\n"
    finally:
        port.close()


@pytest.mark.parametrize("url", ["/nonexistent/ttyUSB9", "nosuchscheme://x"])
def test_open_serial_failure_is_a_backend_error(url: str) -> None:
    with pytest.raises(BackendError, match=re.escape(f"serial port {url!r}")):
        open_serial(url, 115200)


# -- EVT formatting --------------------------------------------------------------------


def test_event_lines() -> None:
    assert (
        format_event(
            {
                "time": 12.5,
                "kind": "gesture",
                "input": "holster",
                "gesture": "activate",
                "at": 12.48,
            }
        )
        == "EVT 12.500000 transition input=holster active=1 at=12.480000"
    )
    assert (
        format_event(
            {"time": 1.0, "kind": "gesture", "input": "button", "gesture": "hold", "at": 0.5}
        )
        is None
    )
    assert (
        format_event({"time": 1.0, "kind": "state", "old": "buffering", "new": "recording"}) is None
    )
    line = format_event(
        {"time": 3.25, "kind": "error", "what": "storage", "detail": "[Errno 28] No space\nleft %é"}
    )
    assert line is not None
    assert line.isascii() and "\n" not in line and len(line.split()) == 5
    assert unquote(fields(line)["detail"]) == "[Errno 28] No space\nleft %é"
    assert format_event({"time": 2.0, "kind": "stop", "reason": "console", "at": 2.0}) == (
        "EVT 2.000000 stop reason=console at=2.000000"
    )


# -- protocol ------------------------------------------------------------------------------


def test_version(rig: Rig) -> None:
    assert rig.command("VERSION") == VERSION_OK
    assert rig.command("  version\t ") == VERSION_OK  # case- and whitespace-tolerant


def test_status_while_buffering(rig: Rig) -> None:
    first = rig.status()
    assert first["state"] == "buffering"
    assert first["recording"] == "-"
    # Ask until a frame has been captured: the bound only catches a hang, it is
    # no time budget (a slow host just asks more often before the next frame).
    hang = time.monotonic() + 60.0
    while True:
        second = rig.status()
        assert float(second["time"]) > float(first["time"])
        if int(second["frames"]) > int(first["frames"]):
            break
        assert time.monotonic() < hang, "frames do not advance"


def test_trigger_mark_stop(rig: Rig) -> None:
    assert rig.command("EVENTS ON") == "OK"
    assert rig.command("TRIGGER holster") == "OK"
    assert rig.backlog == []  # the reply comes before the events it caused
    # Recorded as what it is, a console trigger, with what it stood in for beside it.
    start = rig.event("start", source="console", detail="holster")
    rec_id = start["recording"]
    assert float(start["at"]) <= float(start["time"])
    rig.event("durable", recording=rec_id)
    status = rig.status()
    assert (status["state"], status["recording"]) == ("recording", rec_id)
    # The trigger's time is when its line arrived: the start's "at".
    assert (status["last_trigger"], status["last_trigger_source"]) == (start["at"], "console")

    assert rig.command("mark") == "OK"
    assert "detail" not in rig.event("marker", source="console")
    assert rig.command("TRIGGER Button") == "OK"  # while recording: a marker, not a new one
    rig.event("marker", source="console", detail="button")

    assert rig.command("STOP") == "OK"
    stop = rig.event("stop", reason="console")
    assert float(stop["at"]) >= float(start["at"])
    assert rig.command("STOP") == "ERR STOP: not recording"
    assert rig.command("MARK") == "ERR MARK: not recording"
    assert rig.status()["state"] == "buffering"

    assert rig.command("TRIGGER") == "OK"  # no argument: a plain console trigger
    assert "detail" not in rig.event("start", source="console")
    assert rig.command("STOP") == "OK"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("FOO", 'ERR unknown command "FOO": HELP lists the commands'),
        ("VERSION 2", "ERR VERSION: takes no arguments (usage: VERSION)"),
        ("STATUS now", "ERR STATUS: takes no arguments (usage: STATUS)"),
        ("TRIGGER nonsense", f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got 'nonsense'"),
        ("TRIGGER holster now", f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got 2 arguments"),
        ("TRIGGER hol$ter", f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got 'hol$ter'"),
        ("TRIGGER " + "x" * 40, f"ERR TRIGGER: expected {TRIGGER_EXPECTED}, got '{'x' * 29}...'"),
        ("STOP please", "ERR STOP: takes no arguments (usage: STOP)"),
        ("MARK here", "ERR MARK: takes no arguments (usage: MARK)"),
        ("EVENTS", "ERR EVENTS: expected ON or OFF, got nothing (usage: EVENTS ON|OFF)"),
        ("EVENTS MAYBE", "ERR EVENTS: expected ON or OFF, got 'MAYBE' (usage: EVENTS ON|OFF)"),
        ("echo on off", "ERR ECHO: expected ON or OFF, got 2 arguments (usage: ECHO ON|OFF)"),
        ("HELP FOO", f'ERR HELP: no command "FOO" (commands: {", ".join(COMMANDS)})'),
        (
            "HELP STOP MARK",
            "ERR HELP: expected one command name at most, got 2 arguments"
            " (usage: HELP [<command>])",
        ),
        ("x" * 40, f'ERR unknown command "{"x" * 29}...": HELP lists the commands'),
        (b"VERSION\x00\r\n", "ERR not printable ascii (byte 0x00 at column 8)"),
        (b"STATUS \xc3\xa9\r\n", "ERR not printable ascii (byte 0xc3 at column 8)"),
        (b"\x1b[A\r", "ERR not printable ascii (byte 0x1b at column 1)"),  # an arrow key
    ],
)
def test_bad_commands_get_err_and_change_nothing(rig: Rig, line: str | bytes, reply: str) -> None:
    before = rig.status()
    assert rig.command(line) == reply
    after = rig.status()
    assert (after["state"], after["recording"]) == (before["state"], before["recording"])


def test_blank_lines_and_bare_terminators_are_ignored(rig: Rig) -> None:
    rig.send(b"\r\n\n\r   \t\r\nVERS")
    rig.client.flush()
    rig.send(b"ION\rSTATUS\n")  # a line split across writes; CR alone ends a line too
    assert rig.read_line() == VERSION_OK
    assert rig.read_line().startswith("OK state=")


def test_long_line_gives_one_err_then_recovers(rig: Rig) -> None:
    limit = rig.console.max_line
    assert rig.command("VERSION".ljust(limit)) == VERSION_OK  # exactly at the limit: fine
    rig.send(b"V" * (limit + 1) + b"\r\n")
    rig.send(b"\xff" * 5000)  # and one far longer, arriving in many reads
    rig.send(b"STOP" * 2000 + b"\r\nVERSION\r\n")
    assert [rig.read_line() for _ in range(3)] == [
        f"ERR line too long (max {limit} bytes)",
        f"ERR line too long (max {limit} bytes)",
        VERSION_OK,
    ]
    assert rig.command("VERSION") == VERSION_OK


# -- for a person at a terminal ---------------------------------------------------------------


def test_help_lists_every_command_and_each_one_exists(rig: Rig) -> None:
    *info, final = rig.reply("HELP")
    assert final == "OK"
    assert len(info) == len(COMMANDS)
    for line, (name, command) in zip(info, COMMANDS.items(), strict=True):
        assert line.startswith(f"INFO {command.usage} ") and command.summary in line, line
        assert len(line) <= 80, line  # fits a terminal without wrapping
        # Listed means served: with arguments no command takes, an ERR naming it.
        assert rig.command(f"{name.lower()} x y z").startswith(f"ERR {name}: "), name
    # A script that reads each reply up to its OK/ERR stays in step, whatever HELP sends.
    rig.send("help\r\nVERSION")
    rig.until(lambda line: line.startswith(("OK", "ERR")))
    assert rig.read_line() == VERSION_OK


def test_the_readme_documents_every_command_and_shows_the_real_help(rig: Rig) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("\n## Serial console\n", 1)[1].split("\n## ", 1)[0]
    for command in COMMANDS.values():
        assert f"| `{command.usage.replace('|', chr(92) + '|')}` |" in section, command.usage
    # The example session's HELP is what the console sends today.
    example = section.split("\n    HELP\n", 1)[1].split("\n    OK\n", 1)[0]
    assert [line.strip() for line in example.splitlines()] == rig.reply("HELP")[:-1]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_for_one_command(rig: Rig, name: str) -> None:
    usage, *detail, final = rig.reply(f"Help {name.lower()}")
    assert (usage, final) == (f"INFO {COMMANDS[name].usage}", "OK")
    assert detail and all(line.startswith("INFO ") and len(line) <= 80 for line in detail)
    assert any("Replies" in line for line in detail)  # what a script can expect back


def test_echo_shows_what_is_typed_and_the_line_end_before_the_reply(rig: Rig) -> None:
    assert rig.command("ECHO ON") == "OK"
    ok = VERSION_OK.encode() + b"\r\n"
    assert rig.raw(b"VERSION\r", ok) == b"VERSION\r\n" + ok  # picocom: CR for Enter
    assert rig.raw(b"version\r\n", ok) == b"version\r\n" + ok  # miniterm: CR LF
    assert rig.raw(b"\r", b"\r\n") == b"\r\n"  # Enter alone: a new line, no reply
    assert rig.raw(b"FOO\r", b"commands\r\n") == (
        b'FOO\r\nERR unknown command "FOO": HELP lists the commands\r\n'
    )
    # One reply per line: the LF of a CR LF neither echoes nor replies a second time.
    assert rig.raw(b"ECHO OFF\r\n", b"OK\r\n") == b"ECHO OFF\r\nOK\r\n"
    assert rig.raw(b"VERSION\r\n", ok) == ok  # echo off: exactly the script protocol


def test_backspace_and_delete_edit_the_line(rig: Rig) -> None:
    ok = VERSION_OK.encode() + b"\r\n"
    assert rig.raw(b"VERX\x08SIOX\x7fN\r\n", ok) == ok  # always on, echo or not
    assert rig.command("ECHO ON") == "OK"
    assert rig.raw(b"\x08\x7fVERX\x08SION\r", ok) == b"VERX\b \bSION\r\n" + ok
    # An arrow key's escape shows as ^[[A and backspaces away like anything else.
    assert rig.raw(b"\x1b[A\x7f\x7f\x7fVERSION\r", ok) == (
        b"^[[A" + b"\b \b" * 4 + b"VERSION\r\n" + ok
    )


@pytest.mark.parametrize(("key", "shown"), [(b"\x03", b"^C"), (b"\x15", b"^U")])
def test_ctrl_c_and_ctrl_u_cancel_the_line(rig: Rig, key: bytes, shown: bytes) -> None:
    ok = VERSION_OK.encode() + b"\r\n"
    # No ERR for the cancelled line, and the next line is clean.
    assert rig.raw(b"STOP now" + key + b"VERSION\r\n", ok) == ok
    # An over-long line has had its ERR already; the key ends the discarding early.
    err = f"ERR line too long (max {rig.console.max_line} bytes)\r\n".encode()
    assert rig.raw(b"x" * 300 + key + b"VERSION\r", ok) == err + ok
    assert rig.command("ECHO ON") == "OK"
    assert rig.raw(b"TRIGGER hol" + key, shown + b"\r\n") == b"TRIGGER hol" + shown + b"\r\n"
    assert rig.raw(b"VERSION\r", ok) == b"VERSION\r\n" + ok
    assert rig.raw(b"ECHO OFF\r", b"OK\r\n") == b"ECHO OFF\r\nOK\r\n"
    assert rig.status()["state"] == "buffering"  # the cancelled TRIGGER never ran


def test_echo_of_an_over_long_line_ends_it_before_the_err(rig: Rig) -> None:
    limit = rig.console.max_line
    assert rig.command("ECHO ON") == "OK"
    err = f"ERR line too long (max {limit} bytes)\r\n".encode()
    assert rig.raw(b"V" * (limit + 10), err) == b"V" * limit + b"\r\n" + err
    ok = VERSION_OK.encode() + b"\r\n"
    assert rig.raw(b"\rVERSION\r", ok) == b"VERSION\r\n" + ok


TOKENS = [
    b"\x00",
    b"\xff",
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"\x1b[A",
    b"\x03",
    b"\x11",
    b"\x13",
]
# Words that make commands but, in buffering and without the words that would
# answer OK, only ever get ERR: so the one OK after the junk is the sync reply.
TOKENS += [b"EVENTS", b"MARK", b"STOP", b"x" * 300]
garbage = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(TOKENS) | st.binary(max_size=8), max_size=40).map(b"".join),
    st.integers(min_value=257, max_value=4000).map(lambda n: b"\x00\xff" * (n // 2)),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=garbage)
def test_garbage_never_disturbs_the_console_or_recording(shared: Rig, junk: bytes) -> None:
    shared.reset()
    before = shared.status()
    shared.send(junk + b"\r\nVERSION\r\n")
    _, others = shared.until(lambda got: got == VERSION_OK, limit=len(junk) + 10)
    assert all(got.startswith("ERR ") for got in others), others
    after = shared.status()
    assert after["state"] == before["state"] == "buffering"
    assert int(after["frames"]) >= int(before["frames"])


def test_holster_transition_events(rig: Rig) -> None:
    assert rig.command("EVENTS ON") == "OK"
    rig.post(lambda: rig.dev.gpio.drive("holster", True))
    edge = rig.event("transition", input="holster", active="1")
    start = rig.event("start", source="holster")
    assert start["at"] == edge["at"]  # the trigger time is the first edge
    rig.post(lambda: rig.dev.gpio.drive("holster", False))
    rig.event("transition", input="holster", active="0")
    assert rig.status()["state"] == "recording"  # re-holstering never stops a recording
    assert rig.command("STOP") == "OK"


def test_client_can_close_and_reopen_the_port(rig: Rig) -> None:
    assert rig.command("VERSION") == VERSION_OK
    rig.client.close()
    rig.client = serial.Serial(rig.path, timeout=5)
    assert rig.command("VERSION") == VERSION_OK


class StuckPort:
    """A port whose client sends a burst of commands, then never reads a byte."""

    def __init__(self, burst: bytes) -> None:
        self.burst = burst
        self.reads = 0
        self.burst_posted = threading.Event()  # the reader came back for more
        self.unblock = threading.Event()
        self.is_open = True
        self.in_waiting = 0

    def read(self, size: int = 1) -> bytes:
        self.reads += 1
        if self.reads == 1:
            return self.burst
        self.burst_posted.set()
        self.unblock.wait(0.1)  # a read timeout, as pyserial's
        return b""

    def write(self, data: bytes) -> int:
        self.unblock.wait()  # the client never reads: blocked until cancel_write()
        return len(data)

    def cancel_read(self) -> None:
        self.unblock.set()

    def cancel_write(self) -> None:
        self.unblock.set()

    def close(self) -> None:
        self.is_open = False


def test_a_client_that_never_reads_never_blocks_the_loop(rig: Rig) -> None:
    port = StuckPort(b"EVENTS ON\r\n" + b"STATUS\r\n" * 600)
    stuck = Console(rig.dev.firmware, port, max_pending=16)
    stuck.start()
    try:
        assert port.burst_posted.wait(5)
        handled = threading.Event()
        rig.post(handled.set)  # runs after every line of the burst
        assert handled.wait(5), "the loop is blocked"
        assert stuck.dropped_lines > 500
        assert rig.command("TRIGGER holster") == "OK"  # events reach the stuck console too
        assert rig.command("STOP") == "OK"
        assert rig.command("VERSION") == VERSION_OK
    finally:
        stuck.close()
    assert stuck.join(5)
    assert stuck.failed is None


class BrokenPort(StuckPort):
    """A USB adapter pulled out: every read fails."""

    def read(self, size: int = 1) -> bytes:
        raise serial.SerialException("device reports readiness to read but returned no data")


def test_port_error_ends_the_console_quietly(rig: Rig) -> None:
    broken = Console(rig.dev.firmware, BrokenPort(b""))
    broken.start()
    assert broken.join(5)
    assert isinstance(broken.failed, serial.SerialException)
    broken.close()
    assert rig.command("VERSION") == VERSION_OK  # the firmware and the other console go on


def test_closing_the_pty_console_ends_its_threads(shared: Rig) -> None:
    console, path = open_pty_console(shared.dev.firmware)
    assert isinstance(console.port, PtyMasterPort)
    client = serial.Serial(path, timeout=5)
    client.write(b"VERSION\r\n")
    assert client.readline() == VERSION_OK.encode() + b"\r\n"
    console.close()
    assert console.join(5)
    assert console.failed is None
    client.close()


def test_console_recording_has_a_manifest_stopped_by_console(tmp_path: Path) -> None:
    pre_event = REALTIME["buffer"]["pre_event"]
    with running(tmp_path) as rig:
        buffered = threading.Event()
        # Once the whole pre-event window exists (the loop sets it, on device time).
        rig.post(lambda: rig.dev.clock.call_at(pre_event + 0.5, buffered.set))
        assert buffered.wait(10)
        assert rig.command("EVENTS ON") == "OK"
        assert rig.command("TRIGGER bench") == "OK"
        rec_id = rig.event("start", source="console")["recording"]
        rig.event("durable", recording=rec_id)
        assert rig.command("MARK") == "OK"
        assert rig.command("TRIGGER holster") == "OK"
        assert rig.command("STOP") == "OK"
        rig.event("saved", recording=rec_id)
    [manifest] = rig.dev.firmware.recordings
    assert manifest["recording_id"] == rec_id
    assert (manifest["trigger"]["source"], manifest["trigger"]["detail"]) == ("console", "bench")
    assert manifest["stop"]["reason"] == "console"
    assert [{k: v for k, v in m.items() if k != "time"} for m in manifest["markers"]] == [
        {"source": "console"},
        {"source": "console", "detail": "holster"},
    ]
    assert manifest["pre_event_seconds"] >= pre_event
    root = Path(rig.dev.hal.storage.root)
    assert verify_recording(root / rec_id).ok  # `bodycam verify` takes the detail key
    # And a scenario's [expect] names the source as recorded.
    scenario = parse_scenario(
        {"scenario": {"name": "x", "duration": 1.0}, "expect": {"triggers": ["console"]}}
    )
    report = RunReport("sim", root, [manifest], 0, 1.0, 0.0, scenario=scenario.name)
    checks = evaluate(scenario, RunResult(scenario, report))
    assert [(c.name, c.actual, c.ok) for c in checks] == [("triggers", ["console"], True)]
