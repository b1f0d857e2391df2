"""The command line on paths the other CLI tests leave out.

The default patrol scenario (what ``make run`` plays; run at 640x360 here),
``--config`` errors, ``--realtime``, and the recording-id counter across boots
of one storage directory, with and without an interrupted recording between them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from camera.cli import default_scenario, main
from camera.evidence.verify import verify_recording
from sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
PATROL = REPO / "scenarios" / "patrol.toml"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_frame_exact(rec: Path) -> dict:
    """Verify one recording and read every frame's code: all of first..last, in order."""
    m = json.loads((rec / "manifest.json").read_text())
    report = verify_recording(rec)
    assert report.ok, (rec, report.problems)
    lost = {g["first_frame"] + i for g in m["gaps"] for i in range(g["frames"])}
    assert report.codes == [
        n for n in range(m["first_frame"], m["last_frame"] + 1) if n not in lost
    ]
    return m


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file; the audit log, which only ever grows, by its bytes so far.

    A later boot appends to ``audit.jsonl``: "untouched" means what was there
    is still its prefix, which :func:`same_as_before` checks.
    """
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "audit.jsonl"
    } | {"audit.jsonl@": (root / "audit.jsonl").read_bytes().hex()}


def same_as_before(before: dict[str, str], after: dict[str, str]) -> bool:
    """Every file of ``before`` unchanged; the audit log only appended to."""
    log = "audit.jsonl@"
    files = {k: after.get(k) for k in before if k != log} == {
        k: v for k, v in before.items() if k != log
    }
    return files and after[log].startswith(before[log]) and len(after[log]) > len(before[log])


# -- the default scenario -----------------------------------------------------------
def test_patrol_parses_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario(PATROL)
    assert scenario.name == "patrol" and scenario.duration == 240.0
    assert scenario.expect is not None and scenario.expect.recordings == 2
    code, out, err = run_cli(capsys, "scenario", "check", str(PATROL))
    assert code == 0, err
    assert out.strip() == f"{PATROL}: ok: 'patrol', 240 s, {len(scenario.events)} events, 0 faults"


def test_run_without_scenario_plays_the_patrol() -> None:
    assert default_scenario() == PATROL


def patrol_at_360p(path: Path) -> Path:
    """``scenarios/patrol.toml`` with its ``video`` line at 640x360: all else as shipped.

    The shipped patrol is 240 simulated seconds at 1280x720, about a minute of
    one core: too much of the suite's budget for one test. The timeline (bounce,
    chatter, the single press, the marker, both gestures) and ``[expect]`` are
    what it tests, and this copy keeps them byte for byte.
    """
    text = PATROL.read_text()
    video = (
        "video = { width = 640, height = 360, fps = 30, "
        + 'codec = "h264", bitrate = 1000000, gop = 30 }'
    )
    copy, n = re.subn(r"(?m)^video = \{[^}\n]*\}$", video, text)
    assert n == 1, "patrol.toml no longer has one inline video table: update this copy"
    changed = [(a, b) for a, b in zip(text.splitlines(), copy.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and "width = 1280, height = 720" in changed[0][0]
    path.write_text(copy)
    return path


def test_patrol_runs_and_every_frame_verifies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = patrol_at_360p(tmp_path / "patrol-360p.toml")
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "run", "--scenario", str(scenario), "--out", str(out_dir), "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["scenario"] == "patrol" and summary["device_seconds"] == 240.0
    assert [e["name"] for e in summary["expectations"] if not e["ok"]] == []
    assert summary["frames_captured"] == 240 * 30 + 1 and summary["dropped_frames"] == 0
    first, second = (assert_frame_exact(Path(r["path"])) for r in summary["recordings"])
    assert first["trigger"]["source"] == "holster" and first["trigger"]["time"] == 65.0
    assert [k["time"] for k in first["markers"]] == [110.0]
    assert first["stop"] == {"reason": "button_hold", "time": 133.0}
    assert second["trigger"]["source"] == "button" and second["trigger"]["time"] == 175.0
    assert second["stop"] == {"reason": "button_hold", "time": 223.0}
    assert first["first_frame"] == (65 - 30) * 30 and second["first_frame"] == (175 - 30) * 30
    assert (first["width"], first["height"]) == (640, 360)


# -- --config errors ----------------------------------------------------------------
BAD_CONFIGS = [
    ("unknown key", "[video]\nwidht = 640\n", "video.widht"),
    ("wrong type", '[video]\nfps = "fast"\n', "video.fps"),
    ("wrong type, nested", '[inputs.holster]\npin = "x"\n', "inputs.holster.pin"),
    ("invalid TOML", "[video\nfps = 30\n", "line 1"),
    ("missing file", None, "cannot read"),
]


@pytest.mark.parametrize(
    ("content", "needle"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, needle: str
) -> None:
    config = tmp_path / "bad.toml"
    if content is not None:
        config.write_text(content)
    out_dir = tmp_path / "out"
    scenario = REPO / "scenarios" / "ci" / "end_of_run_while_recording.toml"
    argv = ["run", "--config", str(config), "--scenario", str(scenario), "--out", str(out_dir)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"bodycam run: {config}: ") and needle in err, err
    assert out == ""
    assert not out_dir.exists()  # refused before anything was run or written


def test_bad_config_through_the_console_script(tmp_path: Path) -> None:
    """The same, as a separate process: exit status 2 and one line, nothing else on stderr."""
    config = tmp_path / "bad.toml"
    config.write_text("[buffer]\npre_event = 30.0\nqueue = 16\n")
    proc = subprocess.run(
        [sys.executable, "-m", "camera", "run", "--config", str(config), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"bodycam run: {config}: buffer.queue: "), proc.stderr
    assert proc.stdout == ""


# -- --realtime ---------------------------------------------------------------------
SHORT = """\
[scenario]
name = "{name}"
duration = {duration}
seed = 3

