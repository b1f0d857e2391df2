"""Frames at the configured size, whatever size the camera settled on.

Drivers adjust requested sizes silently (a UVC camera offers a fixed list,
libcamera aligns to the ISP), so a backend believes only the array it gets
and resizes when it must. The common case is a no-op that returns the very
array it was given: the hot path makes no copy.
"""

from __future__ import annotations

import cv2
import numpy as np


def conform(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """BGR uint8 ``height`` x ``width`` x 3 from a BGR or greyscale image."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    h, w = image.shape[:2]
    if (w, h) != (width, height):
        shrink = w > width or h > height
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    return image
