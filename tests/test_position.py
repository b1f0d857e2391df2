"""The position log (camera/position.py) on the virtual clock, fed hand-made fixes.

Each test posts :class:`Fix` objects at chosen device times, exactly as the
reader would (on the loop, in arrival order), and checks what the log
makes of them: track points with what the receiver said, lost points for an
epoch without a fix and for each silent second, the trigger's position and
its age, and nothing invented in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from camera.evidence.records import LostReason, Position, TrackEntry, TrackLost, TrackPoint
from camera.position import SILENT, PositionLog
from hal.gps import Fix
from sim.clock import VirtualClock

#: The device's wall clock at boot: 2026-01-01T08:00:00Z.
BOOT = datetime(2026, 1, 1, 8, tzinfo=UTC)
RETAIN = 5.0


def fix(
    t: float,
    second: float | None,
    valid: bool = True,
    satellites: int = 9,
    lat: float | None = None,
) -> Fix:
    """An epoch arriving at device time ``t``, naming GPS second ``second`` after BOOT."""
    utc = None if second is None else BOOT + timedelta(seconds=second)
    if not valid:
        return Fix(time=t, utc=utc, valid=False, quality=0, satellites=3)
    return Fix(
        time=t,
        utc=utc,
        valid=True,
        lat=51.5 + t * 1e-5 if lat is None else lat,
        lon=-0.1246,
        speed=1.4,
        course=87.5,
        quality=1,
        satellites=satellites,
        hdop=0.8,
    )


def offsets(points: list[TrackEntry]) -> list[float | None]:
    return [p.offset for p in points if isinstance(p, TrackPoint)]


class World:
    """A virtual clock, a position log started at boot, and the points it made."""

    def __init__(self, start: datetime = BOOT) -> None:
        self.clock = VirtualClock(start)
        self.log = PositionLog(self.clock, RETAIN)
        self.points: list[TrackEntry] = []
        self.log.listeners.append(self.points.append)
        self.log.start()

    def post(self, *fixes: Fix) -> None:
        for f in fixes:
            self.clock.call_at(f.time, lambda f=f: self.log.on_fix(f))

    def run(self, until: float) -> None:
        self.clock.run(until=until)


def test_each_epoch_with_a_fix_is_a_point_with_what_the_receiver_said() -> None:
    w = World()
    w.post(*(fix(s + 0.1, s) for s in range(1, 6)))
    w.run(5.5)
    assert [p.time for p in w.points] == [1.1, 2.1, 3.1, 4.1, 5.1]
    first = w.points[0]
    assert first == TrackPoint(
        time=1.1,
        utc="2026-01-01T08:00:01.000Z",
        lat=51.5 + 1.1e-5,
        lon=-0.1246,
        speed=1.4,
        course=87.5,
        quality=1,
        satellites=9,
        hdop=0.8,
        # The epoch names second 1 and arrived 0.1 s after it, by a true clock.
        offset=-0.1,
    )
    assert all(isinstance(p, TrackPoint) for p in w.points)


def test_the_offset_shows_a_device_clock_that_is_wrong() -> None:
    w = World(start=BOOT - timedelta(seconds=90))  # the device thinks it is 07:58:30
    w.post(fix(1.1, 1))
    w.run(2.0)
    assert offsets(w.points) == [pytest.approx(89.9)]


def test_the_offset_is_the_error_before_the_step_the_fix_itself_caused() -> None:
    """The clock discipline sees a fix first and may step the wall clock on it."""
    w = World(start=BOOT - timedelta(seconds=90))
    f = fix(1.1, 1)

    def discipline_then_log() -> None:
        w.clock.step_wall(89.9, "gps")
        w.log.on_fix(f)

    w.clock.call_at(1.1, discipline_then_log)
    w.post(fix(2.1, 2))
    w.run(2.5)
    # The first point says how wrong the clock was; after the step it agrees.
    assert offsets(w.points) == [pytest.approx(89.9), pytest.approx(0.0)]


def test_an_epoch_without_a_fix_is_lost_with_no_coordinates() -> None:
    w = World()
    w.post(fix(1.1, 1), fix(2.1, 2, valid=False), fix(3.1, None, valid=False), fix(4.1, 4))
    w.run(4.5)
    assert w.points[1] == TrackLost(
        time=2.1, utc="2026-01-01T08:00:02.000Z", lost=LostReason.NO_FIX
    )
    assert w.points[2] == TrackLost(time=3.1, utc=None, lost=LostReason.NO_FIX)
    assert set(w.points[1].to_json()) == {"time", "utc", "lost"}
    assert isinstance(w.points[3], TrackPoint)


def test_an_invalid_fix_that_still_carries_coordinates_is_lost() -> None:
    """Some receivers repeat their last position with status V: it is not a fix."""
    w = World()
    stale = Fix(time=1.1, utc=BOOT + timedelta(seconds=1), valid=False, lat=51.5, lon=-0.1)
    w.post(stale)
    w.run(1.5)
    assert w.points == [TrackLost(time=1.1, utc="2026-01-01T08:00:01.000Z", lost=LostReason.NO_FIX)]
    assert w.log.position_at(1.5) is None and w.log.fix_state() == "none"


def test_a_fix_the_receiver_calls_valid_without_a_position_is_not_placed() -> None:
    w = World()
    w.post(Fix(time=1.1, utc=BOOT + timedelta(seconds=1), valid=True, quality=1))
    w.run(1.5)
    assert w.points == [TrackLost(time=1.1, utc="2026-01-01T08:00:01.000Z", lost=LostReason.NO_FIX)]
    assert w.log.position_at(1.5) is None


def test_each_silent_second_is_lost_no_data_and_nothing_is_interpolated() -> None:
    """Epochs at 1.1 .. 4.1, the receiver stalls, and speaks again at 9.1."""
    w = World()
    w.post(*(fix(s + 0.1, s) for s in range(1, 5)), fix(9.1, 9), fix(10.1, 10))
    w.run(10.5)
    lost = [(p.time, p.lost) for p in w.points if isinstance(p, TrackLost)]
    # Ticks at whole seconds; the last epoch at 4.1: 5.0 is 0.9 s after it,
    # 6.0 is 1.9 s (silent), and so on up to 9.0; at 10.0 the receiver spoke at 9.1.
    assert lost == [(float(s), LostReason.NO_DATA) for s in range(6, 10)]
    assert [p.time for p in w.points if isinstance(p, TrackPoint)] == [
        1.1,
        2.1,
        3.1,
        4.1,
        9.1,
        10.1,
    ]
    assert [p.time for p in w.points] == sorted(p.time for p in w.points)


def test_a_receiver_that_never_speaks_is_lost_every_second() -> None:
    w = World()
    w.run(5.0)
    assert w.points == [
        TrackLost(time=float(s), utc=None, lost=LostReason.NO_DATA) for s in range(2, 6)
    ]
    assert SILENT == 1.5  # the first tick 1.5 s after boot, at 2.0, is the first lost one


def test_a_late_or_early_epoch_is_never_lost() -> None:
    """Jitter of a few tenths around a 1 Hz receiver costs no point and adds no lost one."""
    w = World()
    arrivals = [1.05, 2.45, 2.95, 4.4, 5.0, 6.45]
    w.post(*(fix(t, s) for s, t in enumerate(arrivals, start=1)))
    w.run(7.0)
    assert [p.time for p in w.points] == arrivals


def test_a_fast_receiver_makes_one_point_per_gps_second() -> None:
    """10 Hz epochs: the first of each GPS second is the track's; every fix still counts."""
    w = World()
    epochs = [fix(1 + i / 10, 1 + i / 10) for i in range(30)]
    w.post(*epochs)
    w.run(4.0)
    assert [p.time for p in w.points] == [1.0, 2.0, 3.0]
    assert w.log.latest is epochs[-1]


