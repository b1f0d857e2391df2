"""``bodycam doctor``: a clean simulated board passes; each injected fault shows in its check only.

Faults go in through the sim backends themselves (a pin claimed on the
MockFactory, a full or stalled SimStorage, a disconnected synthetic sensor,
a wall-clock step on the virtual clock, a serial port that is not there), so
what is tested is the doctor reading a board, not a doctor told what to say.
"""

from __future__ import annotations

import json
import os
import stat
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice

from camera.cli import main
from camera.config import Config, load_config
from camera.doctor import (
    PROBE_NAME,
    ClockReading,
    Report,
    check_clock,
    open_board,
    run_doctor,
)
from camera.encoders.h264 import H264Encoder
from camera.errors import BackendError
from hal import registry
from hal.board import Parts
from hal.clock.monotonic import MonotonicClock
from hal.clock.ntp import ntp_synchronized
from sim.sensor import SyntheticSensor
from tests.doubles.nmea_receiver import T0, gga, rmc

#: Small and slow enough that an hour of video (~170 MB) fits on any test host.
BASE = """
[device]
storage = "{storage}"
[video]
width = 640
height = 360
bitrate = 300000
"""

CLEAN = {
    "pins": "ok",
    "camera": "ok",
    "encoder": "ok",
    "microphone": "ok",
    "storage": "ok",
    "console": "skip",
    "gps": "skip",
    "clock": "ok",
}


def write_config(tmp_path: Path, extra: str = "", storage: Path | None = None) -> Path:
    """BASE plus ``extra``; lines before any table header land in [video]."""
    path = tmp_path / "bodycam.toml"
    path.write_text(BASE.format(storage=storage or tmp_path / "rec") + extra)
    return path


def config_with(tmp_path: Path, extra: str = "", storage: Path | None = None) -> Config:
    return load_config(write_config(tmp_path, extra, storage))


def statuses(report: Report) -> dict[str, str]:
    return {r.name: r.status for r in report.results}


def text_of(report: Report, name: str) -> str:
    return next(r.text for r in report.results if r.name == name)


def doctor(
    config: Config,
    fault: Callable[[Parts], Any] = lambda board: None,
    *,
    board: str = "sim",
    start: datetime | None = None,
    gps_window: float = 0.3,
) -> Report:
    """Open the board, inject ``fault`` through its backends, run every check."""
    opened = open_board(config, board, start=start)
    try:
        fault(opened)
        return run_doctor(config, opened, gps_window=gps_window)
    finally:
        opened.close()


# -- the command line ---------------------------------------------------------------------------


def test_a_clean_sim_board_is_all_ok_or_skip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--config", str(write_config(tmp_path))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(CLEAN) + 1
    seen = {line[6:].split(":")[0]: line[:6].strip() for line in lines[:-1]}
    assert seen == CLEAN
    assert lines[0].startswith("ok    pins: holster 17, button 27, record_led 22")
    assert "30.0 fps" in lines[1]
    assert "chosen by encoder = auto" in lines[2]
    assert lines[-1] == "board sim: ready (6 ok, 0 warn, 0 fail, 2 skip)"
    assert os.listdir(tmp_path / "rec") == []  # the probe file is gone


