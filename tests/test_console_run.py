"""`bodycam run --console`: the console served on a pty while a scenario runs in real time.

Nothing here depends on how fast the host is. The client talks from its own
thread, line by line, with timeouts that only bound a hang; the run cannot
end under it, because the last progress callback (on the loop's thread, before
shutdown) keeps the loop serving console commands until the client is done.
Whatever the client thread raises is re-raised in the test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import serial

import sim.console_pty
from sim.runner import run_scenario
from sim.scenario import parse_scenario

#: Bounds a hang only; a healthy exchange takes milliseconds.
HANG = 60.0
COMMANDS = (b"VERSION\r\n", b"TRIGGER holster\r\n", b"STATUS\r\n")


def test_console_during_realtime_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = parse_scenario(
        {
            "scenario": {"name": "console", "duration": 1.5},
            "config": {"video": {"width": 640, "height": 360}, "buffer": {"pre_event": 1.0}},
        },
        source="<test>",
    )
    served: list[Any] = []
    serve = sim.console_pty.open_pty_console

    def open_console(firmware: Any, **kwargs: Any) -> Any:
        served.append(firmware)
        return serve(firmware, **kwargs)

    monkeypatch.setattr(sim.console_pty, "open_pty_console", open_console)

    replies: list[bytes] = []
    failures: list[BaseException] = []
    done = threading.Event()
    clients: list[threading.Thread] = []

    def talk(path: str) -> None:
        try:
            with serial.Serial(path, timeout=HANG) as port:
                for command in COMMANDS:
                    port.write(command)
                    replies.append(port.readline())
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)
        finally:
            done.set()

    def client(path: str) -> None:
        clients.append(threading.Thread(target=talk, args=(path,), name="console-client"))
        clients[-1].start()

    def progress(t: float, total: float) -> None:
        """At the end of the run, serve the console until the client is done."""
        if t < total:
            return
        [firmware] = served
        for _ in range(int(HANG / 0.005)):
            if done.wait(0.005):
                break
            firmware.clock.run(until=firmware.clock.now())  # the commands it sent

    result = run_scenario(scenario, tmp_path, realtime=True, console=client, progress=progress)
    [thread] = clients
    thread.join(HANG)
    assert not thread.is_alive(), "the console client hung"
    if failures:
        raise failures[0]
    assert len(replies) == len(COMMANDS) and all(r.endswith(b"\r\n") for r in replies), replies
    version, trigger, status = (r.decode().strip() for r in replies)
    assert version.startswith("OK bodycam ")
    assert trigger == "OK"
    assert status.startswith("OK state=recording")
    [m] = result.recordings
    assert m["trigger"]["source"] == "console" and m["trigger"].get("detail") == "holster"
    assert m["stop"]["reason"] == "end_of_run"
