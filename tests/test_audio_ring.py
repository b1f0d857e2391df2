"""The audio ring against a plain model: what it returns is what was appended, and recent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.audio_ring import AudioRing
from camera.frames import EncodedAudio

RATE = 48_000
FRAME = 1024


def packet(k: int, size: int) -> EncodedAudio:
    data = bytes([k % 251]) * size
    return EncodedAudio(data, k * FRAME, FRAME, k * FRAME / RATE, RATE)


@given(
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=300),
    capacity=st.integers(700, 20_000),
    retain=st.floats(0.0, 3.0),
    query=st.floats(-1.0, 8.0),
)
def test_holds_recent_packets_intact_and_in_order(
    sizes: list[int], capacity: int, retain: float, query: float
) -> None:
    ring = AudioRing(capacity, retain)
    appended = []
    for k, size in enumerate(sizes):
        p = packet(k, size)
        ring.append(p)
        appended.append(p)
    held = ring.packets_from(query)
    # Every packet returned is one appended, byte for byte, in order, at or after the query.
    by_sample = {p.first_sample: p for p in appended}
    assert [p.first_sample for p in held] == sorted(p.first_sample for p in held)
    for p in held:
        assert p == by_sample[p.first_sample]
        assert p.time >= query
    # What it holds is a contiguous run of the newest packets, within retain of the newest.
    everything = ring.packets_from(float("-inf"))
    newest = appended[-1]
    assert everything and everything[-1] == newest
    firsts = [p.first_sample // FRAME for p in everything]
    assert firsts == list(range(firsts[0], len(appended)))
    assert all(p.time >= newest.time - retain for p in everything)
    assert sum(len(p.data) for p in everything) <= capacity
    # Nothing recent was given up unless the arena could not hold it.
    if ring.evicted_for_space == 0:
        recent = [p for p in appended if p.time >= newest.time - retain]
        assert everything[-len(recent) :] == recent


def test_packets_are_copies_later_appends_cannot_change() -> None:
    ring = AudioRing(1000, 10.0)
    ring.append(packet(0, 400))
    [before] = ring.packets_from(0.0)
    for k in range(1, 10):
        ring.append(packet(k, 400))  # wraps over the first packet's bytes
    assert before.data == bytes([0]) * 400


def test_rejects_a_useless_arena() -> None:
    with pytest.raises(ValueError, match="capacity_bytes"):
        AudioRing(0, 1.0)
