"""The wall clock follows GPS while it has a fix, and the OS (NTP) otherwise (SPEC 14).

Fixes are made by hand (:class:`hal.gps.Fix`) and handed to the discipline on
the virtual clock, as the firmware's GPS reader posts them to the loop; the
real clock's OS side is a fake OS clock and a fake NTP answer, as in
tests/test_wall_clock.py, so the host's own clock and NTP state decide
nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from camera.clock_discipline import HOLDOVER, STEP_THRESHOLD, ClockDiscipline
from camera.config import GpsConfig
from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL, MANIFEST, StepSource, WallStep
from camera.evidence.verify import verify_recording
from camera.evidence.verify.rules import check_manifest
from hal.clock import Clock
from hal.clock.monotonic import MonotonicClock
from hal.gps import Fix
from sim.clock import VirtualClock
from tests.conftest import make_device

START = datetime(2026, 1, 1, 8, tzinfo=UTC)


def gps_fix(clock: Clock, t: float, off: float, *, valid: bool = True) -> Fix:
    """A fix arriving at device time ``t`` whose UTC is the wall clock's then plus ``off``."""
    return Fix(
        time=t,
        utc=clock.wall(t) + timedelta(seconds=off),
        valid=valid,
        lat=51.5 if valid else None,
        lon=-0.12 if valid else None,
        quality=1 if valid else 0,
        satellites=7 if valid else 0,
    )


class FakeOS:
    """The OS clock: device time from START plus ``offset``; NTP as ``synced`` says."""

    def __init__(self) -> None:
        self.clock: MonotonicClock | None = None
        self.offset = 0.0
        self.synced = False

    def utc(self) -> datetime:
        t = self.clock.now() if self.clock is not None else 0.0
        return START + timedelta(seconds=t + self.offset)

    def real_clock(self) -> MonotonicClock:
        """A real clock on this OS, comparing on every turn of its loop."""
        self.clock = MonotonicClock(utc_now=self.utc, ntp=lambda: self.synced, check_interval=0.0)
        return self.clock


def feed(clock: Clock, discipline: ClockDiscipline, fixes: list[tuple[float, float]]) -> None:
    """Schedule ``(device time, GPS minus wall then)`` fixes, measured when each arrives."""
    for t, off in fixes:
        clock.call_at(t, lambda t=t, off=off: discipline.on_fix(gps_fix(clock, t, off)))


# -- GPS steps the wall clock ---------------------------------------------------
def test_a_cold_start_then_a_fix_90_s_off_is_one_gps_step() -> None:
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock)
    told: list[tuple[float, float, str]] = []
    clock.wall_listeners.append(lambda t, s, source: told.append((t, s, source)))
    # Cold: the receiver talks but has no fix; its time (from its own RTC) is ignored.
    for t in (1.0, 2.0, 3.0):
        clock.call_at(t, lambda t=t: discipline.on_fix(gps_fix(clock, t, 500.0, valid=False)))
        clock.call_at(t, lambda t=t: discipline.on_fix(Fix(time=t, utc=None, valid=False)))
    clock.run(until=3.5)
    assert clock.wall_steps == [] and discipline.source == "sim" and discipline.last_fix is None
    # The first fix: the device's clock is 90 s slow. Later fixes agree with the step.
    feed(clock, discipline, [(4.0, 90.0), *((4.0 + i, 0.0) for i in range(1, 10))])
    clock.run(until=14.0)
    assert told == [(4.0, 90.0, "gps")]
    assert clock.wall_steps == [(4.0, 90.0, "gps")]
    assert clock.wall(4.0) == START + timedelta(seconds=94)
    assert discipline.source == "gps" and discipline.disciplined


@pytest.mark.parametrize("off", [0.1, -0.3, STEP_THRESHOLD, -STEP_THRESHOLD])
def test_an_offset_within_the_threshold_is_jitter_not_a_step(off: float) -> None:
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock)
    feed(clock, discipline, [(1.0, off), (2.0, off), (3.0, off)])
    clock.run(until=4.0)
    assert clock.wall_steps == [] and discipline.last_offset == pytest.approx(off)
    assert discipline.source == "gps"  # it disciplines all the same: the clock agrees with it


def test_a_clock_that_drifted_past_the_threshold_is_stepped_once() -> None:
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock)
    feed(clock, discipline, [(1.0, 0.2), (2.0, 0.45), (3.0, 0.6), (4.0, 0.0)])
    clock.run(until=5.0)
    assert clock.wall_steps == [(3.0, pytest.approx(0.6), "gps")]


