"""``bodycam inspect``: the facts a bench engineer needs, in text and in --json.

Recordings are real ones from the simulator: a camera that goes dark for
45 frames, two wall-clock steps (one in the pre-event, one after the
trigger), two markers and a stop by a held button; an interrupted recording
(a device abandoned mid-recording, as at a power cut) and the same one after
``bodycam recover``. Wall times that inspect derives are checked against the
firmware's own UTC stamps in the audit log, an independent source.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main
from camera.evidence.audit import read_audit
from camera.evidence.records import MANIFEST
from camera.evidence.verify.trust import keys_beside
from camera.inspection import Status, inspect_recording, render
from camera.inspection.wallclock import WallClock
from sim.runner import run_scenario
from sim.scenario import load_scenario
from tests.conftest import make_device

SCENARIO = """
[scenario]
name = "inspect"
duration = 15.0

[config]
video = { width = 640, height = 360, fps = 30, bitrate = 1500000, gop = 30 }
buffer = { pre_event = 2.0 }
recording = { segment_seconds = 2.0 }

[[fault]]
at = 2.0
kind = "clock_jump"
seconds = -30.0

[[event]]
at = 3.0
input = "holster"
action = "activate"

[[fault]]
at = 5.0
kind = "camera_disconnect"
duration = 1.5

[[fault]]
at = 7.0
kind = "clock_jump"
seconds = 90.0

[[event]]
at = 8.0
input = "holster"
action = "deactivate"

[[event]]
at = 8.5
input = "holster"
action = "activate"

[[event]]
at = 9.5
input = "button"
action = "double_press"

