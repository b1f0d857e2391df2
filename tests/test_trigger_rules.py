"""SPEC 5 trigger rules through the path a user takes: a scenario run by sim.runner.

Each test is a regression for a rule a firmware once broke: chatter that had
settled back dated a real draw seconds early, and a hold whose press began
before the recording stopped it. Recordings are verified and decoded frame by
frame (every frame carries its frame number, camera/framecode.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.verify import verify_recording
from sim.runner import RunResult, run_scenario
from sim.scenario import parse_scenario
from sim.waveforms import scenario_edges
from tests.test_debounce_gestures import reference

SMALL = {
    "video": {"width": 640, "height": 360, "fps": 30, "bitrate": 1_500_000, "gop": 30},
    "buffer": {"pre_event": 5.0},
}


def run(tmp_path: Path, duration: float, events: list[dict[str, Any]], **expect: Any) -> RunResult:
    scenario = parse_scenario(
        {
            "scenario": {"name": "trigger-rules", "duration": duration},
            "config": SMALL,
            "event": events,
            "expect": expect,
        },
        source="<test>",
    )
    result = run_scenario(scenario, tmp_path)
    failed = [e for e in result.expectations if not e.ok]
    assert not failed, failed
    for m in result.recordings:
        report = verify_recording(tmp_path / m["recording_id"])
        assert report.ok, report.problems
        assert report.codes == list(range(m["first_frame"], m["last_frame"] + 1))
    return result


def test_chatter_before_a_draw_does_not_back_date_the_trigger(tmp_path: Path) -> None:
    draw = 13.01
    events = [
        {"at": 10.0, "input": "holster", "action": "chatter", "duration": 3.0, "pulse_ms": 5},
        {"at": draw, "input": "holster", "action": "activate", "bounce_ms": 8},
    ]
    result = run(tmp_path, 15.0, events, recordings=1, triggers=["holster"])
    [m] = result.recordings
    t = m["trigger"]["time"]
    # Not the start of the chatter (10.0): at most a pulse and a debounce of rest
    # before the draw, and exactly what the cumulative-rest rule says for these edges.
    assert draw - 0.030 <= t <= draw
    holster = [
        (e.t, e.active)
        for e in scenario_edges(result.scenario, {"holster": 0.020, "button": 0.030})
        if e.input == "holster"
    ]
    [expected] = reference(False, holster, 0.020)
    assert t == round(expected.time, 6)
    assert m["pre_event_seconds"] >= 5.0
    assert m["pre_event_seconds"] < 5.0 + 1.0  # the keyframe at or before t - 5 s


def test_holding_the_second_press_of_a_double_press_does_not_stop(tmp_path: Path) -> None:
    events = [
        {"at": 8.0, "input": "button", "action": "press", "bounce_ms": 6},
        {"at": 8.4, "input": "button", "action": "hold", "duration": 4.0, "bounce_ms": 6},
    ]
    result = run(tmp_path, 14.0, events, recordings=1, triggers=["button"])
    [m] = result.recordings
    assert m["trigger"]["time"] == 8.0  # the double press, dated at its first press
    assert m["stop"]["reason"] == "end_of_run"  # not button_hold at 11.4


def test_a_hold_pressed_before_the_recording_started_does_not_stop_it(tmp_path: Path) -> None:
    events = [
        {"at": 8.0, "input": "button", "action": "hold", "duration": 4.0, "bounce_ms": 6},
        {"at": 9.0, "input": "holster", "action": "activate", "bounce_ms": 8},
        # A hold pressed after the start stops it, as always.
        {"at": 13.0, "input": "button", "action": "hold", "duration": 3.5, "bounce_ms": 6},
    ]
    result = run(tmp_path, 17.0, events, recordings=1, triggers=["holster"])
    [m] = result.recordings
    assert m["trigger"]["time"] == 9.0
    assert m["stop"] == {"reason": "button_hold", "time": 16.0}  # not 11.0
    ignored = [e for e in result.events if e["kind"] == "hold_ignored"]
    assert [e["at"] for e in ignored] == [8.0]