def test_the_configured_latency_is_added_to_the_fix_time() -> None:
    """An epoch arrives 300 ms after the second it names: that is not clock error."""
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock, GpsConfig(latency_ms=300))
    feed(clock, discipline, [(1.0, -0.3), (2.0, 90.0 - 0.3)])
    clock.run(until=3.0)
    assert discipline.latency == 0.3
    assert clock.wall_steps == [(2.0, pytest.approx(90.0), "gps")]


def test_a_fix_without_a_timezone_is_utc() -> None:
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock)
    naive = (clock.wall(1.0) + timedelta(seconds=5)).replace(tzinfo=None)
    clock.call_at(1.0, lambda: discipline.on_fix(Fix(time=1.0, utc=naive, valid=True)))
    clock.run(until=2.0)
    assert clock.wall_steps == [(1.0, 5.0, "gps")]


# -- holdover: GPS lost ---------------------------------------------------------
def test_gps_disciplines_until_the_holdover_after_its_last_fix() -> None:
    clock = VirtualClock(START)
    discipline = ClockDiscipline(clock)
    feed(clock, discipline, [(float(t), 0.0) for t in range(1, 61)])  # a minute of fixes
    seen: dict[float, str] = {}
    for t in (0.5, 30.5, 60.5, 60.0 + HOLDOVER - 0.01, 60.0 + HOLDOVER + 0.01):
        clock.call_at(t, lambda t=t: seen.__setitem__(t, discipline.source))
    clock.run(until=200.0)
    assert list(seen.values()) == ["sim", "gps", "gps", "gps", "sim"]
    assert not clock.wall_held and len(clock._heap) == 0  # one timer, not one per fix


def test_a_real_clock_is_held_off_the_os_while_gps_disciplines() -> None:
    """The OS's stale date must not step back what GPS just set."""
    clock = FakeOS().real_clock()
    discipline = ClockDiscipline(clock, holdover=3600.0)
    assert discipline.source == "system" and not discipline.disciplined
    clock.call_at(0.0, lambda: discipline.on_fix(gps_fix(clock, clock.now(), 90.0)))
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(_, step, source)] = clock.wall_steps
    assert step == pytest.approx(90.0) and source == "gps"
    assert clock.follow_os() is None  # 90 s from the OS, and not compared at all
    assert discipline.source == "gps" and discipline.disciplined


@pytest.mark.parametrize(("ntp", "source", "steps"), [(True, "ntp", 2), (False, "system", 1)])
def test_gps_lost_the_os_is_followed_again_only_if_ntp_vouches_for_it(
    ntp: bool, source: str, steps: int
) -> None:
    """After the holdover: an NTP-synchronised OS clock is followed (an ``ntp`` step);
    an unsynchronised one is not (it is the stale date GPS corrected), and the
    time is then undisciplined."""
    os = FakeOS()
    clock = os.real_clock()
    discipline = ClockDiscipline(clock, holdover=0.05)  # the loop's own short wait

    def first_fix() -> None:
        discipline.on_fix(gps_fix(clock, clock.now(), 90.0))  # the OS is 90 s slow
        os.synced = ntp  # NTP has set the OS by the time GPS is lost (or not)...
        os.offset = 91.0 if ntp else 0.0  # ...a second from GPS's time: NTP is followed

    clock.call_at(0.0, first_fix)
    clock.wall_listeners.append(lambda t, s, src: clock.stop() if src != "gps" else None)
    clock.run(until=0.5)  # an ntp step stops it at once; otherwise the guard ends it
    assert [s.source for s in clock.wall_steps] == ["gps", "ntp"][:steps]
    if ntp:
        assert clock.wall_steps[1].seconds == pytest.approx(1.0, abs=0.05)
    assert discipline.source == source and discipline.disciplined is ntp
    assert not clock.wall_held


def test_the_sources_and_what_they_vouch_for() -> None:
    virtual = ClockDiscipline(VirtualClock(START))
    assert (virtual.source, virtual.disciplined) == ("sim", True)
    real = MonotonicClock(utc_now=lambda: START, ntp=lambda: True)
    assert (ClockDiscipline(real).source, ClockDiscipline(real).disciplined) == ("ntp", True)
    real.ntp_synced = False
    assert (ClockDiscipline(real).source, ClockDiscipline(real).disciplined) == ("system", False)


def test_a_step_names_a_known_source() -> None:
    clock = VirtualClock(START)
    with pytest.raises(ValueError, match="'sim'"):
        clock.step_wall(1.0, "sim")  # the simulated world is not a step's cause
    assert clock.wall_steps == [] and clock.wall() == START


