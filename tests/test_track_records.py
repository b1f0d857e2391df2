"""The track and the trigger's position in a recording: manifest, journal, recovery, verify.

A simulated device whose receiver is a small in-test :class:`GpsSource`
double: it posts hand-made fixes to the loop at chosen virtual times, as the
NMEA reader does, so no pty is needed. The recordings it makes are checked
end to end: what the manifest holds, that the journal holds the same (so a
power cut loses none of it), that ``verify`` accepts them and rejects a
tampered or malformed track, and that ``inspect`` shows them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.cli import main
from camera.config import deep_merge, load_config
from camera.evidence.canonical import sign_document
from camera.evidence.journal import Journal, read_journal_lines
from camera.evidence.keys import test_key
from camera.evidence.records import (
    FORMAT,
    JOURNAL,
    MANIFEST,
    Head,
    LostReason,
    Manifest,
    Position,
    Stop,
    StopReason,
    TrackLost,
    TrackPoint,
    Trigger,
)
from camera.evidence.verify import verify_recording
from camera.evidence.verify.track import POINT, POSITION, check_place
from camera.evidence.verify.trust import keys_beside
from camera.inspection import manifest_view, render
from camera.recovery import recover_recording
from hal.gps import Fix, FixCallback, GpsSource, GpsStats
from hal.storage.local import LocalStorage
from sim.device import SimDevice
from tests.test_console_status import bench
from tests.test_records import OLDEST_HEAD

BOOT = datetime(2026, 1, 1, 8, tzinfo=UTC)
BASE: dict[str, Any] = {
    "video": {"width": 640, "height": 360, "fps": 10, "bitrate": 600_000, "gop": 10},
    "buffer": {"pre_event": 3.0},
    "recording": {"segment_seconds": 2.0},
}
#: The receiver: a fix every second at s + 0.1, none (status V) for 12..14,
#: silent for 17..19 (epochs 17.1, 18.1, 19.1 never come).
NO_FIX = range(12, 15)
SILENT = range(17, 20)
DEVICE_ID = "BWC-0001"


def epoch(s: int) -> Fix:
    """The epoch of GPS second ``s`` (after BOOT), arriving 0.1 s later by a true clock."""
    utc = BOOT + timedelta(seconds=s)
    if s in NO_FIX:
        return Fix(time=s + 0.1, utc=utc, valid=False, quality=0, satellites=2)
    return Fix(
        time=s + 0.1,
        utc=utc,
        valid=True,
        lat=51.5007 + s * 1e-5,
        lon=-0.1246 - s * 1e-5,
        speed=1.4,
        course=45.0,
        quality=1,
        satellites=9,
        hdop=0.9,
    )


class ScriptedGps(GpsSource):
    """A receiver that posts given fixes at their device times, on the loop."""

    def __init__(self, device: SimDevice, fixes: Iterable[Fix]) -> None:
        self.clock = device.clock
        self.fixes = list(fixes)
        self.stats = GpsStats()
        self.closed = False

    def start(self, on_fix: FixCallback) -> None:
        for f in self.fixes:
            self.clock.call_at(f.time, lambda f=f: None if self.closed else on_fix(f))

    def close(self) -> None:
        self.closed = True


def device(root: Path, fixes: Iterable[Fix] | None, overrides: dict[str, Any] | None = None):
    """A booted simulated device; ``fixes`` None: no receiver at all (GPS off)."""
    config = load_config(None, deep_merge(BASE, overrides or {}))
    dev = SimDevice(config, root / "store")
    if fixes is not None:
        dev.hal.gps = ScriptedGps(dev, fixes)
    return dev.boot()


def only_recording(root: Path) -> Path:
    [rec] = [p for p in (root / "store").iterdir() if p.is_dir()]
    return rec


def manifest_of(rec: Path) -> dict[str, Any]:
    return json.loads((rec / MANIFEST).read_text())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Holster drawn at 10.0 (pre-event from 7.0), stopped by the end of the run at 25.0."""
    root = tmp_path_factory.mktemp("track")
    dev = device(root, (epoch(s) for s in range(1, 40) if s not in SILENT))
    dev.set_input(10.0, "holster", True)
    dev.run(until=25.0)
    dev.shutdown()
    return root


