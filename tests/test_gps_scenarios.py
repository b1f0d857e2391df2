"""The GPS CI scenarios, judged against the simulated route: SPEC 14 and issue 13's "done when".

The firmware reads the simulated receiver through its real NMEA reader on a
pty; these tests hold the recordings' manifests against what the receiver
was told to do: the route (sim.gps.Route) each point must lie on, the
fix-loss window in which every point must be lost, the device clock's error
the first fix must step away. (tests/test_scenarios.py runs both through
the CI suite too: expectations, and every recording verified frame by frame.)
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest

from camera.evidence.verify import verify_recording
from camera.overlay import Overlay
from sim.gps import DRIVE_SPEED, WALK_SPEED, distance_m
from sim.gps_pty import receiver_for
from sim.runner import evaluate, run_scenario
from sim.scenario import Expect, load_scenario, parse_scenario

CI = Path(__file__).resolve().parents[1] / "scenarios" / "ci"

pytestmark = pytest.mark.xdist_group("ci_scenarios")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_track_follows_the_route_point_by_point(ci_run) -> None:
    scenario = load_scenario(CI / "gps_track.toml")
    route = receiver_for(scenario).route
    [m] = ci_run("gps_track").recordings
    fixed = [p for p in m["track"] if p.get("lat") is not None]
    assert len(fixed) >= 30
    for p in fixed:
        where = route.at(utc(p["utc"]))
        assert distance_m((p["lat"], p["lon"]), where[:2]) < 1.0, p
        assert p["speed"] == pytest.approx(where.speed, abs=0.01)
        assert p["quality"] >= 1 and p["satellites"] >= 1
    # The recording covers the walk and the drive.
    speeds = [p["speed"] for p in fixed]
    assert any(WALK_SPEED[0] <= s <= WALK_SPEED[1] for s in speeds)
    assert any(DRIVE_SPEED[0] <= s <= DRIVE_SPEED[1] for s in speeds)
    # One point per second, in order, within the recording.
    times = [p["time"] for p in m["track"]]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_track_is_lost_exactly_in_the_fix_loss_window(ci_run) -> None:
    scenario = load_scenario(CI / "gps_track.toml")
    [window] = scenario.gps.fix_loss
    t0 = receiver_for(scenario).route.t0
    [m] = ci_run("gps_track").recordings
    lost_seconds = set()
    for p in m["track"]:
        assert p["utc"] is not None  # the receiver kept its time throughout
        epoch = (utc(p["utc"]) - t0).total_seconds()
        inside = window.at <= epoch < window.at + window.duration
        if inside:
            assert p.get("lost") == "no_fix" and "lat" not in p, p
            lost_seconds.add(epoch)
        else:
            assert p.get("lat") is not None, p
    assert lost_seconds == {window.at + k for k in range(int(window.duration))}


def test_trigger_position_is_the_last_fix_before_the_draw(ci_run) -> None:
    scenario = load_scenario(CI / "gps_track.toml")
    route = receiver_for(scenario).route
    [m] = ci_run("gps_track").recordings
    trigger = m["trigger"]
    position = trigger["position"]
    assert position is not None
    assert position["age"] == pytest.approx(trigger["time"] - position["time"])
    assert 0 <= position["age"] < 1.0 + scenario.gps.latency
    where = route.at(utc(position["utc"]))
    assert distance_m((position["lat"], position["lon"]), where[:2]) < 1.0


def test_cold_start_step_is_listed_with_source_gps(ci_run) -> None:
    scenario = load_scenario(CI / "gps_cold_start.toml")
    gps = scenario.gps
    [m] = ci_run("gps_cold_start").recordings
    [step] = m["wall_clock_steps"]
    assert step["source"] == "gps"
    # The device clock was 90 s fast: stepped back by that, give or take the sentence latency.
    assert gps.time_offset - gps.latency - 1e-6 <= step["seconds"] <= gps.time_offset + 1e-6
    assert gps.cold_start <= step["time"] < gps.cold_start + 1.0 + gps.latency
    # The recording spans the first fix: lost (no time, no position) before it, fixes after.
    before = [p for p in m["track"] if p["time"] < step["time"]]
    after = [p for p in m["track"] if p["time"] >= step["time"]]
    assert before and after
    assert all(p.get("lost") == "no_fix" and p["utc"] is None for p in before)
    assert all(p.get("lat") is not None for p in after)
    assert m["trigger"]["position"] is None  # no fix yet at the draw


def test_gps_run_is_reproducible_byte_for_byte(ci_run, tmp_path: Path) -> None:
    first = ci_run("gps_track").storage
    again = run_scenario(load_scenario(CI / "gps_track.toml"), tmp_path / "again").storage

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    a, b = files(first), files(again)
    assert a.keys() == b.keys() and len(a) > 3
    assert [k for k in a if a[k] != b[k]] == []


def test_new_expectations_can_fail(ci_run) -> None:
    result = ci_run("gps_cold_start")
    scenario = load_scenario(CI / "gps_cold_start.toml")
    wrong = scenario.model_copy(
        update={"expect": Expect(clock_step_sources=["ntp"], track_points_min=1000)}
    )
    checks = {e.name: e for e in evaluate(wrong, result)}
    assert not checks["clock_step_sources"].ok and checks["clock_step_sources"].actual == ["gps"]
    assert not checks["track_points_min"].ok and 0 < checks["track_points_min"].actual < 1000


HOSTILE = """
[scenario]
name = "gps-hostile"
duration = 14.0
seed = 5

