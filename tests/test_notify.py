"""hal/notify.py against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal.notify import Notifier, keep_alive
from sim.clock import VirtualClock


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: collects every datagram sent to it."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[FakeSystemd, str]]:
    address = str(tmp_path / "notify.sock")
    server = FakeSystemd(address)
    yield server, address
    server.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[FakeSystemd, str]]:
    name = f"bodycam-test-notify-{os.getpid()}-{threading.get_ident()}"
    server = FakeSystemd("\0" + name)
    yield server, "@" + name
    server.close()


@pytest.mark.parametrize("form", ["path_socket", "abstract_socket"])
def test_ready_status_stopping_reach_the_socket(form: str, request: pytest.FixtureRequest) -> None:
    server, spec = request.getfixturevalue(form)
    notifier = Notifier({"NOTIFY_SOCKET": spec})
    assert notifier.enabled
    notifier.ready("booted\nrecording")
    notifier.status("idle")
    notifier.ping()
    notifier.stopping()
    notifier.close()
    assert server.messages() == [
        "READY=1\nSTATUS=booted recording\n",  # a newline would start a bogus assignment
        "STATUS=idle\n",
        "WATCHDOG=1\n",
        "STOPPING=1\n",
    ]


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "10000000"})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.ping()
    notifier.stopping()
    clock = VirtualClock()
    assert keep_alive(clock, notifier) is None
    assert clock._heap.next_time() is None  # nothing scheduled


def test_watchdog_interval_is_watchdog_usec_for_our_pid_only() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "10000000"}
    assert Notifier(env).watchdog_interval() == 10.0
    assert Notifier({**env, "WATCHDOG_PID": "4242"}, pid=4242).watchdog_interval() == 10.0
    assert Notifier({**env, "WATCHDOG_PID": "4242"}, pid=7).watchdog_interval() is None
    assert Notifier({**env, "WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert Notifier({**env, "WATCHDOG_USEC": "ten"}).watchdog_interval() is None
    assert Notifier({"NOTIFY_SOCKET": "/run/x"}).watchdog_interval() is None


def test_keep_alive_pings_every_half_interval_on_the_virtual_clock(
    path_socket: tuple[FakeSystemd, str],
) -> None:
    server, spec = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": spec, "WATCHDOG_USEC": "10000000"})
    clock = VirtualClock()
    seen: list[float] = []
    ping = notifier.ping
    notifier.ping = lambda: (seen.append(clock.now()), ping())[1]  # type: ignore[method-assign]
    pinger = keep_alive(clock, notifier)
    assert pinger is not None and pinger.period == 5.0
    clock.run(until=20.0)
    assert seen == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert server.messages() == ["WATCHDOG=1\n"] * 5
    pinger.stop()
    clock.run(until=40.0)
    assert server.messages() == []


def test_pings_come_only_from_the_loop(path_socket: tuple[FakeSystemd, str]) -> None:
    """A loop that is not turning sends nothing: that is what lets systemd restart a wedge."""
    server, spec = path_socket
    threads = threading.active_count()
    notifier = Notifier({"NOTIFY_SOCKET": spec, "WATCHDOG_USEC": "2000000"})
    clock = VirtualClock()
    keep_alive(clock, notifier)
    assert threading.active_count() == threads  # no pinging thread of its own
    assert server.messages() == []  # nothing until the loop runs
    clock.run(until=3.0)
    assert len(server.messages()) == 4  # 0, 1, 2, 3


def test_a_send_error_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.WARNING, logger="hal.notify"):
        notifier.ready("x")
        notifier.ping()
        notifier.stopping()
    warnings = [r for r in caplog.records if r.name == "hal.notify"]
    assert len(warnings) == 1
    assert "gone.sock" in warnings[0].getMessage()


def test_an_unusable_notify_socket_disables_notifying(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hal.notify"):
        notifier = Notifier({"NOTIFY_SOCKET": "relative/path", "WATCHDOG_USEC": "1000000"})
        notifier.ready()
    assert not notifier.enabled
    assert keep_alive(VirtualClock(), notifier) is None
    assert len([r for r in caplog.records if r.name == "hal.notify"]) == 1


def test_a_systemd_that_stopped_reading_never_blocks_the_loop(
    path_socket: tuple[FakeSystemd, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the live test: with blocking sends the loop wedged at the 11th ping.

    A Unix datagram queue holds only a few messages; pings beyond it are
    dropped (and logged once) instead of stopping the camera.
    """
    server, address = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})
    finished = threading.Event()

    def ping_a_lot() -> None:
        for _ in range(1000):
            notifier.ping()
        finished.set()

    pinger = threading.Thread(target=ping_a_lot, daemon=True)
    with caplog.at_level(logging.WARNING, logger="hal.notify"):
        pinger.start()
        pinger.join(timeout=30)  # bounds a hang only: 1000 sends take milliseconds
    assert finished.is_set(), "a ping blocked on a full notify socket"
    received = server.messages()
    assert 0 < len(received) < 1000
    assert [r.name for r in caplog.records].count("hal.notify") == 1
