"""MPEG-TS continuity counters that run on from one segment of a recording to the next.

Every TS packet carries a 4-bit continuity counter per PID, which goes up by
one with each packet that carries payload (ISO/IEC 13818-1 section 2.4.3.3).
FFmpeg's muxer starts every PID's counter afresh in each file and has no
option to start elsewhere (``mpegts_flags`` offers only
``initial_discontinuity``, which flags the restart instead of avoiding it).
So ``cat segment-*.ts`` used to give a demuxer a counter jump at every
segment boundary, which FFmpeg reports as "Packet corrupt" and flags the
packet (``AV_PKT_FLAG_CORRUPT``).

:class:`ContinuityRewriter` sits in the byte stream between the muxer and
the segment's file, before the hash: it adds one constant per PID (mod 16)
to the counter nibble of each packet, chosen at the PID's first packet in
the segment so that the counter continues from the previous segment's last
one. A constant offset keeps every relation the muxer made inside the file
(a packet without payload repeats the counter of the one before; a packet
with payload goes up by one), so a segment on its own is exactly as valid as
the muxer wrote it, and the first segment of a recording is unchanged. The
hash, the journaled sizes and recovery all see the final bytes, since they
are the only bytes there are.

The ``discontinuity_indicator`` is never set: a boundary between segments of
one recording is no discontinuity (timestamps run on from the same origin).
A segment that is missing from the concatenation, or the cut-off tail of a
segment after a power loss, leaves a jump in the counters, which is the
honest account of packets that are not there. Only the last segment of a
recording can be torn: a recording is never resumed after recovery, so no
later segment continues from a cut one.

Packets are 188 bytes and the muxer writes them whole, but nothing here
relies on a write holding whole packets: the rewriter keeps the position in
the packet and the header bytes seen so far, and rewrites the counter byte
in whichever write it arrives. Nothing is held back, so every byte the
muxer hands over reaches the file at once, as the crash-tolerance of
camera/segments.py needs. If a packet does not start with the sync byte
the stream is not one this code understands: it says so once and passes
the rest through untouched rather than guess.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

PACKET_SIZE = 188
SYNC_BYTE = 0x47
#: Null packets: their counter is undefined (ISO/IEC 13818-1 2.4.3.3), left as they are.
NULL_PID = 0x1FFF
#: The counter is the low nibble of a packet's fourth byte.
_COUNTER_BYTE = 3
_HAS_PAYLOAD = 0x10


class ContinuityCounters:
    """Each PID's last continuity counter in a recording: where the next segment goes on.

    One per recording, owned by its writer and handed to each segment in turn.
    """

    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    @classmethod
    def after(cls, data: bytes) -> ContinuityCounters:
        """The counters at the end of ``data`` (whole TS packets): what a next file continues."""
        counters = cls()
        for start in range(0, len(data) - PACKET_SIZE + 1, PACKET_SIZE):
            pid, counter = _pid(data, start), data[start + _COUNTER_BYTE] & 0x0F
            if data[start] == SYNC_BYTE and pid != NULL_PID:
                counters.last[pid] = counter
        return counters


class ContinuityRewriter:
    """Renumbers one segment's counters as its bytes pass, to go on from ``counters``."""

    def __init__(self, counters: ContinuityCounters) -> None:
        self.counters = counters
        #: Added to each PID's counter in this segment, fixed at its first packet here.
        self._offset: dict[int, int] = {}
        #: Where the next byte falls in its packet, and the header bytes seen of that packet.
        self._pos = 0
        self._head = bytearray()
        self._lost = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        """``data`` with its counters rewritten; any length, packets may span calls."""
        if self._lost:
            return bytes(data)
        buf = bytearray(data)
        i, n = 0, len(buf)
        while i < n and not self._lost:
            if self._pos == 0 and n - i >= PACKET_SIZE:  # the usual case: whole packets
                i = self._whole_packets(buf, i)
            elif self._pos == 0 and n - i > _COUNTER_BYTE:  # a whole header here
                buf[i + _COUNTER_BYTE] = self._rewrite(buf, i)
                step = min(PACKET_SIZE, n - i)
                i += step
                self._pos = step
            elif self._pos <= _COUNTER_BYTE:
                take = min(_COUNTER_BYTE + 1 - self._pos, n - i)
                self._head += buf[i : i + take]
                i += take
                self._pos += take
                if self._pos > _COUNTER_BYTE:
                    buf[i - 1] = self._rewrite(self._head, 0)
                    self._head.clear()
            else:
                step = min(PACKET_SIZE - self._pos, n - i)
                i += step
                self._pos += step
            if self._pos == PACKET_SIZE:
                self._pos = 0
        return bytes(buf)

    def _whole_packets(self, buf: bytearray, i: int) -> int:
        """Rewrite the whole packets from ``buf[i]`` on (``i`` at a packet's start); returns
        where the first incomplete one starts.

        The same as :meth:`_rewrite` packet by packet, inlined for the PIDs already
        seen: a 30 s pre-event is about 80,000 packets, each otherwise a few method
        calls on the writer thread.
        """
        offsets, last = self._offset, self.counters.last
        end = i + (len(buf) - i) // PACKET_SIZE * PACKET_SIZE
        for at in range(i, end, PACKET_SIZE):
            pid = ((buf[at + 1] & 0x1F) << 8) | buf[at + 2]
            offset = offsets.get(pid)
            if offset is None or buf[at] != SYNC_BYTE or pid == NULL_PID:
                buf[at + _COUNTER_BYTE] = self._rewrite(buf, at)  # first of its PID, or odd
                if self._lost:
                    return at + PACKET_SIZE
                continue
            byte = buf[at + _COUNTER_BYTE]
            counter = (byte + offset) & 0x0F
            last[pid] = counter
            buf[at + _COUNTER_BYTE] = (byte & 0xF0) | counter
        return end

    def _rewrite(self, data: bytearray, start: int) -> int:
        """The new fourth byte of the packet whose header is at ``data[start:]``."""
        byte = data[start + _COUNTER_BYTE]
        if data[start] != SYNC_BYTE:
            log.warning(
                "TS packet without its sync byte (0x%02x): continuity counters left as written",
                data[start],
            )
            self._lost = True
            return byte
        pid = _pid(data, start)
        if pid == NULL_PID:
            return byte
        counter = byte & 0x0F
        if pid not in self._offset:
            last = self.counters.last.get(pid)
            step = 1 if byte & _HAS_PAYLOAD else 0
            self._offset[pid] = 0 if last is None else (last + step - counter) % 16
        counter = (counter + self._offset[pid]) % 16
        self.counters.last[pid] = counter
        return (byte & 0xF0) | counter


def _pid(data: bytes | bytearray, start: int) -> int:
    return ((data[start + 1] & 0x1F) << 8) | data[start + 2]
