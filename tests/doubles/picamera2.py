"""FakePicamera2: a stand-in for the subset of Picamera2 we use; not Picamera2.

It mimics only what :mod:`hal.sensor.picamera2` calls, with Picamera2's
signatures: ``Picamera2.global_camera_info()``, ``Picamera2(camera_num)``,
``create_video_configuration(main=, controls=)``, ``configure``, ``start``,
``stop``, ``close``, ``capture_request(wait=)`` (a number of seconds: raises
TimeoutError when no frame came), ``cancel_all_and_flush()`` (a waiting
capture raises CancelledError), and a request's ``make_array``,
``get_metadata`` and ``release``. There is no libcamera, no sensor and no
timing behind it: frames are whatever the test :meth:`FakePicamera2.feed`\\ s,
handed out in order, so tests are deterministic.

Install it with :func:`install` (``sys.modules["picamera2"]``), as the backend
imports ``picamera2`` lazily.
"""

from __future__ import annotations

import sys
import threading
import types
from collections import deque
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

#: global_camera_info() entries as Picamera2 reports them on a Pi 5.
CSI_CAMERA = {"Model": "imx708", "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a", "Num": 0}
USB_CAMERA = {"Model": "uvcvideo", "Id": "/base/axi/pcie@120000/rp1/usb@200000-1:1.0-046d:0825"}


@dataclass
class FakeFrame:
    """One frame to hand out: its SensorTimestamp (ns; None leaves it out of the metadata)."""

    sensor_timestamp_ns: int | None
    #: make_array raises, like a buffer that cannot be mapped.
    unreadable: bool = False
    #: (width, height) of the array, if not the configured size.
    size: tuple[int, int] | None = None


class FakeRequest:
    """A completed request: an image of the configured size, its metadata, a release count."""

    def __init__(self, camera: FakePicamera2, frame: FakeFrame, index: int) -> None:
        self.camera = camera
        self.frame = frame
        self.index = index
        self.releases = 0

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main"
        if self.frame.unreadable:
            raise RuntimeError("fake: buffer cannot be mapped")
        w, h = self.frame.size or self.camera.config["main"]["size"]
        # Pixel bytes [B, G, R] = [index, 100, 200], as RGB888 lays them out.
        image = np.empty((h, w, 3), np.uint8)
        image[..., 0], image[..., 1], image[..., 2] = self.index % 256, 100, 200
        return image

    def get_metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {"ExposureTime": 10_000, "FrameDuration": 33_333}
        if self.frame.sensor_timestamp_ns is not None:
            md["SensorTimestamp"] = self.frame.sensor_timestamp_ns
        return md

    def release(self) -> None:
        self.releases += 1
        if self.releases > 1:
            raise RuntimeError("fake: request released twice")


class FakePicamera2:
    """One fake camera; the class attributes describe the fake system (see :func:`fake_class`)."""

    #: What global_camera_info() reports.
    cameras: ClassVar[list[dict[str, Any]]] = []
    #: Every object created, in order (Picamera2 objects must be created once).
    instances: ClassVar[list[FakePicamera2]] = []

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= len(self.cameras):
            raise IndexError("list index out of range")  # what Picamera2 raises
        type(self).instances.append(self)
        self.camera_num = camera_num
        self.config: dict[str, Any] = {}
        self.calls: list[str] = []
        self.requests: list[FakeRequest] = []
        self.started = False
        self.closed = False
        self._queue: deque[FakeFrame] = deque()
        self._cond = threading.Condition()
        self._waiting = False
        self._cancelled = False
        self._handed_out = 0

    @classmethod
    def global_camera_info(cls) -> list[dict[str, Any]]:
        return [dict(c) for c in cls.cameras]

    def create_video_configuration(
        self, main: dict[str, Any] | None = None, controls: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config: dict[str, Any]) -> None:
        assert not self.started, "Picamera2 must be stopped before configure()"
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        self.calls.append("start")
        self.started = True

    def stop(self) -> None:
        self.calls.append("stop")
        with self._cond:
            self.started = False
            self._cond.notify_all()

    def close(self) -> None:
        self.calls.append("close")
        self.stop()
        self.closed = True

    def cancel_all_and_flush(self) -> None:
        """Cancel a capture that is waiting (it raises CancelledError); else nothing."""
        with self._cond:
            if self._waiting:
                self._cancelled = True
                self._cond.notify_all()

    def capture_request(self, wait: float | None = None) -> FakeRequest:
        with self._cond:
            self._waiting = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._queue or self._cancelled, timeout=wait)
            self._waiting = False
            if self._cancelled:
                self._cancelled = False
                raise CancelledError()
            if not self._queue:
                raise TimeoutError("fake: no frame")
            frame = self._queue.popleft()
            request = FakeRequest(self, frame, self._handed_out)
            self._handed_out += 1
            self.requests.append(request)
            return request

    # -- for tests --------------------------------------------------------
    def feed(self, *frames: FakeFrame) -> None:
        """Queue frames for capture_request to hand out."""
        with self._cond:
            self._queue.extend(frames)
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Return once every fed frame was taken and the reader waits for the next.

        The reader posts a frame before asking for the next one, so by then
        every fed frame is on the clock's loop (or was dropped).
        """
        with self._cond:
            if not self._cond.wait_for(lambda: not self._queue and self._waiting, timeout):
                raise AssertionError("fake: the reader never came back for another frame")


def fake_class(cameras: list[dict[str, Any]]) -> type[FakePicamera2]:
    """A FakePicamera2 class of its own (fresh class state) reporting ``cameras``."""
    return type("FakePicamera2", (FakePicamera2,), {"cameras": list(cameras), "instances": []})


def install(monkeypatch: pytest.MonkeyPatch, cls: type[FakePicamera2] | None) -> None:
    """Make ``import picamera2`` find ``cls`` (None: the import fails, as when not installed)."""
    if cls is None:
        monkeypatch.setitem(sys.modules, "picamera2", None)
        return
    module = types.ModuleType("picamera2")
    module.Picamera2 = cls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