@pytest.fixture
def copy(recorded: Path, tmp_path: Path) -> Path:
    """A private copy of the recorded storage; returns its recording."""
    shutil.copytree(recorded / "store", tmp_path / "store")
    return only_recording(tmp_path)


def test_the_manifest_has_the_trigger_position_and_the_track(recorded: Path) -> None:
    m = manifest_of(only_recording(recorded))
    assert m["start_time"] == 7.0 and m["stop"]["time"] == 25.0
    assert m["trigger"]["position"] == {
        "time": 9.1,
        "age": 0.9,
        "utc": "2026-01-01T08:00:09.000Z",
        "lat": 51.5007 + 9e-5,
        "lon": -0.1246 - 9e-5,
        "speed": 1.4,
        "quality": 1,
        "satellites": 9,
    }
    track = m["track"]
    # The pre-event's points too (7.1, 8.1, 9.1), to the last before the stop.
    assert [p["time"] for p in track] == [
        *(s + 0.1 for s in range(7, 17)),
        18.0,
        19.0,
        20.0,
        20.1,
        *(s + 0.1 for s in range(21, 25)),
    ]
    by_time = {p["time"]: p for p in track}
    assert by_time[7.1] == {
        "time": 7.1,
        "utc": "2026-01-01T08:00:07.000Z",
        "lat": 51.5007 + 7e-5,
        "lon": -0.1246 - 7e-5,
        "speed": 1.4,
        "course": 45.0,
        "quality": 1,
        "satellites": 9,
        "hdop": 0.9,
        "offset": -0.1,
    }
    for s in NO_FIX:
        assert by_time[s + 0.1] == {
            "time": s + 0.1,
            "utc": f"2026-01-01T08:00:{s}.000Z",
            "lost": "no_fix",
        }
    for t in (18.0, 19.0, 20.0):
        assert by_time[t] == {"time": t, "utc": None, "lost": "no_data"}
    placed = [p for p in track if "lost" not in p]
    assert all(set(p) == set(POINT) for p in placed)
    assert all(set(p) == {"time", "utc", "lost"} for p in track if "lost" in p)


def test_the_journal_holds_every_point_as_it_came(recorded: Path) -> None:
    rec = only_recording(recorded)
    journal = read_journal_lines(rec / JOURNAL)
    assert journal.skipped == []
    [head] = journal.of_type(Head)
    m = manifest_of(rec)
    assert head.trigger.to_json() == m["trigger"]
    assert [p.to_json() for p in journal.track()] == m["track"]
    kinds = [r.kind for r in journal.records]
    # The pre-event's points are journaled right after the head.
    assert kinds[1:4] == ["track", "track", "track"]


def test_the_recording_verifies_with_its_signed_track(recorded: Path) -> None:
    rec = only_recording(recorded)
    report = verify_recording(rec, keys_beside(rec.parent))
    assert report.ok, report.problems


def test_recovery_after_a_power_cut_rebuilds_position_and_track(tmp_path: Path) -> None:
    dev = device(tmp_path, (epoch(s) for s in range(1, 40) if s not in SILENT))
    dev.set_input(10.0, "holster", True)
    dev.run(until=21.35)  # power cut: no shutdown, no manifest
    dev.hal.storage.unlock()
    rec = only_recording(tmp_path)
    assert not (rec / MANIFEST).exists()
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert m["stop"]["reason"] == "power_loss"
    assert m["trigger"]["position"]["time"] == 9.1
    times = [p["time"] for p in m["track"]]
    # Every point the journal holds up to the last synced frame; none after it.
    assert times == [*(s + 0.1 for s in range(7, 17)), 18.0, 19.0, 20.0, 20.1][: len(times)]
    assert times[-1] <= m["stop"]["time"] and len(times) >= 13
    journaled = [p.time for p in read_journal_lines(rec / JOURNAL).track()]
    assert journaled[: len(times)] == times
    assert verify_recording(rec).ok


