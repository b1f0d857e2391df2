"""ScriptedTimestampCapture: a test double for a V4L2 camera's driver timestamps; not a camera.

It wraps a real :class:`cv2.VideoCapture` on a video file (frames come from
the file) and, like OpenCV's V4L2 backend, reports after each read a buffer
timestamp in ``CAP_PROP_POS_MSEC``: CLOCK_MONOTONIC milliseconds, here the
test's chosen offsets from an anchor taken at the first read. The anchor lies
``lag`` seconds in the past so, with the sensor pacing the file to fps, every
scripted capture time precedes its read as a real one does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import cv2


class ScriptedTimestampCapture:
    def __init__(self, inner: cv2.VideoCapture, offsets: Sequence[float | None], lag: float = 0.5):
        self.inner = inner
        #: Capture time of frame i, seconds after the anchor; None reports 0 (no timestamp).
        self.offsets = list(offsets)
        self.lag = lag
        #: What POS_MSEC reported after each read, in order.
        self.reported_ms: list[float] = []
        self._anchor: float | None = None

    def isOpened(self) -> bool:  # OpenCV's spelling
        return bool(self.inner.isOpened())

    def read(self) -> tuple[bool, Any]:
        ok, image = self.inner.read()
        if ok:
            if self._anchor is None:
                self._anchor = time.monotonic() - self.lag
            i = len(self.reported_ms)
            offset = self.offsets[i] if i < len(self.offsets) else None
            self.reported_ms.append(0.0 if offset is None else (self._anchor + offset) * 1000.0)
        return ok, image

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.reported_ms[-1] if self.reported_ms else 0.0
        return float(self.inner.get(prop))

    def set(self, prop: int, value: float) -> bool:
        return bool(self.inner.set(prop, value))

    def release(self) -> None:
        self.inner.release()
