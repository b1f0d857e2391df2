"""MJPEG through OpenCV: every frame is a keyframe, so any frame can start a recording."""

from __future__ import annotations

import cv2
import numpy as np

from camera.encoders import Encoder
from camera.errors import BackendError
from camera.frames import EncodedFrame


class MJPEGEncoder(Encoder):
    codec = "mjpeg"
    name = "opencv-mjpeg"

    def __init__(self, quality: int = 80) -> None:
        #: cv2.imencode's parameters, public so a bare encoder can use exactly these.
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]

    def encode(self, image: np.ndarray, number: int, time: float) -> list[EncodedFrame]:
        ok, buf = cv2.imencode(".jpg", image, self.params)
        if not ok:
            raise BackendError(f"JPEG encoding failed for frame {number}")
        return [EncodedFrame(buf.tobytes(), number, time, True)]