def test_epochs_without_a_gps_time_are_thinned_by_device_time() -> None:
    w = World()
    w.post(*(fix(1 + i / 10, None, valid=False) for i in range(20)))
    w.run(3.0)
    assert [p.time for p in w.points] == [1.0, 1.5, 2.0, 2.5]


def test_position_at_is_the_last_valid_fix_at_or_before_with_its_age() -> None:
    w = World()
    w.post(fix(1.1, 1), fix(2.1, 2), fix(3.1, 3, valid=False), fix(4.1, 4))
    w.run(4.5)
    # A trigger at 3.9, recognised at 4.5: the fix at 4.1 came after it.
    got = w.log.position_at(3.9)
    assert got == Position(
        time=2.1,
        age=1.8,
        utc="2026-01-01T08:00:02.000Z",
        lat=51.5 + 2.1e-5,
        lon=-0.1246,
        speed=1.4,
        quality=1,
        satellites=9,
    )
    at_arrival = w.log.position_at(4.1)
    assert at_arrival is not None and at_arrival.age == 0.0
    assert w.log.position_at(1.0) is None  # nothing before it


def test_no_valid_fix_ever_is_no_position() -> None:
    w = World()
    w.post(fix(1.1, 1, valid=False), fix(2.1, None, valid=False))
    w.run(3.0)
    assert w.log.position_at(3.0) is None
    assert w.log.age() is None


def test_an_old_fix_is_kept_however_long_ago_with_its_true_age() -> None:
    """The sky went away at 2 s: a trigger a minute later still gets that fix, 58 s old."""
    w = World()
    w.post(fix(1.1, 1), fix(2.0, 2), *(fix(s + 0.1, s, valid=False) for s in range(3, 60)))
    w.run(60.0)
    got = w.log.position_at(60.0)
    assert got is not None and (got.time, got.age) == (2.0, 58.0)


def test_the_ring_holds_the_pre_event_points_and_no_more() -> None:
    w = World()
    w.post(*(fix(s + 0.1, s) for s in range(1, 20)))
    w.run(19.5)
    recent = w.log.points_from(15.0)
    assert [p.time for p in recent] == [15.1, 16.1, 17.1, 18.1, 19.1]
    held = w.log.points_from(0.0)
    assert held[0].time >= 19.1 - RETAIN  # older ones were let go
    assert len(held) <= 6


def test_status_fields_off_none_valid_and_stale() -> None:
    clock = VirtualClock(BOOT)
    log = PositionLog(clock, RETAIN)
    assert log.fix_state() == "off"  # no receiver expected
    log.start()
    assert log.fix_state() == "none"
    clock.call_at(1.1, lambda: log.on_fix(fix(1.1, 1)))
    clock.run(until=2.0)
    assert log.fix_state() == "valid" and log.age() == pytest.approx(0.9)
    clock.run(until=2.6)  # 1.5 s of silence: no fix now, whatever the last one said
    assert log.fix_state() == "none" and log.age() == pytest.approx(1.5)
    clock.call_at(3.0, lambda: log.on_fix(fix(3.0, 3, valid=False)))
    clock.run(until=3.0)
    assert log.fix_state() == "none" and log.latest is not None and log.latest.satellites == 3


def test_close_stops_the_ticks() -> None:
    w = World()
    w.run(3.0)
    before = len(w.points)
    w.log.close()
    w.run(10.0)
    assert len(w.points) == before
