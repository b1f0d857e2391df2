"""``verify`` judges frame times by how they were made: exact, or a real sensor's.

Recordings are made by the real pipeline (firmware, encoder, ring, recorder,
custody) on the virtual clock, with a camera double that delivers frames at
chosen capture times: jitter, a slow clock, lost frames (numbers skip, as
our sensors skip them across a dropout), or a jump in time with no number
skipped. The recorder is told the times are the sensor's where a case says
so (``timing = "sensor"`` in the journal and manifest), exactly as the
firmware does on a real clock. Where a case relabels a manifest, it re-signs
it with the device key, so only the timing rule can object.

With frame codes (the synthetic scene) and without (a real camera's
pictures: numbers then come from the manifest's segments and gaps).
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from camera.config import load_config
from camera.evidence.canonical import sign_document
from camera.evidence.keys import test_key
from camera.evidence.manifest import dumps
from camera.evidence.records import MANIFEST, Timing
from camera.evidence.verify import Report, verify_recording
from camera.evidence.verify.continuity import JITTER_PERIODS, Continuity, check_frames
from camera.evidence.verify.decode import DecodedFrame
from camera.evidence.verify.findings import Findings
from camera.evidence.verify.rules import Expect
from camera.evidence.verify.trust import keys_beside
from camera.firmware import Firmware
from camera.framecode import CODE_HEIGHT, CODE_WIDTH
from hal.board import open_hal
from hal.clock import Clock, Timer
from hal.sensor import FrameCallback, Sensor
from sim.scene import SyntheticScene

FPS = 30
PERIOD = 1 / FPS
DEVICE = "BWC-TIME"
KEY = test_key(DEVICE, 0)
#: Frames the camera loses in the "declared gap" runs (numbers skip them).
LOST = range(100, 106)
#: Where the undeclared jump happens, and by how much.
JUMP_AT, JUMP = 95, 0.2

CaptureTime = Callable[[int], float | None]


class TimedSensor(Sensor):
    """Test double for a real camera: the synthetic scene at chosen capture times.

    ``capture(n)`` is frame ``n``'s capture time (device seconds, increasing),
    or None for a frame the camera lost (its number is skipped). Without
    ``codes`` the SPEC 8 strip is blanked, like a real camera's pictures.
    """

    def __init__(
        self, clock: Clock, width: int, height: int, capture: CaptureTime, codes: bool
    ) -> None:
        super().__init__(clock, width, height, FPS)
        self.scene = SyntheticScene(width, height, 0)
        self.capture = capture
        self.codes = codes
        self._timer: Timer | None = None
        self._on_frame: FrameCallback | None = None

    def start(self, on_frame: FrameCallback) -> None:
        self._on_frame = on_frame
        self._schedule(0)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._on_frame = None

    def _schedule(self, n: int) -> None:
        while (t := self.capture(n)) is None:
            n += 1
        self._timer = self.clock.call_at(t, lambda: self._tick(n, t))

    def _tick(self, n: int, t: float) -> None:
        on_frame = self._on_frame
        if on_frame is None:
            return
        self._schedule(n + 1)
        image = self.scene.render(n, t)
        if not self.codes:
            image[:CODE_HEIGHT, :CODE_WIDTH] = 0
        on_frame(image, n, t)


def jittered(seed: int = 1, jitter: float = 0.2 * PERIOD, rate: float = 1.003) -> CaptureTime:
    """A real camera: each frame up to ``jitter`` off a grid whose clock runs 0.3 % slow."""
    rng = random.Random(seed)
    offsets = [rng.uniform(-jitter, jitter) for _ in range(1000)]
    return lambda n: None if n in LOST else n * PERIOD * rate + offsets[n] + jitter


def record(
    root: Path, capture: CaptureTime, *, codes: bool, timing: Timing | None, cut: bool = False
) -> Path:
    """One recording, frames ~30..150 (trigger at 2.0 s, 1 s pre-event, 1 s segments).

    ``cut``: the power is cut at the end instead (no stop, unsynced bytes lost)
    and the next boot's recovery writes the manifest from the journal.
    """
    config = load_config(
        None,
        {
            "device": {"id": DEVICE},
            "video": {"width": 640, "height": 360, "fps": FPS, "gop": 10, "bitrate": 800_000},
            "buffer": {"pre_event": 1.0},
            "recording": {"segment_seconds": 1.0},
        },
    )
    hal = open_hal("sim", storage_root=root / "store", width=640, height=360, fps=FPS)
    hal.sensor = TimedSensor(hal.clock, 640, 360, capture, codes)
    firmware = Firmware(config, hal, KEY)
    if timing is not None:  # as the firmware says on a real clock
        firmware.recorder.video = replace(firmware.recorder.video, timing=timing)
    firmware.boot()
    hal.clock.call_at(2.0, lambda: hal.gpio.drive("holster", True))
    firmware.run(5.0)
    if cut:
        hal.storage.power_cut()
        hal.storage.unlock()  # the dead firmware's lock dies with it
        hal.storage.lock()
        firmware.recover_after_power_cut()
        hal.storage.unlock()
    else:
        firmware.shutdown()
    hal.close()
    [rec] = [p for p in (root / "store").iterdir() if (p / MANIFEST).is_file()]
    return rec


def manifest(rec: Path) -> dict[str, Any]:
    return json.loads((rec / MANIFEST).read_text())


def resign(rec: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the manifest and sign it again with the device key: only the content is judged."""
    m = manifest(rec)
    edit(m)
    (rec / MANIFEST).write_bytes(dumps(sign_document(KEY, m)))


