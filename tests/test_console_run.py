"""`bodycam run --console`: the console served on a pty while a scenario runs in real time."""

from __future__ import annotations

import threading
from pathlib import Path

import serial

from sim.runner import run_scenario
from sim.scenario import parse_scenario


def test_console_during_realtime_run(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "scenario": {"name": "console", "duration": 2.5},
            "config": {"video": {"width": 640, "height": 360}, "buffer": {"pre_event": 1.0}},
        },
        source="<test>",
    )
    replies: list[str] = []
    clients: list[threading.Thread] = []

    def client(path: str) -> None:
        def talk() -> None:
            with serial.Serial(path, timeout=5) as port:
                for command in (b"VERSION\r\n", b"TRIGGER holster\r\n", b"STATUS\r\n"):
                    port.write(command)
                    replies.append(port.readline().decode().strip())

        clients.append(threading.Thread(target=talk))
        clients[-1].start()

    result = run_scenario(scenario, tmp_path, realtime=True, console=client)
    for t in clients:
        t.join()
    assert replies[0].startswith("OK bodycam ")
    assert replies[1] == "OK"
    assert replies[2].startswith("OK state=recording")
    [m] = result.recordings
    assert m["trigger"]["source"] == "holster"
    assert m["stop"]["reason"] == "end_of_run"