def test_gps_off_is_an_empty_track_and_no_position(tmp_path: Path) -> None:
    dev = device(tmp_path, None)
    dev.set_input(2.0, "holster", True)
    dev.run(until=5.0)
    [m] = dev.shutdown()
    assert m["trigger"]["position"] is None and m["track"] == []
    assert dev.firmware.positions.enabled is False
    assert verify_recording(only_recording(tmp_path)).ok


def test_gps_enabled_but_not_opened_is_no_data_every_second(tmp_path: Path) -> None:
    """``[gps] enabled`` with a port that does not open: never fatal, and the track says so."""
    gps = {"enabled": True, "port": str(tmp_path / "no-such-port")}
    config = load_config(None, deep_merge(BASE, {"gps": gps}))
    dev = SimDevice(config, tmp_path / "store")
    assert dev.hal.gps is None and dev.hal.gps_problem
    dev.boot()
    dev.set_input(4.0, "holster", True)
    dev.run(until=8.5)
    [m] = dev.shutdown()
    assert m["trigger"]["position"] is None
    assert [(p["time"], p["lost"]) for p in m["track"]] == [
        (float(s), "no_data") for s in range(2, 9)
    ]
    errors = [e for e in dev.firmware.events if e["kind"] == "error" and e["what"] == "gps"]
    assert errors and errors[0]["detail"] == dev.hal.gps_problem
    assert dev.firmware.positions.fix_state() == "none"


def test_a_cold_receiver_gives_no_position_until_its_first_fix(tmp_path: Path) -> None:
    cold = [Fix(time=s + 0.1, utc=None, valid=False, quality=0) for s in range(0, 6)]
    dev = device(tmp_path, [*cold, epoch(6), epoch(7)])
    dev.set_input(4.0, "holster", True)
    dev.run(until=8.0)
    [m] = dev.shutdown()
    assert m["trigger"]["position"] is None  # no valid fix ever, at the trigger
    track = m["track"]
    assert [p.get("lost") for p in track] == ["no_fix"] * 5 + [None, None]
    assert all(p["utc"] is None for p in track[:5])


def test_nothing_outside_the_recording(tmp_path: Path) -> None:
    """Two recordings: each holds only its own points, from its first frame to its stop."""
    dev = device(tmp_path, (epoch(s) for s in range(0, 40)))
    dev.set_input(5.0, "holster", True)
    dev.set_input(9.0, "holster", False)
    dev.pulse(10.0, "button", 3.5)  # a hold, recognised (the stop) at 13.0
    dev.set_input(20.0, "holster", True)
    dev.run(until=24.0)
    first, second = dev.shutdown()
    assert first["stop"]["time"] == 13.0
    assert [p["time"] for p in first["track"]] == [s + 0.1 for s in range(2, 13)]
    assert [p["time"] for p in second["track"]] == [s + 0.1 for s in range(17, 24)]


# -- verify: tampered and malformed tracks ------------------------------------------------
def edit(rec: Path, change: Any, resign: bool) -> None:
    m = manifest_of(rec)
    change(m)
    if resign:  # signed by the device's own key: only the rules can catch it
        m = sign_document(test_key(DEVICE_ID, 0), m)
    (rec / MANIFEST).write_text(json.dumps(m, indent=2) + "\n")


def problems(rec: Path) -> list[str]:
    return verify_recording(rec, keys_beside(rec.parent)).problems


def test_a_moved_track_point_breaks_the_signature(copy: Path) -> None:
    def move(m: dict[str, Any]) -> None:
        m["track"][3]["lat"] += 0.001  # about 111 m north

    edit(copy, move, resign=False)
    assert any("signature does not match" in p for p in problems(copy))


def test_a_removed_lost_point_breaks_the_signature(copy: Path) -> None:
    def hide(m: dict[str, Any]) -> None:
        m["track"] = [p for p in m["track"] if "lost" not in p]

    edit(copy, hide, resign=False)
    assert any("signature does not match" in p for p in problems(copy))


