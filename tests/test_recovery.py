"""Power loss: journal, recovery, and real SIGKILLs of a running firmware."""

from __future__ import annotations

import json
from pathlib import Path

from camera.cli import main
from camera.journal import JOURNAL
from camera.recovery import interrupted, recover_storage
from camera.verify import verify_recording
from hal.storage.local import LocalStorage
from sim.killtest import on_disk_codes, run_trials
from tests.conftest import make_device

DATA = Path(__file__).resolve().parent / "data"


def crash_mid_recording(tmp_path: Path, until: float = 19.3):
    """Run to ``until`` and abandon the device: no shutdown, as when power is cut."""
    dev = make_device(tmp_path, {"buffer": {"pre_event": 5.0}})
    dev.set_input(8.0, "holster", True)
    dev.run(until=until)
    root = Path(dev.hal.storage.root)
    [name] = [p.name for p in root.iterdir()]
    return dev, root, name


def test_recovery_rebuilds_manifest_and_cuts_to_last_sync(tmp_path: Path) -> None:
    _, root, name = crash_mid_recording(tmp_path)
    rec = root / name
    assert not (rec / "manifest.json").exists() and (rec / JOURNAL).exists()
    on_disk = on_disk_codes(rec)
    storage = LocalStorage(root)
    assert interrupted(storage) == [name]
    [m] = recover_storage(storage)
    assert m["stop"]["reason"] == "power_loss"
    assert m["first_frame"] == 90  # keyframe at 3.0 = 8.0 - 5.0
    assert m["trigger"] == {
        "source": "holster",
        "time": 8.0,
        "wall_time": "2026-01-01T08:00:08.000Z",
    }
    # At most one sync interval (0.5 s) of what reached the file is cut.
    assert 0 <= max(on_disk) - m["last_frame"] <= 16
    assert m["end_time"] > 19.3 - 0.6
    report = verify_recording(rec)
    assert report.ok, report.problems
    assert report.codes == list(range(90, m["last_frame"] + 1))
    assert interrupted(storage) == []  # idempotent: nothing left to do
    assert recover_storage(storage) == []


def test_torn_journal_line_is_ignored(tmp_path: Path) -> None:
    _, root, name = crash_mid_recording(tmp_path, until=16.0)
    with (root / name / JOURNAL).open("ab") as f:
        f.write(b'{"sync": {"file": "segment-00')  # power cut mid-line
    [m] = recover_storage(LocalStorage(root))
    assert verify_recording(root / name).ok
    assert m["frames"] > 0


def test_next_boot_recovers_and_cli_recover_reports(tmp_path: Path, capsys) -> None:
    _, root, name = crash_mid_recording(tmp_path, until=15.0)
    assert main(["recover", str(root)]) == 0
    assert "FIXED" in capsys.readouterr().out
    manifest = json.loads((root / name / "manifest.json").read_text())
    assert manifest["stop"]["reason"] == "power_loss"
    # A second crash, then a boot on the same storage: recovered before buffering.
    (root / name / "manifest.json").unlink()
    dev = make_device(tmp_path)
    assert any(e["kind"] == "recovered" for e in dev.firmware.events)
    dev.shutdown()
    assert verify_recording(root / name).ok


def test_sigkill_at_random_moments_loses_nothing_durable(tmp_path: Path) -> None:
    report = run_trials(DATA / "kill.toml", tmp_path, kills=6, seed=1)
    assert report.failures == []
    assert report.kill_points == 6
    assert report.max_lost_frames <= 16  # one 0.5 s sync interval at 30 fps, plus one
