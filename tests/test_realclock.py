"""A real-clock run whose recording verifies (issue 10 item 5).

The Pi's path without a Pi: the firmware on the monotonic clock, a video file
read through OpenCV standing in for the camera (so frame times are capture
times, jitter and all), the writer on its thread, the console's TRIGGER and
STOP over a pty as a bench PC would send them, and the system clock stepped
(a fake OS clock) while recording. ``verify`` must accept what it wrote:
the manifest says the times are the sensor's, and they are judged as such.

About two seconds of real time; nothing sleeps: the run ends when the
firmware reports the recording saved (a deadline only guards a hang).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import serial

from camera.config import load_config
from camera.evidence.keys import test_key
from camera.evidence.records import MANIFEST
from camera.evidence.verify import verify_recording
from camera.evidence.verify.trust import keys_beside
from camera.firmware import Firmware
from hal.board import open_hal
from hal.clock.monotonic import MonotonicClock, os_utc
from sim.console_pty import open_pty_console

WIDTH, HEIGHT, FPS = 512, 288, 15  # the config's smallest width (the SPEC 8 code strip)
DEVICE = "BWC-RT01"
#: The OS clock jumps this far (an NTP step) while the recording runs.
OS_STEP = 2.0


def write_video(path: Path, seconds: float) -> None:
    """A moving gradient: something to encode, and no SPEC 8 code to misread."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert out.isOpened()
    x = np.arange(WIDTH, dtype=np.uint16)[None, :]
    y = np.arange(HEIGHT, dtype=np.uint16)[:, None]
    for n in range(round(seconds * FPS)):
        image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        image[..., 0] = (x + 4 * n) % 256
        image[..., 1] = (y + 3 * n) % 256
        image[..., 2] = (x + y + 5 * n) % 256
        out.write(image)
    out.release()


def test_a_real_clock_recording_verifies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    video = tmp_path / "camera.avi"
    write_video(video, 6.0)
    config = load_config(
        None,
        {
            "device": {"id": DEVICE},
            "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": 5, "bitrate": 500_000},
            "buffer": {"pre_event": 0.5},
            "recording": {"segment_seconds": 0.5},  # a few segments: boundaries are checked too
        },
    )
    hal = open_hal(
        "pi",
        storage_root=tmp_path / "store",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        overrides={
            "clock": "monotonic",
            "gpio": "mock",
            "sensor": "opencv",
            "storage": "local",
            "worker": "thread",
        },
        camera_source=str(video),
    )
    clock = hal.clock
    assert isinstance(clock, MonotonicClock) and clock.follows_os
    offset = [0.0]
    clock.utc_now = lambda: os_utc() + timedelta(seconds=offset[0])
    clock.ntp = lambda: True  # the step is NTP's, whatever this host's own NTP says
    clock.check_interval = 0.1  # compare often, so the step lands inside the short recording
    firmware = Firmware(config, hal, test_key(DEVICE, 0))
    caplog.set_level(logging.INFO, logger="camera.firmware")
    firmware.boot()
    console, path = open_pty_console(firmware)
    client = serial.Serial(path, 115200, timeout=2.0)
    seen: list[dict[str, Any]] = []

    def on_event(entry: dict[str, Any]) -> None:
        seen.append(entry)
        if entry["kind"] == "start":
            offset[0] = OS_STEP  # NTP steps the system clock mid-recording
            clock.call_later(0.9, lambda: client.write(b"STOP\r\n"))
        elif entry["kind"] == "saved":
            clock.stop()

    firmware.listeners.append(on_event)
    try:
        # Sent as a bench PC would, once the pre-event buffer holds something.
        clock.call_later(0.8, lambda: client.write(b"TRIGGER bench\r\n"))
        firmware.run(until=8.0)  # a guard only: the "saved" event ends the run
        firmware.shutdown()
        replies = [client.readline(), client.readline()]
    finally:
        console.close()
        client.close()
        hal.close()

    assert replies == [b"OK\r\n", b"OK\r\n"], (replies, seen)
    [rec] = [p for p in (tmp_path / "store").iterdir() if (p / MANIFEST).is_file()]
    m = json.loads((rec / MANIFEST).read_text())
    # auto: libx264 here (no V4L2 M2M device); the manifest names whichever opened.
    assert m["timing"] == "sensor" and m["encoder"] == firmware.encoder.name
    assert m["trigger"]["source"] == "console" and m["trigger"]["detail"] == "bench"
    assert m["stop"]["reason"] == "console"
    assert m["pre_event_seconds"] > 0 and m["frames"] >= FPS and len(m["segments"]) >= 2
    [step] = m["wall_clock_steps"]
    assert step["seconds"] == pytest.approx(OS_STEP, abs=0.1) and step["source"] == "ntp"
    assert m["start_time"] <= step["time"] <= m["end_time"]
    assert any(f"encoder {m['encoder']} (h264" in r.getMessage() for r in caplog.records)
    report = verify_recording(rec, keys_beside(tmp_path / "store"))
    assert report.ok, report.problems
    assert report.frames == m["frames"]
    # Wall time is the OS's (not a simulation's fixed start): the trigger came before the step.
    wall = datetime.fromisoformat(m["trigger"]["wall_time"].replace("Z", "+00:00"))
    assert abs((os_utc() - wall).total_seconds()) < 60
