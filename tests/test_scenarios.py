"""The CI scenario suite: every scenarios/ci/*.toml runs through the real runner.

Each scenario runs once per session (the ``ci_run`` fixture in conftest.py);
the parametrized check and the named tests below read the same recordings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camera.evidence.verify import verify_recording
from sim.runner import run_scenario
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
CI = sorted((ROOT / "ci").glob("*.toml"))

#: Shared session results: one xdist worker for all of them (loadscope does that by
#: module anyway; the group does it for --dist loadgroup).
pytestmark = pytest.mark.xdist_group("ci_scenarios")


def test_suite_is_there() -> None:
    assert len(CI) >= 10


@pytest.mark.parametrize("path", CI, ids=[p.stem for p in CI])
def test_ci_scenario(path: Path, ci_run) -> None:
    assert load_scenario(path).expect is not None, "every CI scenario states what it expects"
    result = ci_run(path.stem)
    failed = [e for e in result.expectations if not e.ok]
    assert not failed, failed
    dock = result.dock
    gone = set() if dock is None else {o.recording for o in dock.report.outcomes if o.deleted}
    for m in result.recordings:
        if m["recording_id"] in gone and not (result.storage / m["recording_id"]).exists():
            continue  # docked: deleted on a receipt, the server verified it (tests below)
        report = verify_recording(result.storage / m["recording_id"])
        assert report.ok, report.problems
        lost = {g["first_frame"] + i for g in m["gaps"] for i in range(g["frames"])}
        expected = [n for n in range(m["first_frame"], m["last_frame"] + 1) if n not in lost]
        assert report.codes == expected


def test_between_keyframes_starts_on_the_keyframe_before(ci_run) -> None:
    [m] = ci_run("trigger_between_keyframes").recordings
    assert m["trigger"]["time"] == 31.55
    assert m["first_frame"] == 30  # keyframe at 1.0 <= 1.55
    assert m["pre_event_seconds"] == 30.55


def test_double_press_is_dated_at_first_press(ci_run) -> None:
    [m] = ci_run("double_press_start_hold_stop").recordings
    assert m["trigger"]["time"] == 12.0
    assert m["stop"] == {"reason": "button_hold", "time": 20.0}


def test_retrigger_overlaps_previous_tail(ci_run) -> None:
    first, second = ci_run("retrigger_after_stop").recordings
    assert second["first_frame"] <= first["last_frame"]  # pre-event reaches into the tail
    assert second["first_frame"] == 360  # keyframe at 12.0 = 22.0 - 10.0


def test_fps25_gop_snaps_back_to_keyframe(ci_run) -> None:
    [m] = ci_run("fps25_gop2s").recordings
    assert m["fps"] == 25
    assert m["first_frame"] == 150  # keyframes every 50 frames: 6.0 s <= 12.9 - 5.0
    assert m["pre_event_seconds"] == pytest.approx(6.9)


def test_camera_disconnect_is_a_declared_gap_in_one_recording(ci_run) -> None:
    [m] = ci_run("camera_disconnect").recordings
    [gap] = m["gaps"]
    assert gap["cause"] == "camera"
    assert gap["first_frame"] == 366  # the frame at 12.2 s (366 / 30)
    assert gap["frames"] == 45  # 1.5 s at 30 fps
    assert m["dropped_frames"] == 0  # not dropped by the firmware: never captured
    assert m["stop"]["reason"] == "end_of_run"


def test_storage_full_stops_keeps_evidence_and_refuses(ci_run) -> None:
    result = ci_run("storage_full")
    [m] = result.recordings
    assert m["stop"]["reason"] == "storage_full"
    assert 13.0 <= m["stop"]["time"] < 14.0
    assert m["frames"] > 0
    kinds = [e["kind"] for e in result.events]
    assert "refused" in kinds  # the later double press: logged, no crash, no recording
    assert verify_recording(result.storage / m["recording_id"]).ok


def test_clock_jump_keeps_device_time_and_records_the_step(ci_run) -> None:
    result = ci_run("clock_jump")
    [m] = result.recordings
    assert m["trigger"]["wall_time"] == "2026-01-01T08:00:08.000Z"
    assert m["wall_clock_steps"] == [{"time": 11.0, "seconds": 90.0, "source": "system"}]
    report = verify_recording(result.storage / m["recording_id"])
    assert report.ok and report.codes == list(range(m["first_frame"], m["last_frame"] + 1))


def test_power_loss_recovers_with_at_most_one_sync_interval_lost(ci_run) -> None:
    result = ci_run("power_loss")
    [m] = result.recordings
    assert m["stop"]["reason"] == "power_loss"
    assert m["first_frame"] == 90  # keyframe at 3.0 = 8.0 - 5.0
    assert 12.3 - m["end_time"] <= 0.5 + 1 / 30  # fsync every 0.5 s of video
    assert (result.storage / m["recording_id"] / "journal.jsonl").exists()


def test_recovered_recording_keeps_its_wall_clock_steps(tmp_path: Path) -> None:
    from sim.scenario import parse_scenario

    scenario = parse_scenario(
        {
            "scenario": {"name": "step-then-cut", "duration": 14.0},
            "config": {"video": {"width": 640, "height": 360}, "buffer": {"pre_event": 2.0}},
            "event": [{"at": 4.0, "input": "holster", "action": "activate"}],
            "fault": [
                {"at": 6.0, "kind": "clock_jump", "seconds": -3600.0},
                {"at": 9.0, "kind": "power_loss"},
            ],
        },
        source="<test>",
    )
    [m] = run_scenario(scenario, tmp_path).recordings
    assert m["stop"]["reason"] == "power_loss"
    assert m["wall_clock_steps"] == [{"time": 6.0, "seconds": -3600.0, "source": "system"}]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_scenario_twice_is_byte_identical(ci_run, tmp_path: Path) -> None:
    """A fresh run against the session's run of the same file: scenario + seed fix every byte."""
    shared = ci_run("marker_while_recording")
    fresh = run_scenario(load_scenario(ROOT / "ci" / "marker_while_recording.toml"), tmp_path)
    assert fresh.recordings
    trees = [tree_bytes(shared.storage), tree_bytes(tmp_path)]
    assert trees[0].keys() == trees[1].keys()
    assert trees[0] == trees[1]
    manifest = next(k for k in trees[0] if k.endswith("manifest.json"))
    assert json.loads(trees[0][manifest])["markers"]


