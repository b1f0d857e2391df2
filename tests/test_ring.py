"""The pre-event ring buffer against a plain-Python model, plus the cases that matter."""

from __future__ import annotations

import math
import random
import tracemalloc
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from camera.frames import EncodedFrame
from camera.ring import RingBuffer

FPS = 30
DT = 1 / FPS


def payload(number: int, size: int) -> bytes:
    """Bytes that differ from frame to frame, so a mix-up of frames shows."""
    return random.Random(number).randbytes(size)


def frame(number: int, size: int, key: bool, t: float | None = None) -> EncodedFrame:
    return EncodedFrame(payload(number, size), number, number * DT if t is None else t, key)


# --------------------------------------------------------------------- the model


@dataclass
class Held:
    frame: EncodedFrame
    offset: int


@dataclass
class Model:
    """The ring's rules written the obvious way: a list of frames and their placement.

    Placement: at the head if the frame fits before the end of the arena, else at 0;
    it fits if that span overlaps no held frame's bytes (sizes here are >= 1).
    """

    capacity: int
    retain: float
    max_frames: int
    held: list[Held] = field(default_factory=list)
    head: int = 0
    skipping: bool = True
    evicted_for_space: int = 0
    rejected: int = 0

    def keyframe_positions(self) -> list[int]:
        return [i for i, h in enumerate(self.held) if h.frame.keyframe]

    def evict_gop(self) -> None:
        keys = self.keyframe_positions()
        if len(keys) >= 2:
            del self.held[: keys[1]]
        else:
            self.held.clear()
            self.head = 0

    def evict_aged(self, t: float) -> None:
        while True:
            keys = self.keyframe_positions()
            if len(keys) < 2 or self.held[keys[1]].frame.time > t - self.retain:
                return
            self.evict_gop()

    def free_runs(self) -> tuple[int, int]:
        """Bytes free from the head onwards, and from offset 0 onwards."""
        if not self.held:
            return self.capacity, self.capacity
        used = sorted((h.offset, h.offset + h.frame.size) for h in self.held)
        at_head = min([o for o, _ in used if o >= self.head], default=self.capacity) - self.head
        return at_head, used[0][0]

    def place(self, size: int) -> int | None:
        if not self.held:
            return 0
        if len(self.held) >= self.max_frames:
            return None
        start = self.head if self.head + size <= self.capacity else 0
        for h in self.held:
            if start < h.offset + h.frame.size and h.offset < start + size:
                return None
        return start

    def reject(self) -> bool:
        self.rejected += 1
        self.skipping = True
        return False

    def append(self, f: EncodedFrame) -> bool:
        self.evict_aged(f.time)
        if f.size > self.capacity or (not f.keyframe and self.skipping):
            return self.reject()
        while (offset := self.place(f.size)) is None:
            own_gop_only = len(self.keyframe_positions()) == 1
            self.evict_gop()
            self.evicted_for_space += 1
            if not f.keyframe and own_gop_only:
                return self.reject()
        self.held.append(Held(f, offset))
        self.head = offset + f.size
        if f.keyframe:
            self.skipping = False
        self.evict_aged(f.time)
        return True

    def frames_from(self, t: float) -> list[EncodedFrame]:
        if not self.held:
            return []
        start = 0
        for i, h in enumerate(self.held):
            if h.frame.keyframe and h.frame.time <= t:
                start = i
        return [h.frame for h in self.held[start:]]


# ---------------------------------------------------------------- stateful test