[[event]]
at = 10.5
input = "button"
action = "hold"
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def inspect_json(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[Any], str]:
    code, out, err = run_cli(capsys, "inspect", "--json", *map(str, paths))
    return code, json.loads(out), err


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The storage directory of one finished recording (never changed: copy first)."""
    root = tmp_path_factory.mktemp("inspect")
    (root / "s.toml").write_text(SCENARIO)
    result = run_scenario(load_scenario(root / "s.toml"), root / "store")
    assert len(result.recordings) == 1
    return result.storage


@pytest.fixture
def store(recorded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(recorded, copy)
    return copy


def the_recording(store: Path) -> Path:
    [rec] = [p for p in store.iterdir() if p.is_dir()]
    return rec


def edit_manifest(rec: Path, **changes: Any) -> None:
    m = json.loads((rec / MANIFEST).read_text())
    m.update(changes)
    (rec / MANIFEST).write_text(json.dumps(m, indent=2))


# -- a finished recording: every fact ----------------------------------------
def test_text_shows_gaps_steps_markers_stop_with_wall_times(capsys, recorded: Path) -> None:
    rec = the_recording(recorded)
    code, out, err = run_cli(capsys, "inspect", str(recorded))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"recording  {rec.name}"
    assert lines[1] == f"path       {rec}"
    for line in [
        "status     complete",
        "device     BWC-0001",
        "video      h264 (libx264) 640x360 @ 30 fps",
        "audio      aac 48000 Hz, 1 channel",
        # The trigger's stamp is after the -30 s step in the pre-event.
        "trigger    holster at 2026-01-01T07:59:33.000Z (device 3.000 s); pre-event 2.00 s",
        "stop       button_hold at 2026-01-01T08:01:13.500Z (device 13.500 s)",
        "lost       45 frames in 1 gap (camera 45); firmware dropped 0",
        "  gap      camera: 45 frames (150-194) at 2026-01-01T07:59:35.000Z (device 5.000-6.467 s)",
        "clock      2 wall-clock steps",
        "  step     -30.000 s (system) at device 2.000 s: 2026-01-01T08:00:02.000Z -> "
        "2026-01-01T07:59:32.000Z",
        "  step     +90.000 s (system) at device 7.000 s: 2026-01-01T07:59:37.000Z -> "
        "2026-01-01T08:01:07.000Z",
        "markers    2",
        "  marker   holster at 2026-01-01T08:01:08.500Z (device 8.500 s)",
        "  marker   button at 2026-01-01T08:01:09.500Z (device 9.500 s)",
        "  test key a simulation's: proves the bytes are intact, not who wrote them",
        f"checked    sizes and the manifest signature only; `bodycam verify {rec}` checks the "
        "video",
    ]:
        assert line in lines, f"{line!r} not in:\n{out}"
    [disk] = [x for x in lines if x.startswith("disk ")]
    assert disk.endswith("MB, as listed") and "6 segments" in disk
    [signature] = [x for x in lines if x.startswith("signature ")]
    assert signature.startswith(f"signature  good, with {recorded / 'BWC-0001.pub.pem'}")
    assert "not independently trusted" in signature


def test_json_has_the_same_facts_as_numbers(capsys, recorded: Path) -> None:
    rec = the_recording(recorded)
    code, [item], _ = inspect_json(capsys, rec)
    assert code == 0
    assert item["path"] == str(rec) and item["recording_id"] == rec.name
    assert item["status"] == "complete" and item["recover_command"] is None
    assert (item["codec"], item["width"], item["height"], item["fps"]) == ("h264", 640, 360, 30)
    assert item["audio"] == {"codec": "aac", "rate": 48000, "channels": 1}
    assert item["trigger"] == {
        "source": "holster",
        "detail": None,
        "time": 3.0,
        "wall_time": "2026-01-01T07:59:33.000Z",
    }
    assert item["pre_event_seconds"] == 2.0
    assert item["lost_frames"] == 45 and item["lost_by_cause"] == {"camera": 45}
    assert item["dropped_frames"] == 0  # the firmware dropped none: the camera gave none
    assert item["gaps"] == [
        {
            "cause": "camera",
            "frames": 45,
            "first_frame": 150,
            "start": 5.0,
            "end": 6.466667,
            "wall_time": "2026-01-01T07:59:35.000Z",
        }
    ]
    assert [(s["time"], s["seconds"], s["source"]) for s in item["wall_clock_steps"]] == [
        (2.0, -30.0, "system"),
        (7.0, 90.0, "system"),
    ]
    assert item["wall_clock_steps"][1]["wall_after"] == "2026-01-01T08:01:07.000Z"
    assert [(m["source"], m["time"]) for m in item["markers"]] == [
        ("holster", 8.5),
        ("button", 9.5),
    ]
    assert item["stop"]["reason"] == "button_hold" and item["stop"]["time"] == 13.5
    disk = item["disk"]
    assert disk["listed_bytes"] == disk["on_disk_bytes"] > 0 and disk["extra_files"] == []
    assert {s["state"] for s in disk["segments"]} == {"ok"} and len(disk["segments"]) == 6
    sig = item["signature"]
    assert sig["status"] == "good" and sig["test_key"] is True and sig["trusted"] is False
    assert sig["key"] == str(recorded / "BWC-0001.pub.pem")
    assert item["problems"] == []


def test_derived_wall_times_are_the_firmwares_own_stamps(capsys, recorded: Path) -> None:
    """Markers and the stop against the audit log's ``utc``, written by the device at the time."""
    _, [item], _ = inspect_json(capsys, recorded)
    audit = read_audit(recorded / "audit.jsonl")
    stamped = [(e["time"], e["utc"]) for e in audit if e["event"] in ("trigger", "marker", "stop")]
    derived = [(item["trigger"]["time"], item["trigger"]["wall_time"])]
    derived += [(m["time"], m["wall_time"]) for m in item["markers"]]
    derived.append((item["stop"]["time"], item["stop"]["wall_time"]))
    assert derived == stamped


def test_json_keys_are_stable_across_statuses(capsys, store: Path) -> None:
    bad = store / "BWC-0001_20260101T000000Z_0009"
    bad.mkdir()
    (bad / MANIFEST).write_text("{")
    code, items, _ = inspect_json(capsys, store)
    assert code == 2
    assert len({tuple(i) for i in items}) == 1  # the same keys, in the same order


