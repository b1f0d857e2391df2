"""The unit that flows from encoder to ring buffer to recorder.

Frames are numbered from 0 at boot and stamped with device time (monotonic
seconds), so every later stage can prove continuity and spacing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded picture: exactly one access unit (H.264) or one JPEG."""

    data: bytes
    number: int  # frame number counted from 0 at boot
    time: float  # device seconds at capture
    keyframe: bool

    @property
    def size(self) -> int:
        return len(self.data)
