"""Microphones push blocks of samples into the loop: (samples, first sample number, device time).

Push, not pull, as with image sensors (:mod:`hal.sensor`): a sound card
fills its buffer on its own clock and a capture library calls back from its
own thread, while the synthetic microphone schedules itself on the virtual
clock. Either way the capture loop receives every block as a callback on the
clock's loop thread.

A block is :data:`BLOCK_SAMPLES` samples per channel, int16, shaped
``(BLOCK_SAMPLES, channels)``: 1024 samples is one AAC-LC frame, so at any
rate the encoder takes exactly one block per frame and never re-slices. Its
first sample is numbered from boot (sample ``n`` is nominally at ``n /
rate`` seconds), so a microphone that drops out shows up as a jump in sample
numbers, the way a camera dropout skips frame numbers, and the recording
declares an audio gap instead of silently closing up time. ``time`` is the
device time at which the block's first sample was captured; on real
hardware it comes from the driver, so it follows the sound card's crystal
where the sample numbers cannot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from hal.clock import Clock

#: Samples per channel in every block: one AAC-LC frame.
BLOCK_SAMPLES = 1024

#: ``on_block(samples, first_sample, time)``: int16 ``(BLOCK_SAMPLES, channels)``.
BlockCallback = Callable[[np.ndarray, int, float], None]


class AudioError(OSError):
    """The microphone could not deliver audio (disconnected, unreadable)."""


class AudioSource(ABC):
    """A source of int16 sample blocks at a fixed rate and channel count."""

    #: Samples per channel in each block delivered.
    block = BLOCK_SAMPLES

    def __init__(self, clock: Clock, rate: int, channels: int) -> None:
        if rate <= 0:
            raise ValueError(f"audio rate must be positive, got {rate}")
        if channels <= 0:
            raise ValueError(f"audio channels must be positive, got {channels}")
        self.clock = clock
        self.rate = rate
        self.channels = channels

    @property
    def block_seconds(self) -> float:
        """How long one block lasts."""
        return self.block / self.rate

    @classmethod
    def open(
        cls, clock: Clock, rate: int, channels: int, *, seed: int = 0, source: str = "default"
    ) -> AudioSource:
        """Build from the board's common options; each backend takes what it uses."""
        return cls(clock, rate, channels)  # type: ignore[abstract]

    @abstractmethod
    def start(self, on_block: BlockCallback) -> None:
        """Begin delivering blocks to ``on_block`` on the clock's loop."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering blocks and release the device."""