# -- what is on disk now ------------------------------------------------------
def test_a_deleted_and_a_cut_segment_and_an_extra_file(capsys, store: Path) -> None:
    rec = the_recording(store)
    (rec / "segment-0002.ts").unlink()
    cut = rec / "segment-0003.ts"
    listed = cut.stat().st_size
    with cut.open("r+b") as f:
        f.truncate(1000)
    (rec / "segment-0009.ts").write_bytes(b"x" * 7)
    code, out, _ = run_cli(capsys, "inspect", str(rec))
    assert code == 0
    assert "disk       4 of 6 segments as listed; " in out
    assert "  segment  segment-0002.ts: missing (" in out
    assert f"  segment  segment-0003.ts: 1000 bytes on disk, {listed} listed" in out
    assert "  extra    segment-0009.ts (7 bytes): not in the manifest" in out
    _, [item], _ = inspect_json(capsys, rec)
    states = {s["file"]: s["state"] for s in item["disk"]["segments"]}
    assert states["segment-0002.ts"] == "missing" and states["segment-0003.ts"] == "size_differs"
    assert list(states.values()).count("ok") == 4
    on_disk = sum(p.stat().st_size for p in rec.glob("segment-000[0-5].ts"))
    assert item["disk"]["on_disk_bytes"] == on_disk < item["disk"]["listed_bytes"]
    assert item["disk"]["extra_files"] == [{"file": "segment-0009.ts", "bytes": 7}]


# -- the signature --------------------------------------------------------------
def test_a_tampered_manifest_fails_the_signature(capsys, store: Path) -> None:
    rec = the_recording(store)
    m = json.loads((rec / MANIFEST).read_text())
    m["markers"][0]["time"] = 8.6  # moved a marker: every field still well formed
    (rec / MANIFEST).write_text(json.dumps(m))
    code, out, _ = run_cli(capsys, "inspect", str(rec))
    assert code == 0  # inspect describes; verify judges (exit 1)
    [signature] = [x for x in out.splitlines() if x.startswith("signature ")]
    assert signature.startswith("signature  BAD, with ") and "signature does not match" in signature
    assert "test key" not in out  # an unauthenticated claim is not repeated
    _, [item], _ = inspect_json(capsys, rec)
    assert item["signature"]["status"] == "bad"
    assert item["markers"][0]["time"] == 8.6  # shown as it is, with the warning


def test_a_total_that_does_not_add_up_is_a_problem_line(capsys, store: Path) -> None:
    rec = the_recording(store)
    held = sum(s["frames"] for s in json.loads((rec / MANIFEST).read_text())["segments"])
    edit_manifest(rec, frames=1)
    code, out, _ = run_cli(capsys, "inspect", str(rec))
    assert code == 0
    assert f"problem    manifest.json: frames is 1, the segments hold {held} " in out


def test_a_step_without_a_source_older_firmware_is_shown_without_one(capsys, store: Path) -> None:
    rec = the_recording(store)
    steps = json.loads((rec / MANIFEST).read_text())["wall_clock_steps"]
    edit_manifest(
        rec, wall_clock_steps=[{"time": s["time"], "seconds": s["seconds"]} for s in steps]
    )
    code, out, _ = run_cli(capsys, "inspect", str(rec))
    assert code == 0
    assert "  step     -30.000 s at device 2.000 s: 2026-01-01T08:00:02.000Z -> " in out
    _, [item], _ = inspect_json(capsys, store)
    assert [s["source"] for s in item["wall_clock_steps"]] == [None, None]


def test_no_key_beside_the_recordings(capsys, store: Path) -> None:
    (store / "BWC-0001.pub.pem").unlink()
    code, out, _ = run_cli(capsys, "inspect", str(store))
    assert code == 0
    assert f"signature  not checked: no public key (*.pub.pem) found in {store}" in out
    _, [item], _ = inspect_json(capsys, store)
    assert item["signature"]["status"] == "no_key" and item["signature"]["key"] is None