def test_json_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--config", str(write_config(tmp_path)), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    report = json.loads(out)
    assert report["ok"] is True
    assert report["board"] == "sim"
    assert report["backends"]["sensor"] == "synthetic"
    assert {c["name"]: c["status"] for c in report["checks"]} == CLEAN
    assert report["counts"] == {"ok": 6, "warn": 0, "fail": 0, "skip": 2}
    camera = next(c for c in report["checks"] if c["name"] == "camera")
    assert camera["fps"] == 30.0 and camera["missing_numbers"] == 0


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ("[outputs]\nrecord_led = 17\n", "outputs.record_led"),  # holster's pin
        ('[hal]\nsensor = "nope"\n', "hal.sensor"),
        ('[hal]\ngps = "nope"\n', "hal.gps"),
        ("fps = 'x'\n", "video.fps"),
    ],
)
def test_bad_config_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, names: str
) -> None:
    path = write_config(tmp_path, extra)
    assert main(["doctor", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(path) in err and names in err


def test_a_failed_check_is_exit_1_and_the_pi_board_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--board pi off a Pi: pins and camera fail with their reasons, the rest still runs."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")  # no pin library, anywhere
    path = write_config(tmp_path, f'[hal]\ncamera = "{tmp_path / "no-camera.mp4"}"\n')
    assert main(["doctor", "--config", str(path), "--board", "pi"]) == 1
    out, err = capsys.readouterr()
    lines = {line[6:].split(":")[0]: line for line in out.splitlines()[:-1]}
    assert lines["pins"].startswith("fail  pins: pin factory")
    assert lines["camera"].startswith("fail  camera: ") and "no-camera.mp4" in lines["camera"]
    assert lines["storage"].startswith("ok    storage: ")
    assert "NOT ready" in out.splitlines()[-1]
    assert "Traceback" not in err


# -- one fault, one check -----------------------------------------------------------------------


def test_a_pin_already_claimed_fails_pins_naming_it(tmp_path: Path) -> None:
    claimed: list[DigitalOutputDevice] = []

    def claim(board: Parts) -> None:
        claimed.append(DigitalOutputDevice(22, pin_factory=board.gpio.factory))  # type: ignore[union-attr]

    report = doctor(config_with(tmp_path), claim)
    claimed[0].close()
    assert statuses(report) == {**CLEAN, "pins": "fail"}
    assert text_of(report, "pins").startswith("record_led 22: ")
    assert "in use" in text_of(report, "pins")


def test_a_pin_factory_that_cannot_load_fails_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    report = doctor(config_with(tmp_path, '[hal]\ngpio = "gpiozero"\n'))
    assert statuses(report) == {**CLEAN, "pins": "fail"}
    assert text_of(report, "pins").startswith("pin factory: ")


def test_a_disconnected_camera_fails_camera_and_the_encoder_still_runs(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path), lambda b: b.sensor.disconnect(1e9))  # type: ignore[union-attr]
    assert statuses(report) == {**CLEAN, "camera": "fail"}
    assert text_of(report, "camera") == "synthetic: no frames in 3 s"


def test_a_camera_dropout_mid_window_warns_of_skipped_numbers(tmp_path: Path) -> None:
    def dropout(board: Parts) -> None:
        board.clock.call_at(0.5, lambda: board.sensor.disconnect(0.7))  # type: ignore[union-attr]

    report = doctor(config_with(tmp_path), dropout)
    assert statuses(report) == {**CLEAN, "camera": "warn"}
    assert "frame numbers skip: 6 missing (largest gap 6 after frame 14)" in text_of(
        report, "camera"
    )


def test_a_camera_slower_than_configured_warns(tmp_path: Path) -> None:
    def slow(board: Parts) -> None:
        board.sensor = SyntheticSensor(board.clock, 640, 360, 25)

    report = doctor(config_with(tmp_path), slow)
    assert statuses(report) == {**CLEAN, "camera": "warn"}
    assert "25.0 fps" in text_of(report, "camera")
    assert "below 95% of the configured 30 fps" in text_of(report, "camera")


def test_a_check_that_raises_is_its_fail_line_and_the_others_still_run(tmp_path: Path) -> None:
    """A sensor already started elsewhere: start() raises; the doctor does not crash."""
    report = doctor(config_with(tmp_path), lambda b: b.sensor.start(lambda *a: None))  # type: ignore[union-attr]
    assert statuses(report) == {**CLEAN, "camera": "fail"}
    assert text_of(report, "camera") == "check failed: RuntimeError: sensor already started"


def test_a_forced_hardware_encoder_is_reported_as_it_is(tmp_path: Path) -> None:
    """h264_v4l2m2m opens on a Pi 4 and not here: the doctor must say which, either way."""
    try:
        H264Encoder(640, 360, 30, bitrate=300_000, gop=30, name="h264_v4l2m2m").close()
        opens = True
    except BackendError:
        opens = False
    report = doctor(config_with(tmp_path, 'encoder = "h264_v4l2m2m"\n'))  # under [video]
    if opens:
        assert statuses(report) == CLEAN
        assert text_of(report, "encoder").startswith("h264_v4l2m2m (hardware): ")
    else:
        assert statuses(report) == {**CLEAN, "encoder": "fail"}
        assert "'h264_v4l2m2m'" in text_of(report, "encoder")


