"""Burnt-in metadata: device id and UTC time on every picture.

Evidence guidance asks for date and time on all footage. Drawn at the bottom
left, well clear of the frame-code corner (x < 512, y < 32) that tests read.
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np


class Overlay:
    def __init__(self, device_id: str, height: int) -> None:
        self.device_id = device_id
        self.scale = max(0.4, height / 720)
        self.thickness = max(1, round(2 * self.scale))
        self.origin = (8, height - round(12 * self.scale))

    def draw(self, image: np.ndarray, wall: datetime) -> None:
        text = f"{self.device_id} {wall:%Y-%m-%d %H:%M:%S}.{wall.microsecond // 1000:03d}Z"
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(image, text, self.origin, font, self.scale, (0, 0, 0), self.thickness + 2)
        cv2.putText(image, text, self.origin, font, self.scale, (255, 255, 255), self.thickness)
