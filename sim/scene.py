"""A synthetic moving scene for the simulated sensor.

The encoder's bitrate, timing and keyframe behaviour only mean something if
the picture looks like video: smooth regions, hard edges, global motion (the
officer walking) and a local moving object. Pure white noise would be
unrealistically incompressible and a static frame unrealistically cheap. The
texture is built once per scene and each frame is a slice of it, so
rendering stays far below a frame period even at 720p and never dominates a
simulated run. Every frame carries its number (SPEC section 8) drawn last, so
nothing can overwrite it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import cv2
import numpy as np

from camera.framecode import CODE_HEIGHT, CODE_WIDTH, draw_frame_code

# Pan speeds in pixels per second: a walking officer sways the camera; two
# incommensurate speeds keep the x and y turning points from coinciding.
_PAN_X = 90.0
_PAN_Y = 37.0
# Periods in seconds of the moving object's Lissajous path.
_OBJECT_PERIOD_X = 3.1
_OBJECT_PERIOD_Y = 2.3
_SUBPIXEL_BITS = 4  # cv2 drawing "shift": the object moves smoothly at any fps


def _triangle(distance: float, span: int) -> int:
    """Bounce back and forth over 0..span: a pan that never runs off the texture."""
    if span <= 0:
        return 0
    p = distance % (2 * span)
    return math.floor(p if p <= span else 2 * span - p)


def _give_back_scratch() -> None:
    """Return the texture's float32 scratch (tens of MB at 720p) to the OS.

    glibc keeps freed heap for reuse, so without this the simulator's one-time
    construction memory would sit in the process for the whole run and be
    counted as the firmware's resident memory (``make bench``'s memory figure).
    A real camera has no scene; elsewhere than glibc this does nothing.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        return
    if trim is not None:
        trim(0)


class SyntheticScene:
    """A seeded, panned texture with a moving bright disc and the frame code."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        if width < CODE_WIDTH or height < CODE_HEIGHT:
            raise ValueError(
                f"scene {width}x{height} is smaller than the {CODE_WIDTH}x{CODE_HEIGHT} frame code"
            )
        self.width = width
        self.height = height
        self.seed = seed
        self._span_x = max(64, width // 4)
        self._span_y = max(32, height // 4)
        self._texture = self._build_texture(
            width + self._span_x, height + self._span_y, np.random.default_rng(seed)
        )
        self._radius = max(8, height // 10)
        _give_back_scratch()

    @staticmethod
    def _build_texture(tw: int, th: int, rng: np.random.Generator) -> np.ndarray:
        """Smooth colour blobs + gradient + hard-edged shapes + faint grain."""
        # Smooth blobs: coarse noise upsampled, two octaves. Mostly luma shared
        # by all channels, with a little colour: real scenes are not rainbows.
        img = np.zeros((th, tw, 3), np.float32)
        for cell, luma, chroma in ((96, 55.0, 25.0), (24, 20.0, 6.0)):
            shape = (th // cell + 3, tw // cell + 3)
            coarse = chroma * rng.standard_normal((*shape, 3)).astype(np.float32)
            coarse += luma * rng.standard_normal((*shape, 1)).astype(np.float32)
            img += cv2.resize(coarse, (tw, th), interpolation=cv2.INTER_CUBIC)
        # A diagonal gradient, like light falling off across a room.
        ramp = (
            np.linspace(-40.0, 40.0, tw, dtype=np.float32)[None, :]
            + np.linspace(-25.0, 25.0, th, dtype=np.float32)[:, None]
        )
        img += ramp[:, :, None]
        img += 120.0
        # Hard edges: building-like rectangles and some lines.
        for _ in range(max(8, tw * th // 40_000)):
            x0, y0 = int(rng.integers(0, tw)), int(rng.integers(0, th))
            w, h = int(rng.integers(8, tw // 6)), int(rng.integers(8, th // 6))
            color = tuple(float(c) for c in rng.uniform(30, 220, 3))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), color, thickness=-1)
        for _ in range(max(6, tw * th // 80_000)):
            p0 = (int(rng.integers(0, tw)), int(rng.integers(0, th)))
            p1 = (int(rng.integers(0, tw)), int(rng.integers(0, th)))
            color = tuple(float(c) for c in rng.uniform(0, 255, 3))
            cv2.line(img, p0, p1, color, thickness=int(rng.integers(1, 4)), lineType=cv2.LINE_AA)
        # Faint static grain: real sensors are never perfectly smooth.
        out = np.clip(img, 0, 255).astype(np.uint8)
        grain = rng.integers(-3, 4, size=(th, tw, 1), dtype=np.int16)
        return np.clip(out + grain, 0, 255).astype(np.uint8)

    def render(self, number: int, time: float) -> np.ndarray:
        """A new frame for ``number`` at device ``time``: callers may keep or modify it."""
        ox = _triangle(time * _PAN_X, self._span_x)
        oy = _triangle(time * _PAN_Y, self._span_y)
        frame = self._texture[oy : oy + self.height, ox : ox + self.width].copy()
        r = self._radius
        cx = self.width / 2 + (self.width / 2 - r) * math.sin(2 * math.pi * time / _OBJECT_PERIOD_X)
        cy = self.height / 2 + (self.height / 2 - r) * math.sin(
            2 * math.pi * time / _OBJECT_PERIOD_Y + 1.0
        )
        scale = 1 << _SUBPIXEL_BITS
        cv2.circle(
            frame,
            (round(cx * scale), round(cy * scale)),
            r * scale,
            (235, 245, 250),
            thickness=-1,
            lineType=cv2.LINE_AA,
            shift=_SUBPIXEL_BITS,
        )
        draw_frame_code(frame, number)
        return frame
