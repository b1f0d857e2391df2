"""AAC-LC through PyAV (FFmpeg's native ``aac`` encoder), placed on the device timeline.

Samples arrive in blocks numbered from boot (``first_sample``) and stamped
with the device time of their first sample. They are cut into the encoder's
1024-sample frames whose pts is the sample number of their first sample, so
every packet the encoder returns names the samples it stands for.

Priming. The encoder delays its output by 1024 samples (FFmpeg's
``initial_padding``): the first packet of a run has pts ``first - 1024`` and
stands for the 1024 samples *before* the first captured one: the encoder's
start-up, near silence that nobody recorded. It is dropped: a run starts
after a gap (or at boot), and keeping it would put 21 ms of sound that never
was into the gap a recording declares. Every later packet is 1024 samples
behind the frame that pushed it out and keeps the encoder's pts: its
``first_sample`` is that pts, its ``time`` the device time of that sample.
A decoder that drops nothing then outputs each captured sample exactly at
its capture time, which is what the A/V sync check measures; only a run's
first 1024 samples decode without their overlap partner (a 21 ms blemish
of real sound after each gap, never invented sound). The last packet of a
run is as long as the samples it still had to give (a short ``samples``),
so a run's packets cover ``[first, end)`` with no hole and no overlap.

Time. A packet's time is extrapolated from the latest input block at or
before its first sample (``time + (sample - block_first) / rate``), not from
the run's first block: a real microphone's sample clock drifts against the
device clock by tens of ppm, and following the source's own stamps keeps
the drift out of the sync.

Gaps. A block whose first sample is not the one after the previous block
(the microphone disappeared) ends the run: the samples still buffered are
encoded as a short last frame (the encoder pads the frame internally, the
packet declares only the real samples, so nothing is dropped and no sound is
invented on the timeline), the encoder is drained, and a fresh encoder starts
at the new block (its priming packet dropped, as above), so packets never
overlap and the gap between runs is exactly the samples that were lost.

Determinism. The encoder runs single-threaded on float math with
``bitexact`` (no encoder version string in the stream), so the same samples
give the same bytes on the same machine and FFmpeg build: a simulated run is
byte-reproducible.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

import av
import numpy as np

from camera.errors import BackendError
from camera.frames import EncodedAudio

#: Samples per AAC-LC frame, and the encoder's priming delay (one frame).
FRAME_SAMPLES = 1024
PRIMING_SAMPLES = 1024
#: Channel layouts by channel count: a body camera records mono or stereo.
LAYOUTS = {1: "mono", 2: "stereo"}


class AACEncoder:
    """One stream of AAC-LC packets from numbered int16 sample blocks."""

    codec = "aac"
    #: The FFmpeg encoder, as written in manifests.
    name = "aac"

    def __init__(self, rate: int = 48_000, channels: int = 1, bitrate: int = 64_000) -> None:
        self.rate = rate
        self.channels = channels
        self.bitrate = bitrate
        # Open one context now: a rate or layout FFmpeg refuses fails here, at
        # boot, not at the first sound; it also gives the AudioSpecificConfig.
        probe = self._open()
        #: AudioSpecificConfig (Matroska's CodecPrivate; MPEG-TS makes ADTS from it).
        self.extradata = bytes(probe.extradata or b"")
        self._ctx: av.AudioCodecContext | None = None
        self._pending = np.zeros((0, channels), np.int16)
        #: Sample number of the first pending sample, and of the next expected block.
        self._pending_first = 0
        self._next: int | None = None
        #: (first_sample, time) of recent input blocks, oldest first.
        self._anchors: deque[tuple[int, float]] = deque()
        #: End sample of the last packet returned: later packets may not start before it.
        self._emitted_end: int | None = None
        #: Packets left out because they would overlap the one before (should
        #: sample numbers ever go backwards).
        self.dropped_overlap = 0
        #: First sample of the current run; its priming packet (before it) is dropped.
        self._run_start = 0
        #: Priming packets dropped (one per run).
        self.dropped_priming = 0

    def _open(self) -> av.AudioCodecContext:
        try:
            ctx = av.CodecContext.create("aac", "w")
            ctx.sample_rate = self.rate
            ctx.layout = LAYOUTS[self.channels]
            ctx.format = "fltp"
            ctx.bit_rate = self.bitrate
            ctx.time_base = Fraction(1, self.rate)
            ctx.thread_count = 1
            ctx.flags |= av.codec.context.Flags.bitexact
            ctx.open()
        except (av.FFmpegError, ValueError, KeyError) as exc:
            detail = " ".join(str(exc).split())
            raise BackendError(
                f"AAC encoder cannot open at {self.rate} Hz, {self.channels} channel(s), "
                f"{self.bitrate} bit/s: {detail}"
            ) from exc
        return ctx

    def encode(self, samples: np.ndarray, first_sample: int, time: float) -> list[EncodedAudio]:
        """Encode a block of int16 samples ``(n, channels)`` whose first is ``first_sample``."""
        block = self._check(samples)
        if not len(block):
            return []
        out: list[EncodedAudio] = []
        if self._next is not None and first_sample != self._next:
            out += self.flush()  # a gap: end this run where its samples end
        if self._ctx is None:
            self._ctx = self._open()
            self._pending_first = self._run_start = first_sample
        self._anchors.append((first_sample, time))
        # A copy: the caller (a capture driver) may reuse its buffer for the next block.
        self._pending = np.concatenate([self._pending, block])
        self._next = first_sample + len(block)
        while len(self._pending) >= FRAME_SAMPLES:
            frame = self._pending[:FRAME_SAMPLES]
            self._pending = self._pending[FRAME_SAMPLES:]
            out += self._encode(frame, self._pending_first)
            self._pending_first += FRAME_SAMPLES
        return out

    def flush(self) -> list[EncodedAudio]:
        """End the current run: its last samples as a short frame, then the encoder's tail."""
        if self._ctx is None:
            return []
        out: list[EncodedAudio] = []
        if len(self._pending):
            out += self._encode(self._pending, self._pending_first)
        out += self._collect(self._ctx.encode(None))
        self._ctx = None
        self._pending = np.zeros((0, self.channels), np.int16)
        self._next = None
        self._anchors.clear()
        return out

    def close(self) -> None:
        self._ctx = None

    def _check(self, samples: np.ndarray) -> np.ndarray:
        if samples.dtype != np.int16:
            raise ValueError(f"audio samples must be int16, got {samples.dtype}")
        if samples.ndim == 1 and self.channels == 1:
            samples = samples.reshape(-1, 1)
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(
                f"audio samples must be shaped (n, {self.channels}), got {samples.shape}"
            )
        return samples

    def _encode(self, frame_samples: np.ndarray, first: int) -> list[EncodedAudio]:
        assert self._ctx is not None
        # Packed s16 is one plane of interleaved samples; PyAV converts to fltp.
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(frame_samples).reshape(1, -1),
            format="s16",
            layout=self._ctx.layout,
        )
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = first
        return self._collect(self._ctx.encode(frame))

    def _collect(self, packets: list[av.Packet]) -> list[EncodedAudio]:
        out = []
        for packet in packets:
            assert packet.pts is not None
            first = int(packet.pts)
            samples = int(packet.duration or FRAME_SAMPLES)
            if first < self._run_start:
                self.dropped_priming += 1  # the encoder's start-up: no sound was recorded there
                continue
            if self._emitted_end is not None and first < self._emitted_end:
                self.dropped_overlap += 1  # would overlap the previous run's last packet
                continue
            out.append(EncodedAudio(bytes(packet), first, samples, self._time_of(first), self.rate))
            self._emitted_end = first + samples
        return out

    def _time_of(self, sample: int) -> float:
        """Device time of ``sample``, from the latest input block at or before it."""
        anchors = self._anchors
        while len(anchors) > 1 and anchors[1][0] <= sample:
            anchors.popleft()  # packets come out in order: older blocks are not needed again
        first, time = anchors[0]
        return time + (sample - first) / self.rate