def test_a_full_card_fails_storage(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path), lambda b: b.storage.fill(0))  # type: ignore[union-attr]
    assert statuses(report) == {**CLEAN, "storage": "fail"}
    text = text_of(report, "storage")
    assert "below recording.reserve_mb" in text and "not writable" in text
    assert not (tmp_path / "rec" / PROBE_NAME).exists()


def test_free_space_under_an_hour_of_video_warns(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path), lambda b: b.storage.fill(50_000_000))  # type: ignore[union-attr]
    assert statuses(report) == {**CLEAN, "storage": "warn"}
    assert text_of(report, "storage").endswith("only 50.0 MB free (0.30 h of video)")


def test_a_stalling_card_warns_of_write_speed(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path), lambda b: b.storage.stall(0.0, 30.0))  # type: ignore[union-attr]
    assert statuses(report) == {**CLEAN, "storage": "warn"}
    assert "below 4x the video rate" in text_of(report, "storage")


def test_a_storage_directory_that_cannot_be_created_fails_storage(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    report = doctor(config_with(tmp_path, storage=tmp_path / "file" / "rec"))
    assert statuses(report) == {**CLEAN, "storage": "fail"}
    assert "cannot create" in text_of(report, "storage")


def test_a_read_only_storage_directory_fails_storage(tmp_path: Path) -> None:
    """A directory without write permission; tests may run as root, whom chmod does not
    stop, so there a file standing where the directory should be is the fault instead."""
    rec = tmp_path / "rec"
    rec.mkdir()
    rec.chmod(stat.S_IRUSR | stat.S_IXUSR)
    expected = "not writable: [Errno 13] Permission denied"
    try:
        if os.access(rec, os.W_OK):  # root: permission bits do not stop writes
            rec.chmod(0o755)
            rec.rmdir()
            rec.write_text("a file where the storage directory should be")
            expected = "cannot create: [Errno 17] File exists"
        report = doctor(config_with(tmp_path))
    finally:
        if rec.is_dir():
            rec.chmod(0o755)
    assert statuses(report) == {**CLEAN, "storage": "fail"}
    assert expected in text_of(report, "storage")


def test_a_wall_clock_step_during_the_checks_warns(tmp_path: Path) -> None:
    def step(board: Parts) -> None:
        board.clock.call_at(0.5, lambda: board.clock.step_wall(3.0))

    report = doctor(config_with(tmp_path), step)
    assert statuses(report) == {**CLEAN, "clock": "warn"}
    assert text_of(report, "clock") == "wall clock stepped by +3.0 s during the check"


def test_a_wall_clock_never_set_warns(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path), start=datetime(1970, 1, 1, tzinfo=UTC))
    assert statuses(report) == {**CLEAN, "clock": "warn"}
    assert text_of(report, "clock").startswith("wall clock not set (no RTC, no NTP yet)")


def test_a_gps_port_that_does_not_exist_fails_gps(tmp_path: Path) -> None:
    port = tmp_path / "ttyGPS"
    report = doctor(config_with(tmp_path, f'[gps]\nenabled = true\nport = "{port}"\n'))
    assert statuses(report) == {**CLEAN, "gps": "fail"}
    assert str(port) in text_of(report, "gps")


