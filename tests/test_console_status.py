"""The console's STATUS (and its not-ready replies) on a real pty, on the virtual clock.

The device's time stands still between the test's ``dev.run`` calls, so each
figure STATUS gives can be checked exactly against the firmware, and the
pre-event it promises against what a TRIGGER at that same instant records.
No sleeps: the test waits for the console's reader to hand the line to the
loop (an event set by the clock's thread-safe post), runs the loop at the
current device time, and reads the reply from the port with a timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from camera.config import load_config
from sim.console_pty import open_pty_console
from sim.device import SimDevice
from tests.conftest import make_device

#: Bounds a hang only; a healthy exchange takes milliseconds.
HANG = 30.0
PRE_EVENT = 2.0
FPS, GOP = 30, 30


class Bench:
    """The bench PC's end of a virtual-clock device's console."""

    def __init__(self, dev: SimDevice) -> None:
        self.dev = dev
        self.posted = threading.Event()
        clock = dev.clock
        post: Callable[[Callable[[], None]], None] = clock.call_soon_threadsafe

        def posting(callback: Callable[[], None]) -> None:
            post(callback)
            self.posted.set()

        clock.call_soon_threadsafe = posting  # type: ignore[method-assign]
        self.console, path = open_pty_console(dev.firmware)
        self.dev.clock.run(until=self.dev.clock.now())  # the console's subscription
        self.client = serial.Serial(path, timeout=HANG)

    def ask(self, line: str) -> str:
        """One command's reply, run on the loop at the current device time."""
        self.posted.clear()
        self.client.write(line.encode() + b"\r\n")
        assert self.posted.wait(HANG), "the console never handed the line to the loop"
        self.dev.clock.run(until=self.dev.clock.now())
        raw = self.client.readline()
        assert raw.endswith(b"\r\n"), raw
        return raw[:-2].decode("ascii")

    def status(self) -> dict[str, str]:
        reply = self.ask("STATUS")
        assert reply.startswith("OK state="), reply
        return dict(word.split("=", 1) for word in reply.split()[1:])

    def close(self) -> None:
        self.client.close()
        self.console.close()
        assert self.console.join(5)


@contextmanager
def bench(dev: SimDevice) -> Iterator[Bench]:
    b = Bench(dev)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[SimDevice]:
    device = make_device(
        tmp_path,
        {
            "video": {"fps": FPS, "gop": GOP},
            "buffer": {"pre_event": PRE_EVENT},
            "recording": {"reserve_mb": 1},
        },
    )
    yield device
    if device.firmware.state.value != "stopped":
        device.shutdown()


KEYS = [
    "state",
    "time",
    "frames",
    "recording",
    "ring_seconds",
    "ring_bytes",
    "ring_capacity",
    "pre_event",
    "storage_free",
    "last_trigger",
    "last_trigger_source",
    "uptime",
    "gps_fix",
    "gps_satellites",
    "gps_age",
    "clock_source",
]


def test_status_keys_come_in_order_the_old_ones_first(dev: SimDevice) -> None:
    with bench(dev) as b:
        assert list(b.status()) == KEYS


def test_ring_fill_and_pre_event_grow_to_the_configured_pre_event(dev: SimDevice) -> None:
    ring = dev.firmware.ring
    with bench(dev) as b:
        seen: list[dict[str, Any]] = []
        for t in (0.5, 1.0, PRE_EVENT, PRE_EVENT + 1.0, PRE_EVENT + 5.0):
            dev.run(until=t)
            s = b.status()
            assert float(s["time"]) == t and float(s["uptime"]) == t  # booted at 0 here
            assert int(s["frames"]) == int(t * FPS) + 1  # frames 0..t*fps, each at n / fps
            assert int(s["ring_capacity"]) == ring.capacity_bytes
            assert 0 < int(s["ring_bytes"]) <= ring.capacity_bytes
            assert float(s["ring_seconds"]) == round(ring.coverage, 3)
            seen.append(s)
        pre = [float(s["pre_event"]) for s in seen]
        # Until pre_event seconds exist, a trigger gets all there is, from frame 0...
        assert pre[:3] == [0.5, 1.0, PRE_EVENT]
        # ...then at least pre_event, from the keyframe at or before now - pre_event.
        assert all(PRE_EVENT <= p < PRE_EVENT + GOP / FPS for p in pre[3:])
        assert float(seen[-1]["ring_seconds"]) >= PRE_EVENT
        held = [int(s["ring_bytes"]) for s in seen]
        assert held[:3] == sorted(held[:3]) and held[0] < held[2]


