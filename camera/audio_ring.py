"""The sound of the last few seconds, in fixed memory, beside the video ring.

Why a ring at all, even without pre-event sound: a recording's sound starts
at the trigger's first edge, and the gesture is recognised up to a
double-press window later; those packets were encoded before anyone knew a
recording would start. With ``audio.pre_event`` it keeps the whole pre-event.

Why built like :class:`camera.ring.RingBuffer`: one arena allocated once (its
bytes come out of ``buffer.capacity_mb``, see
:func:`camera.config.audio_arena_bytes`), packets placed contiguously and
evicted from the oldest end, so a shift-long run never grows the heap.
Eviction is by time: every AAC packet decodes on its own, so there is no
group to keep whole, and a packet older than ``retain_seconds`` before the
newest goes.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from camera.frames import EncodedAudio

__all__ = ["AudioRing"]


class AudioRing:
    """Encoded audio packets of the last ``retain_seconds``, in ``capacity_bytes``."""

    def __init__(self, capacity_bytes: int, retain_seconds: float) -> None:
        if capacity_bytes < 1:
            raise ValueError(f"capacity_bytes must be at least 1, got {capacity_bytes!r}")
        self.capacity_bytes = int(capacity_bytes)
        self.retain_seconds = float(retain_seconds)
        self.arena = np.zeros(self.capacity_bytes, dtype=np.uint8)
        #: (offset, packet without its data) oldest first; bounded by the arena.
        self._held: deque[tuple[int, int, EncodedAudio]] = deque()
        self._head = 0
        #: Packets given up for space while still within ``retain_seconds``.
        self.evicted_for_space = 0

    def __len__(self) -> int:
        return len(self._held)

    @property
    def bytes_used(self) -> int:
        return sum(size for _, size, _ in self._held)

    def append(self, packet: EncodedAudio) -> None:
        """Store a copy of ``packet``, evicting what is too old or in the way."""
        size = len(packet.data)
        if size > self.capacity_bytes:
            return  # a packet bigger than the arena is nothing AAC produces
        limit = packet.time - self.retain_seconds
        while self._held and self._held[0][2].time < limit:
            self._held.popleft()
        offset = self._place(size)
        while offset < 0:
            self._held.popleft()
            self.evicted_for_space += 1
            offset = self._place(size)
        self.arena[offset : offset + size] = np.frombuffer(packet.data, dtype=np.uint8)
        shell = EncodedAudio(b"", packet.first_sample, packet.samples, packet.time, packet.rate)
        self._held.append((offset, size, shell))
        self._head = offset + size

    def _place(self, size: int) -> int:
        """Arena offset where ``size`` bytes fit contiguously now, or -1."""
        if not self._held:
            return 0
        tail = self._held[0][0]
        if self._held[-1][0] >= tail:  # held bytes are [tail, head)
            if size <= self.capacity_bytes - self._head:
                return self._head
            return 0 if size <= tail else -1
        return self._head if size <= tail - self._head else -1  # wrapped: free is [head, tail)

    def packets_from(self, t: float) -> list[EncodedAudio]:
        """Copies of the packets whose first sample is at or after device time ``t``."""
        return [
            EncodedAudio(
                self.arena[off : off + size].tobytes(), p.first_sample, p.samples, p.time, p.rate
            )
            for off, size, p in self._held
            if p.time >= t
        ]
