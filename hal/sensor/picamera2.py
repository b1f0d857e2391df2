"""A CSI camera module (Raspberry Pi Camera Module 2/3, HQ, ...) through Picamera2.

Picamera2 comes from the OS (``apt install python3-picamera2``; the venv is
made with ``--system-site-packages``), so it is imported only when a sensor is
opened: this module imports on any machine, and a machine without it gets
one :class:`~hal.errors.HardwareMissing` line saying what to install.

One Picamera2 object per camera per process, kept in a module-level cache:
Picamera2 leaks (file descriptors, CMA memory) when objects are created and
closed repeatedly, so stop() only stops the camera and a second sensor on the
same camera reuses the object. The cache is closed at interpreter exit or by
:func:`release`.

The main stream is ``RGB888``, which Picamera2 documents as pixels ordered
[B, G, R] in the numpy array (the libcamera/DRM fourcc names the word from
the most significant byte): exactly OpenCV's BGR, so no conversion is needed.
``make_array`` already copies out of the camera's buffer, so the request is
released before the frame goes anywhere, and released whatever happens.

Frames are dated with the request's ``SensorTimestamp`` (nanoseconds;
libcamera documents CLOCK_BOOTTIME, which on a device that never suspends is
CLOCK_MONOTONIC, and Picamera2's own examples compare it with
``time.monotonic_ns()``), converted to device time and numbered by
:class:`~hal.sensor.timing.FrameTimer`: a dropped frame skips a number.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from typing import Any

import numpy as np

from hal.clock import Clock
from hal.errors import BackendError, HardwareMissing
from hal.sensor import FrameCallback, Sensor, SensorError
from hal.sensor.conform import conform
from hal.sensor.timing import FrameTimer, retry_delay

log = logging.getLogger(__name__)

NOT_INSTALLED = (
    "picamera2 is not installed (apt install python3-picamera2; "
    "the venv needs --system-site-packages)"
)
#: The stream the sensor reads; its format's numpy layout is BGR.
STREAM = "main"
FORMAT = "RGB888"
#: Longest wait for one frame (seconds) at any rate; slower rates wait 3 periods.
MIN_READ_TIMEOUT = 0.5

_cameras: dict[int, Any] = {}  # camera number -> Picamera2, created once per process
_cameras_lock = threading.Lock()
_atexit_registered = False


def _picamera2_class() -> Any:
    """The Picamera2 class, imported on first use."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise HardwareMissing(NOT_INSTALLED) from exc
    return Picamera2


def csi_cameras() -> list[dict[str, Any]]:
    """The CSI cameras libcamera reports, in Picamera2's numbering.

    libcamera also lists USB (UVC) cameras; those stay with OpenCV, which
    asks them for MJPG. Picamera2 sorts them after the CSI ones, so the index
    of a camera in this list is its Picamera2 camera number.
    """
    cls = _picamera2_class()
    try:
        cameras = cls.global_camera_info()
    except Exception as exc:  # libcamera failing to enumerate: no usable camera
        raise HardwareMissing(f"no CSI camera detected (libcamera: {exc})") from exc
    return [c for c in cameras if "/usb" not in str(c.get("Id", ""))]


def acquire(camera_num: int) -> Any:
    """The process's Picamera2 object for ``camera_num``, created on first use."""
    global _atexit_registered
    with _cameras_lock:
        camera = _cameras.get(camera_num)
        if camera is not None:
            return camera
        cls = _picamera2_class()
        found = csi_cameras()
        if camera_num >= len(found):
            if not found:
                raise HardwareMissing("no CSI camera detected")
            raise HardwareMissing(
                f"no CSI camera {camera_num} (detected: "
                + ", ".join(f"{i}: {c.get('Model', '?')}" for i, c in enumerate(found))
                + ")"
            )
        try:
            camera = cls(camera_num)
        except Exception as exc:  # Picamera2 raises RuntimeError for a busy/broken camera
            raise BackendError(f"CSI camera {camera_num}: cannot open: {exc}") from exc
        _cameras[camera_num] = camera
        if not _atexit_registered:
            atexit.register(release)
            _atexit_registered = True
        return camera


def release(camera_num: int | None = None) -> None:
    """Close the cached camera ``camera_num`` (all by default); the next open creates it anew."""
    with _cameras_lock:
        numbers = list(_cameras) if camera_num is None else [camera_num]
        for num in numbers:
            camera = _cameras.pop(num, None)
            if camera is None:
                continue
            try:
                camera.close()
            except Exception:
                log.exception("CSI camera %d: close failed", num)


def camera_number(source: str) -> int:
    """The camera number ``source`` names ("0", "1", ...)."""
    if not source.isdigit():
        raise BackendError(
            f"picamera2 sensor: camera source must be a camera number like '0', got {source!r}"
        )
    return int(source)


