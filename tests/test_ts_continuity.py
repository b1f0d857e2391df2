"""The continuity-counter rewrite over arrays (issue 14) against the packet-by-packet one.

camera/ts_continuity.py renumbers whole packets with numpy since the pre-event
flush was measured spending most of its time in the Python loop. The loop it
replaced is kept here, verbatim, as the reference: over random streams (any
PIDs, counters, payload flags, a lost sync byte), cut into writes of any size
(whole packets or not, small or large), across segments that share their
counters, both must give the same bytes and leave the same counters.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.ts_continuity import (
    NULL_PID,
    PACKET_SIZE,
    SYNC_BYTE,
    ContinuityCounters,
    ContinuityRewriter,
)

_COUNTER_BYTE = 3
_HAS_PAYLOAD = 0x10
log = logging.getLogger("reference")


class ReferenceRewriter:
    """The rewriter before issue 14 (camera/ts_continuity.py at e3e22f8), unchanged."""

    def __init__(self, counters: ContinuityCounters) -> None:
        self.counters = counters
        self._offset: dict[int, int] = {}
        self._pos = 0
        self._head = bytearray()
        self._lost = False

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._lost:
            return bytes(data)
        buf = bytearray(data)
        i, n = 0, len(buf)
        while i < n and not self._lost:
            if self._pos == 0 and n - i >= PACKET_SIZE:
                i = self._whole_packets(buf, i)
            elif self._pos == 0 and n - i > _COUNTER_BYTE:
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
        offsets, last = self._offset, self.counters.last
        end = i + (len(buf) - i) // PACKET_SIZE * PACKET_SIZE
        for at in range(i, end, PACKET_SIZE):
            pid = ((buf[at + 1] & 0x1F) << 8) | buf[at + 2]
            offset = offsets.get(pid)
            if offset is None or buf[at] != SYNC_BYTE or pid == NULL_PID:
                buf[at + _COUNTER_BYTE] = self._rewrite(buf, at)
                if self._lost:
                    return at + PACKET_SIZE
                continue
            byte = buf[at + _COUNTER_BYTE]
            counter = (byte + offset) & 0x0F
            last[pid] = counter
            buf[at + _COUNTER_BYTE] = (byte & 0xF0) | counter
        return end

    def _rewrite(self, data: bytearray, start: int) -> int:
        byte = data[start + _COUNTER_BYTE]
        if data[start] != SYNC_BYTE:
            log.warning("TS packet without its sync byte (0x%02x)", data[start])
            self._lost = True
            return byte
        pid = ((data[start + 1] & 0x1F) << 8) | data[start + 2]
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


def packet(pid: int, byte: int, sync: int = SYNC_BYTE, fill: int = 0x5A) -> bytes:
    """One 188-byte packet with its fourth byte (flags and counter) given whole."""
    return bytes([sync, 0x40 | (pid >> 8), pid & 0xFF, byte]) + bytes([fill]) * (PACKET_SIZE - 4)


PIDS = st.sampled_from([0x0000, 0x0011, 0x0100, 0x0101, 0x1000, 0x1FFE, NULL_PID])
#: (pid, fourth byte, sync byte ok): any counter and flags, rarely a lost sync byte.
PACKETS = st.tuples(PIDS, st.integers(0, 255), st.integers(0, 60).map(lambda r: r != 0))
SEGMENTS = st.lists(
    st.tuples(
        st.lists(PACKETS, min_size=0, max_size=60),
        st.integers(0, PACKET_SIZE - 1),  # a torn tail: bytes of one more packet
    ),
    min_size=1,
    max_size=4,
)
#: Write sizes: whole packets (the vector path, at and above its 8 packets) or any size.
SIZES = st.lists(
    st.one_of(
        st.integers(1, 40).map(lambda k: k * PACKET_SIZE),
        st.integers(1, 3000),
    ),
    min_size=1,
    max_size=12,
)


def segment_bytes(packets: list[tuple[int, int, bool]], tail: int) -> bytes:
    data = b"".join(packet(pid, byte, SYNC_BYTE if ok else 0x00) for pid, byte, ok in packets)
    return data + packet(0x100, 0x13)[:tail]


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in writes of the given sizes, repeated as needed."""
    out, at = [], 0
    for size in itertools.cycle(sizes):
        if at >= len(data):
            return out
        out.append(data[at : at + size])
        at += size
    return out  # pragma: no cover - cycle never ends


@settings(max_examples=300, deadline=None)
@given(segments=SEGMENTS, sizes=SIZES, mutable=st.booleans())
def test_the_array_rewrite_gives_the_reference_bytes_and_counters(
    segments: list[tuple[list[tuple[int, int, bool]], int]], sizes: list[int], mutable: bool
) -> None:
    ours, theirs = ContinuityCounters(), ContinuityCounters()
    for packets, tail in segments:
        data = segment_bytes(packets, tail)
        new, old = ContinuityRewriter(ours), ReferenceRewriter(theirs)
        for piece in cut(data, sizes):
            given_ = bytearray(piece) if mutable else piece
            got = bytes(new.feed(given_))
            assert got == old.feed(piece)
            if mutable:  # a bytearray is rewritten in place
                assert bytes(given_) == got
        assert ours.last == theirs.last
        assert new._lost == old._lost


def test_bytes_whose_counters_do_not_move_are_passed_on_uncopied() -> None:
    """The first segment of a recording keeps the muxer's counters: nothing to copy."""
    counters = ContinuityCounters()
    data = b"".join(packet(0x100, 0x10 | (i % 16)) for i in range(20))
    assert ContinuityRewriter(counters).feed(data) is data
    assert counters.last == {0x100: 19 % 16}
    moved = b"".join(packet(0x100, 0x10 | (i % 16)) for i in range(20))
    out = ContinuityRewriter(counters).feed(moved)
    assert out is not moved and out[3] & 0x0F == 4  # goes on from 3: +1


def test_a_lost_sync_byte_inside_a_large_write_stops_the_rewrite_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = ContinuityCounters()
    ContinuityRewriter(counters).feed(b"".join(packet(0x100, 0x10 | i) for i in range(10)))
    bad = [packet(0x100, 0x10 | i % 16, SYNC_BYTE if i != 12 else 0x00) for i in range(20)]
    out = ContinuityRewriter(counters).feed(b"".join(bad))
    counters_out = [b & 0x0F for b in out[3::PACKET_SIZE]]
    assert counters_out[:12] == [(10 + i) % 16 for i in range(12)]  # renumbered
    assert counters_out[12:] == [i % 16 for i in range(12, 20)]  # as written from the bad one
    assert "sync byte" in caplog.text


def test_renumbering_a_realistic_chunk_needs_no_python_loop_per_packet() -> None:
    """A 0.5 MB write (a second of 720p) goes through the array path in one call."""
    counters = ContinuityCounters()
    counters.last = {0x100: 5, 0x0000: 2, 0x1000: 2}
    pids = [0x100] * 2900 + [0x0000, 0x1000]
    data = bytearray(b"".join(packet(p, 0x10 | (i % 16)) for i, p in enumerate(pids)))
    rewriter = ContinuityRewriter(counters)
    calls: list[int] = []
    original = rewriter._rewrite
    rewriter._rewrite = lambda d, s: calls.append(s) or original(d, s)  # type: ignore[method-assign]
    assert rewriter.feed(data) is data
    assert calls == []
    video = np.frombuffer(data, np.uint8).reshape(-1, PACKET_SIZE)[:2900, 3] & 0x0F
    assert video[0] == 6 and all(np.diff(video.astype(int)) % 16 == 1)