# -- interrupted, then recovered ------------------------------------------------
@pytest.fixture
def crashed(tmp_path: Path) -> Path:
    """Trigger at 3.0, 2 s segments, abandoned at 8.3 with unsynced bytes in the open one."""
    dev = make_device(
        tmp_path, {"buffer": {"pre_event": 2.0}, "recording": {"segment_seconds": 2.0}}
    )
    dev.set_input(3.0, "holster", True)
    dev.run(until=8.3)
    dev.hal.storage.unlock()  # the process is gone: the kernel drops its lock
    return the_recording(tmp_path / "store")


def test_interrupted_then_recovered(capsys, crashed: Path) -> None:
    before = {p.name: p.stat().st_size for p in crashed.iterdir()}
    code, out, _ = run_cli(capsys, "inspect", str(crashed))
    assert code == 0
    assert {p.name: p.stat().st_size for p in crashed.iterdir()} == before  # read only
    assert "status     INTERRUPTED: a journal but no manifest" in out
    assert f"  finish   run `bodycam recover {crashed}` to rebuild its manifest" in out
    assert "trigger    holster at 2026-01-01T08:00:03.000Z (device 3.000 s)" in out
    assert "stop       none recorded (interrupted)" in out
    assert "  segment  segment-0003.ts: open, " in out and "past its last sync" in out
    _, [item], _ = inspect_json(capsys, crashed)
    assert item["status"] == "interrupted" and item["signature"] is None
    assert item["recover_command"] == f"bodycam recover {crashed}"
    [open_one] = [s for s in item["disk"]["segments"] if s["state"] == "past_last_sync"]
    unsynced = open_one["on_disk_bytes"] - open_one["listed_bytes"]
    assert open_one["file"] == "segment-0003.ts" and unsynced > 0

    assert main(["recover", str(crashed)]) == 0
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "inspect", str(crashed))
    assert code == 0
    assert "status     recovered after an interruption" in out
    assert "stop       power_loss at " in out
    tail = f"  tail     segment-0003.tail: {unsynced} bytes kept, cut from segment-0003.ts"
    assert tail in out
    assert "extra" not in out  # the tail is the manifest's, not a stray file
    assert (
        "signature  unsigned: manifest.json: not signed (recovered without the device key)" in out
    )
    _, [item], _ = inspect_json(capsys, crashed)
    assert item["status"] == "recovered" and item["signature"]["status"] == "unsigned"
    assert item["recovery"]["tails"][0]["bytes"] == unsynced


# -- what cannot be read --------------------------------------------------------
def test_a_corrupt_manifest_among_good_ones_is_one_line_and_exit_2(capsys, store: Path) -> None:
    good = the_recording(store)
    bad = store / "BWC-0001_20260101T000000Z_0009"
    bad.mkdir()
    (bad / MANIFEST).write_text('{"format": ')
    code, out, err = run_cli(capsys, "inspect", str(store))
    assert code == 2
    assert f"recording  {good.name}" in out and bad.name not in out
    [line] = err.splitlines()
    assert line.startswith(f"bodycam inspect: {bad / MANIFEST} is not valid JSON")
    assert "Traceback" not in err
    code, items, _ = inspect_json(capsys, store)
    assert code == 2
    [unreadable] = [i for i in items if i["status"] == "unreadable"]
    assert unreadable["path"] == str(bad) and str(bad / MANIFEST) in unreadable["error"]


def test_a_manifest_missing_a_field_names_it(capsys, store: Path) -> None:
    rec = the_recording(store)
    m = json.loads((rec / MANIFEST).read_text())
    del m["markers"][1]["time"]
    (rec / MANIFEST).write_text(json.dumps(m))
    code, out, err = run_cli(capsys, "inspect", str(rec))
    assert code == 2 and out == ""
    assert err == f"bodycam inspect: {rec / MANIFEST}: markers[1]: missing time\n"


def test_a_path_that_is_not_there_is_exit_2_after_the_rest(capsys, store: Path) -> None:
    typo = store / "no-such-recording"
    code, out, err = run_cli(capsys, "inspect", str(the_recording(store)), str(typo))
    assert code == 2
    assert "status     complete" in out
    assert err == f"bodycam inspect: {typo}: no such file or directory\n"


