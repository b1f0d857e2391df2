"""The pre-event ring buffer: the last few seconds of encoded video, in fixed memory.

Why it is built this way:

* **A fixed arena.** Every frame's bytes are copied into one ``numpy`` array that is
  allocated once, at construction, and never grown or replaced; the index (offset,
  size, time, number, keyframe flag of each held frame) is a set of preallocated
  arrays of ``max_frames`` entries. A camera runs for a whole shift: memory that
  grows per frame (a deque of ``bytes`` objects, say) fragments the heap and ends in
  the OOM killer, at exactly the moment an officer presses record.
* **Whole-GOP eviction.** A recording has to start on a keyframe, or the first
  second of the evidence is grey mush that no decoder will show. So frames leave
  only from the oldest end and only in whole groups of pictures (a keyframe and the
  frames that depend on it): what the ring holds always begins with a keyframe.
* **Bounded by time and by bytes together.** picamera2's ``CircularOutput`` is
  bounded by a frame count only, so the duration it holds varies with frame rate and
  its memory with bitrate; ZoneMinder's pre-event buffer, bounded by frames, has
  had to learn to start on a keyframe. Here the ring keeps ``retain_seconds`` (plus
  the GOP that reaches back past it, so a query for ``newest - retain_seconds`` can
  always be answered from a keyframe) while the bytes fit, and when a bitrate spike
  makes the bytes short it gives up the oldest GOPs and counts them, so the caller
  can report the coverage it actually delivered (SPEC section 6).

Placement is circular and contiguous: a frame is written at the head, or at offset 0
if it does not fit before the end of the arena (the tail bytes are left unused until
the frames before them are evicted). Free space runs from the head to the oldest
frame's offset.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from camera.frames import EncodedFrame

if TYPE_CHECKING:
    from camera.evidence.svf import FrameSeal

__all__ = ["RingBuffer"]


class RingBuffer:
    """Encoded frames of the last ``retain_seconds``, in ``capacity_bytes`` of fixed memory.

    Not thread-safe: one producer appends, and queries are made from the same thread
    (or under the caller's lock).
    """

    def __init__(self, capacity_bytes: int, retain_seconds: float, max_frames: int) -> None:
        if int(capacity_bytes) < 1:
            raise ValueError(f"capacity_bytes must be at least 1, got {capacity_bytes!r}")
        if int(max_frames) < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames!r}")
        if not (math.isfinite(retain_seconds) and retain_seconds >= 0):
            raise ValueError(f"retain_seconds must be finite and >= 0, got {retain_seconds!r}")
        self.capacity_bytes: int = int(capacity_bytes)
        self.retain_seconds: float = float(retain_seconds)
        self.max_frames: int = int(max_frames)
        # The arena and the index: allocated here, once, never replaced. The
        # arena is written through now: the kernel gives a fresh allocation its
        # pages only as they are first written, so an untouched arena would
        # grow the resident memory over the ring's first lap (two minutes of
        # 720p in 64 MB) and meet a shortage then, not at boot.
        self.arena: np.ndarray = np.empty(self.capacity_bytes, dtype=np.uint8)
        self.arena.fill(0)
        n = self.max_frames
        self._off = np.zeros(n, dtype=np.int64)
        self._size = np.zeros(n, dtype=np.int64)
        self._cum = np.zeros(n, dtype=np.int64)  # bytes stored before this frame, ever
        self._time = np.zeros(n, dtype=np.float64)
        self._number = np.zeros(n, dtype=np.int64)
        self._key = np.zeros(n, dtype=np.bool_)
        #: Each held frame's in-stream signature seal (H.264), by slot: the
        #: recording writer needs the pre-event's seals as much as the live
        #: ones to sign the GOP a recording ends in. References, preallocated.
        self._seal: list[FrameSeal | None] = [None] * n
        self._kseq = np.zeros(n, dtype=np.int64)  # sequence numbers of held keyframes
        # Frames are addressed by a running sequence number; slot = seq % max_frames.
        self._first = 0  # seq of the oldest held frame
        self._next = 0  # seq the next stored frame will get
        self._kfirst = 0  # position (in _kseq, mod n) of the oldest held keyframe
        self._knext = 0
        self._total = 0  # bytes ever stored, so bytes_used = _total - _cum[oldest]
        self._head = 0  # arena offset where the next frame would be written
        self._skipping = True  # reject non-keyframes until a keyframe is stored
        self._last_number: int | None = None
        self._last_time: float | None = None
        self.evicted_for_space: int = 0
        self.rejected: int = 0

    # ----------------------------------------------------------------- state

    def __len__(self) -> int:
        return self._next - self._first

    @property
    def bytes_used(self) -> int:
        if self._next == self._first:
            return 0
        return self._total - int(self._cum[self._first % self.max_frames])

    @property
    def oldest_time(self) -> float | None:
        return float(self._time[self._first % self.max_frames]) if len(self) else None

    @property
    def newest_time(self) -> float | None:
        return float(self._time[(self._next - 1) % self.max_frames]) if len(self) else None

    @property
    def oldest_number(self) -> int | None:
        return int(self._number[self._first % self.max_frames]) if len(self) else None

    @property
    def newest_number(self) -> int | None:
        return int(self._number[(self._next - 1) % self.max_frames]) if len(self) else None

    @property
    def coverage(self) -> float:
        """Seconds from the oldest to the newest held frame (0.0 with fewer than two)."""
        if len(self) < 2:
            return 0.0
        n = self.max_frames
        return float(self._time[(self._next - 1) % n] - self._time[self._first % n])

    def clear(self) -> None:
        """Drop every held frame. Counters and the append-order check carry on."""
        self._first = self._next
        self._kfirst = self._knext
        self._skipping = True

    # ---------------------------------------------------------------- append

    def append(self, frame: EncodedFrame) -> bool:
        """Store ``frame``; False (and ``rejected`` counted) if it was not stored.

        Raises ValueError if the frame number does not increase or the time goes back.
        """
        number, t, size = frame.number, frame.time, len(frame.data)
        if not math.isfinite(t):
            raise ValueError(f"frame {number}: time {t!r} is not finite")
        if self._last_number is not None and number <= self._last_number:
            raise ValueError(f"frame {number} appended after frame {self._last_number}")
        if self._last_time is not None and t < self._last_time:
            raise ValueError(f"frame {number} at {t} appended after time {self._last_time}")
        self._last_number, self._last_time = number, t

        # Time has moved on even if this frame is not stored: age out first, so that
        # evicted_for_space counts only GOPs that were still wanted.
        self._evict_aged(t)
        if size > self.capacity_bytes or (not frame.keyframe and self._skipping):
            return self._reject()
        offset = self._place(size)
        while offset < 0:
            if not frame.keyframe and self._knext - self._kfirst == 1:
                # Only this frame's own GOP is left and there is still no room.
                self._evict_gop()
                self.evicted_for_space += 1
                return self._reject()
            self._evict_gop()
            self.evicted_for_space += 1
            offset = self._place(size)

        n = self.max_frames
        seq = self._next
        slot = seq % n
        if size:
            self.arena[offset : offset + size] = np.frombuffer(frame.data, dtype=np.uint8)
        self._off[slot] = offset
        self._size[slot] = size
        self._cum[slot] = self._total
        self._time[slot] = t
        self._number[slot] = number
        self._key[slot] = frame.keyframe
        self._seal[slot] = frame.seal
        if frame.keyframe:
            self._kseq[self._knext % n] = seq
            self._knext += 1
            self._skipping = False
        self._next = seq + 1
        self._total += size
        self._head = offset + size
        self._evict_aged(t)
        return True

    def _reject(self) -> bool:
        self.rejected += 1
        self._skipping = True  # the frames that follow would depend on this one
        return False

    def _place(self, size: int) -> int:
        """Arena offset where ``size`` bytes fit contiguously now, or -1."""
        n = self.max_frames
        count = self._next - self._first
        if count == 0:  # an empty ring starts again at offset 0
            return 0 if size <= self.capacity_bytes else -1
        if count >= n:
            return -1
        head = self._head
        tail = int(self._off[self._first % n])
        if int(self._off[(self._next - 1) % n]) >= tail:  # held bytes are [tail, head)
            if size <= self.capacity_bytes - head:
                return head
            return 0 if size <= tail else -1
        return head if size <= tail - head else -1  # wrapped: free is [head, tail)

    def _evict_gop(self) -> None:
        """Drop the oldest GOP (the whole ring if it holds a single keyframe)."""
        n = self.max_frames
        if self._knext - self._kfirst >= 2:
            self._first = int(self._kseq[(self._kfirst + 1) % n])
            self._kfirst += 1
        else:
            self._first = self._next
            self._kfirst = self._knext

    def _evict_aged(self, t_new: float) -> None:
        n = self.max_frames
        limit = t_new - self.retain_seconds
        while self._knext - self._kfirst >= 2:
            second = int(self._kseq[(self._kfirst + 1) % n])
            if self._time[second % n] > limit:
                break
            self._evict_gop()

    # ----------------------------------------------------------------- query

    def _start_seq(self, t: float) -> int | None:
        """Sequence number of the frame :meth:`frames_from` (``t``) starts at; None if empty."""
        if math.isnan(t):
            raise ValueError("frames_from: t is NaN")
        if self._next == self._first:
            return None
        n = self.max_frames
        kseqs = self._kseq[np.arange(self._kfirst, self._knext) % n]
        ktimes = self._time[kseqs % n]
        i = int(np.searchsorted(ktimes, t, side="right")) - 1
        return int(kseqs[i]) if i >= 0 else self._first

    def start_time(self, t: float) -> float | None:
        """Capture time of the frame :meth:`frames_from` (``t``) would start at; None if empty.

        What a trigger now would get as pre-event, without copying the arena:
        the console's STATUS asks for it whenever a person presses Enter.
        """
        start = self._start_seq(t)
        return None if start is None else float(self._time[start % self.max_frames])

    def frames_from(self, t: float) -> list[EncodedFrame]:
        """Copies of the frames from the latest held keyframe at or before ``t`` on.

        If ``t`` is before the oldest held frame, start at the oldest (a keyframe).
        The data are copied out of the arena, so later appends cannot change them.
        """
        start = self._start_seq(t)
        if start is None:
            return []
        n = self.max_frames
        slots = np.arange(start, self._next) % n
        arena, seals = self.arena, self._seal
        return [
            EncodedFrame(arena[off : off + size].tobytes(), number, time, key, seals[slot])
            for slot, off, size, number, time, key in zip(
                slots.tolist(),
                self._off[slots].tolist(),
                self._size[slots].tolist(),
                self._number[slots].tolist(),
                self._time[slots].tolist(),
                self._key[slots].tolist(),
                strict=True,
            )
        ]
