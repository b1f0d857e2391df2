"""Debouncer and gesture detectors on virtual time (SPEC 5).

Everything runs on made-up device times: no sleeps, no clock. The ``drive``
helper plays the firmware's part: it feeds edges and polls at every deadline the
machine asks for, in time order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.debounce import MAX_RESTS, Debouncer, Transition
from camera.gestures import (
    ButtonDetector,
    Gesture,
    InputDetector,
    LevelDetector,
    make_detector,
)

Edge = tuple[float, bool]
Machine = Debouncer | InputDetector
MAX_STEPS = 10_000

# ---------------------------------------------------------------------------
# Drivers


def _poll(machine: Machine, t: float) -> list:
    result = machine.poll(t)
    if isinstance(machine, Debouncer):
        return [] if result is None else [result]
    return result


def drive(
    machine: Machine, edges: Iterable[Edge], *, end: float = math.inf, inclusive: bool = False
) -> list:
    """Feed ``edges`` and poll at every deadline, as the firmware's timer would.

    Order at equal times (a deadline exactly at an edge's time): by default
    deadlines strictly before the edge are polled first, then the edge is fed,
    then the deadline at that same time is polled (the edge callback wins the
    race against the timer). ``inclusive=True`` is the other order: the timer
    for a deadline equal to the edge time fires first. The machines are meant to
    give the same result either way, and tests check that. Finally polls every
    deadline up to ``end``.
    """
    out: list = []

    def run_timers(limit: float, include_limit: bool) -> None:
        for _ in range(MAX_STEPS):
            d = machine.deadline()
            if d is None or d > limit or (d == limit and not include_limit):
                return
            out.extend(_poll(machine, d))
        raise AssertionError("polling at deadline() makes no progress")

    for t, level in edges:
        run_timers(t, inclusive)
        machine.edge(t, level)
    run_timers(end, True)
    return out


def drive_polls_at(machine: Machine, edges: Sequence[Edge], poll_times: Iterable[float]) -> list:
    """Feed ``edges`` but poll only at ``poll_times`` (late, early, at random), then at the end.

    A poll time equal to an edge time is polled after the edge.
    """
    out: list = []
    polls = sorted(poll_times)
    i = 0
    for t, level in edges:
        while i < len(polls) and polls[i] < t:
            while step := _poll(machine, polls[i]):
                out.extend(step)
            i += 1
        machine.edge(t, level)
    for pt in [*polls[i:], math.inf]:
        while step := _poll(machine, pt):
            out.extend(step)
    assert machine.deadline() is None
    return out


def reference(initial: bool, edges: Sequence[Edge], debounce: float) -> list[Transition]:
    """Debouncing by definition, over the whole raw waveform at once.

    The raw signal is piecewise constant: segment k has level L_k from s_k until
    the next change s_{k+1} (the last one forever). A segment is *settled* when
    the signal stays at its level for at least ``debounce`` (s_k + debounce <=
    s_{k+1}). The stable level is the level of the latest settled segment; a
    settled segment at a new level is an accepted change, accepted at
    s_k + debounce and dated by :func:`reference_date`.
    """
    changes: list[Edge] = []
    level = initial
    for t, a in edges:
        if a != level:
            changes.append((t, a))
            level = a
    out: list[Transition] = []
    stable = initial
    burst_start: int | None = None
    for k, (s, lvl) in enumerate(changes):
        if burst_start is None:
            burst_start = k
        held_until = changes[k + 1][0] if k + 1 < len(changes) else math.inf
        if s + debounce <= held_until:  # settled
            if lvl != stable:
                date = reference_date(changes, burst_start, k, stable, debounce)
                out.append(Transition(lvl, date, s + debounce))
                stable = lvl
            burst_start = None
    return out


def reference_date(changes: Sequence[Edge], first: int, last: int, old: bool, d: float) -> float:
    """SPEC 5's date read cumulatively (the lead's rule), by brute force.

    Walk back from the burst's last change ``changes[last]``, adding up the time
    spent at the ``old`` level; the date is the first change to the new level
    after the point where the sum reaches ``d``, or the burst's first change if
    it never does.
    """
    rested = 0.0
    for j in range(last - 1, first - 1, -1):
        if changes[j][1] == old:
            rested += changes[j + 1][0] - changes[j][0]
            if rested >= d:
                return changes[j + 1][0]
    return changes[first][0]


# ---------------------------------------------------------------------------
# Strategies

debounces = st.floats(min_value=0.001, max_value=0.1)
start_times = st.floats(min_value=0.0, max_value=10_000.0)
short = st.floats(min_value=0.0, max_value=0.99)  # a fraction of the debounce: too short to count
long_ = st.floats(min_value=1.0, max_value=50.0)  # at least the debounce (1.0 = exactly)


# ---------------------------------------------------------------------------
# Debouncer: properties


@given(
    debounce=debounces,
    t0=start_times,
    stable=st.booleans(),
    pulses=st.lists(st.tuples(short, short), max_size=20),
    extra_hold=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=5.0)),
    come_back=st.booleans(),
)
def test_bounce_burst_then_stable_is_one_transition_at_first_edge(
    debounce: float,
    t0: float,
    stable: bool,
    pulses: list[tuple[float, float]],
    extra_hold: float,
    come_back: bool,
) -> None:
    new = not stable
    edges: list[Edge] = [(t0, new)]
    t = t0
    # Contact bounce of one transition: the pulses back at the old level (``forth``)
    # add up to less than the debounce (more is chatter that had settled: see below).
    total_old = sum(forth for _, forth in pulses)
    scale = 0.9 / total_old if total_old > 0.9 else 1.0
    for back, forth in pulses:  # each pulse (either way) shorter than the debounce
        forth *= scale
        t += back * debounce
        edges.append((t, stable))
        t += forth * debounce
        edges.append((t, new))
    last = t
    if come_back:  # held at the new level for >= debounce (possibly exactly), then back
        ret = last + debounce + extra_hold
        edges.append((ret, stable))

    for inclusive in (False, True):
        got = drive(Debouncer(debounce, stable), edges, inclusive=inclusive)
        assert got[0] == Transition(active=new, time=t0, accepted_at=last + debounce)
        assert got[0].time == t0  # exactly the first edge, not the confirmation
        if come_back:
            assert got[1:] == [Transition(stable, ret, ret + debounce)]
        else:
            assert len(got) == 1

    gestures = drive(LevelDetector("holster", debounce, stable), edges)
    assert gestures[0] == Gesture(
        "holster", "activate" if new else "deactivate", t0, last + debounce
    )
    assert len(gestures) == 1 + come_back


@given(
    debounce=debounces,
    t0=start_times,
    stable=st.booleans(),
    pulses=st.lists(st.tuples(short, st.one_of(short, long_)), min_size=1, max_size=30),
)
def test_chatter_never_makes_a_transition(
    debounce: float, t0: float, stable: bool, pulses: list[tuple[float, float]]
) -> None:
    edges: list[Edge] = []
    t = t0
    for on, gap in pulses:  # away for less than the debounce, then back for any time
        edges.append((t, not stable))
        t += on * debounce
        edges.append((t, stable))
        t += gap * debounce
    for inclusive in (False, True):
        deb = Debouncer(debounce, stable)
        assert drive(deb, edges, inclusive=inclusive) == []
        assert deb.active is stable
        assert deb.raw is stable
        assert deb.pending_since is None
        assert deb.deadline() is None
    assert drive(LevelDetector("holster", debounce, stable), edges) == []


gaps = st.one_of(st.just(0.0), st.just(1.0), short, st.floats(min_value=0.0, max_value=3.0))


@settings(max_examples=300)
@given(
    debounce=debounces,
    t0=start_times,
    initial=st.booleans(),
    steps=st.lists(st.tuples(gaps, st.booleans()), max_size=40),
    poll_fracs=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=10),
)
def test_random_waveforms_match_the_definition_under_any_poll_schedule(
    debounce: float,
    t0: float,
    initial: bool,
    steps: list[tuple[float, bool]],
    poll_fracs: list[float],
) -> None:
    edges: list[Edge] = []
    t = t0
    for gap, level in steps:  # duplicates (same level twice) included on purpose
        t += gap * debounce
        edges.append((t, level))
    expected = reference(initial, edges, debounce)

    assert drive(Debouncer(debounce, initial), edges) == expected
    assert drive(Debouncer(debounce, initial), edges, inclusive=True) == expected
    assert drive_polls_at(Debouncer(debounce, initial), edges, []) == expected
    span = t - t0 + 2 * debounce
    late = [t0 + f * span for f in poll_fracs]
    assert drive_polls_at(Debouncer(debounce, initial), edges, late) == expected

    gestures = drive(LevelDetector("in", debounce, initial), edges)
    assert [(g.kind == "activate", g.time, g.recognised_at) for g in gestures] == [
        (tr.active, tr.time, tr.accepted_at) for tr in expected
    ]


# ---------------------------------------------------------------------------
# Debouncer: exact cases


def test_held_exactly_debounce_is_accepted_at_exactly_edge_plus_debounce() -> None:
    deb = Debouncer(0.030)
    deb.edge(1.0, True)
    assert deb.pending_since == 1.0
    assert deb.deadline() == 1.0 + 0.030
    assert deb.poll(1.0 + 0.030) == Transition(True, 1.0, 1.0 + 0.030)
    assert deb.active is True
    assert deb.pending_since is None
    assert deb.deadline() is None


def test_level_held_exactly_debounce_then_changed_counts_in_either_order() -> None:
    # The edge back arrives at exactly the deadline: whichever the firmware does
    # first, the level was held for the full debounce and is accepted.
    edges = [(1.0, True), (1.0 + 0.030, False)]
    for inclusive in (False, True):
        assert drive(Debouncer(0.030), edges, inclusive=inclusive) == [
            Transition(True, 1.0, 1.030),
            Transition(False, 1.030, 1.030 + 0.030),
        ]


def test_poll_before_deadline_changes_nothing() -> None:
    deb = Debouncer(0.030)
    deb.edge(2.0, True)
    deb.edge(2.010, False)
    deb.edge(2.015, True)
    before = (deb.active, deb.raw, deb.pending_since, deb.deadline())
    assert before == (False, True, 2.0, 2.015 + 0.030)
    for t in (0.0, 2.0, 2.015, 2.044, math.nextafter(2.015 + 0.030, 0.0)):
        assert deb.poll(t) is None
        assert (deb.active, deb.raw, deb.pending_since, deb.deadline()) == before
    assert deb.poll(2.015 + 0.030) == Transition(True, 2.0, 2.015 + 0.030)


def test_every_edge_restarts_the_timer_but_a_duplicate_does_not() -> None:
    deb = Debouncer(0.030)
    deb.edge(1.0, True)
    deb.edge(1.020, True)  # duplicate: ignored
    assert deb.deadline() == 1.0 + 0.030
    deb.edge(1.025, False)
    assert deb.deadline() == 1.025 + 0.030
    deb.edge(1.040, True)
    assert deb.deadline() == 1.040 + 0.030
    assert deb.poll(1.040 + 0.030) == Transition(True, 1.0, 1.040 + 0.030)


def test_rejected_burst_emits_nothing_and_clears_pending() -> None:
    deb = Debouncer(0.030, active=True)
    deb.edge(5.0, False)
    deb.edge(5.010, True)
    assert deb.pending_since == 5.0
    assert deb.poll(5.010 + 0.030) is None
    assert deb.pending_since is None
    assert deb.deadline() is None
    assert deb.active is True


def test_late_poll_returns_each_transition_in_turn() -> None:
    deb = Debouncer(0.030)
    deb.edge(1.0, True)
    deb.edge(2.0, False)
    deb.edge(2.005, True)  # chatter, rejected at 2.035
    deb.edge(2.5, False)
    deb.edge(3.0, True)
    assert deb.deadline() == 1.030
    assert deb.poll(100.0) == Transition(True, 1.0, 1.030)
    assert deb.active is True
    assert deb.pending_since == 2.0
    assert deb.poll(100.0) == Transition(False, 2.5, 2.5 + 0.030)
    assert deb.poll(100.0) == Transition(True, 3.0, 3.0 + 0.030)
    assert deb.poll(100.0) is None
    assert deb.active is True


def test_edges_must_not_go_back_in_time() -> None:
    deb = Debouncer(0.030)
    deb.edge(1.0, True)
    deb.edge(1.0, False)  # same time is fine
    with pytest.raises(ValueError):
        deb.edge(0.5, True)
    with pytest.raises(ValueError):
        deb.edge(0.9, False)  # even a would-be duplicate
    with pytest.raises(ValueError):
        deb.edge(math.nan, True)


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf])
def test_debounce_must_be_a_finite_non_negative_number(bad: float) -> None:
    with pytest.raises(ValueError):
        Debouncer(bad)


# ---------------------------------------------------------------------------
# Debouncer: dating after chatter (SPEC 5, the rest counted cumulatively)


def test_chatter_that_had_settled_is_not_part_of_the_draw() -> None:
    # Regression: 3 s of chatter (5 ms pulses, 10 ms rests: each rest shorter than the
    # debounce, so every pulse chains into one burst) then a draw with bounce. The
    # draw used to be dated at the first chatter edge, 3 s early.
    d = 0.020
    edges: list[Edge] = []
    for k in range(200):
        rise = 40.0 + 0.015 * k
        edges += [(rise, True), (rise + 0.005, False)]
    last_rise, last_fall = edges[-2][0], edges[-1][0]
    draw = last_fall + 0.015  # a rest of 15 ms < debounce: still the same burst
    edges += [(draw, True), (draw + 0.002, False), (draw + 0.004, True)]
    [tr] = drive(Debouncer(d), edges)
    # Walking back from the last edge: 2 ms + 15 ms of rest, then the 10 ms rest
    # before the last chatter pulse reaches 20 ms: dated at that pulse's rise.
    assert tr == Transition(True, last_rise, draw + 0.004 + d)
    assert tr.time > 42.9


def test_rests_adding_up_to_exactly_the_debounce_count_as_rested() -> None:
    d = 1 / 32  # binary fractions: every sum below is exact
    for rest, dated in ((1 / 64, "second"), (1 / 64 - 1 / 1024, "first")):
        first = 1.0
        second = first + 1 / 128 + rest  # a 1/128 s pulse, then ``rest`` at the old level
        third = second + 1 / 128 + rest
        edges = [(first, True), (first + 1 / 128, False), (second, True)]
        edges += [(second + 1 / 128, False), (third, True)]
        [tr] = drive(Debouncer(d), edges)
        # Two rests of ``rest`` each: 2 * rest >= d only in the first case.
        assert tr.time == (second if dated == "second" else first)
        assert tr.accepted_at == third + d


TICK = 2.0**-20  # ~1 us: times are whole ticks, so every sum below is exact in floats


@settings(max_examples=300)
@given(
    d_ticks=st.integers(min_value=2, max_value=40_000),
    chatter=st.lists(st.tuples(st.floats(0.01, 0.99), st.floats(0.01, 2.0)), max_size=30),
    bounce=st.lists(st.tuples(st.floats(0.01, 0.99), st.floats(0.01, 0.99)), max_size=3),
)
def test_draw_after_chatter_is_dated_after_a_debounce_of_rest(
    d_ticks: int, chatter: list[tuple[float, float]], bounce: list[tuple[float, float]]
) -> None:
    """Chatter of any timing around the debounce, then a draw with bounce."""
    d = d_ticks * TICK

    def ticks(fraction: float) -> int:
        return max(1, int(fraction * d_ticks))

    edges: list[Edge] = []
    t = 1000
    for width, rest in chatter:  # pulses shorter than the debounce; rests either side of it
        edges += [(t * TICK, True), ((t + ticks(width)) * TICK, False)]
        t += ticks(width) + ticks(rest)
    draw = t
    edges.append((t * TICK, True))
    budget = d_ticks - 1  # the bounce spends less than a debounce at the old level
    for up, down in bounce:
        back = min(ticks(down), budget)
        if back < 1:
            break
        budget -= back
        t += ticks(up)
        edges += [(t * TICK, False), ((t + back) * TICK, True)]
        t += back
    last = t * TICK

    [tr] = drive(Debouncer(d), edges)
    assert tr.active is True and tr.accepted_at == last + d  # acceptance is untouched
    assert tr == reference(False, edges, d)[0]
    rises = [e for e, level in edges if level]
    assert tr.time in rises and tr.time <= draw * TICK

    def rested_after(since: float) -> float:
        """Time at the old level between ``since`` and the last edge."""
        total = 0.0
        for (a, level), (b, _) in itertools.pairwise(edges):
            if not level and a >= since:
                total += b - a
        return total

    assert rested_after(tr.time) < d  # less than a debounce of rest inside the transition
    i = rises.index(tr.time)
    if i > 0:  # not the very first edge: the rest right before it completes a debounce
        assert rested_after(rises[i - 1]) >= d or edges[2 * i - 1][0] + d <= tr.time
    # A continuous rest of a debounce or more before the draw: dated exactly at the draw.
    if chatter and edges[2 * len(chatter) - 1][0] + d <= draw * TICK:
        assert tr.time == draw * TICK


def test_memory_per_burst_is_capped_and_only_makes_the_date_later() -> None:
    d = 0.020
    edges: list[Edge] = []
    n = MAX_RESTS + 300
    for k in range(n):  # 10 us pulses and rests: thousands of rests inside a debounce
        rise = 5.0 + k * 20 * TICK
        edges += [(rise, True), (rise + 10 * TICK, False)]
    edges.append((edges[-1][0] + 10 * TICK, True))  # and stays drawn
    deb = Debouncer(d)
    [tr] = drive(deb, edges)
    [exact] = reference(False, edges, d)
    assert exact.time == 5.0  # all the rests together are less than the debounce
    assert tr.accepted_at == exact.accepted_at
    # Only the latest MAX_RESTS rests are kept: dated at the end of the latest one
    # forgotten, later than the rule's date, never earlier.
    rises = [e for e, level in edges if level]
    assert tr.time == rises[len(rises) - MAX_RESTS - 1] > exact.time


# ---------------------------------------------------------------------------
# Button

DEBOUNCE = 0.030


def press(t: float, duration: float) -> list[Edge]:
    """A press at ``t`` released at ``t + duration``, both with contact bounce (< debounce)."""
    return [
        (t, True),
        (t + 0.002, False),
        (t + 0.004, True),  # press settles here: accepted at + DEBOUNCE
        (t + duration, False),
        (t + duration + 0.003, True),
        (t + duration + 0.005, False),  # release settles here
    ]


def button() -> ButtonDetector:
    return ButtonDetector("button", DEBOUNCE)


def kinds(gestures: list[Gesture]) -> list[str]:
    return [g.kind for g in gestures]


def doubles(gestures: list[Gesture]) -> list[Gesture]:
    return [g for g in gestures if g.kind == "double_press"]


def test_double_press_is_dated_at_the_first_press() -> None:
    t = 5.0
    second = t + 0.4
    got = drive(button(), press(t, 0.15) + press(second, 0.15))
    assert kinds(got) == ["activate", "deactivate", "activate", "double_press", "deactivate"]
    assert doubles(got) == [Gesture("button", "double_press", t, (second + 0.004) + DEBOUNCE)]
    assert got[0] == Gesture("button", "activate", t, (t + 0.004) + DEBOUNCE)


def test_presses_too_far_apart_are_not_a_double_press() -> None:
    got = drive(button(), press(5.0, 0.15) + press(5.0 + 1.2, 0.15))
    assert kinds(got) == ["activate", "deactivate"] * 2


def test_presses_exactly_the_window_apart_are_a_double_press() -> None:
    t = 12.345
    got = drive(button(), press(t, 0.15) + press(t + 1.0, 0.15))
    assert [g.time for g in doubles(got)] == [t]


def test_triple_press_is_one_double_press_and_a_fourth_makes_another() -> None:
    t = 7.0
    triple = press(t, 0.1) + press(t + 0.3, 0.1) + press(t + 0.6, 0.1)
    assert [g.time for g in doubles(drive(button(), triple))] == [t]
    quadruple = [*triple, *press(t + 0.9, 0.1)]
    assert [g.time for g in doubles(drive(button(), quadruple))] == [t, t + 0.6]


def test_hold_is_recognised_at_first_edge_plus_hold() -> None:
    t = 20.0
    got = drive(button(), press(t, 3.5))
    assert kinds(got) == ["activate", "hold", "deactivate"]
    assert got[1] == Gesture("button", "hold", t, t + 3.0)


def test_short_of_the_hold_is_no_hold() -> None:
    got = drive(button(), press(20.0, 2.9))
    assert kinds(got) == ["activate", "deactivate"]


def test_deadline_is_the_hold_mark_while_held() -> None:
    det = button()
    t = 20.0
    assert drive(det, press(t, 10.0)[:3], end=t + 1.0) == [
        Gesture("button", "activate", t, (t + 0.004) + DEBOUNCE)
    ]
    assert det.active is True
    assert det.deadline() == t + 3.0
    assert det.poll(t + 2.999) == []
    assert det.poll(t + 3.0) == [Gesture("button", "hold", t, t + 3.0)]
    assert det.deadline() is None


def test_glitch_before_the_hold_mark_does_not_cancel_it() -> None:
    t = 20.0
    edges = [*press(t, 3.5)[:3], (t + 1.0, False), (t + 1.01, True), *press(t, 3.5)[3:]]
    got = drive(button(), edges)
    assert kinds(got) == ["activate", "hold", "deactivate"]
    assert got[1] == Gesture("button", "hold", t, t + 3.0)


def test_release_glitch_straddling_the_hold_mark_delays_but_keeps_the_hold() -> None:
    t = 20.0
    glitch = [(t + 2.99, False), (t + 3.005, True)]  # 15 ms < debounce, across t + 3.0
    edges = [*press(t, 3.5)[:3], *glitch, *press(t, 3.5)[3:]]
    for inclusive in (False, True):
        got = drive(button(), edges, inclusive=inclusive)
        assert kinds(got) == ["activate", "hold", "deactivate"]
        assert got[1] == Gesture("button", "hold", t, (t + 3.005) + DEBOUNCE)

    # Step by step: at the mark the hold waits for the burst to resolve.
    det = button()
    drive(det, [*press(t, 3.5)[:3], *glitch], end=t + 3.0)
    assert det.poll(t + 3.0) == []
    assert det.deadline() == (t + 3.005) + DEBOUNCE
    assert det.poll(t + 3.02) == []
    assert det.poll((t + 3.005) + DEBOUNCE) == [
        Gesture("button", "hold", t, (t + 3.005) + DEBOUNCE)
    ]


def test_real_release_starting_before_the_mark_confirmed_after_it_is_no_hold() -> None:
    t = 20.0
    release = [(t + 2.99, False), (t + 3.0, True), (t + 3.01, False)]  # settles, accepted 3.04
    got = drive(button(), [*press(t, 9.0)[:3], *release])
    assert kinds(got) == ["activate", "deactivate"]
    assert got[1] == Gesture("button", "deactivate", t + 2.99, (t + 3.01) + DEBOUNCE)


def test_release_burst_starting_exactly_at_the_mark_does_not_delay_the_hold() -> None:
    t = 20.0
    for inclusive in (False, True):
        got = drive(button(), [*press(t, 3.0)], inclusive=inclusive)
        assert kinds(got) == ["activate", "hold", "deactivate"]
        assert got[1] == Gesture("button", "hold", t, t + 3.0)


def test_second_press_of_a_double_press_held_is_no_hold() -> None:
    # Regression: the press that completes a double press (a start) was also
    # recognised as a hold (a stop) 3 s later when the officer kept it down.
    t = 5.0
    got = drive(button(), press(t, 0.15) + press(t + 0.4, 5.0))
    assert kinds(got) == ["activate", "deactivate", "activate", "double_press", "deactivate"]
    # The next press is a press like any other: its hold is recognised.
    later = drive(button(), press(t, 0.15) + press(t + 0.4, 5.0) + press(t + 6.0, 3.5))
    assert [(g.kind, g.time) for g in later if g.kind == "hold"] == [("hold", t + 6.0)]


def test_initially_active_button_is_not_a_press() -> None:
    det = ButtonDetector("button", DEBOUNCE, active=True)
    assert det.deadline() is None
    got = drive(det, [(1.0, False), *press(2.0, 0.1)])
    assert kinds(got) == ["deactivate", "activate", "deactivate"]


@settings(max_examples=300)
@given(
    t0=start_times,
    steps=st.lists(
        st.tuples(
            st.one_of(
                short,
                st.floats(min_value=1.0, max_value=30.0),  # up to 0.9 s: double presses
                st.floats(min_value=1.0, max_value=150.0),  # up to 4.5 s: holds
            ),
            st.booleans(),
        ),
        max_size=40,
    ),
    poll_fracs=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=10),
)
def test_button_gestures_do_not_depend_on_when_poll_runs(
    t0: float, steps: list[tuple[float, bool]], poll_fracs: list[float]
) -> None:
    edges: list[Edge] = []
    t = t0
    for gap, level in steps:  # gaps up to 4.5 s: holds, double presses and chatter all occur
        t += gap * DEBOUNCE
        edges.append((t, level))
    on_time = drive(button(), edges)
    assert drive(button(), edges, inclusive=True) == on_time
    assert drive_polls_at(button(), edges, []) == on_time
    span = t - t0 + 4.0
    assert drive_polls_at(button(), edges, [t0 + f * span for f in poll_fracs]) == on_time

    # Recognised in time order; activate/deactivate agree with the debouncer alone.
    assert [g.recognised_at for g in on_time] == sorted(g.recognised_at for g in on_time)
    levels = [g for g in on_time if g.kind in ("activate", "deactivate")]
    assert [(g.kind == "activate", g.time, g.recognised_at) for g in levels] == [
        (tr.active, tr.time, tr.accepted_at) for tr in reference(False, edges, DEBOUNCE)
    ]
    for g in on_time:
        assert g.time <= g.recognised_at
        if g.kind == "hold":
            assert g.recognised_at >= g.time + 3.0
    # The press completing a double press (the activate just before it) is never a hold.
    completing = {on_time[i - 1].time for i, g in enumerate(on_time) if g.kind == "double_press"}
    assert all(
        on_time[i - 1].kind == "activate" for i, g in enumerate(on_time) if g.kind == "double_press"
    )
    assert not [g for g in on_time if g.kind == "hold" and g.time in completing]


# ---------------------------------------------------------------------------
# Holster, factory


def test_holster_activation_with_8ms_bounce_is_dated_at_the_first_edge() -> None:
    t0 = 42.5
    bounce = [(t0, True), (t0 + 0.003, False), (t0 + 0.005, True), (t0 + 0.006, False)]
    edges = [*bounce, (t0 + 0.008, True)]
    det = LevelDetector("holster", 0.020)
    got = drive(det, edges)
    assert got == [Gesture("holster", "activate", t0, (t0 + 0.008) + 0.020)]
    assert det.active is True


def test_holster_emits_no_double_press_or_hold() -> None:
    det = LevelDetector("holster", 0.020)
    got = drive(det, press(1.0, 5.0) + press(6.2, 0.1))
    assert kinds(got) == ["activate", "deactivate"] * 2


def test_make_detector_builds_by_role() -> None:
    level = make_detector("holster", "level", 0.020)
    assert type(level) is LevelDetector
    assert level.name == "holster"
    btn = make_detector("button", "button", 0.030, double_press_window=0.5, hold=2.0)
    assert isinstance(btn, ButtonDetector)
    assert (btn.double_press_window, btn.hold) == (0.5, 2.0)
    got = drive(btn, press(1.0, 2.5) + press(4.0, 0.1) + press(4.6, 0.1))
    assert [(g.kind, g.time) for g in got if g.kind in ("hold", "double_press")] == [("hold", 1.0)]
    assert make_detector("b", "button", 0.030, active=True).active is True
    with pytest.raises(ValueError):
        make_detector("x", "lever", 0.020)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        make_detector("holster", "level", 0.020, hold=3.0)