def _set(path: str, value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        *keys, last = path.split(".")
        obj: Any = m
        for k in keys:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        if isinstance(obj, list):
            obj[int(last)] = value
        else:
            obj[last] = value

    return change


def _lost_with(m: dict[str, Any]) -> None:
    point = next(p for p in m["track"] if "lost" in p)
    point["lat"], point["lon"] = 51.5, -0.12


def _swap(m: dict[str, Any]) -> None:
    m["track"][2], m["track"][3] = m["track"][3], m["track"][2]


def _after_stop(m: dict[str, Any]) -> None:
    m["track"].append({**m["track"][-1], "time": m["stop"]["time"] + 1})


def _missing_field(m: dict[str, Any]) -> None:
    del m["track"][0]["satellites"]


MALFORMED = [
    ("track.0.lat", 91.0, "track[0].lat is 91.0, expected a latitude (-90 to 90 degrees)"),
    ("track.0.lon", -180.5, "track[0].lon is -180.5, expected a longitude"),
    ("track", {}, "track is an object, expected a list"),
    ("track.1", "here", 'track[1] is "here", expected an object'),
    ("track.0.speed", -1, "track[0].speed is -1, expected metres per second (>= 0) or null"),
    ("trigger.position.age", -0.5, "trigger.position.age is -0.5, expected device seconds"),
    ("trigger.position.age", 3.0, "trigger.position.age is 3.0, trigger.time - trigger"),
    ("trigger.position.time", 10.5, "trigger.position.time is 10.5, after the trigger"),
    ("trigger.position.lat", None, "trigger.position.lat is null, expected a latitude"),
]


@pytest.mark.parametrize(("path", "value", "finding"), MALFORMED)
def test_a_malformed_track_is_named_by_the_rules(
    copy: Path, path: str, value: Any, finding: str
) -> None:
    edit(copy, _set(path, value), resign=True)
    found = problems(copy)
    assert any(finding in p for p in found), found
    assert not any("signature" in p for p in found)


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (_lost_with, "is lost but carries lat, lon: a lost point has no position"),
        (_swap, "comes before track[2]"),
        (_after_stop, "lies outside the recording (7.0 to 25.0)"),
        (_missing_field, "track[0]: missing satellites"),
    ],
)
def test_a_track_that_breaks_the_promises_is_named(copy: Path, change: Any, finding: str) -> None:
    edit(copy, change, resign=True)
    found = problems(copy)
    assert any(finding in p for p in found), found


def test_a_manifest_from_before_gps_has_neither_and_verifies(copy: Path) -> None:
    def strip(m: dict[str, Any]) -> None:
        del m["track"]
        del m["trigger"]["position"]

    edit(copy, strip, resign=True)
    assert problems(copy) == []


# -- records and journal -------------------------------------------------------------------
def test_a_head_from_before_gps_recovers_into_a_manifest_without_them() -> None:
    old = Head.from_json(OLDEST_HEAD)
    stop = Stop(reason=StopReason.POWER_LOSS, time=2.0)
    m = Manifest.build(old, [], stop, [], []).to_json()
    assert "track" not in m and "position" not in m["trigger"]
    with_gps = Manifest.build(old, [], stop, [], [], track=[]).to_json()
    assert with_gps["track"] == []


def test_build_keeps_only_the_points_within_the_recording() -> None:
    trigger = Trigger(source="holster", time=5.0, wall_time="w", position=None)
    head = Head(
        format=FORMAT,
        device_id="D",
        recording_id="D_1",
        codec="h264",
        width=640,
        height=360,
        fps=30,
        trigger=trigger,
        pre_event_requested=2.0,
    )
    track = [TrackLost(time=t, utc=None, lost=LostReason.NO_DATA) for t in (4.0, 5.0, 6.0, 7.0)]
    m = Manifest.build(head, [], Stop(reason=StopReason.CONSOLE, time=6.0), [], [], track=track)
    # No segments: the recording is its trigger to its stop.
    assert [p.time for p in m.track] == [5.0, 6.0]  # type: ignore[union-attr]