class Picamera2Sensor(Sensor):
    """Frames from CSI camera ``camera_num``; one running sensor per camera at a time."""

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        return cls(clock, width, height, fps, camera_number(source))

    def __init__(
        self,
        clock: Clock,
        width: int,
        height: int,
        fps: int,
        camera_num: int = 0,
        *,
        read_timeout: float | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        super().__init__(clock, width, height, fps)
        self.camera_num = camera_num
        #: How long the reader waits for one frame before calling it missing.
        self.read_timeout = (
            read_timeout if read_timeout is not None else max(MIN_READ_TIMEOUT, 3.0 / fps)
        )
        self.timer = FrameTimer(clock, fps, f"CSI {camera_num}")
        self._camera = acquire(camera_num)  # fails here, where the caller can report it
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._generation = 0  # frames posted by an earlier start() are dropped
        self._running = False  # this sensor started the (shared) camera
        self._configure()

    def _configure(self) -> None:
        """Video configuration at our size and a fixed frame duration (the camera is stopped)."""
        period_us = round(1_000_000 / self.fps)
        config = self._camera.create_video_configuration(
            main={"size": (self.width, self.height), "format": FORMAT},
            controls={"FrameDurationLimits": (period_us, period_us)},
        )
        try:
            self._camera.configure(config)
        except Exception as exc:
            raise BackendError(
                f"CSI camera {self.camera_num}: cannot configure "
                f"{self.width}x{self.height} at {self.fps} fps: {exc}"
            ) from exc

    # -- Sensor -----------------------------------------------------------
    def start(self, on_frame: FrameCallback) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("sensor already started")
        self._configure()  # another sensor may have configured the shared camera since
        try:
            self._camera.start()
        except Exception as exc:
            raise SensorError(f"CSI camera {self.camera_num}: cannot start: {exc}") from exc
        self._running = True
        self._stop_event = threading.Event()
        self._generation += 1
        self._thread = threading.Thread(
            target=self._reader,
            args=(self._camera, self._stop_event, self._generation, on_frame),
            name=f"camera CSI {self.camera_num}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering and stop the camera; never closes it (see :func:`release`)."""
        self._stop_event.set()
        self._generation += 1  # anything still queued on the loop is now stale
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            # Wake a reader waiting for a frame now rather than a period later;
            # cancelling is also what lets Picamera2's stop run if the camera
            # is wedged (cable out), as stop would queue behind the capture.
            self._camera.cancel_all_and_flush()
            thread.join(self.read_timeout + 1.0)
            if thread.is_alive():
                log.warning("CSI camera %d: reader did not stop in time", self.camera_num)
                self._camera.cancel_all_and_flush()
        if not self._running:
            return  # never started, or stopped already: the camera may be another sensor's now
        self._running = False
        try:
            self._camera.stop()
        except Exception:
            log.exception("CSI camera %d: stop failed", self.camera_num)

    # -- reader thread ----------------------------------------------------
    def _reader(
        self, camera: Any, stop: threading.Event, generation: int, on_frame: FrameCallback
    ) -> None:
        try:
            self._read_frames(camera, stop, generation, on_frame)
        except Exception:
            log.exception("CSI camera %d: reader failed", self.camera_num)

    def _read_frames(
        self, camera: Any, stop: threading.Event, generation: int, on_frame: FrameCallback
    ) -> None:
        failures = 0
        while not stop.is_set():
            try:
                request = camera.capture_request(wait=self.read_timeout)
            except Exception as exc:
                if stop.is_set():
                    break  # cancelled by stop()
                # A timed-out job stays queued and would take (and leak) the
                # next request: cancel it before asking again.
                camera.cancel_all_and_flush()
                failures += 1
                if failures == 1:
                    log.warning("CSI camera %d: no frame: %r", self.camera_num, exc)
                if not isinstance(exc, TimeoutError) and stop.wait(retry_delay(failures)):
                    break
                continue
            try:
                read = self.clock.now()
                if stop.is_set():
                    break
                image = request.make_array(STREAM)
                captured_ns = request.get_metadata().get("SensorTimestamp")
            except Exception:
                failures += 1
                if failures == 1:
                    log.exception("CSI camera %d: unreadable frame", self.camera_num)
                continue
            finally:
                request.release()
            if failures:
                log.warning("CSI camera %d: back after %d failures", self.camera_num, failures)
                failures = 0
            captured = captured_ns / 1e9 if captured_ns else None
            n, t = self.timer.stamp(captured, read)
            image = conform(image, self.width, self.height)
            self.clock.call_soon_threadsafe(
                functools.partial(self._deliver, generation, on_frame, image, n, t)
            )

    def _deliver(
        self, generation: int, on_frame: FrameCallback, image: np.ndarray, n: int, t: float
    ) -> None:
        if generation == self._generation:
            on_frame(image, n, t)