def test_segments_alone_or_a_headless_journal_cannot_be_described(capsys, store: Path) -> None:
    rec = the_recording(store)
    (rec / MANIFEST).unlink()
    journal = rec / "journal.jsonl"
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[1:]))
    code, out, err = run_cli(capsys, "inspect", str(rec))
    assert code == 2 and out == ""
    assert err == (
        f"bodycam inspect: {journal}: no readable head record; an interrupted recording that "
        "cannot be described (or recovered)\n"
    )
    journal.unlink()
    code, out, err = run_cli(capsys, "inspect", str(rec))
    assert code == 2 and out == ""
    assert err.startswith(f"bodycam inspect: {rec}: no manifest.json and no journal.jsonl")


# -- a hostile manifest never breaks the tool -----------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = st.sampled_from(
    [
        "trigger",
        "stop",
        "markers",
        "gaps",
        "wall_clock_steps",
        "segments",
        "audio",
        "recovery",
        "fps",
        "frames",
        "pre_event_dropped",
        "signature",
        "key_id",
    ]
)


@given(changes=st.lists(st.tuples(FIELDS, JSON_VALUES), min_size=1, max_size=3))
def test_any_damage_is_described_or_one_line(recorded: Path, changes: list) -> None:
    rec = the_recording(recorded)
    m = json.loads((rec / MANIFEST).read_text())
    for key, value in changes:
        m[key] = value
    from camera.inspection import manifest_view

    problems = manifest_view.structure_problems(m)
    if problems:
        assert all(p.startswith(MANIFEST) and "\n" not in p for p in problems)
        return
    insp = manifest_view.from_manifest(rec, m, keys_beside(recorded))
    json.dumps(insp.to_json(), allow_nan=False)
    assert render(insp).startswith("recording  ")


def test_inspect_recording_never_raises_on_a_non_object(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    for text in ("[]", "null", '"x"', "1e999", "\xff"):
        (rec / MANIFEST).write_text(text, errors="surrogateescape")
        insp = inspect_recording(rec, keys_beside(tmp_path))
        assert insp.status == Status.UNREADABLE and str(rec / MANIFEST) in (insp.error or "")


# -- the wall clock ---------------------------------------------------------------
ANCHOR = datetime(2026, 1, 1, 8, tzinfo=UTC)


def test_wall_clock_before_and_after_the_trigger() -> None:
    clock = WallClock(10.0, ANCHOR, ((4.0, -30.0), (12.0, 60.0)))
    assert clock.at(10.0) == "2026-01-01T08:00:00.000Z"
    assert clock.at(11.0) == "2026-01-01T08:00:01.000Z"
    assert clock.at(12.0) == "2026-01-01T08:01:02.000Z"  # the step at 12 taken
    assert clock.at(4.0) == "2026-01-01T07:59:54.000Z"  # the -30 s step at 4 taken
    assert clock.at(3.0) == "2026-01-01T08:00:23.000Z"  # before it: 30 s later
    assert clock.around_step(12.0, 60.0) == ("2026-01-01T08:00:02.000Z", clock.at(12.0))
    assert WallClock(0.0, None).at(1.0) is None


@given(
    t1=st.floats(0, 1e5),
    t2=st.floats(0, 1e5),
    steps=st.lists(st.tuples(st.floats(0, 1e5), st.floats(-1e4, 1e4)), max_size=4),
)
def test_wall_clock_moves_with_device_time_plus_the_steps_between(
    t1: float, t2: float, steps: list[tuple[float, float]]
) -> None:
    t1, t2 = sorted((t1, t2))
    clock = WallClock(5e4, ANCHOR, tuple(steps))
    w1, w2 = (datetime.fromisoformat(clock.at(t) or "") for t in (t1, t2))
    expected = t2 - t1 + sum(s for at, s in steps if t1 < at <= t2)
    assert abs((w2 - w1).total_seconds() - expected) < 2e-3  # milliseconds, truncated
