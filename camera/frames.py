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


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """One encoded audio packet (one AAC frame), placed on the device timeline.

    Samples are numbered from 0 at boot like frames, so a jump in
    ``first_sample`` between packets is a declared gap (the microphone was
    gone), never silence someone inserted.
    """

    data: bytes
    first_sample: int  # sample number (from boot) of the packet's first sample
    samples: int  # duration in samples
    time: float  # device seconds of the first sample
    rate: int  # samples per second

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end_sample(self) -> int:
        """The sample number just after this packet: where the next one starts if none is lost."""
        return self.first_sample + self.samples
