"""Scenario actions as raw pin edges (SPEC 9), judged by the firmware's own gesture detectors.

Each waveform is fed, edge by edge, into ``camera.gestures.make_detector`` the way
the firmware's trigger module does (poll every deadline up to an edge, then the
edge; finally poll far in the future), and must give exactly the gestures the
action means, dated at the action's nominal times, bounce or no bounce.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.gestures import Gesture, make_detector
from sim.scenario import Event, Scenario, ScenarioError, parse_scenario
from sim.waveforms import CLAMP, Edge, event_seed, scenario_edges, waveform

FAR = 1e9


def gestures_of(
    edges: Sequence[Edge],
    role: Literal["level", "button"],
    debounce: float,
    *,
    active: bool = False,
) -> list[Gesture]:
    name = edges[0].input if edges else "in"
    detector = make_detector(name, role, debounce, active=active)
    out: list[Gesture] = []
    for edge in edges:
        while (due := detector.deadline()) is not None and due <= edge.t:
            out += detector.poll(due)
        detector.edge(edge.t, edge.active)
    out += detector.poll(FAR)
    assert detector.deadline() is None
    return out


def summary(gestures: Sequence[Gesture]) -> list[tuple[str, float]]:
    return [(g.kind, g.time) for g in gestures]


def check_shape(edges: Sequence[Edge], event: Event, final: bool) -> None:
    """First edge at ``at`` exactly, strictly increasing times, one input, right final level."""
    assert edges, "an action makes edges"
    assert edges[0].t == event.at
    assert all(e.input == event.input for e in edges)
    times = [e.t for e in edges]
    assert all(a < b for a, b in pairwise(times)), times
    levels = [e.active for e in edges]
    assert all(a != b for a, b in pairwise(levels)), "every edge toggles"
    assert levels[-1] is final


def check_bounce(edges: Sequence[Edge], nominal: Sequence[float], bounce_ms: float) -> None:
    """Every edge is a nominal first edge or follows the latest one by less than ``bounce_ms``."""
    for edge in edges:
        first = max(t for t in nominal if t <= edge.t)
        assert edge.t == first or edge.t - first < bounce_ms / 1000.0, (edge, first)
    assert [e.t for e in edges if e.t in nominal] == list(nominal)


def nominal_times(event: Event) -> list[float]:
    at = event.at
    if event.action in ("activate", "deactivate"):
        return [at]
    if event.action == "press":
        return [at, at + 0.15]
    if event.action == "double_press":
        return [at, at + 0.15, at + 0.4, at + 0.4 + 0.15]
    assert event.duration is not None
    return [at, at + event.duration]


def expected_gestures(event: Event) -> list[tuple[str, float]]:
    """What the button detector must report for a waveform of ``event`` (from rest)."""
    t = nominal_times(event)
    if event.action == "activate":
        return [("activate", t[0])]
    if event.action == "double_press":
        return [
            ("activate", t[0]),
            ("deactivate", t[1]),
            ("activate", t[2]),
            ("double_press", t[0]),
            ("deactivate", t[3]),
        ]
    if event.action == "hold":
        return [("activate", t[0]), ("hold", t[0]), ("deactivate", t[1])]
    return [("activate", t[0]), ("deactivate", t[1])]


def make(action: str, at: float, bounce_ms: float = 0.0, **kw: Any) -> Event:
    return Event(at=at, input="button", action=action, bounce_ms=bounce_ms, **kw)


# Hypothesis inputs: an event time, a debounce, contact bounce shorter than it, a seed.
ats = st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False)
debounces = st.sampled_from([0.005, 0.02, 0.03, 0.05])
seeds = st.integers(min_value=0, max_value=2**32)


@st.composite
def bounce_cases(draw: st.DrawFn) -> tuple[float, float, float, int]:
    at, debounce, seed = draw(ats), draw(debounces), draw(seeds)
    bounce_ms = draw(st.just(0.0) | st.floats(0.0, debounce * 1000.0, exclude_max=True))
    return at, debounce, bounce_ms, seed


def edges_for(event: Event, debounce: float, seed: int) -> list[Edge]:
    return waveform(event, random.Random(seed), debounce)


@settings(max_examples=150, deadline=None)
@given(bounce_cases())
def test_activate(case: tuple[float, float, float, int]) -> None:
    at, debounce, bounce_ms, seed = case
    event = Event(at=at, input="holster", action="activate", bounce_ms=bounce_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, True)
    check_bounce(edges, nominal_times(event), bounce_ms)
    assert summary(gestures_of(edges, "level", debounce)) == [("activate", at)]


@settings(max_examples=150, deadline=None)
@given(bounce_cases())
def test_deactivate(case: tuple[float, float, float, int]) -> None:
    at, debounce, bounce_ms, seed = case
    event = Event(at=at, input="holster", action="deactivate", bounce_ms=bounce_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    check_bounce(edges, nominal_times(event), bounce_ms)
    assert summary(gestures_of(edges, "level", debounce, active=True)) == [("deactivate", at)]
    assert gestures_of(edges, "level", debounce) == []  # already at rest: nothing happens


@settings(max_examples=150, deadline=None)
@given(bounce_cases())
def test_press(case: tuple[float, float, float, int]) -> None:
    at, debounce, bounce_ms, seed = case
    event = make("press", at, bounce_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    release = at + 0.15
    assert Edge(release, "button", False) in edges  # the release's first edge, exactly
    check_bounce(edges, nominal_times(event), bounce_ms)
    expected = [("activate", at), ("deactivate", release)]
    assert summary(gestures_of(edges, "button", debounce)) == expected
    assert summary(gestures_of(edges, "level", debounce)) == expected


@settings(max_examples=150, deadline=None)
@given(bounce_cases())
def test_double_press(case: tuple[float, float, float, int]) -> None:
    at, debounce, bounce_ms, seed = case
    event = make("double_press", at, bounce_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    second = at + 0.4
    for t, level in [(at + 0.15, False), (second, True), (second + 0.15, False)]:
        assert Edge(t, "button", level) in edges
    check_bounce(edges, nominal_times(event), bounce_ms)
    gestures = gestures_of(edges, "button", debounce)
    assert summary(gestures) == [
        ("activate", at),
        ("deactivate", at + 0.15),
        ("activate", second),
        ("double_press", at),
        ("deactivate", second + 0.15),
    ]


@settings(max_examples=150, deadline=None)
@given(bounce_cases())
def test_hold(case: tuple[float, float, float, int]) -> None:
    at, debounce, bounce_ms, seed = case
    event = make("hold", at, bounce_ms)
    assert event.duration == 3.5
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    assert Edge(at + 3.5, "button", False) in edges
    check_bounce(edges, nominal_times(event), bounce_ms)
    gestures = gestures_of(edges, "button", debounce)
    assert summary(gestures) == [("activate", at), ("hold", at), ("deactivate", at + 3.5)]
    hold = gestures[1]
    assert hold.recognised_at == at + 3.0


@settings(max_examples=150, deadline=None)
@given(bounce_cases(), st.floats(0.1, 5.0))
def test_pulse(case: tuple[float, float, float, int], duration: float) -> None:
    at, debounce, bounce_ms, seed = case
    event = make("pulse", at, bounce_ms, duration=duration)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    assert Edge(at + duration, "button", False) in edges
    check_bounce(edges, nominal_times(event), bounce_ms)
    expected = [("activate", at), ("deactivate", at + duration)]
    assert summary(gestures_of(edges, "level", debounce)) == expected


@settings(max_examples=100, deadline=None)
@given(bounce_cases(), st.floats(0.05, 0.9))
def test_a_pulse_shorter_than_the_debounce_is_nothing(
    case: tuple[float, float, float, int], fraction: float
) -> None:
    at, debounce, bounce_ms, seed = case
    event = make("pulse", at, bounce_ms, duration=fraction * debounce)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    assert gestures_of(edges, "level", debounce) == []
    assert gestures_of(edges, "button", debounce) == []


@settings(max_examples=150, deadline=None)
@given(
    at=ats,
    debounce=debounces,
    seed=seeds,
    pulse_ms=st.floats(1.0, 100.0),
    duration=st.floats(0.001, 2.0),
)
def test_chatter_never_makes_a_gesture(
    at: float, debounce: float, seed: int, pulse_ms: float, duration: float
) -> None:
    event = Event(at=at, input="holster", action="chatter", duration=duration, pulse_ms=pulse_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, False)
    assert all(e.t < at + duration for e in edges if e.active)  # pulses start within duration
    highs = [b.t - a.t for a, b in zip(edges[::2], edges[1::2], strict=True)]
    assert all(0 < h < debounce for h in highs)
    assert all(h <= CLAMP * debounce + 1e-9 for h in highs)  # clamped when pulse_ms is long
    assert gestures_of(edges, "level", debounce) == []
    assert gestures_of(edges, "button", debounce) == []


@settings(max_examples=100, deadline=None)
@given(
    action=st.sampled_from(["activate", "press", "double_press", "hold"]),
    at=ats,
    debounce=debounces,
    seed=seeds,
    bounce_ms=st.floats(0.0, 1000.0),
)
def test_bounce_longer_than_the_debounce_is_clamped(
    action: str, at: float, debounce: float, seed: int, bounce_ms: float
) -> None:
    """Still one accepted transition per nominal edge, dated at that edge."""
    event = make(action, at, bounce_ms)
    edges = edges_for(event, debounce, seed)
    check_shape(edges, event, action == "activate")
    check_bounce(edges, nominal_times(event), bounce_ms)
    role = "level" if action == "activate" else "button"  # a held button would be a hold
    assert summary(gestures_of(edges, role, debounce)) == expected_gestures(event)


def test_bounce_follows_the_edge_within_bounce_ms() -> None:
    event = make("activate", 5.0, bounce_ms=8.0)
    for seed in range(50):
        edges = edges_for(event, 0.03, seed)
        assert edges[0] == Edge(5.0, "button", True)
        assert 3 <= len(edges) <= 7  # the edge, then 2..6 toggles
        assert all(5.0 < e.t < 5.008 for e in edges[1:])
    assert edges_for(make("activate", 5.0), 0.03, 0) == [Edge(5.0, "button", True)]


def test_fine_chatter_never_makes_a_gesture() -> None:
    event = Event(at=2.0, input="button", action="chatter", duration=0.03, pulse_ms=0.01)
    edges = edges_for(event, 0.03, 1)
    check_shape(edges, event, False)
    assert len(edges) > 2_000
    assert gestures_of(edges, "button", 0.03) == []


def test_no_bounce_without_a_debounce() -> None:
    edges = edges_for(make("press", 1.0, bounce_ms=5.0), 0.0, 0)
    assert edges == [Edge(1.0, "button", True), Edge(1.15, "button", False)]
    chatter = Event(at=1.0, input="holster", action="chatter", duration=1.0)
    assert edges_for(chatter, 0.0, 0) == []


def test_a_bad_debounce_is_refused() -> None:
    with pytest.raises(ValueError):
        edges_for(make("press", 1.0), -0.01, 0)
    with pytest.raises(ValueError):
        edges_for(make("press", 1.0), float("nan"), 0)


# --- whole scenarios -------------------------------------------------------------------

DEBOUNCE = {"holster": 0.02, "button": 0.03}


def scenario(events: list[dict[str, Any]], seed: int = 3) -> Scenario:
    return parse_scenario(
        {"scenario": {"name": "w", "duration": 100.0, "seed": seed}, "event": events}
    )


EVENTS: list[dict[str, Any]] = [
    {"at": 30.0, "input": "button", "action": "double_press", "bounce_ms": 6},
    {"at": 10.0, "input": "holster", "action": "activate", "bounce_ms": 8},
    {"at": 10.0, "input": "button", "action": "press", "bounce_ms": 8},
    {"at": 50.0, "input": "holster", "action": "chatter", "duration": 2.0},
    {"at": 12.0, "input": "holster", "action": "deactivate", "bounce_ms": 8},
]


def test_scenario_edges_are_time_sorted_and_stable() -> None:
    edges = scenario_edges(scenario(EVENTS), DEBOUNCE)
    assert [e.t for e in edges] == sorted(e.t for e in edges)
    assert edges[:2] == [Edge(10.0, "holster", True), Edge(10.0, "button", True)]  # file order
    for name in DEBOUNCE:
        times = [e.t for e in edges if e.input == name]
        assert len(times) == len(set(times))


def test_scenario_edges_drive_the_right_gestures() -> None:
    edges = scenario_edges(scenario(EVENTS), DEBOUNCE)
    holster = gestures_of([e for e in edges if e.input == "holster"], "level", 0.02)
    assert summary(holster) == [("activate", 10.0), ("deactivate", 12.0)]
    button = gestures_of([e for e in edges if e.input == "button"], "button", 0.03)
    assert [g for g in summary(button) if g[0] == "double_press"] == [("double_press", 30.0)]


def test_same_seed_same_edges_other_seed_other_bounce() -> None:
    one = scenario_edges(scenario(EVENTS, seed=3), DEBOUNCE)
    assert one == scenario_edges(scenario(EVENTS, seed=3), DEBOUNCE)
    assert one != scenario_edges(scenario(EVENTS, seed=4), DEBOUNCE)


@settings(max_examples=50, deadline=None)
@given(seed=seeds, position=st.integers(0, len(EVENTS)))
def test_adding_an_event_changes_no_other_events_edges(seed: int, position: int) -> None:
    extra = {"at": 70.0, "input": "button", "action": "hold", "bounce_ms": 5}
    before = scenario_edges(scenario(EVENTS, seed), DEBOUNCE)
    more = [*EVENTS[:position], extra, *EVENTS[position:]]
    after = scenario_edges(scenario(more, seed), DEBOUNCE)
    assert [e for e in after if not 70.0 <= e.t < 80.0] == before
    assert [e for e in after if 70.0 <= e.t < 80.0]


def test_event_seed_is_keyed_by_content() -> None:
    a = Event(at=1.0, input="button", action="press")
    assert event_seed(5, a) == event_seed(5, Event(at=1.0, input="button", action="press"))
    assert event_seed(5, a) != event_seed(6, a)
    assert event_seed(5, a) != event_seed(5, Event(at=1.0, input="holster", action="press"))


def test_an_input_without_a_debounce_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match=r"^<scenario>: event\[1\]\.input: "):
        scenario_edges(scenario(EVENTS), {"holster": 0.02})
