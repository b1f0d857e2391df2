"""``DOCK`` on the serial console: the offload runs beside a firmware that keeps recording.

A device on the real clock (as on a Pi) with its console on a pty and an
evidence server on loopback: a recording is made and closed, a second one is
running when ``DOCK`` arrives. The first goes (EVT offloaded, deleted), the
second is busy (EVT kept) and, stopped afterwards, links to the first through
its kept receipt. Waits are readlines with timeouts, as in test_console.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest

from camera.console import Console
from camera.evidence.audit import read_audit
from server.enroll import enroll
from sim.console_pty import open_pty_console
from tests.conftest import make_device
from tests.offload_support import LiveServer, live_server
from tests.test_console import REALTIME, Rig


@contextmanager
def docked_rig(root: Path, srv: LiveServer) -> Iterator[Rig]:
    offload = {"server": srv.url, "server_key": str(srv.public_key)}
    dev = make_device(root, {**REALTIME, "offload": offload})
    enroll(srv.server.meta, root / "store" / "BWC-0001.pub.pem")
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


def test_dock_offloads_the_closed_recording_while_the_next_one_records(tmp_path: Path) -> None:
    with live_server(tmp_path / "data") as srv, docked_rig(tmp_path, srv) as rig:
        storage = rig.dev.storage_root
        assert rig.command("EVENTS ON") == "OK"
        assert rig.command("TRIGGER") == "OK"
        first = rig.event("start")["recording"]
        assert rig.command("STOP") == "OK"
        rig.event("saved", recording=first)
        assert rig.command("TRIGGER") == "OK"
        second = rig.event("start")["recording"]
        assert rig.command("DOCK") == "OK"
        assert rig.event("offloaded", recording=first)["deleted"] == "1"
        kept = rig.event("kept", recording=second)
        assert unquote(kept["reason"]) == "still being written"
        done = rig.event("docked")
        assert (done["offloaded"], done["kept"], done["stopped"]) == ("1", "1", "-")
        assert rig.status()["state"] == "recording"  # it never stopped recording
        assert rig.command("STOP") == "OK"
        rig.event("saved", recording=second)
        assert not (storage / first).exists()
        receipt = json.loads((storage / "receipts" / f"{first}.json").read_bytes())
        manifest = json.loads((storage / second / "manifest.json").read_bytes())
        assert manifest["previous"] == {
            "recording_id": first,
            "manifest_sha256": receipt["manifest_sha256"],
        }
        assert srv.get_receipt(first, rig.dev.firmware.key) == receipt
        events = [e["event"] for e in read_audit(storage / "audit.jsonl")]
        assert events.count("offloaded") == events.count("deleted") == 1


class _NoPort:
    """The console's port, never used: these replies come straight from the handler."""

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("offload", "args", "reply"),
    [
        ({}, [], "ERR DOCK: no evidence server (set [offload] server and server_key)"),
        ({"server": "http://127.0.0.1:9"}, [], "ERR DOCK: no evidence server"),
        ({}, ["now"], "ERR DOCK: takes no arguments (usage: DOCK)"),
        (
            {"server": "http://127.0.0.1:9", "server_key": "/nonexistent/server.pub.pem"},
            [],
            "ERR DOCK: server key: /nonexistent/server.pub.pem: ",
        ),
    ],
)
def test_dock_says_what_is_missing(
    tmp_path: Path, offload: dict[str, str], args: list[str], reply: str
) -> None:
    dev = make_device(tmp_path, {"offload": offload})
    try:
        console = Console(dev.firmware, _NoPort())  # type: ignore[arg-type]
        got = console._docked(args, dev.clock.now())
        assert isinstance(got, str) and got.startswith(reply), got
        assert "\n" not in got
    finally:
        dev.shutdown()
