"""Interrupted runs, the storage lock, and the command line on storage directories.

Ctrl-C and SIGTERM go to a real ``bodycam run`` process; a running firmware's
lock is either that real process or a second open file description of the
storage directory (flock locks belong to one, so it conflicts the same way).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from camera.cli import main
from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify import verify_recording
from hal.storage.lock import DirectoryLock
from tests.conftest import make_device

VIDEO = "video = { width = 640, height = 360, fps = 30, bitrate = 1500000, gop = 30 }"


def scenario(tmp_path: Path, duration: float, name: str = "s.toml") -> Path:
    """A holster draw at 1 s and nothing to stop it: records until the run ends."""
    path = tmp_path / name
    path.write_text(
        f"""
[scenario]
name = "interrupt"
duration = {duration}

[config]
{VIDEO}
buffer = {{ pre_event = 1.0 }}
recording = {{ segment_seconds = 1.0 }}

[[event]]
at = 1.0
input = "holster"
action = "activate"
"""
    )
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def frames_are_continuous(rec: Path) -> dict:
    """The manifest, after checking every frame decodes, in order, with no gap."""
    m = json.loads((rec / MANIFEST).read_text())
    report = verify_recording(rec)
    assert report.ok, report.problems
    assert report.codes == list(range(m["first_frame"], m["last_frame"] + 1))
    return m


# -- 13: Ctrl-C / SIGTERM during `bodycam run` -------------------------------
#: The child logs the firmware's events (INFO) on stderr, one per line, so a test
#: can block on the line that says what it waits for: a progress signal, not a poll.
CHILD = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, format='%(message)s'); "
    "from camera.cli import main; sys.exit(main(sys.argv[1:]))"
)
DURABLE = re.compile(r"^durable \{'recording': '([^']+)'\}$")


def start_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    store = tmp_path / "store"
    cmd = [sys.executable, "-c", CHILD, "run", "--scenario", str(scenario(tmp_path, 600.0))]
    proc = subprocess.Popen(
        [*cmd, "--out", str(store), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return proc, store


def wait_until_durable(proc: subprocess.Popen[str], store: Path) -> Path:
    """Block on the child's event log until its recording's pre-event is on the card.

    The recording then exists with every frame up to the trigger synced (a
    second of video here); a child that hangs silently is caught by the
    suite's per-test timeout.
    """
    assert proc.stderr is not None
    while line := proc.stderr.readline():
        if found := DURABLE.match(line.strip()):
            return store / found[1]
    proc.kill()
    pytest.fail(f"the run ended before its recording was durable: {proc.communicate()}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out, err


def test_sigint_closes_the_recording_prints_json_and_exits_130(tmp_path: Path, capsys) -> None:
    proc, store = start_run(tmp_path, "--json")
    rec = wait_until_durable(proc, store)
    # While it runs, the firmware (a real second process) owns the directory.
    code, _, err = run_cli(capsys, "recover", str(rec))
    assert code == 2
    line = one_line(err)
    assert str(store.resolve()) in line and "running firmware" in line
    code, _, err = run_cli(
        capsys, "run", "--scenario", str(scenario(tmp_path, 3.0, "b.toml")), "--out", str(store)
    )
    assert code == 2 and "in use" in one_line(err)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] == "SIGINT" and summary["ok"] is False
    assert 1.0 < summary["device_seconds"] < 600.0  # after the draw, long before the end
    [r] = summary["recordings"]
    assert r["stop"]["reason"] == "end_of_run" and r["path"] == str(rec)
    m = frames_are_continuous(rec)
    assert m["stop"] == {"reason": "end_of_run", "time": pytest.approx(summary["device_seconds"])}
    assert m["frames"] == r["frames"] > 30  # the durable pre-event (1 s) and more
    code, out, _ = run_cli(capsys, "verify", str(store))
    assert code == 0, out
    DirectoryLock(store).acquire()  # the lock went with the process


def test_sigterm_closes_the_recording_prints_the_summary_and_exits_143(tmp_path: Path) -> None:
    proc, store = start_run(tmp_path)
    rec = wait_until_durable(proc, store)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 143, err
    assert "interrupted by SIGTERM" in out and "end_of_run @" in out and str(rec) in out
    assert frames_are_continuous(rec)["stop"]["reason"] == "end_of_run"


# -- an interrupted recording (journal, no manifest), as a power cut leaves it --
@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> Path:
    """A storage directory holding one recording whose power was cut at 3.3 s."""
    root = tmp_path_factory.mktemp("crashed")
    dev = make_device(root, {"buffer": {"pre_event": 1.0}, "recording": {"segment_seconds": 1.0}})
    dev.set_input(1.0, "holster", True)
    dev.run(until=3.3)
    dev.storage.power_cut()
    dev.storage.unlock()  # the lock dies with the firmware's process
    return root / "store"


@pytest.fixture
def store(crashed: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(crashed, copy, symlinks=True)
    return copy


def the_recording(store: Path) -> Path:
    [rec] = [p for p in store.iterdir() if p.is_dir()]
    assert (rec / JOURNAL).is_file() and not (rec / MANIFEST).exists()
    return rec


def test_verify_and_inspect_say_interrupted_and_name_recover(capsys, store: Path) -> None:
    rec = the_recording(store)
    code, out, _ = run_cli(capsys, "verify", str(rec))
    assert code == 1
    assert "interrupted" in out and f"bodycam recover {rec}" in out
    code, out, _ = run_cli(capsys, "inspect", str(store))
    assert code == 0
    assert "interrupted" in out and f"bodycam recover {rec}" in out
    assert "trigger    holster at " in out


def symlinked(store: Path, rec: Path) -> str:
    link = store.parent / "link"
    link.symlink_to(rec)
    return str(link)


FORMS = {
    "dot": lambda store, rec: (rec, "."),
    "dot-slash": lambda store, rec: (rec, "./"),
    "trailing-slash": lambda store, rec: (store, rec.name + "/"),
    "dot-dot": lambda store, rec: (rec / "..", rec.name),
    "up-and-back": lambda store, rec: (rec, f"../{rec.name}/."),
    "symlink": lambda store, rec: (store.parent, symlinked(store, rec)),
}


@pytest.mark.parametrize("form", FORMS)
def test_recover_resolves_the_path_it_is_given(capsys, store: Path, monkeypatch, form: str) -> None:
    rec = the_recording(store)
    cwd, arg = FORMS[form](store, rec)
    monkeypatch.chdir(cwd)
    # A running firmware on the storage directory: refused, nothing touched.
    sizes = {p.name: p.stat().st_size for p in rec.iterdir()}
    with DirectoryLock(store):
        code, out, err = run_cli(capsys, "recover", arg)
    assert code == 2 and out == ""
    line = one_line(err)
    assert str(store.resolve()) in line and "running firmware" in line
    assert {p.name: p.stat().st_size for p in rec.iterdir()} == sizes
    # Nobody holds it: recovered.
    code, out, _ = run_cli(capsys, "recover", arg)
    assert code == 0 and out.startswith(f"FIXED {rec.resolve()}:"), out
    assert frames_are_continuous(rec)["stop"]["reason"] == "power_loss"


def test_a_second_firmware_on_locked_storage_exits_2(capsys, store: Path, tmp_path: Path) -> None:
    rec = the_recording(store)
    with DirectoryLock(store):
        code, out, err = run_cli(
            capsys, "run", "--scenario", str(scenario(tmp_path, 2.0)), "--out", str(store)
        )
    assert code == 2 and out == ""
    assert str(store) in one_line(err) and "running firmware" in err
    assert not (rec / MANIFEST).exists()  # the first firmware's recording untouched


def test_recovery_at_boot_still_works_under_the_firmwares_own_lock(
    capsys, store: Path, tmp_path: Path
) -> None:
    rec = the_recording(store)
    code, out, err = run_cli(
        capsys, "run", "--scenario", str(scenario(tmp_path, 2.0)), "--out", str(store), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["interrupted"] is None
    assert frames_are_continuous(rec)["stop"]["reason"] == "power_loss"
    DirectoryLock(store).acquire()  # released at shutdown


# -- 15: verify / inspect skip what is not a recording ------------------------
@pytest.fixture(scope="module")
def cluttered(tmp_path_factory) -> Path:
    """A storage directory with one good recording, lost+found, and a stray file."""
    root = tmp_path_factory.mktemp("cluttered")
    store = root / "store"
    assert main(["run", "--scenario", str(scenario(root, 3.0)), "--out", str(store)]) == 0
    (store / "lost+found").mkdir()
    (store / "stray.txt").write_text("not evidence\n")
    return store


def test_verify_storage_directory_skips_what_is_not_a_recording(capsys, cluttered: Path) -> None:
    [rec] = [p for p in cluttered.iterdir() if (p / MANIFEST).exists()]
    code, out, err = run_cli(capsys, "verify", str(cluttered))
    assert code == 0, out + err
    assert f"SKIP  {cluttered / 'lost+found'}: not a recording" in out
    assert f"SKIP  {cluttered / 'stray.txt'}: not a recording" in out
    assert f"OK    {rec}" in out and "FAIL" not in out
    code, out, _ = run_cli(capsys, "inspect", str(cluttered))
    assert code == 0 and "SKIP" in out and "lost+found" in out and "trigger    holster at " in out


def test_a_stray_file_among_recordings_is_skipped_not_fatal(capsys, cluttered: Path) -> None:
    [rec] = [p for p in cluttered.iterdir() if (p / MANIFEST).exists()]
    stray = str(cluttered / "stray.txt")
    code, out, err = run_cli(capsys, "verify", str(rec), stray, str(rec))
    assert code == 0, out + err
    assert out.count("OK    ") == 2 and f"SKIP  {stray}: not a recording" in out
    assert "2 of 2 recordings verified, 1 other paths skipped" in out
    code, out, _ = run_cli(capsys, "verify", "--json", str(rec), stray)
    result = json.loads(out)  # stdout stays one JSON object
    assert result["ok"] is True and result["skipped"][0]["path"] == stray
    code, out, _ = run_cli(capsys, "inspect", stray, str(rec))
    assert code == 0 and "trigger    holster at " in out and f"SKIP  {stray}" in out


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_no_recordings_at_all_is_bad_input(capsys, cluttered: Path, command: str) -> None:
    for paths in ([str(cluttered / "stray.txt")], [str(cluttered / "lost+found")]):
        code, out, err = run_cli(capsys, command, *paths)
        assert code == 2 and out == ""
        assert "no recordings found" in err.splitlines()[-1] and "Traceback" not in err


def test_a_path_that_does_not_exist_is_checked_around_then_bad_input(
    capsys, cluttered: Path
) -> None:
    """A typo among good recordings: the rest is verified, but the run is not "verified"."""
    [rec] = [p for p in cluttered.iterdir() if (p / MANIFEST).exists()]
    typo = str(cluttered / "no-such-recording")
    code, out, err = run_cli(capsys, "verify", str(rec), typo)
    assert code == 2, out + err
    assert f"OK    {rec}" in out and f"SKIP  {typo}: no such file or directory" in out
    assert err.strip() == f"bodycam verify: {typo}: no such file or directory"