utcs = st.none() | st.just("2026-01-01T08:00:01.000Z")
maybe = st.none() | st.floats(0, 1e3, allow_nan=False)
points = st.builds(
    TrackPoint,
    time=st.floats(0, 1e6, allow_nan=False),
    utc=utcs,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed=maybe,
    course=maybe,
    quality=st.none() | st.integers(0, 8),
    satellites=st.none() | st.integers(0, 40),
    hdop=maybe,
    offset=st.none() | st.floats(-1e6, 1e6),
)
lost = st.builds(
    TrackLost, time=st.floats(0, 1e6, allow_nan=False), utc=utcs, lost=st.sampled_from(LostReason)
)
positions = st.builds(
    Position,
    time=st.floats(0, 1e6, allow_nan=False),
    age=st.floats(0, 1e6, allow_nan=False),
    utc=utcs,
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed=maybe,
    quality=st.none() | st.integers(0, 8),
    satellites=st.none() | st.integers(0, 40),
)
heads = st.builds(
    Head,
    format=st.just(FORMAT),
    device_id=st.just("D"),
    recording_id=st.just("D_1"),
    codec=st.just("h264"),
    width=st.just(640),
    height=st.just(360),
    fps=st.just(30),
    trigger=st.builds(
        Trigger,
        source=st.just("holster"),
        time=st.floats(0, 1e6, allow_nan=False),
        wall_time=st.just("w"),
        position=st.none() | positions,
    ),
    pre_event_requested=st.just(2.0),
)


@given(record=points | lost | heads)
def test_a_track_record_reads_back_from_the_journal_as_itself(
    tmp_path_factory: pytest.TempPathFactory, record: Any
) -> None:
    root = tmp_path_factory.mktemp("j")
    storage = LocalStorage(root)
    storage.makedirs("rec")
    journal = Journal(storage, "rec")
    journal.append(record)
    journal.close()
    contents = read_journal_lines(root / "rec" / JOURNAL)
    assert contents.skipped == []
    (back,) = contents.of_type(type(record))
    assert back == record
    if not isinstance(record, Head):
        assert contents.track() == [record]