# -- in a recording ---------------------------------------------------------------
def test_a_gps_step_during_a_recording_is_listed_with_its_source(tmp_path: Path) -> None:
    dev = make_device(tmp_path, {"buffer": {"pre_event": 1.0}})
    discipline = dev.firmware.clock_discipline
    dev.set_input(2.0, "holster", True)
    clock = dev.clock
    clock.call_at(4.0, lambda: discipline.on_fix(gps_fix(clock, 4.0, -90.0)))
    clock.call_at(5.0, lambda: discipline.on_fix(gps_fix(clock, 5.0, 0.1)))
    dev.run(until=6.0)
    [m] = dev.shutdown()
    assert m["wall_clock_steps"] == [{"time": 4.0, "seconds": -90.0, "source": "gps"}]
    rec = dev.storage_root / m["recording_id"]
    on_disk = json.loads((rec / MANIFEST).read_text())
    assert on_disk["wall_clock_steps"] == m["wall_clock_steps"]
    journal = read_journal_lines(rec / JOURNAL)
    assert journal.of_type(WallStep) == [WallStep(time=4.0, seconds=-90.0, source=StepSource.GPS)]
    report = verify_recording(rec)
    assert report.ok, report.problems


def test_the_overlay_is_told_each_frame_whether_the_time_is_disciplined(tmp_path: Path) -> None:
    """Frames before 1 s: simulated time; 1-2 s: a system clock (marked); after a fix: GPS."""
    dev = make_device(tmp_path)
    capture = dev.firmware.capture
    assert capture.overlay is not None and capture.discipline is dev.firmware.clock_discipline
    told: list[tuple[float, bool]] = []
    draw = capture.overlay.draw
    capture.overlay.draw = lambda image, wall, disciplined=True: (  # type: ignore[method-assign]
        told.append((dev.clock.now(), disciplined)),
        draw(image, wall, disciplined),
    )[-1]
    clock = dev.clock
    clock.call_at(1.0, lambda: setattr(clock, "wall_source", lambda: "system"))
    clock.call_at(2.0, lambda: dev.firmware.clock_discipline.on_fix(gps_fix(clock, 2.0, 0.0)))
    dev.run(until=3.0)
    dev.shutdown()
    assert len(told) > 60
    for t, disciplined in told:
        assert disciplined is not (1.0 <= t < 2.0), t


# -- manifests of older firmware, and bad sources -----------------------------------
def test_old_and_new_steps_pass_verify_rules_and_a_bad_source_does_not() -> None:
    def problems_with(steps: object) -> list[str]:
        problems: list[str] = []
        check_manifest({"format": "bodycam-recording/1", "wall_clock_steps": steps}, problems)
        return [p for p in problems if "wall_clock_steps" in p]

    assert problems_with([{"time": 1.0, "seconds": 90.0}]) == []  # before sources
    assert problems_with([{"time": 1.0, "seconds": -2, "source": s} for s in StepSource]) == []
    assert problems_with([{"time": 1.0, "seconds": 90.0, "source": "sim"}]) == [
        "manifest.json: wall_clock_steps[0].source is \"sim\", expected 'gps' or 'ntp' or 'system'"
    ]
    assert problems_with([{"time": -1.0, "seconds": "x"}]) == [
        "manifest.json: wall_clock_steps[0].time is -1.0, expected device seconds (a number >= 0)",
        'manifest.json: wall_clock_steps[0].seconds is "x", expected seconds (a number)',
    ]
    assert problems_with({}) == ["manifest.json: wall_clock_steps is an object, expected a list"]


def test_a_step_record_without_a_source_round_trips_without_one() -> None:
    old = {"time": 6.0, "seconds": -3600.0}
    assert WallStep.from_json(old).to_json() == old
    new = {"time": 6.0, "seconds": 90.0, "source": "gps"}
    assert WallStep.from_json(new).to_json() == new
    assert WallStep.from_json(new).source is StepSource.GPS


def test_a_journal_of_older_firmware_still_reads_its_steps(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    path.write_text(
        json.dumps({"wall_step": {"time": 6.0, "seconds": -3600.0}})
        + "\n"
        + json.dumps({"wall_step": {"time": 7.0, "seconds": 1.0, "source": "satellite"}})
        + "\n"
    )
    journal = read_journal_lines(path)
    assert journal.of_type(WallStep) == [WallStep(time=6.0, seconds=-3600.0)]
    assert journal.skipped == [2]  # an unknown source is a damaged record, not a guess