[config]
video = { width = 640, height = 360, fps = 30, bitrate = 1500000, gop = 30 }
buffer = { pre_event = 3.0 }

[gps]
enabled = true
flood_hz = 50
corrupt_rate = 0.3
garbage_rate = 0.5

[[gps.stall]]
at = 7.0
duration = 3.0

[[event]]
at = 4.0
input = "holster"
action = "activate"

[expect]
recordings = 1
max_dropped_frames = 0
"""


def test_a_hostile_receiver_never_costs_a_frame(tmp_path: Path) -> None:
    """50 Hz epochs, corrupted sentences, junk lines and a stall: every frame, a valid record."""
    scenario = parse_scenario(tomllib.loads(HOSTILE), "hostile.toml")
    result = run_scenario(scenario, tmp_path)
    assert result.ok, [e for e in result.expectations if not e.ok]
    [m] = result.recordings
    assert m["dropped_frames"] == 0 and m["gaps"] == []
    assert verify_recording(result.storage / m["recording_id"]).ok
    route = receiver_for(scenario).route
    fixed = [p for p in m["track"] if p.get("lat") is not None]
    assert fixed
    for p in fixed:  # whatever got through is still exactly where the route was
        assert distance_m((p["lat"], p["lon"]), route.at(utc(p["utc"]))[:2]) < 1.0
    # 50 epochs a second, one track point per GPS second; the stall is silence in the track.
    seconds = [utc(p["utc"]).replace(microsecond=0) for p in m["track"] if p["utc"] is not None]
    assert len(seconds) == len(set(seconds)) >= 8
    stalled = [p for p in m["track"] if 7.0 + 1.0 < p["time"] <= 10.0]
    assert stalled and all(p.get("lost") == "no_data" for p in stalled)


def decoded_images(recording: Path) -> Iterator[np.ndarray]:
    """Every picture of a recording, in order, as RGB (the picture-less closing packet skipped)."""
    for segment in sorted(recording.glob("segment-*.ts")):
        with av.open(str(segment)) as container:
            for packet in container.demux(video=0):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # the stop's closing signature: an SEI without a picture
                for frame in frames:
                    yield frame.to_ndarray(format="rgb24")


def _marker_mask(width: int, height: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Where the UNSYNCED marker puts white text and its dark outline, in its own columns."""
    wall = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
    marked, plain = (np.full((height, width, 3), 128, np.uint8) for _ in range(2))
    Overlay("BWC-0001").draw(marked, wall, disciplined=False)
    Overlay("BWC-0001").draw(plain, wall, disciplined=True)
    x0 = max(np.nonzero((plain != 128).any(axis=(0, 2)))[0]) + 1  # right of the plain text
    region = marked[:, x0:].min(axis=2), marked[:, x0:].max(axis=2)
    return region[0] > 200, region[1] < 60, (x0, width)


def test_the_burnt_in_time_says_unsynced_exactly_until_the_first_fix(ci_run) -> None:
    """Frames before GPS set the clock carry the marker; frames after it do not."""
    result = ci_run("gps_cold_start")
    [m] = result.recordings
    [step] = m["wall_clock_steps"]
    text, outline, (x0, x1) = _marker_mask(m["width"], m["height"])
    assert text.sum() > 50 and outline.sum() > 50
    seen: dict[bool, int] = {True: 0, False: 0}
    fps, start = m["fps"], m["start_time"]
    for index, image in enumerate(decoded_images(result.storage / m["recording_id"])):
        if index % 10:
            continue
        region = image[:, x0:x1]
        looks_marked = (region.min(axis=2)[text] > 160).mean() > 0.9 and (
            region.max(axis=2)[outline] < 90
        ).mean() > 0.9
        before_fix = start + index / fps < step["time"]
        assert looks_marked == before_fix, f"frame {index} at {start + index / fps:.3f} s"
        seen[before_fix] += 1
    assert seen[True] > 5 and seen[False] > 5
