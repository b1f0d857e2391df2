"""A USB (UVC) camera or a video file through OpenCV's VideoCapture.

``cap.read()`` blocks for up to a frame period, so it runs on its own daemon
thread and hands each frame to the clock's loop with
:meth:`~hal.clock.Clock.call_soon_threadsafe`; the core only ever sees frames
on the loop thread.

A V4L2 device is asked for MJPG (the only way most UVC cameras reach 720p30
over USB 2) and a driver queue of :data:`DRIVER_BUFFERS`. Each frame is dated
with the driver's own timestamp: with the V4L2 backend,
``CAP_PROP_POS_MSEC`` after a read is the dequeued buffer's timestamp in
milliseconds (OpenCV's ``cap_v4l.cpp`` copies ``v4l2_buffer.timestamp``;
0 before the first frame), which drivers flagged
``V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`` (uvcvideo among them) take from
CLOCK_MONOTONIC. :class:`~hal.sensor.timing.FrameTimer` converts it to device
time and numbers frames from the timestamps, so a dropout skips numbers and
shows up downstream as a declared gap while read-thread jitter does not.
Without a usable timestamp the frame is stamped at the read.

Nothing is opened at import: CI machines and the simulator have no camera.
A video file stands in for a camera in tests and demos and is paced to
``fps`` on the clock, because a file otherwise reads as fast as the disk; its
``POS_MSEC`` is a media position, not a capture time, so files are stamped at
the read unless a test injects a timestamp source.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np

from hal.clock import Clock
from hal.sensor import FrameCallback, Sensor, SensorError
from hal.sensor.conform import conform
from hal.sensor.timing import MAX_RETRY_DELAY, RETRY_DELAY, FrameTimer, retry_delay

__all__ = [
    "MAX_RETRY_DELAY",
    "REOPEN_AFTER",
    "RETRY_DELAY",
    "OpenCVSensor",
    "open_capture",
    "retry_delay",
    "stamp_at_read",
    "v4l2_buffer_time",
]

log = logging.getLogger(__name__)

#: How long stop() waits for the reader; a wedged driver must not hang shutdown.
JOIN_TIMEOUT = 2.0
#: After REOPEN_AFTER failed reads in a row the device is reopened each time
#: (a replugged USB camera needs a fresh handle); reads back off per
#: :func:`~hal.sensor.timing.retry_delay` in between.
REOPEN_AFTER = 3
#: Buffers in the driver's queue. One would keep frames freshest, but then the
#: driver has nowhere to put a frame that completes while we decode the last
#: one, and a busy host drops every other frame; two keep the full rate with
#: frames at most one period old, and the buffer timestamp dates them anyway.
#: The default (4) hands out frames several periods stale.
DRIVER_BUFFERS = 2


class VideoCaptureLike(Protocol):
    """The part of :class:`cv2.VideoCapture` the sensor uses (so tests can wrap one)."""

    def isOpened(self) -> bool: ...  # OpenCV's spelling
    def read(self) -> tuple[bool, Any]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


#: Opens ``source`` (is_file tells a video file from a device).
CaptureOpener = Callable[[str, bool], VideoCaptureLike]
#: The capture time (CLOCK_MONOTONIC seconds) of the frame just read, or None.
TimestampSource = Callable[[VideoCaptureLike], float | None]


def open_capture(source: str, is_file: bool) -> VideoCaptureLike:
    """A VideoCapture on the V4L2 backend for a device (on Linux), any backend for a file.

    OpenCV's own warnings are silenced while it opens: a missing camera is
    reported once, by us, as one line naming it, not as OpenCV's log noise.
    """
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        if source.isdigit():
            return cv2.VideoCapture(int(source), api)
        if not is_file:
            return cv2.VideoCapture(source, api)
        return cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(level)


def v4l2_buffer_time(cap: VideoCaptureLike) -> float | None:
    """The V4L2 buffer timestamp of the frame just read, in seconds; None when absent (0)."""
    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    return ms / 1000.0 if ms > 0 else None


def stamp_at_read(cap: VideoCaptureLike) -> float | None:
    """No capture time: the frame is dated when it was read."""
    return None


def _is_device_node(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return path.startswith("/dev/")  # a missing /dev/videoN is still a device, not a file


class OpenCVSensor(Sensor):
    """Frames from ``source``: a device index ("0"), a V4L2 node, or a video file.

    ``capture`` and ``timestamps`` replace how the source is opened and where
    capture times come from; tests feed a video file through a wrapper that
    reports chosen driver timestamps. By default a device on Linux uses the
    V4L2 buffer timestamp and anything else is stamped at the read.
    """

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        return cls(clock, width, height, fps, source=source)

    def __init__(
        self,
        clock: Clock,
        width: int,
        height: int,
        fps: int,
        source: str = "0",
        *,
        capture: CaptureOpener = open_capture,
        timestamps: TimestampSource | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        super().__init__(clock, width, height, fps)
        self.source = source
        self.is_file = not source.isdigit() and not _is_device_node(source)
        if timestamps is None:
            v4l2 = not self.is_file and sys.platform.startswith("linux")
            timestamps = v4l2_buffer_time if v4l2 else stamp_at_read
        self._timestamps = timestamps
        self._open_capture = capture
        self.timer = FrameTimer(clock, fps, repr(source))
        self._cap_lock = threading.Lock()  # reader and stop() may both release
        self._cap: VideoCaptureLike | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._generation = 0  # frames posted by an earlier start() are dropped
        self.native_size: tuple[int, int] = (0, 0)
        self._open()  # fail at construction, where the caller can report the bad source

    # -- device -----------------------------------------------------------
    def _open(self) -> None:
        cap = self._open_capture(self.source, self.is_file)
        if not cap.isOpened():
            cap.release()
            what = "video file" if self.is_file else "USB camera (V4L2)"
            raise SensorError(f"{what} {self.source!r} cannot be opened")
        if not self.is_file:
            # FOURCC first: many UVC cameras only offer high resolutions as MJPG,
            # and setting the size under YUYV silently falls back to a small one.
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, DRIVER_BUFFERS)
        # Unsupported settings fail silently: believe only what the driver reports.
        self.native_size = (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if self.native_size != (self.width, self.height):
            log.info(
                "camera %r: delivers %dx%d, resizing to %dx%d",
                self.source,
                *self.native_size,
                self.width,
                self.height,
            )
        self._cap = cap

    def _release(self) -> None:
        with self._cap_lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    # -- Sensor -----------------------------------------------------------
    def start(self, on_frame: FrameCallback) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("sensor already started")
        if self._cap is None:
            self._open()  # started again after stop()
        self._stop_event = threading.Event()
        self._generation += 1
        self._thread = threading.Thread(
            target=self._reader,
            args=(self._cap, self._stop_event, self._generation, on_frame),
            name=f"camera {self.source}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        self._generation += 1  # anything still queued on the loop is now stale
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                # Releasing under a blocked read() can crash the backend; the
                # reader releases the capture itself once read() returns.
                log.warning(
                    "camera %r: reader did not stop within %.1f s", self.source, JOIN_TIMEOUT
                )
                return
        self._thread = None
        self._release()

    # -- reader thread ----------------------------------------------------
    def _reader(
        self,
        cap: VideoCaptureLike,
        stop: threading.Event,
        generation: int,
        on_frame: FrameCallback,
    ) -> None:
        period = 1.0 / self.fps
        due = self.clock.now()
        failures = 0
        try:
            while not stop.is_set():
                if self.is_file:
                    # Pace to fps; Event.wait so stop() never waits out a frame period.
                    delay = due - self.clock.now()
                    if delay > 0 and stop.wait(delay):
                        break
                    # Behind by more than a period (a stalled host): go on from
                    # now, as a camera would, instead of reading a burst of
                    # frames stamped closer together than any camera sends them.
                    due = max(due, self.clock.now() - period) + period
                ok, image = cap.read()
                read = self.clock.now()
                if stop.is_set():
                    break
                if not ok or image is None:
                    if self.is_file:
                        log.info("camera %r: end of file", self.source)
                        break
                    failures += 1
                    delay = retry_delay(failures)
                    log.warning(
                        "camera %r: read failed (%d in a row), retrying in %.1f s",
                        self.source,
                        failures,
                        delay,
                    )
                    if stop.wait(delay):
                        break
                    if failures >= REOPEN_AFTER:
                        cap = self._reopen(cap)
                    continue
                if failures:
                    log.warning("camera %r: back after %d failed reads", self.source, failures)
                    failures = 0
                n, t = self.timer.stamp(self._timestamps(cap), read)
                image = conform(image, self.width, self.height)
                self.clock.call_soon_threadsafe(
                    functools.partial(self._deliver, generation, on_frame, image, n, t)
                )
        except Exception:
            log.exception("camera %r: reader failed", self.source)
        finally:
            if stop.is_set():
                self._release()  # stop() may have given up waiting for us

    def _reopen(self, cap: VideoCaptureLike) -> VideoCaptureLike:
        """A fresh handle on the device; the old one if it cannot be opened yet."""
        self._release()
        try:
            self._open()
        except SensorError as exc:
            log.warning("camera %r: reopen failed: %s", self.source, exc)
            return cap
        return self._cap if self._cap is not None else cap

    def _number(self, t: float) -> int:
        """The frame number at device time ``t`` (see :meth:`FrameTimer.number`)."""
        return self.timer.number(t)

    def _conform(self, image: np.ndarray) -> np.ndarray:
        return conform(image, self.width, self.height)

    def _deliver(
        self, generation: int, on_frame: FrameCallback, image: np.ndarray, n: int, t: float
    ) -> None:
        if generation == self._generation:
            on_frame(image, n, t)
