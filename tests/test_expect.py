"""Scenario ``[expect]`` is judged by sim.runner.evaluate: every key, passing and failing.

The CI scenarios only prove that expectations can pass; a judge that always
said "ok" would keep them green. So each key is tried here on made-up run
results, once where it must hold and once where it must not, and the failing
line the user reads (``FAIL  expect <key> = ...``) must name the key. One
test runs a real scenario through ``bodycam run`` with several expectations
that cannot hold, and checks the exit code and every FAIL line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main
from camera.offload import OffloadReport, Outcome
from camera.report import RunReport
from camera.summary import print_summary
from sim.dock import DockResult
from sim.link import LinkStats
from sim.runner import RunResult, evaluate
from sim.scenario import Expect, Scenario, parse_scenario


def recording(
    source: str = "holster",
    pre: float = 5.0,
    frames: int = 300,
    dropped: int = 0,
    stop: str = "end_of_run",
    markers: int = 0,
    fixes: int = 0,
    steps: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The manifest fields evaluate and the summary read (SPEC 7)."""
    return {
        "recording_id": f"BWC_{source}_{frames}",
        "trigger": {"source": source, "time": 10.0, "wall_time": "2026-01-01T08:00:10.000Z"},
        "pre_event_seconds": pre,
        "frames": frames,
        "dropped_frames": dropped,
        "markers": [{"source": "button", "time": 11.0 + i} for i in range(markers)],
        "gaps": [],
        "stop": {"reason": stop, "time": 20.0},
        "track": [{"time": 9.0, "utc": None, "lost": "no_fix"}]
        + [{"time": 10.0 + i, "lat": 51.5, "lon": -0.12} for i in range(fixes)],
        "wall_clock_steps": [{"time": 12.0, "seconds": -1.0, "source": s} for s in steps],
    }


def scenario(expect: dict[str, Any] | None) -> Scenario:
    # Docked at the end (judge makes up what the dock did): the offload keys need a [dock].
    data: dict[str, Any] = {"scenario": {"name": "expect", "duration": 30.0}, "dock": {}}
    if expect is not None:
        data["expect"] = expect
    return parse_scenario(data, source="<expect>")


def judge(expect: dict[str, Any] | None, recordings: list[dict[str, Any]]) -> RunResult:
    report = RunReport(
        board="sim",
        storage=Path("/nonexistent"),
        recordings=recordings,
        frames_captured=900,
        device_seconds=30.0,
        wall_seconds=1.0,
        scenario="expect",
    )
    result = RunResult(scenario=scenario(expect), report=report, dock=DOCKED)
    result.expectations = evaluate(result.scenario, result)
    return result


#: A dock's made-up outcome: two offloaded (one kept on the camera too), one busy.
DOCKED = DockResult(
    30.0,
    None,
    OffloadReport(
        [
            Outcome("BWC_a", offloaded=True, deleted=True, receipt_sha256="0" * 64),
            Outcome("BWC_b", offloaded=True, receipt_sha256="1" * 64),
            Outcome("BWC_c", reason="still being written", closed=False),
        ]
    ),
    LinkStats(resent=1),
)


TWO = [
    recording("holster", pre=5.0, frames=300, dropped=2, markers=1, fixes=8, steps=("gps",)),
    recording(
        "button",
        pre=4.5,
        frames=150,
        dropped=1,
        stop="button_hold",
        markers=2,
        fixes=5,
        steps=("ntp", "system"),
    ),
]

#: key -> (value that holds for TWO, value that does not)
CASES: dict[str, tuple[Any, Any]] = {
    "recordings": (2, 1),
    "triggers": (["holster", "button"], ["button", "holster"]),
    "pre_event_min": (4.5, 4.6),
    "max_dropped_frames": (3, 2),
    "stop_reasons": (["end_of_run", "button_hold"], ["button_hold", "end_of_run"]),
    "markers": (3, 2),
    "frames_min": (150, 151),
    "track_points_min": (5, 6),
    "clock_step_sources": (["gps", "ntp", "system"], ["gps", "ntp"]),
    "offloaded": (2, 3),
    "kept": (1, 0),
    "deleted": (1, 2),
    "resent": (1, 0),
    "dock_stopped": (False, True),
}


def test_every_expect_key_has_cases() -> None:
    """A key added to the scenario format without a case here fails this test."""
    assert set(Expect.model_fields) == set(CASES)


