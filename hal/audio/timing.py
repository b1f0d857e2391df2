"""Capture times to (first sample number, device time) for real microphones.

A sound card's driver knows when it captured a block better than the thread
that hands it over: PortAudio's ``inputBufferAdcTime`` is the ALSA status
timestamp (CLOCK_MONOTONIC, ALSA's default since Linux 2.6.25) less the
frames still queued, converted here to device time by the clock's
``from_monotonic``.
Driver times also follow the card's crystal, which runs up to ~100 ppm off
the CPU's (0.36 s an hour), so audio dated by them stays in sync with video
over a long recording while the sample count alone would not.

When a driver time is missing or cannot be right (zero, as through the
PulseAudio ALSA plugin; more than :data:`MAX_AGE` before the arrival, or
after it), the block is dated from its arrival less its own duration, and
that estimate is smoothed: consecutive blocks are one block apart on the
sample clock, and only :data:`ARRIVAL_SMOOTHING` of each arrival's error is
taken, so a callback scheduled late does not move the audio, while the
crystal's drift is still followed.

Numbers count samples from boot: the first block is ``round(t * rate)`` and
each later one follows its predecessor without a gap, unless samples were
lost: the driver's time jumped by more than :data:`GAP_TOLERANCE` blocks,
the library reported an input overflow, or the stream was reopened
(:meth:`BlockTimer.resume`). Then the number jumps by the samples the time
says were lost, so the recording declares an audio gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hal.clock import Clock

log = logging.getLogger(__name__)

#: A driver time older than this at the arrival is not believed (s): a
#: capture queue holds a few blocks, not a second of audio.
MAX_AGE = 1.0
#: A driver time may exceed the arrival by this much (float rounding
#: between the two conversions), never by more: a capture cannot follow it.
FUTURE_SLACK = 0.001
#: With driver times, a jump of more than this many blocks beyond the
#: previous block's end is lost audio (driver timestamps jitter by well
#: under a block, ~21 ms at 48 kHz).
GAP_TOLERANCE = 0.5
#: Fraction of each arrival-based time's error taken per block.
ARRIVAL_SMOOTHING = 0.01


class BlockTimer:
    """Dates and numbers one microphone's blocks; lives as long as the source.

    It survives a stream being closed and reopened, so numbers keep counting
    from boot and the outage shows as a gap. Called from one thread at a
    time (the capture library's callback thread, or the supervisor while
    no stream runs).
    """

    def __init__(self, clock: Clock, rate: int, name: str) -> None:
        if rate <= 0:
            raise ValueError(f"audio rate must be positive, got {rate}")
        self.rate = rate
        self.name = name
        # Only a real clock can place a CLOCK_MONOTONIC reading on its axis.
        self._from_monotonic: Callable[[float], float] | None = getattr(
            clock, "from_monotonic", None
        )
        #: (first sample, samples, time) of the previous block.
        self._last: tuple[int, int, float] | None = None
        self._resumed = False
        #: Blocks whose driver time was given but not believed.
        self.rejected = 0
        #: Samples declared lost (gaps in the numbering).
        self.lost_samples = 0

    def resume(self) -> None:
        """The stream was reopened: the next block starts wherever its time says."""
        self._resumed = True

    def stamp(
        self, samples: int, captured: float | None, arrived: float, *, overflow: bool = False
    ) -> tuple[int, float]:
        """(first sample, device time) of a block of ``samples``.

        ``captured`` is the driver's CLOCK_MONOTONIC time of its first
        sample (None when it has none); ``arrived`` the device time it was
        handed over; ``overflow`` whether the library says input was lost
        before it.
        """
        driven, measured = self._measure(samples, captured, arrived)
        last = self._last
        if last is None:
            first, t = max(0, round(measured * self.rate)), measured
        else:
            last_first, last_n, last_t = last
            expected = last_t + last_n / self.rate
            lost = round((measured - expected) * self.rate)
            gap = lost > 0 and (
                overflow or self._resumed or (driven and lost > GAP_TOLERANCE * last_n)
            )
            if gap:
                first, t = last_first + last_n + lost, measured
                self.lost_samples += lost
                log.warning(
                    "microphone %s: %d samples (%.3f s) lost", self.name, lost, lost / self.rate
                )
            elif driven:
                first, t = last_first + last_n, max(measured, last_t)
            else:
                first = last_first + last_n
                t = max(expected + ARRIVAL_SMOOTHING * (measured - expected), last_t)
        self._resumed = False
        self._last = (first, samples, t)
        return first, t

    def _measure(self, samples: int, captured: float | None, arrived: float) -> tuple[bool, float]:
        """(driver-dated?, device time of the first sample)."""
        if captured is not None and captured > 0 and self._from_monotonic is not None:
            t = self._from_monotonic(captured)
            if arrived - MAX_AGE <= t <= arrived + FUTURE_SLACK:
                return True, t
        if captured is not None:
            self.rejected += 1
            if self.rejected == 1:  # once: this runs per block
                log.warning(
                    "microphone %s: the driver's capture times are missing or implausible; "
                    "blocks are dated from their arrival",
                    self.name,
                )
        return False, arrived - samples / self.rate
