"""Encoder: open the configured one, encode a second of pictures, say which one ran.

``encoder = auto`` may pick software on a Pi whose hardware encoder is
missing, and a forced hardware encoder may not open at all: the line names
the encoder that actually ran. Speed is measured on a real clock only: on
the virtual clock simulated time stands still while it encodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from camera.config import Config
from camera.doctor.result import Result, why
from camera.encoders import HARDWARE_H264, encoder_for
from hal.board import Parts

__all__ = ["HARDWARE_ENCODERS", "TEST_PICTURES", "check_encoder"]

HARDWARE_ENCODERS = frozenset({HARDWARE_H264})
#: Pictures made up when the camera gave none (it failed, or was not there).
TEST_PICTURES = 8


def _test_pictures(width: int, height: int, count: int) -> list[np.ndarray]:
    """Moving gradients, for when the camera gave nothing to encode."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    out = []
    for k in range(count):
        plane = ((x + 8 * k) % 256 + y) / 2
        out.append(np.repeat(plane.astype(np.uint8)[:, :, None], 3, axis=2))
    return out


def check_encoder(config: Config, board: Parts, images: list[np.ndarray]) -> Result:
    """Encode one second of ``images`` (or test pictures); the first frame out must be a key."""
    v = config.video
    frames = max(2, v.fps)
    pictures = images or _test_pictures(v.width, v.height, TEST_PICTURES)
    details: dict[str, Any] = {"configured": v.encoder if v.codec == "h264" else v.codec}
    clock = board.clock
    try:
        encoder = encoder_for(v)
    except Exception as exc:
        return Result("encoder", "fail", f"{v.codec}: {why(exc)}", details)
    name = getattr(encoder, "name", v.codec)
    kind = "hardware" if name in HARDWARE_ENCODERS else "software"
    details |= {"encoder": name, "hardware": kind == "hardware", "frames": frames}
    chosen = f"{name} ({kind})" + (" chosen by encoder = auto" if v.encoder == "auto" else "")
    start = clock.now()
    try:
        out = []
        for n in range(frames):
            out += encoder.encode(pictures[n % len(pictures)], n, n / v.fps)
        out += encoder.flush()
    except Exception as exc:
        return Result("encoder", "fail", f"{chosen}: encoding failed: {why(exc)}", details)
    finally:
        encoder.close()
    elapsed = clock.now() - start
    if not out or not out[0].keyframe:
        what = "nothing came out" if not out else "the first frame out is not a keyframe"
        return Result("encoder", "fail", f"{chosen}: {frames} pictures in, {what}", details)
    text = f"{chosen}: {frames} frames at {v.width}x{v.height}"
    if clock.virtual or elapsed <= 0:
        return Result("encoder", "ok", f"{text}; speed not measured on the virtual clock", details)
    rate = frames / elapsed
    details["fps"] = round(rate, 3)
    text += f" at {rate:.0f} fps ({rate / v.fps:.1f}x real time at {v.fps} fps)"
    return Result("encoder", "warn" if rate < v.fps else "ok", text, details)