def check(rec: Path) -> Report:
    """Verify with the device's exported key: signatures must hold, whatever else fails."""
    report = verify_recording(rec, keys_beside(rec.parent))
    assert not any("signature" in p for p in report.problems), report.problems
    return report


def segment_of(m: dict[str, Any], frame: int) -> str:
    [name] = [s["file"] for s in m["segments"] if s["first_frame"] <= frame <= s["last_frame"]]
    return name


CASES: dict[str, tuple[CaptureTime, Timing | None]] = {
    "jitter": (jittered(), Timing.SENSOR),
    "jump": (lambda n: n * PERIOD + (JUMP if n >= JUMP_AT else 0.0), Timing.SENSOR),
    "exact_2ms": (lambda n: n * PERIOD + (0.002 if n == 95 else 0.0), None),
    "exact_lost": (lambda n: None if n in LOST else n * PERIOD, None),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bool], Path]:
    done: dict[tuple[str, bool], Path] = {}

    def get(case: str, codes: bool) -> Path:
        if (case, codes) not in done:
            capture, timing = CASES[case]
            root = tmp_path_factory.mktemp(f"{case}-{codes}")
            done[case, codes] = record(root, capture, codes=codes, timing=timing)
        return done[case, codes]

    return get


@pytest.fixture
def copy(made: Callable[[str, bool], Path], tmp_path: Path) -> Callable[[str, bool], Path]:
    """A private copy (recording and public key) a test may edit."""

    def get(case: str, codes: bool) -> Path:
        rec = made(case, codes)
        store = tmp_path / f"{case}-{codes}"
        store.mkdir()
        for pem in rec.parent.glob("*.pub.pem"):
            shutil.copy(pem, store)
        return Path(shutil.copytree(rec, store / rec.name))

    return get


CODES = pytest.mark.parametrize("codes", [True, False], ids=["codes", "no-codes"])


@CODES
def test_sensor_timed_recording_with_jitter_and_a_declared_gap_verifies(
    made: Callable[[str, bool], Path], codes: bool
) -> None:
    rec = made("jitter", codes)
    m = manifest(rec)
    assert m["timing"] == "sensor" and m["encoder"] == "libx264"
    assert [(g["first_frame"], g["frames"], g["cause"]) for g in m["gaps"]] == [
        (LOST[0], len(LOST), "camera")
    ]
    report = check(rec)
    assert report.ok, report.problems
    codes_read = [c for c in report.codes if c is not None]
    assert bool(codes_read) == codes


@CODES
def test_the_same_jitter_judged_as_exact_fails(
    copy: Callable[[str, bool], Path], codes: bool
) -> None:
    """The timing field is what loosens the check: relabelled exact, the jitter is damage."""
    rec = copy("jitter", codes)
    resign(rec, lambda m: m.update(timing="exact"))
    problems = check(rec).problems
    assert any(re.search(r"timestamp [\d.]+ s breaks 1/30 s spacing", p) for p in problems)


@CODES
def test_an_undeclared_200_ms_jump_fails_and_is_named(
    made: Callable[[str, bool], Path], codes: bool
) -> None:
    rec = made("jump", codes)
    m = manifest(rec)
    assert m["timing"] == "sensor" and m["gaps"] == []
    problems = check(rec).problems
    step = (PERIOD + JUMP) * 1000
    needle = (
        f"{segment_of(m, JUMP_AT)}: frame {JUMP_AT}: {step:.1f} ms after frame {JUMP_AT - 1}, "
        f"allowed {PERIOD * 1000:.1f} ms +- {JITTER_PERIODS * PERIOD * 1000:.1f} ms "
        "(1 frame period at 30 fps, sensor timing); a jump of 7 frame periods needs frame "
        "numbers skipping as many (a declared gap)"
    )
    assert needle in problems, problems
    seg = segment_of(m, JUMP_AT)
    assert any(p.startswith(f"{seg}: frames ") and "sensor timing" in p for p in problems)


def test_exact_timing_still_fails_on_a_2_ms_error(made: Callable[[str, bool], Path]) -> None:
    rec = made("exact_2ms", True)
    m = manifest(rec)
    assert m["timing"] == "exact"
    problems = check(rec).problems
    seg = segment_of(m, 95)
    assert any(
        re.fullmatch(rf"{seg}: timestamp [\d.]+ s breaks 1/30 s spacing", p) for p in problems
    )