@pytest.mark.parametrize("key", CASES)
def test_expectation_holds(key: str) -> None:
    good, _ = CASES[key]
    result = judge({key: good}, TWO)
    assert [(e.name, e.expected, e.ok) for e in result.expectations] == [(key, good, True)]
    assert result.ok


@pytest.mark.parametrize("key", CASES)
def test_expectation_fails_and_names_its_key(key: str) -> None:
    _, bad = CASES[key]
    result = judge({key: bad}, TWO)
    [e] = result.expectations
    assert (e.name, e.expected, e.ok) == (key, bad, False)
    assert not result.ok
    out = io.StringIO()
    print_summary(result.summary(), out)
    [line] = [x for x in out.getvalue().splitlines() if x.startswith(("PASS", "FAIL"))]
    assert line.startswith(f"FAIL  expect {key} = {bad!r}: got "), line


def test_one_failing_key_among_passing_ones_fails_the_run() -> None:
    expect = {key: good for key, (good, _) in CASES.items()}
    assert judge(expect, TWO).ok
    for key, (_, bad) in CASES.items():
        result = judge({**expect, key: bad}, TWO)
        assert [e.name for e in result.expectations if not e.ok] == [key]
        assert not result.ok


@pytest.mark.parametrize(
    ("key", "value"),
    [("pre_event_min", 0.0), ("triggers", ["holster"]), ("stop_reasons", ["end_of_run"])],
)
def test_no_recording_fails_per_recording_keys(key: str, value: Any) -> None:
    """With nothing recorded, a claim about the recordings cannot hold."""
    [e] = judge({key: value}, []).expectations
    assert not e.ok and e.name == key


@pytest.mark.parametrize("expect", [None, {}])
def test_nothing_expected_judges_nothing(expect: dict[str, Any] | None) -> None:
    result = judge(expect, [])
    assert result.expectations == [] and result.ok


@given(
    pres=st.lists(st.floats(0, 60, allow_nan=False), min_size=1, max_size=5),
    bound=st.floats(0, 60, allow_nan=False),
)
def test_pre_event_min_holds_for_every_recording(pres: list[float], bound: float) -> None:
    [e] = judge({"pre_event_min": bound}, [recording(pre=p) for p in pres]).expectations
    assert e.ok == all(p >= bound for p in pres)


@given(
    dropped=st.lists(st.integers(0, 50), max_size=5),
    frames=st.lists(st.integers(0, 500), min_size=1, max_size=5),
    bound=st.integers(0, 200),
)
def test_counts_against_their_bounds(dropped: list[int], frames: list[int], bound: int) -> None:
    recs = [recording(frames=n, dropped=d) for n, d in zip(frames, dropped, strict=False)]
    recs += [recording(frames=n) for n in frames[len(recs) :]]
    by_name = {
        e.name: e.ok
        for e in judge({"max_dropped_frames": bound, "frames_min": bound}, recs).expectations
    }
    assert by_name["max_dropped_frames"] == (sum(dropped[: len(frames)]) <= bound)
    assert by_name["frames_min"] == (min(frames) >= bound)


SCENARIO = """
[scenario]
name = "expectations-that-cannot-hold"
duration = 3.0

[config]
video = {{ width = 640, height = 360, fps = 30, bitrate = 1500000, gop = 30 }}
buffer = {{ pre_event = 1.0 }}

[[event]]
at = 1.5
input = "holster"
action = "activate"

[expect]
{expect}
"""


def test_bodycam_run_exits_1_and_names_each_failed_key(tmp_path: Path, capsys) -> None:
    """Through the user's path: one recording by holster, 0 markers, ended by end of run."""
    failing = {
        "recordings": 2,
        "triggers": ["button"],
        "pre_event_min": 2.0,
        "stop_reasons": ["button_hold"],
        "markers": 1,
        "frames_min": 1000,
    }
    holding = {"max_dropped_frames": 0}
    lines = [f"{k} = {json.dumps(v)}" for k, v in {**failing, **holding}.items()]
    path = tmp_path / "scn.toml"
    path.write_text(SCENARIO.format(expect="\n".join(lines)))
    code = main(["run", "--scenario", str(path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    failed = {line.split()[2] for line in out.splitlines() if line.startswith("FAIL  expect ")}
    passed = {line.split()[2] for line in out.splitlines() if line.startswith("PASS  expect ")}
    assert failed == set(failing) and passed == set(holding), out
