"""`bodycam run` on the pi board, for real, on a machine without a Pi.

The pi board's own clock, storage, writer thread, console UART path, systemd
notify socket and signal handling, with only the two parts this machine lacks
(pins and camera) replaced in the config's ``[hal]`` table by the simulated
world's. The console is a pty the firmware opens as it would a UART; the test
is the bench PC at the other end. The run ends as systemd ends it (SIGTERM),
and its recording must verify.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from camera.evidence.keys import generate_key, save_key

#: Bounds a hang only; every wait below ends on what it waits for.
HANG = 60.0


class Pty:
    """The bench end of the console: the pty master, read line by line."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo of what the bench sends before the firmware opens it
        self.path = os.ttyname(slave)
        self._slave = slave  # held open so the firmware opening it never sees a hang-up
        self._buffer = b""

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r\n")

    def until(self, predicate: str) -> list[str]:
        """Lines up to and including the first one containing ``predicate``."""
        lines: list[str] = []
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            while b"\r\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\r\n", 1)
                lines.append(raw.decode("ascii", "replace"))
                if predicate in lines[-1]:
                    return lines
            ready, _, _ = select.select([self.master], [], [], deadline - time.monotonic())
            if ready:
                self._buffer += os.read(self.master, 4096)
        raise AssertionError(f"no line with {predicate!r} within {HANG} s: {lines}")

    def wait_device_time(self, seconds: float) -> float:
        """Ask STATUS until the device clock has reached ``seconds``; its time then."""
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            self.send("STATUS")
            reply = self.until("OK state=")[-1]
            now = float(reply.split(" time=")[1].split()[0])
            if now >= seconds:
                return now
            select.select([], [], [], 0.05)  # the bench polls; the firmware is not waited on
        raise AssertionError(f"device time never reached {seconds} s")

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


class FakeSystemd:
    """NOTIFY_SOCKET's receiving end, read on a thread as systemd reads it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.sock.recv(4096).decode()
            except OSError:
                return
            if not message:
                return
            self.messages.append(message)
            if message.startswith("READY=1"):
                self.ready.set()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(timeout=HANG)
        self.sock.close()


@pytest.fixture
def pty() -> Pty:
    p = Pty()
    yield p
    p.close()


def test_pi_board_run_until_sigterm_records_evidence_that_verifies(
    tmp_path: Path, pty: Pty
) -> None:
    key_file = tmp_path / "device.key"
    save_key(generate_key(), key_file)
    storage = tmp_path / "recordings"
    config = tmp_path / "bench.toml"
    config.write_text(
        f"""
[device]
board = "pi"
storage = "{storage}"
key_file = "{key_file}"

[hal]
gpio = "mock"
sensor = "synthetic"

[video]
width = 640
height = 360
fps = 15
gop = 15
bitrate = 500000

[buffer]
pre_event = 2.0

[console]
enabled = true
port = "{pty.path}"
"""
    )
    systemd = FakeSystemd(tmp_path / "notify.sock")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        "WATCHDOG_USEC": "200000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "camera", "run", "--config", str(config), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # READY=1: booted, console open
        assert systemd.ready.wait(HANG), "the firmware never told systemd it was ready"
        triggered = pty.wait_device_time(2.5)  # a full pre-event buffered
        pty.send("EVENTS ON")
        pty.until("OK")
        pty.send("TRIGGER holster")
        pty.until(" durable ")  # the pre-event is on storage
        pty.wait_device_time(triggered + 1.0)
        pty.send("STOP")
        pty.until(" saved ")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    summary = json.loads(out)
    assert summary["board"] == "pi" and summary["scenario"] is None
    assert summary["interrupted"] == "SIGTERM"
    [rec] = summary["recordings"]
    assert rec["trigger"]["source"] == "console" and rec["stop"]["reason"] == "console"
    assert rec["pre_event_seconds"] >= 2.0 - 1 / 15
    assert rec["frames"] >= 3 * 15 - 2  # the pre-event and the second recorded after
    systemd.close()
    sent = systemd.messages
    assert sent[0].startswith("READY=1")
    # Pinged every 0.1 s (half of WATCHDOG_USEC) through a run of several seconds.
    assert sent.count("WATCHDOG=1\n") >= 10
    assert sent[-1] == "STOPPING=1\n"
    # The recording of a real-clock run verifies with the device's own key.
    pub = next(storage.glob("*.pub.pem"))
    done = subprocess.run(
        [sys.executable, "-m", "camera", "verify", "--key", str(pub), str(storage)],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((Path(rec["path"]) / "manifest.json").read_text())
    assert manifest["test_key"] is False


def test_a_sigterm_during_boot_is_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd may stop the service while it recovers at boot: the run must end, not run on.

    The loop clears a plain stop when it starts, so a signal that arrived
    before it would be forgotten and systemd would have to SIGKILL the
    camera mid-recording. In-process, in the main thread, as the CLI runs it.
    """
    from camera.config import load_config
    from camera.device import Device
    from camera.live import run_live

    key_file = tmp_path / "device.key"
    save_key(generate_key(), key_file)
    config = load_config(
        None,
        {
            "device": {"board": "pi", "storage": str(tmp_path / "s"), "key_file": str(key_file)},
            "hal": {"gpio": "mock", "sensor": "synthetic"},
            "video": {"width": 640, "height": 360, "fps": 10, "gop": 10, "bitrate": 300_000},
        },
    )
    boot = Device.boot

    def boot_then_sigterm(self: Device) -> Device:
        booted = boot(self)
        os.kill(os.getpid(), signal.SIGTERM)  # handled before run() starts the loop
        return booted

    monkeypatch.setattr(Device, "boot", boot_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    report = run_live(config)
    assert report.interrupted == "SIGTERM"
    assert report.device_seconds < 30.0  # ended at once, not at pytest's timeout
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back