def test_a_2_ms_error_is_jitter_to_the_sensor_rule(copy: Callable[[str, bool], Path]) -> None:
    """A manifest relabelled "sensor" is judged by the sensor rule: 2 ms then passes (fine)."""
    rec = copy("exact_2ms", True)
    resign(rec, lambda m: m.update(timing="sensor"))
    report = check(rec)
    assert report.ok, report.problems


@CODES
def test_lying_sensor_label_does_not_hide_an_undeclared_gap(
    copy: Callable[[str, bool], Path], codes: bool
) -> None:
    """A simulated run's lost frames, their gap deleted and the manifest relabelled "sensor"."""
    rec = copy("exact_lost", codes)

    def lie(m: dict[str, Any]) -> None:
        assert m["timing"] == "exact" and len(m["gaps"]) == 1
        m.update(timing="sensor", gaps=[])

    resign(rec, lie)
    m = manifest(rec)
    seg = segment_of(m, LOST[-1] + 1)
    problems = check(rec).problems
    if codes:
        needle = f"{seg}: frame {LOST[-1] + 1} follows {LOST[0] - 1} (undeclared gap)"
        assert needle in problems, problems
    else:
        [entry] = [s for s in m["segments"] if s["file"] == seg]
        needle = (
            f"{seg}: {entry['frames']} frames from frame {entry['first_frame']}, skipping the "
            f"declared gaps, end at frame {entry['last_frame'] - len(LOST)}, manifest says "
            f"last_frame {entry['last_frame']} (frames missing or extra without a declared gap)"
        )
        assert needle in problems, problems


def test_a_segment_deleted_from_a_camera_recording_is_an_undeclared_gap(
    copy: Callable[[str, bool], Path],
) -> None:
    """No frame codes: the numbers come from the manifest, and its segments must join up."""
    rec = copy("jitter", False)
    m = manifest(rec)
    gone, after = m["segments"][1], m["segments"][2]
    (rec / gone["file"]).unlink()

    def cut(m: dict[str, Any]) -> None:
        del m["segments"][1]
        m["frames"] -= gone["frames"]

    resign(rec, cut)
    problems = verify_recording(rec).problems
    needle = f"{after['file']}: frame {after['first_frame']} follows {gone['first_frame'] - 1}"
    assert f"{needle} (undeclared gap)" in problems, problems


def test_a_wrong_frame_rate_fails_the_span_within_the_jitter(
    copy: Callable[[str, bool], Path],
) -> None:
    """Every step of a 30 fps camera is within half a period of 1/31 s; a 1 s segment is not."""
    rec = copy("jitter", False)
    resign(rec, lambda m: m.update(fps=31))
    problems = check(rec).problems
    assert any(
        re.fullmatch(
            r"segment-\d{4}\.ts: frames \d+\.\.\d+ span [\d.]+ s, [\d.]+ s \+- [\d.]+ s at 31 fps "
            r"\(sensor timing: half a frame period plus 1% rate error\)",
            p,
        )
        for p in problems
    ), problems
    assert not any("ms after frame" in p for p in problems), problems


def test_missing_or_bad_timing_is_judged_exact(copy: Callable[[str, bool], Path]) -> None:
    """Older manifests have no timing; a bad value is reported and never loosens the check."""
    rec = copy("jitter", True)
    resign(rec, lambda m: m.pop("timing"))
    assert any("breaks 1/30 s spacing" in p for p in check(rec).problems)
    resign(rec, lambda m: m.update(timing="relaxed"))
    problems = check(rec).problems
    assert "manifest.json: timing is \"relaxed\", expected 'exact' or 'sensor'" in problems
    assert any("breaks 1/30 s spacing" in p for p in problems)


def test_recovery_keeps_encoder_and_timing(tmp_path: Path) -> None:
    """Both come from the journal's head, so a power cut's rebuilt manifest has them too."""
    capture, timing = CASES["jitter"]
    rec = record(tmp_path, capture, codes=False, timing=timing, cut=True)
    m = manifest(rec)
    assert m["stop"]["reason"] == "power_loss" and "recovery" in m
    assert (m["encoder"], m["timing"]) == ("libx264", "sensor")
    report = check(rec)
    assert report.ok, report.problems


def test_the_step_rule_on_made_up_frames() -> None:
    """Half a period either way passes; closer than that, or not advancing, fails by name."""

    def frames(times: list[float]) -> list[DecodedFrame]:
        return [
            DecodedFrame(round(t * 90_000), Fraction(1, 90_000), True, n)
            for n, t in enumerate(times, start=10)
        ]

    expect = Expect(fps=FPS, timing=Timing.SENSOR)
    ok = Findings("s")
    check_frames(frames([0.0, 0.040, 0.060, 0.101]), expect, Continuity(), ok)
    assert ok.close() == []
    bad = Findings("s")
    check_frames(frames([0.0, 0.033, 0.045, 0.045]), expect, Continuity(), bad)
    assert bad.close() == [
        "s: frame 12: 12.0 ms after frame 11, allowed 33.3 ms +- 16.7 ms "
        "(1 frame period at 30 fps, sensor timing)",
        "s: frame 13: timestamp 0.0450 s does not advance past the previous frame's 0.0450 s",
    ]
