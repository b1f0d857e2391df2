"""Camera: does it deliver frames at the configured rate, size and numbering?

The rate is measured from the frames' own timestamps over a window that
starts at the first frame, so a slow-starting CSI stack is not counted as a
slow camera, and frames that queue up and arrive late still show their true
capture rate. On the virtual clock the window is simulated time (the clock
is run). A few pictures are kept so the encoder check encodes real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camera.config import Config
from camera.doctor.listen import listen
from camera.doctor.result import Result, part_problem
from hal.board import Parts

__all__ = [
    "CAMERA_WINDOW",
    "FIRST_FRAME_TIMEOUT",
    "KEEP_IMAGES",
    "RATE_TOLERANCE",
    "check_camera",
]

#: Seconds of frames the camera check measures, from the first frame on.
CAMERA_WINDOW = 2.0
#: Seconds the camera may take to deliver its first frame (a CSI stack starts slowly).
FIRST_FRAME_TIMEOUT = 3.0
#: Below this share of the configured fps the camera is too slow.
RATE_TOLERANCE = 0.95
#: Camera pictures kept for the encoder check (memory on a Pi Zero is tight).
KEEP_IMAGES = 8


@dataclass
class _Frames:
    numbers: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    shapes: set[tuple[int, ...]] = field(default_factory=set)
    images: list[np.ndarray] = field(default_factory=list)


def check_camera(
    config: Config,
    board: Parts,
    *,
    window: float = CAMERA_WINDOW,
    first_frame_timeout: float = FIRST_FRAME_TIMEOUT,
) -> tuple[Result, list[np.ndarray]]:
    """Frames for ``window`` seconds from the first one, and a few pictures for the encoder."""
    v = config.video
    details: dict[str, Any] = {"backend": board.names["sensor"], "configured_fps": v.fps}
    sensor, clock = board.sensor, board.clock
    if sensor is None:
        problem = part_problem(board, "sensor", "camera")
        return Result("camera", "fail", f"{details['backend']}: {problem}", details), []
    got = _Frames()

    def on_frame(image: np.ndarray, number: int, t: float) -> None:
        got.numbers.append(number)
        got.times.append(t)
        got.shapes.add(tuple(image.shape))
        if len(got.images) < KEEP_IMAGES:
            got.images.append(image)

    t0 = listen(clock, sensor, on_frame, window=window, first_timeout=first_frame_timeout)
    return _judge_frames(config, got, t0, first_frame_timeout, details), got.images


def _judge_frames(
    config: Config, got: _Frames, t0: float, timeout: float, details: dict[str, Any]
) -> Result:
    v = config.video
    name = details["backend"]
    if not got.numbers:
        return Result("camera", "fail", f"{name}: no frames in {timeout:g} s", details)
    span = got.times[-1] - got.times[0]
    steps = np.diff(got.numbers)
    missing = int(np.sum(steps[steps > 1] - 1))
    rate = (len(got.numbers) - 1) / span if span > 0 else 0.0
    details |= {
        "frames": len(got.numbers),
        "seconds": round(span, 6),
        "fps": round(rate, 3),
        "first_frame_after": round(got.times[0] - t0, 6),
        "missing_numbers": missing,
    }
    text = f"{name} {v.width}x{v.height}: {rate:.1f} fps over {span:.1f} s (configured {v.fps})"
    warns = []
    if len(got.numbers) < 2 or span <= 0:
        warns.append(f"{len(got.numbers)} frame(s) with no time between them")
    elif rate < RATE_TOLERANCE * v.fps:
        warns.append(f"below {RATE_TOLERANCE:.0%} of the configured {v.fps} fps")
    if missing:
        at = int(np.argmax(steps))
        warns.append(
            f"frame numbers skip: {missing} missing (largest gap {int(steps[at]) - 1} "
            f"after frame {got.numbers[at]})"
        )
    shapes = got.shapes - {(v.height, v.width, 3)}
    if shapes:
        h, w = next(iter(shapes))[:2]
        warns.append(f"delivers {w}x{h} pictures, not {v.width}x{v.height} BGR")
    if warns:
        return Result("camera", "warn", f"{text}; " + "; ".join(warns), details)
    return Result("camera", "ok", text, details)
