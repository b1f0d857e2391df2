"""End to end on the virtual clock: pins in, recordings out, decoded frame by frame."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from camera.evidence.verify import decode_segment, verify_recording

FPS = 30


def recording_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "manifest.json").exists())


def decoded_codes(rec: Path) -> list[int | None]:
    m = json.loads((rec / "manifest.json").read_text())
    codes: list[int | None] = []
    for seg in m["segments"]:
        codes += [f.code for f in decode_segment(rec / seg["file"])]
    return codes


def bounce(dev, t: float, name: str, active: bool, edges: int = 4, step: float = 0.002) -> None:
    """Contact bounce: alternate levels every ``step`` s, ending at ``active``."""
    for i in range(edges):
        dev.set_input(t + i * step, name, active if i % 2 == 0 else not active)
    dev.set_input(t + edges * step, name, active)


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_holster_draw_records_pre_event_without_gaps(device_factory, codec: str) -> None:
    dev = device_factory({"video": {"codec": codec}})
    bounce(dev, 45.0, "holster", True)
    dev.pulse(55.0, "button", 3.5)  # hold: stop recognised at 58.0
    dev.run(until=60.0)
    recs = dev.shutdown()

    assert len(recs) == 1
    m = recs[0]
    assert m["trigger"]["source"] == "holster"
    assert m["trigger"]["time"] == 45.0  # the first edge of the bounce burst
    assert m["trigger"]["wall_time"] == "2026-01-01T08:00:45.000Z"
    assert m["stop"] == {"reason": "button_hold", "time": 58.0}
    # Latest keyframe at or before 45.0 - 30 s: frame 450 (GOP 30); MJPEG: all keyframes.
    assert m["first_frame"] == 450
    assert m["start_time"] == 15.0
    assert m["pre_event_seconds"] == 30.0
    # Every frame to the stop: the last one captured at or before 58.0.
    assert 58.0 - 1 / FPS < m["end_time"] <= 58.0
    assert m["frames"] == m["last_frame"] - m["first_frame"] + 1
    assert m["dropped_frames"] == 0
    assert m["codec"] == codec

    rec = recording_dirs(dev.hal.storage.root)[0]
    assert rec.name == m["recording_id"] == "BWC-0001_20260101T080015Z_0001"
    codes = decoded_codes(rec)
    assert codes == list(range(m["first_frame"], m["last_frame"] + 1))

    on_disk = json.loads((rec / "manifest.json").read_text())
    assert on_disk == m
    for seg in m["segments"]:
        data = (rec / seg["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == seg["sha256"]
        assert len(data) == seg["bytes"]
        frames = decode_segment(rec / seg["file"])
        assert frames[0].keyframe
        assert len(frames) == seg["frames"]
        spacing = {round((b.seconds - a.seconds) * FPS, 3) for a, b in itertools.pairwise(frames)}
        assert spacing == {1.0} or (codec == "mjpeg" and max(spacing) - min(spacing) < 0.05)
    # Segments of 10 s, each starting on a keyframe, continuous across files.
    assert [s["first_frame"] for s in m["segments"]][:3] == [450, 750, 1050]
    assert verify_recording(rec).ok, verify_recording(rec).problems


def test_trigger_between_keyframes_starts_at_previous_keyframe(device_factory) -> None:
    dev = device_factory()
    bounce(dev, 47.55, "holster", True, edges=6)
    dev.run(until=52.0)
    [m] = dev.shutdown()
    assert m["trigger"]["time"] == 47.55
    assert m["first_frame"] == 510  # keyframe at 17.0 <= 17.55 < 18.0
    assert m["stop"]["reason"] == "end_of_run"
    rec = recording_dirs(dev.hal.storage.root)[0]
    assert decoded_codes(rec) == list(range(510, m["last_frame"] + 1))


def test_trigger_before_buffer_full_starts_at_frame_zero(device_factory) -> None:
    dev = device_factory()
    dev.set_input(10.0, "holster", True)
    dev.run(until=14.0)
    [m] = dev.shutdown()
    assert m["first_frame"] == 0
    assert m["start_time"] == 0.0
    assert m["pre_event_seconds"] == 10.0
    rec = recording_dirs(dev.hal.storage.root)[0]
    assert decoded_codes(rec) == list(range(0, m["last_frame"] + 1))


def test_storage_stall_during_flush_drops_nothing(device_factory) -> None:
    dev = device_factory()
    dev.storage.stall(45.0, 49.0)  # the card blocks for 4 s as the pre-event flush begins
    dev.set_input(45.0, "holster", True)
    dev.run(until=60.0)
    [m] = dev.shutdown()
    assert dev.firmware.capture.frames_captured == 60 * FPS + 1  # capture never waited
    assert m["dropped_frames"] == 0
    assert m["first_frame"] == 450
    rec = recording_dirs(dev.hal.storage.root)[0]
    assert decoded_codes(rec) == list(range(450, m["last_frame"] + 1))


def test_stall_beyond_queue_drops_to_keyframe_and_declares_gap(device_factory) -> None:
    dev = device_factory({"buffer": {"queue_mb": 0.3}})
    dev.storage.stall(40.0, 48.0)
    dev.set_input(35.0, "holster", True)
    dev.run(until=55.0)
    [m] = dev.shutdown()
    assert m["dropped_frames"] > 0
    assert sum(g["frames"] for g in m["gaps"]) == m["dropped_frames"]
    rec = recording_dirs(dev.hal.storage.root)[0]
    codes = decoded_codes(rec)
    assert len(codes) == m["frames"] == len(set(codes))
    resumed = [g["first_frame"] + g["frames"] for g in m["gaps"]]
    assert all(n % 30 == 0 for n in resumed)  # resumes on a keyframe
    report = verify_recording(rec)
    assert report.ok, report.problems


def test_indicators_follow_state(device_factory) -> None:
    dev = device_factory()
    dev.set_input(40.0, "holster", True)
    dev.pulse(50.0, "button", 3.5)
    dev.run(until=56.0)
    dev.shutdown()
    changes = list(dev.hal.gpio.changes)
    rec_led = [(t, on) for t, name, on in changes if name == "record_led"]
    assert rec_led == [(pytest.approx(40.02), True), (53.0, False)]
    haptic_on = [t for t, name, on in changes if name == "haptic" and on]
    assert haptic_on == pytest.approx([40.02, 53.0, 53.3])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_inputs_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    from tests.conftest import make_device

    trees = []
    for run in ("a", "b"):
        dev = make_device(tmp_path / run, {"buffer": {"pre_event": 5.0}}, seed=7)
        bounce(dev, 8.0, "holster", True)
        dev.pulse(12.0, "button", 3.2)
        dev.run(until=16.0)
        dev.shutdown()
        trees.append(tree_bytes(dev.hal.storage.root))
    assert trees[0].keys() == trees[1].keys()
    assert any(k.endswith(".ts") for k in trees[0])
    assert trees[0] == trees[1]


@pytest.mark.realtime
def test_real_clock_and_writer_thread_by_name(device_factory) -> None:
    """The Pi's clock and writer backends, chosen by name, on the same firmware."""
    dev = device_factory(
        {"hal": {"clock": "monotonic", "worker": "thread"}, "buffer": {"pre_event": 1.0}}
    )
    assert type(dev.clock).__name__ == "MonotonicClock"
    dev.clock.call_at(1.5, lambda: dev.gpio.drive("holster", True))
    dev.run(until=2.5)
    [m] = dev.shutdown()
    assert m["trigger"]["source"] == "holster"
    rec = recording_dirs(dev.hal.storage.root)[0]
    codes = decoded_codes(rec)
    assert codes == list(range(m["first_frame"], m["last_frame"] + 1))
    assert m["first_frame"] <= round((m["trigger"]["time"] - 1.0) * FPS)
    assert verify_recording(rec).ok


def test_trigger_and_stop_before_any_frame_leave_a_valid_empty_recording(device_factory) -> None:
    dev = device_factory()
    dev.firmware.trigger("console", 0.0)  # booted, but no frame captured yet
    dev.firmware.stop_recording("console", 0.0)
    dev.run(until=1.0)
    [m] = dev.shutdown()
    assert m["frames"] == 0 and m["segments"] == [] and m["stop"]["reason"] == "console"
    report = verify_recording(dev.hal.storage.root / m["recording_id"])
    assert report.ok, report.problems


def test_verify_accepts_a_recording_that_starts_after_its_trigger(device_factory) -> None:
    """A trigger before the first frame after boot: pre-event is negative, and true."""
    dev = device_factory({"buffer": {"pre_event": 2.0}})
    dev.set_input(5.0, "holster", True)
    dev.run(until=8.0)
    [m] = dev.shutdown()
    rec = dev.hal.storage.root / m["recording_id"]
    manifest = json.loads((rec / "manifest.json").read_text())
    manifest["trigger"]["time"] = manifest["start_time"] - 0.004
    manifest["pre_event_seconds"] = -0.004
    (rec / "manifest.json").write_text(json.dumps(manifest))
    report = verify_recording(rec)
    assert report.ok, report.problems
