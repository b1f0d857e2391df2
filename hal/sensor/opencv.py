"""A USB (UVC) camera or a video file through OpenCV's VideoCapture.

``cap.read()`` blocks for up to a frame period, so it runs on its own daemon
thread and hands each frame to the clock's loop with
:meth:`~hal.clock.Clock.call_soon_threadsafe`; the core only ever sees frames
on the loop thread. Frames are stamped with device time at the read, and a
stall longer than 1.5 frame periods skips frame numbers, so a camera hiccup
shows up downstream as a gap instead of silently compressing time.

Nothing is opened at import: CI machines and the simulator have no camera.
A video file stands in for a camera in tests and demos and is paced to
``fps`` on the clock, because a file otherwise reads as fast as the disk.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import sys
import threading

import cv2
import numpy as np

from hal.clock import Clock
from hal.sensor import FrameCallback, Sensor, SensorError

log = logging.getLogger(__name__)

#: How long stop() waits for the reader; a wedged driver must not hang shutdown.
JOIN_TIMEOUT = 2.0
#: Pause after a failed device read before trying again, doubling per failure
#: up to MAX_RETRY_DELAY; after REOPEN_AFTER failures in a row the device is
#: reopened each time (a replugged USB camera needs a fresh handle).
RETRY_DELAY = 0.1
MAX_RETRY_DELAY = 5.0
REOPEN_AFTER = 3


def retry_delay(failures: int) -> float:
    """Backoff after ``failures`` consecutive failed reads (>= 1)."""
    return min(MAX_RETRY_DELAY, RETRY_DELAY * 2 ** (failures - 1))


def _is_device_node(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return path.startswith("/dev/")  # a missing /dev/videoN is still a device, not a file


class OpenCVSensor(Sensor):
    """Frames from ``source``: a device index ("0"), a V4L2 node, or a video file."""

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        return cls(clock, width, height, fps, source=source)

    def __init__(self, clock: Clock, width: int, height: int, fps: int, source: str = "0") -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        super().__init__(clock, width, height, fps)
        self.source = source
        self.is_file = not source.isdigit() and not _is_device_node(source)
        self._cap_lock = threading.Lock()  # reader and stop() may both release
        self._cap: cv2.VideoCapture | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._generation = 0  # frames posted by an earlier start() are dropped
        self._last: tuple[int, float] | None = None  # (number, time) of the last frame
        self.native_size: tuple[int, int] = (0, 0)
        self._open()  # fail at construction, where the caller can report the bad source

    # -- device -----------------------------------------------------------
    def _open(self) -> None:
        linux = sys.platform.startswith("linux")
        if self.source.isdigit():
            index = int(self.source)
            cap = cv2.VideoCapture(index, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
        elif not self.is_file:
            cap = cv2.VideoCapture(self.source, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
        else:
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise SensorError(f"camera {self.source!r}: cannot open")
        if not self.is_file:
            # FOURCC first: many UVC cameras only offer high resolutions as MJPG,
            # and setting the size under YUYV silently falls back to a small one.
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the default 4 hands out stale frames
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
        cap: cv2.VideoCapture,
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
                    due += period
                ok, image = cap.read()
                t = self.clock.now()
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
                n = self._number(t)
                image = self._conform(image)
                self.clock.call_soon_threadsafe(
                    functools.partial(self._deliver, generation, on_frame, image, n, t)
                )
        except Exception:
            log.exception("camera %r: reader failed", self.source)
        finally:
            if stop.is_set():
                self._release()  # stop() may have given up waiting for us

    def _reopen(self, cap: cv2.VideoCapture) -> cv2.VideoCapture:
        """A fresh handle on the device; the old one if it cannot be opened yet."""
        self._release()
        try:
            self._open()
        except SensorError as exc:
            log.warning("camera %r: reopen failed: %s", self.source, exc)
            return cap
        return self._cap if self._cap is not None else cap

    def _number(self, t: float) -> int:
        """Count frames, skipping numbers across a stall so the gap stays visible.

        The first frame is numbered from boot (``round(t * fps)``) like the
        synthetic sensor's, so numbers never repeat across a stop()/start().
        """
        period = 1.0 / self.fps
        if self._last is None:
            n = max(0, round(t * self.fps))
        else:
            last_n, last_t = self._last
            gap = t - last_t
            n = last_n + (max(1, round(gap / period)) if gap > 1.5 * period else 1)
        self._last = (n, t)
        return n

    def _conform(self, image: np.ndarray) -> np.ndarray:
        """BGR at the configured size, whatever the camera settled on."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            shrink = w > self.width or h > self.height
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            image = cv2.resize(image, (self.width, self.height), interpolation=interpolation)
        return image

    def _deliver(
        self, generation: int, on_frame: FrameCallback, image: np.ndarray, n: int, t: float
    ) -> None:
        if generation == self._generation:
            on_frame(image, n, t)
