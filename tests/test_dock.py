"""The chain and the numbering across offloads, and docking (issue 16).

An offload deletes recordings from the card; the receipts it keeps must then
stand in for them, or the next recording restarts at ``_0001`` (an id the
server already holds: 409) with ``previous: null`` (a broken chain). These
tests record, offload, and record again, in one run (a dock while recording)
and across two runs (two shifts against the same server).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from camera.cli import main
from camera.evidence.custody import Custody, last_counter
from camera.evidence.keys import test_key
from hal.storage.local import LocalStorage
from sim.runner import run_scenario
from sim.scenario import ScenarioError, parse_scenario

DEVICE = "BWC-0001"
SHA_A = "a" * 64
SHA_B = "b" * 64


def rec_id(counter: int) -> str:
    return f"{DEVICE}_20260101T0800{counter:02d}Z_{counter:04d}"


def keep_receipt(root: Path, name: str, manifest_sha256: str, **more: Any) -> None:
    """A receipt file for recording ``name`` (its fields as written, ``more`` over them)."""
    folder = root / "receipts"
    folder.mkdir(parents=True, exist_ok=True)
    receipt = {"recording": name, "manifest_sha256": manifest_sha256, **more}
    (folder / f"{name}.json").write_text(json.dumps(receipt))


def custody() -> Custody:
    return Custody(test_key(DEVICE, 0), DEVICE, "test", "0" * 64)


# -- custody and the recorder's counter read the kept receipts ------------------------------
def test_previous_and_the_counter_come_from_a_receipt_when_the_recording_is_gone(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path)
    assert last_counter(storage, DEVICE) == 0 and custody().previous(storage, rec_id(1)) is None
    keep_receipt(tmp_path, rec_id(1), SHA_A)
    keep_receipt(tmp_path, rec_id(2), SHA_B)
    assert last_counter(storage, DEVICE) == 2
    previous = custody().previous(storage, rec_id(3))
    assert previous is not None
    assert (previous.recording_id, previous.manifest_sha256) == (rec_id(2), SHA_B)
    # Only what comes before: the recording being sealed never names itself or a later one.
    previous = custody().previous(storage, rec_id(2))
    assert previous is not None and previous.recording_id == rec_id(1)


def test_a_manifest_on_the_card_wins_and_odd_receipts_are_ignored(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    keep_receipt(tmp_path, rec_id(1), SHA_A)
    (tmp_path / rec_id(1)).mkdir()  # offloaded and kept (--keep): the card's bytes count
    (tmp_path / rec_id(1) / "manifest.json").write_bytes(b"{}")
    on_card = hashlib.sha256(b"{}").hexdigest()
    keep_receipt(tmp_path, rec_id(2), "not a sha256")
    keep_receipt(tmp_path, rec_id(3), SHA_B, recording=rec_id(9))  # names another recording
    (tmp_path / "receipts" / f".{rec_id(4)}.json.tmp").write_text("{}")  # being written
    keep_receipt(tmp_path, "OTHER-9_20260101T080000Z_0007", SHA_B)  # another device's
    previous = custody().previous(storage, rec_id(5))
    assert previous is not None
    assert (previous.recording_id, previous.manifest_sha256) == (rec_id(1), on_card)
    assert last_counter(storage, DEVICE) == 3  # an id is never reused, whatever its receipt says


# -- two shifts against one server ----------------------------------------------------------
def shift(server: Path) -> dict[str, Any]:
    """One recording (a draw, a hold to stop), docked at the end of the run."""
    return {
        "scenario": {"name": "shift", "duration": 6.0, "seed": 5},
        "config": {
            "video": {"width": 640, "height": 360, "fps": 15, "bitrate": 600000, "gop": 15},
            "buffer": {"pre_event": 1.0},
            "recording": {"segment_seconds": 1.0},
            "audio": {"enabled": False},
        },
        "event": [
            {"at": 1.0, "input": "holster", "action": "activate"},
            {"at": 1.5, "input": "button", "action": "hold", "duration": 3.5},
        ],
        "dock": {"data": str(server)},
        "expect": {"recordings": 1, "offloaded": 1, "kept": 0, "deleted": 1, "resent": 0},
    }


def receipt(storage: Path, recording: str) -> dict[str, Any]:
    return json.loads((storage / "receipts" / f"{recording}.json").read_bytes())


def test_record_offload_record_again_continues_the_numbering_and_the_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage, server = tmp_path / "camera", tmp_path / "server"
    # The first shift as `make run-dock` runs one: a scenario without a [dock], and --dock.
    undocked = {k: v for k, v in shift(server).items() if k not in ("dock", "expect")}
    path = tmp_path / "shift.toml"
    path.write_text(tomli_w.dumps(undocked))
    argv = ["run", "--scenario", str(path), "--out", str(storage), "--dock", str(server)]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["dock"]["offloaded"], summary["dock"]["deleted"]) == (1, 1)
    [one] = (Path(r["path"]).name for r in summary["recordings"])
    assert one.endswith("_0001") and not (storage / one).exists()
    # The next shift: a new boot, the card holding only the receipt of the first.
    second = run_scenario(parse_scenario(shift(server), "shift"), storage)
    assert second.ok, second.summary()  # the server took it: no 409 for a reused id
    [two] = second.recordings
    assert two["recording_id"].endswith("_0002")
    assert two["previous"] == {
        "recording_id": one,
        "manifest_sha256": receipt(storage, one)["manifest_sha256"],
    }
    assert receipt(storage, two["recording_id"])["chain"] == "ok"
    assert main(["verify", str(storage), "--key", str(storage / f"{DEVICE}.pub.pem")]) == 0
    out = capsys.readouterr().out
    assert "chain intact" in out and "receipts intact" in out, out


def test_dock_is_for_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--board", "pi", "--dock", "somewhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bodycam run: --dock needs --board sim") and err.count("\n") == 1


def test_the_dock_keys_are_checked(tmp_path: Path) -> None:
    data = shift(tmp_path)
    del data["dock"]
    with pytest.raises(ScenarioError, match=r"^s: expect\.offloaded: expected no offload"):
        parse_scenario(data, "s")
    data["dock"] = {"at": 6.5}
    with pytest.raises(ScenarioError, match=r"^s: dock\.at: expected a time within duration 6"):
        parse_scenario(data, "s")
    data["dock"] = {"drop_after_byte": 5}
    with pytest.raises(ScenarioError, match=r"dock\.drop_after_byte: unknown key"):
        parse_scenario(data, "s")