class RingMachine(RuleBasedStateMachine):
    ring: RingBuffer
    model: Model

    @initialize(
        capacity=st.integers(1, 3000),
        retain=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 5.0]),
        max_frames=st.integers(1, 40),
        gop=st.integers(1, 15),
    )
    def setup(self, capacity: int, retain: float, max_frames: int, gop: int) -> None:
        self.ring = RingBuffer(capacity, retain, max_frames)
        self.model = Model(capacity, retain, max_frames)
        self.arena = self.ring.arena
        self.arena_size = self.ring.arena.size
        self.arena_address = self.ring.arena.ctypes.data
        self.gop = gop
        self.since_key = 0
        self.number = -1
        self.now = 0.0
        self.stored: list[EncodedFrame] = []

    @rule(gop=st.integers(1, 15))
    def change_gop(self, gop: int) -> None:
        self.gop = gop

    @rule(
        kind=st.sampled_from(["small"] * 6 + ["any", "gap", "gap", "capacity"]),
        raw=st.integers(1, 3000),
        delta=st.integers(-2, 2),
        force_key=st.integers(0, 9),
        jumpy=st.integers(0, 11),
        jump=st.floats(0.0, 8.0, allow_nan=False),
        skip=st.sampled_from([1, 1, 1, 1, 2, 5]),
    )
    def append(
        self, kind: str, raw: int, delta: int, force_key: int, jumpy: int, jump: float, skip: int
    ) -> None:
        cap = self.model.capacity
        if kind == "small":
            size = 1 + raw % max(1, cap // 8)
        elif kind == "any":
            size = raw
        elif kind == "gap":  # exactly the free run at the head or at 0, give or take
            size = max(1, self.model.free_runs()[raw % 2] + delta)
        else:
            size = max(1, cap + delta)
        key = self.since_key % self.gop == 0 or force_key == 0
        self.since_key = 1 if key else self.since_key + 1
        self.number += skip
        self.now += jump if jumpy == 0 else 0.0 if jumpy == 1 else DT
        f = frame(self.number, size, key, self.now)
        before = (self.model.evicted_for_space, self.model.rejected)
        expected = self.model.append(f)
        assert self.ring.append(f) is expected
        if expected:
            self.stored.append(f)
            assert self.ring.newest_number == f.number
            if self.model.held[-1].offset < self.model.held[0].offset:
                event("stored, arena wrapped")
        if self.model.evicted_for_space > before[0]:
            event("evicted for space" + ("" if expected else ", then rejected"))
        if len(self.model.held) == self.model.max_frames:
            event("index full")

    @precondition(lambda self: self.number >= 0)
    @rule(back=st.integers(0, 3))
    def append_out_of_order(self, back: int) -> None:
        before = (len(self.ring), self.ring.rejected, self.ring.newest_number)
        with pytest.raises(ValueError):
            self.ring.append(frame(self.number - back, 10, True, self.now))
        with pytest.raises(ValueError):
            self.ring.append(frame(self.number + 1, 10, True, self.now - 1.0))
        assert (len(self.ring), self.ring.rejected, self.ring.newest_number) == before

    @precondition(lambda self: len(self.model.held) > 0)
    @rule(pick=st.integers(0, 10_000), nudge=st.sampled_from([-1e-9, 0.0, 0.0, 1e-9]))
    def query_at_held_time(self, pick: int, nudge: float) -> None:
        held = self.model.held
        t = held[pick % len(held)].frame.time + nudge
        self.check_query(t)

    @rule(before_newest=st.floats(-2.0, 12.0, allow_nan=False))
    def query_relative(self, before_newest: float) -> None:
        self.check_query(self.now - before_newest)

    @rule(t=st.sampled_from([-math.inf, math.inf, -1.0]))
    def query_extreme(self, t: float) -> None:
        self.check_query(t)

    @rule()
    def clear(self) -> None:
        self.ring.clear()
        self.model.held.clear()
        self.model.head = 0
        self.model.skipping = True
        assert len(self.ring) == 0 and self.ring.bytes_used == 0

    def check_query(self, t: float) -> None:
        got = self.ring.frames_from(t)
        want = self.model.frames_from(t)
        assert [f.number for f in got] == [f.number for f in want]
        assert got == want  # data, time and keyframe flags too
        if got:
            assert got[0].keyframe
            assert got[-1].number == self.ring.newest_number

    @invariant()
    def memory_fixed(self) -> None:
        assert self.ring.bytes_used <= self.ring.capacity_bytes
        assert self.ring.arena is self.arena
        assert self.ring.arena.size == self.arena_size
        assert self.ring.arena.ctypes.data == self.arena_address

    @invariant()
    def holds_newest_stored_run_from_a_keyframe(self) -> None:
        held = self.ring.frames_from(-math.inf)
        numbers = [f.number for f in held]
        assert numbers == sorted(set(numbers))
        assert len(held) == len(self.ring) <= self.ring.max_frames
        if held:
            assert held[0].keyframe
            assert held == self.stored[-len(held) :]
        # ...and exactly what the model holds, bytes and all.
        assert held == [h.frame for h in self.model.held]
        assert self.ring.bytes_used == sum(f.size for f in held)

    @invariant()
    def summary_matches(self) -> None:
        held = [h.frame for h in self.model.held]
        r = self.ring
        assert r.evicted_for_space == self.model.evicted_for_space
        assert r.rejected == self.model.rejected
        if held:
            assert (r.oldest_number, r.newest_number) == (held[0].number, held[-1].number)
            assert (r.oldest_time, r.newest_time) == (held[0].time, held[-1].time)
            assert r.coverage == held[-1].time - held[0].time
            keys = [f for f in held if f.keyframe]
            if len(keys) >= 2:  # never more than one GOP wholly older than retention
                assert keys[1].time > self.now - self.model.retain
        else:
            assert r.oldest_number is r.newest_number is r.oldest_time is r.newest_time is None
            assert r.coverage == 0.0


RingMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRingStateful = RingMachine.TestCase


# ------------------------------------------------------------------ plain tests


def run(ring: RingBuffer, count: int, gop: int, size_of=lambda n, key: 100, start: int = 0):
    results = []
    for n in range(start, start + count):
        key = n % gop == 0
        results.append(ring.append(frame(n, size_of(n, key), key)))
    return results


def test_retention_keeps_the_keyframe_at_or_before_newest_minus_retain() -> None:
    ring = RingBuffer(capacity_bytes=10_000_000, retain_seconds=30.0, max_frames=2000)
    assert all(run(ring, 100 * FPS, gop=30))
    newest = ring.newest_time
    assert newest is not None
    held = ring.frames_from(-math.inf)
    keys = [f for f in held if f.keyframe]
    assert held[0].keyframe and held[0].time <= newest - 30.0
    assert keys[1].time > newest - 30.0
    assert ring.frames_from(newest - 30.0)[0] == held[0]
    assert ring.evicted_for_space == 0 and ring.rejected == 0
    assert ring.coverage == pytest.approx(newest - held[0].time)
    assert 30.0 <= ring.coverage < 31.0


def test_bitrate_spike_evicts_for_space_and_coverage_shows_it() -> None:
    # 1.2 MB holds ~10 s of 3 KB frames with a 30 KB keyframe each second.
    gop_bytes = 30_000 + 29 * 3_000
    ring = RingBuffer(capacity_bytes=1_200_000, retain_seconds=30.0, max_frames=2000)
    sizes = lambda n, key: 30_000 if key else 3_000  # noqa: E731
    assert all(run(ring, 60 * FPS, gop=30, size_of=sizes))
    assert ring.evicted_for_space > 0
    assert ring.capacity_bytes - 2 * gop_bytes < ring.bytes_used <= ring.capacity_bytes
    held = ring.frames_from(-math.inf)
    assert held[0].keyframe and sum(f.size for f in held) == ring.bytes_used
    assert 8.0 < ring.coverage < 11.0
    assert ring.coverage == held[-1].time - held[0].time
    assert ring.oldest_time == held[0].time and ring.newest_time == held[-1].time


def test_frames_from_on_an_empty_ring() -> None:
    ring = RingBuffer(1000, 5.0, 10)
    assert ring.frames_from(0.0) == []
    assert len(ring) == 0 and ring.bytes_used == 0 and ring.coverage == 0.0
    assert ring.oldest_time is None and ring.newest_number is None


def test_non_keyframes_before_the_first_keyframe_are_rejected() -> None:
    ring = RingBuffer(1000, 5.0, 10)
    assert ring.append(frame(0, 10, key=False)) is False
    assert ring.append(frame(1, 10, key=False)) is False
    assert ring.rejected == 2 and len(ring) == 0
    assert ring.append(frame(2, 10, key=True)) is True
    assert ring.append(frame(3, 10, key=False)) is True
    assert [f.number for f in ring.frames_from(0.0)] == [2, 3]


def test_frame_bigger_than_the_arena_is_rejected_with_its_gop() -> None:
    ring = RingBuffer(1000, 5.0, 10)
    assert ring.append(frame(0, 1000, key=True)) is True  # exactly the arena fits
    assert ring.append(frame(1, 1001, key=True)) is False
    assert ring.append(frame(2, 10, key=False)) is False  # depends on the lost keyframe
    assert ring.rejected == 2
    assert [f.number for f in ring.frames_from(math.inf)] == [0]
    assert ring.append(frame(3, 10, key=True)) is True
    assert ring.evicted_for_space == 1
    assert [f.number for f in ring.frames_from(math.inf)] == [3]


def test_a_gop_that_outgrows_the_arena_is_dropped_whole() -> None:
    ring = RingBuffer(1000, 5.0, 100)
    assert ring.append(frame(0, 400, key=True))
    assert ring.append(frame(1, 400, key=False))
    assert ring.append(frame(2, 400, key=False)) is False
    assert len(ring) == 0 and ring.evicted_for_space == 1
    assert ring.append(frame(3, 10, key=False)) is False
    assert ring.append(frame(4, 10, key=True)) is True
    assert ring.rejected == 2 and ring.newest_number == 4


def test_full_index_evicts_whole_gops() -> None:
    ring = RingBuffer(1_000_000, 60.0, max_frames=10)
    assert all(run(ring, 25, gop=5))
    assert [f.number for f in ring.frames_from(-1.0)] == list(range(15, 25))
    assert ring.evicted_for_space == 3


def test_out_of_order_append_raises() -> None:
    ring = RingBuffer(1000, 5.0, 10)
    ring.append(frame(5, 10, key=True))
    with pytest.raises(ValueError):
        ring.append(frame(5, 10, key=True))
    with pytest.raises(ValueError):
        ring.append(frame(6, 10, key=True, t=0.0))
    with pytest.raises(ValueError):
        ring.append(frame(7, 10, key=True, t=math.nan))
    assert len(ring) == 1


def test_bad_construction_raises() -> None:
    for args in [(0, 1.0, 10), (10, 1.0, 0), (10, -1.0, 10), (10, math.inf, 10)]:
        with pytest.raises(ValueError):
            RingBuffer(*args)


def test_returned_frames_survive_later_overwrites() -> None:
    ring = RingBuffer(capacity_bytes=50_000, retain_seconds=2.0, max_frames=200)
    run(ring, 90, gop=30, size_of=lambda n, key: 1000 + n)
    got = ring.frames_from(0.0)
    snapshot = [(f.number, bytes(f.data)) for f in got]
    run(ring, 2000, gop=30, size_of=lambda n, key: 1000 + n % 500, start=90)
    assert ring.oldest_number is not None and ring.oldest_number > got[-1].number
    assert [(f.number, f.data) for f in got] == snapshot
    assert all(f.data == payload(f.number, f.size) for f in got)


def test_appending_does_not_grow_memory() -> None:
    # ~54 KB of frames per 3 s: the arena, not the age limit, is what recycles.
    ring = RingBuffer(capacity_bytes=40_000, retain_seconds=3.0, max_frames=300)

    def arrays() -> list[object]:
        return [ring.arena, ring._off, ring._size, ring._cum, ring._time, ring._number]

    at_start = arrays()
    frames = [frame(n, 200 + (n * 37) % 800, n % 30 == 0) for n in range(10_000)]
    ring.append(frames[0])
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for f in frames:
            if f.number:
                ring.append(f)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 4096
    assert peak - before < 16_384
    assert all(a is b for a, b in zip(arrays(), at_start, strict=True))
    assert len(ring) > 0 and ring.newest_number == 9_999
    assert ring.evicted_for_space > 0  # the arena really was recycled


def test_frames_from_thirty_seconds_returns_everything_held() -> None:
    ring = RingBuffer(capacity_bytes=20_000_000, retain_seconds=30.0, max_frames=1200)
    for n in range(31 * FPS):
        key = n % 30 == 0
        data = n.to_bytes(4, "big") * (50_000 if key else 3_000)
        ring.append(EncodedFrame(data, n, n * DT, key))
    oldest = ring.oldest_time
    assert oldest is not None
    got = ring.frames_from(oldest)
    assert len(got) == len(ring) >= 30 * FPS
    assert sum(f.size for f in got) == ring.bytes_used > 15_000_000
    assert all(f.data[:4] == f.number.to_bytes(4, "big") for f in got)


def test_frames_from_keeps_each_frames_signature_seal() -> None:
    """The writer signs a recording's last GOP from the frames' seals: the pre-event
    copy out of the arena must carry them, or a recording that stops inside a GOP
    whose keyframe came from the ring closes with a signature that leaves it out."""
    from camera.evidence.svf import FrameSeal

    ring = RingBuffer(1_000_000, retain_seconds=10.0, max_frames=64)
    seals = [
        FrameSeal(gop_counter=1 + i // 5, linked_hash=b"", hashes=(bytes([i]),)) for i in range(12)
    ]
    for i, seal in enumerate(seals):
        ring.append(EncodedFrame(bytes([i]) * 100, i, i / 30, i % 5 == 0, seal))
    assert [f.seal for f in ring.frames_from(0.0)] == seals
    assert [f.seal for f in ring.frames_from(6 / 30)] == seals[5:]