AAC_FRAME = 1024 / 48_000


def test_sound_starts_at_the_trigger_not_at_its_recognition(ci_run) -> None:
    [m] = ci_run("audio_trigger").recordings
    a = m["audio"]
    assert a["pre_event"] is False and a["source"] == "synthetic"
    assert a["start_time"] == m["trigger"]["time"] == 8.3
    assert 8.3 <= a["first_time"] < 8.3 + AAC_FRAME  # the first whole packet from the edge on
    assert a["gaps"] == []
    assert m["start_time"] < a["first_time"]  # the pre-event is pictures only


def test_pre_event_sound_starts_with_the_first_frame(ci_run) -> None:
    [m] = ci_run("audio_pre_event").recordings
    a = m["audio"]
    assert a["pre_event"] is True
    assert a["start_time"] == m["start_time"]
    assert m["start_time"] <= a["first_time"] < m["start_time"] + AAC_FRAME
    assert a["gaps"] == []


def test_a_lost_microphone_is_a_declared_gap_and_the_pictures_go_on(ci_run) -> None:
    [m] = ci_run("microphone_disconnect").recordings
    assert m["gaps"] == [] and m["dropped_frames"] == 0
    [gap] = m["audio"]["gaps"]
    assert gap["cause"] == "microphone"
    # The microphone is gone from 10.4 s for 1.5 s; the gap is whole 1024-sample blocks.
    assert 10.4 - AAC_FRAME <= gap["start"] <= 10.4 + AAC_FRAME
    assert 11.9 - AAC_FRAME <= gap["end"] <= 11.9 + 2 * AAC_FRAME
    assert gap["samples"] == round((gap["end"] - gap["start"]) * 48_000)


