"""The command line: exit codes, one-line errors, JSON summary, verify and inspect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from camera.cli import main

CI = Path(__file__).resolve().parents[1] / "scenarios" / "ci"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store")
    assert (
        main(
            [
                "run",
                "--scenario",
                str(CI / "retrigger_after_stop.toml"),
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    return out


def test_run_json_summary(capsys, tmp_path: Path) -> None:
    code, out, err = run_cli(
        capsys,
        "run",
        "--scenario",
        str(CI / "end_of_run_while_recording.toml"),
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert set(summary) >= {
        "recordings",
        "frames_captured",
        "dropped_frames",
        "device_seconds",
        "board",
        "wall_seconds",
        "expectations",
    }
    [rec] = summary["recordings"]
    assert set(rec) >= {"path", "trigger", "pre_event_seconds", "frames", "dropped_frames", "stop"}
    assert Path(rec["path"]).is_dir()
    assert summary["frames_captured"] == 15 * 30 + 1
    assert all(e["ok"] for e in summary["expectations"])


def test_run_human_summary(capsys, tmp_path: Path) -> None:
    code, out, _ = run_cli(
        capsys,
        "run",
        "--scenario",
        str(CI / "end_of_run_while_recording.toml"),
        "--out",
        str(tmp_path),
    )
    assert code == 0
    assert "recordings 1" in out and "end_of_run" in out and "PASS" in out


def test_summary_counts_camera_gaps_as_lost_not_as_firmware_drops(capsys, tmp_path: Path) -> None:
    """A camera dark for 1.5 s is 45 lost frames in the summary, never "0 dropped" alone."""
    args = ["run", "--scenario", str(CI / "camera_disconnect.toml"), "--out", str(tmp_path)]
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    [rec] = json.loads(out)["recordings"]
    assert (rec["dropped_frames"], rec["lost_frames"]) == (0, 45)
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    header, rule, row = out.splitlines()[2:5]
    spans = [m.span() for m in re.finditer(r"-+", rule)]  # the table's columns
    columns = {header[a:b].strip(): row[a:b].strip() for a, b in spans}
    assert (columns["dropped"], columns["lost"]) == ("0", "45")


def test_failed_expectation_exits_1(capsys, tmp_path: Path) -> None:
    text = (
        (CI / "end_of_run_while_recording.toml")
        .read_text()
        .replace("recordings = 1", "recordings = 2")
    )
    scn = tmp_path / "wrong.toml"
    scn.write_text(text)
    code, out, _ = run_cli(capsys, "run", "--scenario", str(scn), "--out", str(tmp_path / "o"))
    assert code == 1
    assert "FAIL  expect recordings" in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[scenario\nname = 1", "line 1"),
        (
            '[scenario]\nname = "x"\nduration = 10.0\n[[event]]\nat = 3.0\ninput = "door"\n'
            'action = "activate"\n',
            "event[1].input",
        ),
        ('[scenario]\nname = "x"\nduration = "long"\n', "scenario.duration"),
        (
            '[scenario]\nname = "x"\nduration = 10.0\n[config]\nvideo = { fps = "30" }\n',
            "config.video.fps",
        ),
    ],
)
def test_bad_scenario_is_one_line_exit_2(capsys, tmp_path: Path, content: str, needle: str) -> None:
    scn = tmp_path / "bad.toml"
    scn.write_text(content)
    for argv in (
        ["scenario", "check", str(scn)],
        ["run", "--scenario", str(scn), "--out", str(tmp_path / "o")],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "bad.toml" in err and needle in err


def test_usage_errors_exit_2(capsys) -> None:
    code, _, err = run_cli(capsys, "frobnicate")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run_cli(capsys, "verify", "/nonexistent/path")
    assert code == 2 and "/nonexistent/path" in err


def test_scenario_check_ok(capsys) -> None:
    code, out, _ = run_cli(capsys, "scenario", "check", str(CI / "mjpeg.toml"))
    assert code == 0 and "ok" in out


def test_verify_and_inspect_storage_dir(capsys, recorded: Path) -> None:
    code, out, _ = run_cli(capsys, "verify", str(recorded))
    assert code == 0
    assert out.count("OK ") == 2 and "2 of 2 recordings verified" in out
    code, out, _ = run_cli(capsys, "inspect", str(recorded))
    assert code == 0 and "trigger    holster at " in out and "button_hold" in out


def test_verify_catches_tampering(capsys, recorded: Path, tmp_path: Path) -> None:
    import shutil

    rec = sorted(p for p in recorded.iterdir() if p.is_dir())[0]
    copy = tmp_path / rec.name
    shutil.copytree(rec, copy)
    seg = sorted(copy.glob("segment-*"))[0]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "verify", str(copy))
    assert code == 1
    assert "sha256 mismatch" in out


def test_python_dash_m_camera() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "camera", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "verify" in proc.stdout
