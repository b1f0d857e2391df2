"""The Pi's default sensor: a CSI camera module if there is one, else a USB camera.

Most Pi camera prototypes use a CSI module, which only Picamera2 drives (on
a Pi, ``/dev/video0`` is usually the CSI receiver's raw node, which OpenCV
cannot use). So ``auto`` asks Picamera2 first and falls back to OpenCV on
the same ``source`` when Picamera2 is not installed or reports no CSI camera
with that number. A ``source`` that is a path (``/dev/video2``, a video
file) names a USB camera or a file outright and goes straight to OpenCV.
"""

from __future__ import annotations

import logging

from hal.clock import Clock
from hal.errors import HardwareMissing
from hal.sensor import Sensor

log = logging.getLogger(__name__)


def choose(source: str) -> str:
    """The backend ``auto`` uses for ``source``: "picamera2" or "opencv"."""
    return _choose(source)[0]


def _choose(source: str) -> tuple[str, str]:
    """(backend, why no CSI camera was taken: empty when Picamera2 is chosen)."""
    if not source.isdigit():
        return "opencv", f"{source!r} is a path"
    from hal.sensor.picamera2 import csi_cameras

    try:
        cameras = csi_cameras()
    except HardwareMissing as exc:
        log.info("camera: no Picamera2 camera (%s); trying OpenCV on %r", exc, source)
        return "opencv", str(exc)
    if int(source) < len(cameras):
        return "picamera2", ""
    return "opencv", f"no CSI camera number {source} ({len(cameras)} detected)"


class AutoSensor:
    """Not a sensor itself: :meth:`open` returns the chosen backend's sensor."""

    @classmethod
    def open(
        cls, clock: Clock, width: int, height: int, fps: int, *, seed: int = 0, source: str = "0"
    ) -> Sensor:
        backend, no_csi = _choose(source)
        log.info("camera %r: using %s", source, backend)
        if backend == "picamera2":
            from hal.sensor.picamera2 import Picamera2Sensor

            return Picamera2Sensor.open(clock, width, height, fps, seed=seed, source=source)
        from hal.sensor import SensorError
        from hal.sensor.opencv import OpenCVSensor

        try:
            return OpenCVSensor.open(clock, width, height, fps, seed=seed, source=source)
        except SensorError as exc:
            # Neither kind of camera: name both, so the fix is obvious.
            raise HardwareMissing(f"camera: {no_csi}; {exc}") from None