def test_a_journal_point_without_its_fields_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    lines = [
        {"track": {"time": 1.0, "utc": None, "lat": 51.5}},  # no lon, no rest
        {"track_lost": {"time": 2.0, "utc": None, "lost": "no_idea"}},
        {"track_lost": {"time": 3.0, "utc": None, "lost": "no_fix"}},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    contents = read_journal_lines(path)
    assert contents.skipped == [1, 2]
    assert contents.track() == [TrackLost(time=3.0, utc=None, lost=LostReason.NO_FIX)]


def test_the_rules_name_every_field_of_the_records() -> None:
    """A field added to a record is a field verify checks."""
    assert set(POINT) == set(TrackPoint.__dataclass_fields__)
    assert set(POSITION) == set(Position.__dataclass_fields__)


# -- inspect ----------------------------------------------------------------------------
def test_inspect_shows_the_position_and_the_track(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = only_recording(recorded)
    assert main(["inspect", str(rec)]) == 0
    out = capsys.readouterr().out
    assert (
        "position   51.500790, -0.124690: fix of 0.9 s before the trigger "
        "(2026-01-01T08:00:09.000Z), 9 satellites"
    ) in out
    assert (
        "track      18 points, device 7.100-24.100 s: 12 with a fix, "
        "6 lost (no_fix 3, no_data 3; 5 s without a position)" in out
    )
    assert main(["inspect", "--json", str(rec)]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["position"]["age"] == 0.9
    assert item["track"] == {
        "points": 18,
        "fixes": 12,
        "lost": 6,
        "lost_by_reason": {"no_fix": 3, "no_data": 3},
        "lost_seconds": 5,
        "first_time": 7.1,
        "last_time": 24.1,
        "offset": -0.1,
    }


def test_inspect_of_an_interrupted_recording_shows_the_track_so_far(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = device(tmp_path, (epoch(s) for s in range(1, 40) if s not in SILENT))
    dev.set_input(10.0, "holster", True)
    dev.run(until=15.5)
    dev.hal.storage.unlock()
    rec = only_recording(tmp_path)
    assert main(["inspect", "--json", str(rec)]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["status"] == "interrupted"
    assert item["position"]["time"] == 9.1
    assert item["track"]["points"] == 9 and item["track"]["lost_by_reason"] == {"no_fix": 3}


def test_a_hostile_track_is_one_line_in_inspect(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(copy, _set("track.0.lat", "north"), resign=False)
    assert main(["inspect", str(copy)]) == 2
    err = capsys.readouterr().err
    assert 'track[0].lat is "north", expected a latitude' in err
    assert len(err.strip().splitlines()) == 1


# -- console ----------------------------------------------------------------------------
def test_status_says_fix_satellites_age_and_clock_source(tmp_path: Path) -> None:
    dev = device(tmp_path, (epoch(s) for s in range(1, 40) if s not in SILENT))
    try:
        with bench(dev) as b:
            dev.run(until=5.5)
            status = b.status()
            assert (status["gps_fix"], status["gps_satellites"]) == ("valid", "9")
            assert status["gps_age"] == "0.400"  # the fix of 5.1
            assert status["clock_source"] == "gps"  # a valid fix disciplines the wall clock
            dev.run(until=13.5)  # the receiver says no fix since 12.1
            status = b.status()
            assert (status["gps_fix"], status["gps_satellites"]) == ("none", "2")
            assert status["gps_age"] == "2.400"  # since the last valid fix, at 11.1
    finally:
        dev.shutdown()
    off = device(tmp_path / "off", None)
    try:
        with bench(off) as b:
            status = b.status()
            gps = [status[k] for k in ("gps_fix", "gps_satellites", "gps_age", "clock_source")]
            assert gps == ["off", "-", "-", "sim"]
    finally:
        off.shutdown()


#: Keys a hostile entry may use: the real ones, so damage gets past the first check.
KEYS = [*POINT, "lost", "age"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=8,
)


@given(
    where=st.sampled_from(["track", "track.0", "track.0.lat", "track.1", "trigger.position"]),
    value=JSON_VALUES,
)
def test_any_damage_to_the_track_is_named_never_raised(
    recorded: Path, where: str, value: Any
) -> None:
    """A hostile track or position: verify's rules name it, inspect shows it or says one line."""
    rec = only_recording(recorded)
    m = manifest_of(rec)
    _set(where, value)(m)
    found: list[str] = []
    check_place(m, found)
    assert all(p.startswith(MANIFEST) and "\n" not in p for p in found)
    problems = manifest_view.structure_problems(m)
    if problems:
        assert all(p.startswith(MANIFEST) and "\n" not in p for p in problems)
        return
    insp = manifest_view.from_manifest(rec, m, keys_beside(rec.parent))
    json.dumps(insp.to_json())
    assert render(insp).startswith("recording  ")


class _CountingStorage(LocalStorage):
    """Local storage whose appended files count their fsyncs."""

    syncs = 0

    def open_append(self, name: str) -> Any:
        inner = super().open_append(name)
        outer = self

        class Counted:
            def write(self, data: bytes) -> None:
                inner.write(data)

            def sync(self) -> None:
                outer.syncs += 1
                inner.sync()

            def close(self) -> None:
                inner.close()

        return Counted()


def test_track_points_wait_for_the_next_sync_point_instead_of_an_fsync_each(
    tmp_path: Path,
) -> None:
    """A pre-event flush journals dozens of points: they cost no fsync of their own."""
    storage = _CountingStorage(tmp_path)
    storage.makedirs("rec")
    journal = Journal(storage, "rec")
    points = [TrackLost(time=float(i), utc=None, lost=LostReason.NO_DATA) for i in range(30)]
    for point in points:
        journal.append(point, durable=False)
    assert storage.syncs == 0
    journal.append(TrackLost(time=30.0, utc=None, lost=LostReason.NO_FIX))  # a durable record
    assert storage.syncs == 1
    journal.close()
    assert read_journal_lines(tmp_path / "rec" / JOURNAL).track()[:30] == points