[config]
video = {{ width = 640, height = 360, fps = 30, bitrate = 1000000, gop = 15 }}
buffer = {{ pre_event = 1.0 }}
recording = {{ segment_seconds = 1.0 }}

[[event]]
at = {trigger}
input = "holster"
action = "activate"
bounce_ms = 5
{extra}
"""


def write_scenario(path: Path, name: str, duration: float, trigger: float, extra: str = "") -> Path:
    path.write_text(
        SHORT.format(name=name, duration=duration, trigger=trigger, extra=textwrap.dedent(extra))
    )
    return path


@pytest.mark.realtime
def test_realtime_run_is_paced_and_verifies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = write_scenario(tmp_path / "rt.toml", "rt", duration=2.5, trigger=1.2)
    out_dir = tmp_path / "out"
    argv = ["run", "--realtime", "--scenario", str(scenario), "--out", str(out_dir), "--json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    summary = json.loads(out)
    # Paced: the virtual clock never runs ahead of the wall (unpaced, this takes ~0.3 s).
    assert summary["wall_seconds"] >= 2.5 - 0.01
    assert summary["frames_captured"] == int(2.5 * 30) + 1
    [rec] = summary["recordings"]
    assert rec["trigger"]["time"] == 1.2 and rec["stop"]["reason"] == "end_of_run"
    code, out, _ = run_cli(capsys, "verify", str(out_dir))
    assert code == 0 and out.startswith("OK "), out
    m = assert_frame_exact(Path(rec["path"]))
    assert m["first_frame"] == 0 and m["last_frame"] == 75  # keyframe 0 <= 1.2 - 1.0


# -- the recording-id counter across boots ------------------------------------------
def recording_ids(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_second_boot_continues_the_counter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two runs of the same scenario on one card: same wall times, so only the counter
    keeps the second boot's recordings from landing on the first's."""
    scenario = write_scenario(
        tmp_path / "twice.toml",
        "twice",
        duration=6.0,
        trigger=1.5,
        extra="""
        [[event]]
        at = 2.0
        input = "button"
        action = "hold"
        duration = 3.2

        [[event]]
        at = 5.4
        input = "button"
        action = "double_press"
        """,
    )
    store = tmp_path / "store"
    argv = ["run", "--scenario", str(scenario), "--out", str(store), "--json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    first = [r["path"] for r in json.loads(out)["recordings"]]
    assert [p[-5:] for p in first] == ["_0001", "_0002"]
    before = tree_digest(store)

    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    second = [r["path"] for r in json.loads(out)["recordings"]]
    assert [p[-5:] for p in second] == ["_0003", "_0004"]
    assert [p[:-5] for p in second] == [p[:-5] for p in first]  # same device and wall time
    after = tree_digest(store)
    assert same_as_before(before, after)  # nothing of the first boot touched
    assert recording_ids(store) == sorted(Path(p).name for p in first + second)
    code, out, _ = run_cli(capsys, "verify", str(store))
    assert code == 0 and "4 of 4 recordings verified" in out, out
    for p in first + second:
        assert_frame_exact(Path(p))


def test_counter_continues_after_power_loss_recovered_at_the_cut(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A scenario's power_loss: the run ends there and recovery runs as at the next boot."""
    cut = write_scenario(
        tmp_path / "cut.toml",
        "cut",
        duration=6.0,
        trigger=1.5,
        extra="""
        [[fault]]
        at = 4.3
        kind = "power_loss"
        """,
    )
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "run", "--scenario", str(cut), "--out", str(store), "--json")
    assert code == 0, err
    [interrupted] = json.loads(out)["recordings"]
    assert interrupted["stop"]["reason"] == "power_loss" and interrupted["path"].endswith("_0001")
    before = tree_digest(store)

    again = write_scenario(tmp_path / "again.toml", "again", duration=4.0, trigger=2.0)
    code, out, err = run_cli(capsys, "run", "--scenario", str(again), "--out", str(store), "--json")
    assert code == 0, err
    [new] = json.loads(out)["recordings"]
    assert new["path"].endswith("_0002")
    after = tree_digest(store)
    assert same_as_before(before, after)
    assert_frame_exact(Path(interrupted["path"]))
    assert_frame_exact(Path(new["path"]))


CRASH = """\
import os, sys
from camera.config import load_config
from sim.device import SimDevice

config = load_config(None, {"video": {"width": 640, "height": 360}, "buffer": {"pre_event": 1.0}})
dev = SimDevice(config, sys.argv[1]).boot()
dev.set_input(1.5, "holster", True)
dev.run(until=4.3)
dev.storage.power_cut()  # unsynced bytes are gone, as when the battery is pulled
os._exit(0)  # no shutdown, no recovery: the next boot finds the journal alone
"""


def test_counter_continues_after_a_recording_recovered_at_boot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(store)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    [crashed] = recording_ids(store)
    assert crashed.endswith("_0001")
    assert not (store / crashed / "manifest.json").exists()  # interrupted, not yet recovered
    segments = {p.name: p.read_bytes() for p in (store / crashed).glob("segment-*")}
    assert segments

    again = write_scenario(tmp_path / "again.toml", "again", duration=4.0, trigger=2.0)
    code, out, err = run_cli(capsys, "run", "--scenario", str(again), "--out", str(store), "--json")
    assert code == 0, err
    [new] = json.loads(out)["recordings"]
    assert new["path"].endswith("_0002")
    assert recording_ids(store) == [crashed, Path(new["path"]).name]
    recovered = assert_frame_exact(store / crashed)  # the boot recovered it
    assert recovered["stop"]["reason"] == "power_loss"
    for name, data in segments.items():  # recovery cut nothing the sync had made durable
        kept = (store / crashed / name).read_bytes()
        tail = store / crashed / (name.rsplit(".", 1)[0] + ".tail")
        assert kept + (tail.read_bytes() if tail.exists() else b"") == data
    assert_frame_exact(Path(new["path"]))
