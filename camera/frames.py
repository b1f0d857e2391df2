"""The unit that flows from encoder to ring buffer to recorder.

Frames are numbered from 0 at boot and stamped with device time (monotonic
seconds), so every later stage can prove continuity and spacing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from camera.evidence.svf import FrameSeal


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded picture: exactly one access unit (H.264) or one JPEG."""

    data: bytes
    number: int  # frame number counted from 0 at boot
    time: float  # device seconds at capture
    keyframe: bool
    #: H.264 only: what this unit adds to its GOP's in-stream signature, so the
    #: recording writer can sign exactly the frames it wrote when it stops.
    seal: FrameSeal | None = None

    @property
    def size(self) -> int:
        return len(self.data)