def test_pre_event_is_what_a_trigger_at_that_moment_records(dev: SimDevice) -> None:
    with bench(dev) as b:
        dev.run(until=PRE_EVENT + 0.7)  # mid-GOP: more than pre_event to the keyframe before
        promised = float(b.status()["pre_event"])
        assert promised == pytest.approx(PRE_EVENT + 0.7, abs=1e-9)
        assert b.ask("TRIGGER bench") == "OK"  # at the same device time
        dev.run(until=dev.clock.now() + 1.0)
        assert b.ask("STOP") == "OK"
    [manifest] = dev.shutdown()
    assert round(manifest["pre_event_seconds"], 3) == promised


def test_last_trigger_storage_free_and_refusal(dev: SimDevice) -> None:
    dev.storage.fill(free_bytes=10**9)  # the card's model, not the host's disk
    with bench(dev) as b:
        dev.run(until=1.0)
        s = b.status()
        assert (s["last_trigger"], s["last_trigger_source"], s["recording"]) == ("-", "-", "-")
        assert int(s["storage_free"]) == dev.storage.free_bytes() > 10**9 - 10**6
        # A holster draw at 1.5 s: the trigger time is its first edge.
        dev.set_input(1.5, "holster", True)
        dev.run(until=2.0)
        s = b.status()
        assert (s["last_trigger"], s["last_trigger_source"]) == ("1.500000", "holster")
        assert s["state"] == "recording" and s["recording"] != "-"
        dev.run(until=2.5)
        assert b.ask("TRIGGER") == "OK"  # a marker while recording: still the last trigger
        s = b.status()
        assert (s["last_trigger"], s["last_trigger_source"]) == ("2.500000", "console")
        assert b.ask("STOP") == "OK"
        dev.run(until=4.0)
        # A full card: STATUS says so, and a trigger is refused with the reason.
        dev.storage.fill(free_bytes=500_000)
        assert int(b.status()["storage_free"]) == 500_000
        assert b.ask("TRIGGER") == "ERR TRIGGER: refused (storage full)"
        s = b.status()
        assert (s["state"], s["last_trigger"]) == ("buffering", "4.000000")


def test_commands_before_boot_are_not_ready(tmp_path: Path) -> None:
    config = load_config(None, {"video": {"width": 640, "height": 360}})
    dev = SimDevice(config, tmp_path / "store")  # built, not booted
    try:
        with bench(dev) as b:
            for command in ("TRIGGER", "STOP", "MARK"):
                assert b.ask(command) == f"ERR {command}: not ready (state booting)"
            s = b.status()
            assert (s["state"], s["uptime"], s["ring_bytes"], s["pre_event"]) == (
                "booting",
                "-",
                "0",
                "0.000",
            )
    finally:
        dev.hal.close()


def test_config_echo_starts_the_console_echoing(tmp_path: Path) -> None:
    dev = make_device(tmp_path, {"console": {"echo": True}})
    try:
        with bench(dev) as b:
            b.posted.clear()
            b.client.write(b"VERSIOM\x7fN\r")
            assert b.posted.wait(HANG)
            dev.clock.run(until=dev.clock.now())
            ok = b"OK bodycam "
            assert b.client.read_until(ok) == b"VERSIOM\b \bN\r\n" + ok
    finally:
        dev.shutdown()