def test_power_loss_recovers_the_sound_with_the_pictures(ci_run) -> None:
    [m] = ci_run("audio_power_loss").recordings
    assert m["stop"]["reason"] == "power_loss" and m["audio"]["packets"] > 0
    assert sum(s["audio"]["packets"] for s in m["segments"]) == m["audio"]["packets"]


# -- docked at the end of a shift (issue 16: scenarios/ci/dock_*.toml) ---------------------------
def _receipt(storage: Path, recording: str) -> dict:
    return json.loads((storage / "receipts" / f"{recording}.json").read_bytes())


def test_a_dock_offloads_the_closed_recordings_and_chains_the_busy_one_to_them(ci_run) -> None:
    from camera.cli import main

    result = ci_run("dock_end_of_shift")
    first, second, busy = (m["recording_id"] for m in result.recordings)
    assert [p.name for p in result.storage.iterdir() if p.is_dir() and p.name != "receipts"] == [
        busy
    ]
    # The busy one was never sent; closed after the dock, it links to the offloaded one
    # before it through the kept receipt: the chain goes on across the offload.
    kinds = [
        (e["kind"], e.get("recording"))
        for e in result.events
        if e["kind"] in ("offloaded", "kept", "docked")
    ]
    assert kinds == [("offloaded", first), ("offloaded", second), ("kept", busy), ("docked", None)]
    manifest = json.loads((result.storage / busy / "manifest.json").read_bytes())
    assert manifest["previous"] == {
        "recording_id": second,
        "manifest_sha256": _receipt(result.storage, second)["manifest_sha256"],
    }
    assert _receipt(result.storage, second)["chain"] == "ok"
    assert main(["verify", str(result.storage)]) == 0


def test_a_docked_run_still_writes_byte_identical_recordings(ci_run, tmp_path: Path) -> None:
    shared = ci_run("dock_end_of_shift")
    fresh = run_scenario(load_scenario(ROOT / "ci" / "dock_end_of_shift.toml"), tmp_path)
    busy = fresh.recordings[-1]["recording_id"]
    assert tree_bytes(fresh.storage / busy) == tree_bytes(shared.storage / busy)
    for m in fresh.recordings[:2]:  # what the server was sent: the same manifests
        rec = m["recording_id"]
        assert _receipt(fresh.storage, rec)["files"] == _receipt(shared.storage, rec)["files"]


@pytest.mark.parametrize(
    ("name", "fault", "count"),
    [
        ("dock_link_drop", "drops", 1),
        ("dock_server_restart", "restarts", 1),
        ("dock_busy", "busy_answers", 4),
    ],
)
def test_a_dock_rides_out_its_links_faults(ci_run, name: str, fault: str, count: int) -> None:
    from camera.cli import main

    result = ci_run(name)
    dock = result.dock
    assert getattr(dock.link, fault) == count  # the fault happened, once
    assert dock.link.resent == 0 and dock.report.files_held == 0  # nothing sent twice
    assert dock.link.puts == dock.report.files_sent + (fault != "busy_answers")
    if fault == "busy_answers":
        assert sum(dock.waits) >= 4 * 1  # each retry waited at least the Retry-After
    first, second = (m["recording_id"] for m in result.recordings)
    assert _receipt(result.storage, second)["chain"] == "ok"
    assert not (result.storage / first).exists() and not (result.storage / second).exists()
    assert main(["verify", str(result.storage)]) == 0


def test_a_full_server_stops_the_dock_and_nothing_is_deleted(ci_run) -> None:
    from camera.evidence.audit import read_audit

    result = ci_run("dock_full")
    assert "507" in (result.dock.report.stopped or "")
    for m in result.recordings:
        assert verify_recording(result.storage / m["recording_id"]).ok
    assert not (result.storage / "receipts").exists()
    events = {e["event"] for e in read_audit(result.storage / "audit.jsonl")}
    assert not events & {"offloaded", "deleting", "deleted"}