@pytest.fixture
def pty_port() -> Iterator[tuple[int, str]]:
    """A pty pair: (master fd to play the device on, slave path to configure)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def gps_doctor(tmp_path: Path, pty: tuple[int, str], said: bytes, extra: str = "") -> Report:
    """The doctor on a receiver that said ``said`` once its port was open (the board opens it).

    Written before the window starts, it waits in the port's input queue, so
    what the check reads does not depend on the host's pace (the reader
    thread has a whole second of real time to be scheduled and read it).
    """
    master, path = pty
    config = config_with(tmp_path, f'[gps]\nenabled = true\nport = "{path}"\n{extra}')
    return doctor(config, lambda board: os.write(master, said) if said else None, gps_window=1.0)


def nmea_epochs(seconds: int, *, fix: bool = True) -> bytes:
    out = b""
    for s in range(seconds):
        utc = T0 + timedelta(seconds=s)
        if fix:
            out += rmc(utc) + gga(utc, satellites=9, hdop=0.8)
        else:
            out += rmc(utc, None, None, status="V") + gga(utc, None, None, quality=0, satellites=3)
    return out


def test_a_silent_gps_fails(tmp_path: Path, pty_port: tuple[int, str]) -> None:
    report = gps_doctor(tmp_path, pty_port, b"")
    assert statuses(report) == {**CLEAN, "gps": "fail"}
    assert text_of(report, "gps") == f"{pty_port[1]} opens at 9600 baud, but said nothing in 1.0 s"


def test_a_gps_with_a_fix_is_ok_with_its_rate_position_and_satellites(
    tmp_path: Path, pty_port: tuple[int, str]
) -> None:
    report = gps_doctor(tmp_path, pty_port, nmea_epochs(3))
    assert statuses(report) == {**CLEAN, "gps": "ok"}
    assert text_of(report, "gps") == (
        f"{pty_port[1]}: 6 NMEA sentences in 1.0 s (6.0/s); "
        "fix 51.50070, -0.12460, 9 satellites, HDOP 0.8"
    )
    check = next(r for r in report.results if r.name == "gps")
    assert check.details["epochs"] == 3  # the third is complete: RMC and GGA both arrived
    assert check.details["valid_fixes"] == 3


def test_a_gps_without_a_fix_warns_with_its_satellites(
    tmp_path: Path, pty_port: tuple[int, str]
) -> None:
    report = gps_doctor(tmp_path, pty_port, nmea_epochs(2, fix=False))
    assert statuses(report) == {**CLEAN, "gps": "warn"}
    assert text_of(report, "gps").endswith(
        "; no fix yet, 3 satellites (normal for a cold start or indoors)"
    )


def test_bad_checksums_warn(tmp_path: Path, pty_port: tuple[int, str]) -> None:
    said = nmea_epochs(2)
    said = said.replace(b",A,", b",V,", 1)  # the first RMC changed: its checksum is now wrong
    report = gps_doctor(tmp_path, pty_port, said)
    assert statuses(report) == {**CLEAN, "gps": "warn"}
    assert "; 1 bad checksums (noise on the line?)" in text_of(report, "gps")


def test_bytes_that_are_never_nmea_fail_and_suggest_the_baud_rate(
    tmp_path: Path, pty_port: tuple[int, str]
) -> None:
    """What a receiver at 38400 baud looks like to a port at 9600: bytes, never a sentence."""
    noise = bytes(range(256)).replace(b"$", b"") * 4
    report = gps_doctor(tmp_path, pty_port, noise)
    assert statuses(report) == {**CLEAN, "gps": "fail"}
    assert text_of(report, "gps") == (
        f"{pty_port[1]}: {len(noise)} bytes in 1.0 s but no NMEA sentence "
        "(is 9600 baud the receiver's rate?)"
    )


def test_a_gps_backend_of_none_is_skipped(tmp_path: Path) -> None:
    report = doctor(
        config_with(tmp_path, '[gps]\nenabled = true\nport = "/dev/x"\n[hal]\ngps = "none"\n')
    )
    assert statuses(report) == {**CLEAN, "gps": "skip"}
    assert text_of(report, "gps") == 'no receiver ([hal] gps = "none")'


def test_the_gps_check_releases_the_port(tmp_path: Path, pty_port: tuple[int, str]) -> None:
    """After the check the port is closed: the firmware (or a second doctor) can open it."""
    _, path = pty_port
    config = config_with(tmp_path, f'[gps]\nenabled = true\nport = "{path}"\n')
    opened = open_board(config, "sim")
    try:
        run_doctor(config, opened, gps_window=0.1)
        assert opened.gps is not None and not opened.gps.port.is_open
    finally:
        opened.close()


SIM_PARTS = """
[hal]
clock = "virtual"
gpio = "mock"
sensor = "synthetic"
storage = "sim"
worker = "virtual"
audio = "synthetic"
"""


def test_the_console_port_is_checked_on_a_real_board(
    tmp_path: Path, pty_port: tuple[int, str]
) -> None:
    """A pi board built from sim parts: the console port is opened as on a Pi."""
    _, path = pty_port
    ok = doctor(
        config_with(tmp_path, f'{SIM_PARTS}[console]\nenabled = true\nport = "{path}"\n'),
        board="pi",
    )
    assert statuses(ok) == {**CLEAN, "console": "ok"}
    missing = tmp_path / "ttyAMA9"
    failed = doctor(
        config_with(tmp_path, f'{SIM_PARTS}[console]\nenabled = true\nport = "{missing}"\n'),
        board="pi",
    )
    assert statuses(failed) == {**CLEAN, "console": "fail"}
    assert str(missing) in text_of(failed, "console")


def test_the_sim_board_does_not_open_the_console_port(tmp_path: Path) -> None:
    config = config_with(tmp_path, '[console]\nenabled = true\nport = "/dev/ttyAMA9"\n')
    report = doctor(config)
    assert statuses(report) == CLEAN
    assert text_of(report, "console").startswith("simulated: ")


# -- the clock on a real clock --------------------------------------------------------------------


def real_clock_board() -> Parts:
    return Parts(registry.Board("pi"), {}, MonotonicClock(), storage=None, gpio=None, sensor=None)


@pytest.mark.parametrize(
    ("synced", "status", "says"),
    [(True, "ok", "NTP synchronized"), (None, "ok", "NTP state unknown"), (False, "warn", "")],
)
def test_ntp_state_on_a_real_clock(synced: bool | None, status: str, says: str) -> None:
    board = real_clock_board()
    result = check_clock(board, ClockReading.take(board.clock), ntp=lambda: synced)
    assert result.status == status
    assert result.text.endswith(says or "NTP not synchronized")
    assert result.details["ntp"] is synced


@pytest.mark.parametrize(
    ("script", "expected"),
    [("echo yes", True), ("echo no", False), ("echo maybe", None), ("exit 1", None)],
)
def test_ntp_synchronized_reads_timedatectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, expected: bool | None
) -> None:
    fake = tmp_path / "timedatectl"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ntp_synchronized() is expected


def test_no_timedatectl_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ntp_synchronized() is None


# -- microphone ---------------------------------------------------------------------------------


def test_a_microphone_that_drops_out_warns_with_the_samples_lost(tmp_path: Path) -> None:
    def drop(board: Parts) -> None:
        mic, clock = board.audio, board.clock
        assert mic is not None
        start = mic.start

        def start_then_drop(on_block: Any) -> None:  # 0.3 s lost, 0.5 s into its check
            start(on_block)
            clock.call_later(0.5, lambda: mic.disconnect(clock.now() + 0.3))  # type: ignore[attr-defined]

        mic.start = start_then_drop  # type: ignore[method-assign]

    report = doctor(config_with(tmp_path), drop)
    assert statuses(report) == {**CLEAN, "microphone": "warn"}
    assert "samples lost" in text_of(report, "microphone")


def test_no_microphone_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    """The firmware records pictures without sound rather than nothing."""

    def unplug(board: Parts) -> None:
        board.audio.stop()  # type: ignore[union-attr]
        board.audio = None
        board.problems["audio"] = "microphone: no ALSA capture device 'default'"

    report = doctor(config_with(tmp_path), unplug)
    assert statuses(report) == {**CLEAN, "microphone": "warn"}
    assert text_of(report, "microphone") == (
        "no ALSA capture device 'default': recordings will have no sound"
    )


def test_audio_off_skips_the_microphone(tmp_path: Path) -> None:
    report = doctor(config_with(tmp_path, "[audio]\nenabled = false\n"))
    assert statuses(report) == {**CLEAN, "microphone": "skip"}
