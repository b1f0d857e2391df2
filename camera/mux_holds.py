"""Which muxed packets FFmpeg still holds, so a sync vouches only for bytes on the card.

``OutputContainer.mux`` hands each packet to ``av_interleaved_write_frame``,
and two stages may keep it in memory after the call returns:

1. The interleaver (FFmpeg's ``ff_interleave_packet_per_dts``). With one
   stream it passes every packet straight on. With video and audio it holds
   packets until every stream has one queued, or until the queue spans more
   than ``max_interleave_delta``. Segments with audio set that delta to 1 us,
   which leaves exactly one packet held: the one with the greatest dts
   (ties: the lower stream index, video, goes first). A packet arriving with
   a greater dts pushes the held one on; one with a smaller dts goes on at
   once (audio that arrives late is written late, never reordered around).
2. The format muxer. MPEG-TS writes each video packet at once, but gathers
   audio into a PES payload (up to ``pes_payload_size``, 2930 bytes, far
   above one AAC packet) which it writes out when the next audio packet
   arrives (its ``max_delay`` is 0, so no payload waits for a second packet)
   or at the trailer: it holds the last audio packet. Matroska writes a
   cluster only when the next packet arrives, and keeps an audio packet aside
   until the next packet (to keep a keyframe's cluster together for WebM);
   with ``cluster_size_limit=0`` each packet ends the cluster before it. So it
   holds the last packet it got, and the one before when that was audio; a
   video-only segment holds the last packet (every MJPEG frame is a keyframe
   above 4 KiB, which ends its cluster).

This module mirrors those rules exactly; tests/test_audio_codec.py checks the
mirror after every packet against what FFmpeg actually wrote, for both
containers and for late and early audio, so a new FFmpeg that holds more
fails a test before a recovery overclaims.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, TypeVar

T = TypeVar("T")

#: Matroska block timestamps are int16 milliseconds relative to their cluster.
_INT16 = range(-(1 << 15), 1 << 15)


@dataclass(frozen=True, slots=True)
class Muxed(Generic[T]):
    """One packet as the muxer saw it: what it carries and where it sorts."""

    item: T
    audio: bool
    #: dts in the stream's time base, as rescaled by ``mux()`` (exact seconds)
    dts: Fraction
    #: stream index: the interleaver's tie-break
    stream: int


class MuxerHolds(Generic[T]):
    """Feed every muxed packet to :meth:`add`; it returns those now in the file."""

    def __init__(self, container: str, streams: int, audio_delay_ms: int = 0) -> None:
        """``audio_delay_ms``: Matroska's CodecDelay, which it adds to audio block times."""
        if container not in ("mpegts", "matroska"):
            raise ValueError(f"no model of what the {container} muxer holds back")
        self.container = container
        self.interleaved = streams > 1
        self.audio_delay_ms = audio_delay_ms
        self._interleaver: Muxed[T] | None = None
        #: MPEG-TS: the audio packet in its PES payload.
        self._pes: Muxed[T] | None = None
        #: Matroska: the blocks of its open cluster, and the audio packet kept aside.
        self._cluster: list[Muxed[T]] = []
        self._aside: Muxed[T] | None = None

    def add(self, packet: Muxed[T]) -> list[Muxed[T]]:
        written: list[Muxed[T]] = []
        for passed in self._interleave(packet):
            written += self._format(passed)
        return written

    def held(self) -> list[Muxed[T]]:
        """What is still in memory (all of it reaches the file at the trailer)."""
        held = [*self._cluster, *(p for p in (self._pes, self._aside) if p is not None)]
        return held + ([self._interleaver] if self._interleaver else [])

    def _interleave(self, packet: Muxed[T]) -> list[Muxed[T]]:
        if not self.interleaved:
            return [packet]
        held = self._interleaver
        if held is None:
            self._interleaver = packet
            return []
        if (packet.dts, packet.stream) > (held.dts, held.stream):
            self._interleaver = packet
            return [held]
        return [packet]

    def _format(self, packet: Muxed[T]) -> list[Muxed[T]]:
        if self.container == "mpegts":
            return self._mpegts(packet)
        written, self._cluster = self._cluster, []
        if self._aside is not None:
            self._cluster = [self._aside]
            self._aside = None
        if packet.audio:
            self._aside = packet
            return written
        if self._cluster and self._ms(packet) - max(0, self._ms(self._cluster[0])) not in _INT16:
            written += self._cluster  # too far from the cluster's time: a new cluster
            self._cluster = []
        self._cluster.append(packet)
        return written

    def _mpegts(self, packet: Muxed[T]) -> list[Muxed[T]]:
        if not packet.audio:
            return [packet]
        written = [] if self._pes is None else [self._pes]
        self._pes = packet
        return written

    def _ms(self, packet: Muxed[T]) -> int:
        """The block time Matroska writes: milliseconds, audio shifted by its CodecDelay."""
        return round(packet.dts * 1000) + (self.audio_delay_ms if packet.audio else 0)
