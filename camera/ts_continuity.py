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
in whichever write it arrives. Nothing is held back here, so every byte
handed over goes on at once, as the crash-tolerance of camera/segments.py
needs. If a packet does not start with the sync byte the stream is not one
this code understands: it says so once and passes the rest through
untouched rather than guess.

Whole packets, the muxer's usual writes and a pre-event's gathered ones
(half a megabyte and more), are renumbered with numpy over the array of
their headers rather than packet by packet in Python: a 30 s pre-event at
720p is about 90,000 packets, and the loop was most of its flush's time
(issue 14). The few bytes of a packet cut between two writes still go
through the byte-by-byte path; tests/test_ts_continuity.py holds the two to
the old loop's bytes and counters.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

PACKET_SIZE = 188
SYNC_BYTE = 0x47
#: Null packets: their counter is undefined (ISO/IEC 13818-1 2.4.3.3), left as they are.
NULL_PID = 0x1FFF
#: The counter is the low nibble of a packet's fourth byte.
_COUNTER_BYTE = 3
_HAS_PAYLOAD = 0x10
#: Writes of fewer whole packets than this go packet by packet: the arrays' fixed
#: cost (tens of microseconds) is more than a few packets' loop (an audio PES).
_VECTOR_MIN = 8 * PACKET_SIZE


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
        #: Added to each PID's counter in this segment, fixed at its first packet here
        #: (-1: not seen yet). Null packets are left as they are: offset 0, never counted.
        self._offset = np.full(NULL_PID + 1, -1, dtype=np.int8)
        self._offset[NULL_PID] = 0
        #: Where the next byte falls in its packet, and the header bytes seen of that packet.
        self._pos = 0
        self._head = bytearray()
        self._lost = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        """``data`` with its counters rewritten; any length, packets may span calls.

        A ``bytearray`` is rewritten in place and returned. Other data is
        returned as it is when no counter in it moves (the first segment of a
        recording), else as a rewritten copy.
        """
        if self._lost:
            return data
        if self._pos == 0 and len(data) % PACKET_SIZE == 0 and len(data) >= _VECTOR_MIN:
            # The usual case, the muxer's writes: whole packets, renumbered at once.
            column = self._renumber(np.frombuffer(data, np.uint8).reshape(-1, PACKET_SIZE))
            if column is None:
                return data
            out = data if isinstance(data, bytearray) else bytearray(data)
            np.frombuffer(out, np.uint8).reshape(-1, PACKET_SIZE)[:, _COUNTER_BYTE] = column
            return out
        buf = data if isinstance(data, bytearray) else bytearray(data)
        i, n = 0, len(buf)
        while i < n and not self._lost:
            if self._pos == 0 and n - i >= _VECTOR_MIN:  # whole packets from here
                end = i + (n - i) // PACKET_SIZE * PACKET_SIZE
                packets = np.frombuffer(buf, np.uint8, end - i, i).reshape(-1, PACKET_SIZE)
                column = self._renumber(packets)
                if column is not None:
                    packets[:, _COUNTER_BYTE] = column
                del packets  # lets go of buf's buffer
                i = end
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
        return buf

    def _renumber(self, packets: np.ndarray) -> np.ndarray | None:
        """The new fourth byte of each of ``packets`` (n x 188), or None if none moves.

        What :meth:`_rewrite` does packet by packet, over arrays: a 30 s
        pre-event at 720p is about 90,000 packets, each otherwise several
        Python operations on the writer thread. Packets from one without its
        sync byte on are left as they are (and the stream is given up), as there.
        """
        column = packets[:, _COUNTER_BYTE]
        bad = np.flatnonzero(packets[:, 0] != SYNC_BYTE)
        stop = int(bad[0]) if bad.size else len(packets)
        if bad.size:
            self._give_up(int(packets[stop, 0]))
        head, old = packets[:stop], column[:stop]
        pids = ((head[:, 1] & 0x1F).astype(np.intp) << 8) | head[:, 2]
        offsets = self._offset[pids]
        if (offsets < 0).any():  # a PID's first packet in this segment fixes its offset
            for pid in np.unique(pids[offsets < 0]).tolist():
                self._start(pid, int(old[np.argmax(pids == pid)]))
            offsets = self._offset[pids]
        moved = bool(offsets.any())
        new = ((old & 0xF0) | ((old + offsets) & 0x0F)).astype(np.uint8) if moved else old
        # Where each PID stands now: the counter of its last packet here.
        last = self.counters.last
        found, back = np.unique(pids[::-1], return_index=True)
        for pid, i in zip(found.tolist(), back.tolist(), strict=True):
            if pid != NULL_PID:
                last[pid] = int(new[stop - 1 - i]) & 0x0F
        if not moved:
            return None
        out = column.copy()
        out[:stop] = new
        return out

    def _start(self, pid: int, byte: int) -> None:
        """Fix ``pid``'s offset at its first packet (fourth byte ``byte``) in this segment."""
        last = self.counters.last.get(pid)
        step = 1 if byte & _HAS_PAYLOAD else 0
        self._offset[pid] = 0 if last is None else (last + step - (byte & 0x0F)) % 16

    def _give_up(self, sync: int) -> None:
        log.warning(
            "TS packet without its sync byte (0x%02x): continuity counters left as written", sync
        )
        self._lost = True

    def _rewrite(self, data: bytearray, start: int) -> int:
        """The new fourth byte of the packet whose header is at ``data[start:]``."""
        byte = data[start + _COUNTER_BYTE]
        if data[start] != SYNC_BYTE:
            self._give_up(data[start])
            return byte
        pid = _pid(data, start)
        if pid == NULL_PID:
            return byte
        if self._offset[pid] < 0:
            self._start(pid, byte)
        counter = ((byte & 0x0F) + int(self._offset[pid])) % 16
        self.counters.last[pid] = counter
        return (byte & 0xF0) | counter


def _pid(data: bytes | bytearray, start: int) -> int:
    return ((data[start + 1] & 0x1F) << 8) | data[start + 2]
