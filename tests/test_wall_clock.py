"""The real clock's wall time follows the system clock (NTP): steps are noticed and listed.

A fake OS clock stands in for ``datetime.now``: it reads the clock's own
device time plus an offset the test moves, so nothing waits for real time
to pass (the loop is driven by timers and ``stop()``; the one wait is the
loop's own, for its check interval, a few hundredths of a second). A fake
NTP answer stands in for the kernel's, so the host's own NTP state never
decides a test.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hal.clock import ntp as ntp_module
from hal.clock.monotonic import WALL_CHECK_INTERVAL, WALL_STEP_THRESHOLD, MonotonicClock

BOOT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeOS:
    """The system clock as a test sets it: in step with device time, plus ``offset``."""

    def __init__(self) -> None:
        self.clock: MonotonicClock | None = None
        self.offset = 0.0
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        t = self.clock.now() if self.clock is not None else 0.0
        return BOOT + timedelta(seconds=t + self.offset)


class FakeNtp:
    """Whether NTP synchronises the fake OS clock, as the test says; counts the questions."""

    def __init__(self, synced: bool | None = False) -> None:
        self.synced = synced
        self.asked = 0

    def __call__(self) -> bool | None:
        self.asked += 1
        return self.synced


def clock_on(fake: FakeOS, ntp: FakeNtp | None = None, **kwargs: float) -> MonotonicClock:
    clock = MonotonicClock(utc_now=fake, ntp=ntp or FakeNtp(), **kwargs)
    fake.clock = clock
    return clock


def test_defaults_are_the_documented_ones() -> None:
    assert (WALL_CHECK_INTERVAL, WALL_STEP_THRESHOLD) == (1.0, 0.5)


def test_a_step_is_listed_and_slewing_is_not() -> None:
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.0)  # compare on every turn of the loop
    told: list[tuple[float, float, str]] = []
    clock.wall_listeners.append(lambda t, step, source: told.append((t, step, source)))
    # Each timer runs after a comparison: slew 0.3 s (ignored), then NTP steps to +2.3 s.
    clock.call_at(0.0, lambda: setattr(fake, "offset", 0.3))
    clock.call_at(0.0, lambda: setattr(fake, "offset", 2.3))
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(at, step, source)] = told
    assert step == pytest.approx(2.3, abs=0.01)
    assert source == "system"  # NTP does not say it synchronises this OS clock
    assert clock.wall_steps == [(at, step, "system")]
    assert abs((clock.wall() - fake()).total_seconds()) < 0.01  # wall follows the OS again


def test_a_step_back_is_listed_too() -> None:
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.0)
    clock.call_at(0.0, lambda: setattr(fake, "offset", -3600.0))  # a bad NTP server, fixed later
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(_, step, _)] = clock.wall_steps
    assert step == pytest.approx(-3600.0, abs=0.01)


def test_the_os_is_read_at_most_once_per_interval() -> None:
    fake = FakeOS()
    clock = clock_on(fake)  # the default interval: 1 s
    assert fake.reads == 1  # at boot, for the wall origin
    fake.offset = 5.0
    for _ in range(50):
        clock.call_at(0.0, lambda: None)
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    assert fake.reads == 1 and clock.wall_steps == []


def test_the_loop_wakes_to_compare_even_with_nothing_scheduled() -> None:
    """No timers at all: the comparison still happens (the loop waits no longer than it)."""
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.02)
    fake.offset = 1.0
    clock.wall_listeners.append(lambda t, step, source: clock.stop())
    clock.run(until=5.0)
    assert clock.now() < 1.0, "waited for the guard instead of the check"
    [(_, step, _)] = clock.wall_steps
    assert step == pytest.approx(1.0, abs=0.01)


def test_a_given_start_is_kept_and_never_compared() -> None:
    fake, ntp = FakeOS(), FakeNtp(True)
    clock = MonotonicClock(BOOT - timedelta(days=1), utc_now=fake, ntp=ntp, check_interval=0.0)
    fake.clock = clock
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    assert fake.reads == 0 and clock.wall_steps == [] and not clock.follows_os
    assert ntp.asked == 0 and clock.wall_source() == "system"  # a replay vouches for nothing


def test_a_step_while_ntp_synchronises_is_an_ntp_step() -> None:
    fake, ntp = FakeOS(), FakeNtp(True)
    clock = clock_on(fake, ntp, check_interval=0.0)
    assert clock.wall_source() == "ntp"
    clock.call_at(0.0, lambda: setattr(fake, "offset", 90.0))
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(_, step, source)] = clock.wall_steps
    assert step == pytest.approx(90.0, abs=0.01) and source == "ntp"


def test_the_ntp_answer_is_asked_once_per_comparison_and_cached() -> None:
    """The overlay asks for the source on every frame: that must not be a system call."""
    fake, ntp = FakeOS(), FakeNtp(None)  # a host that cannot say: taken as not synchronised
    clock = clock_on(fake, ntp)
    asked = ntp.asked
    assert [clock.wall_source() for _ in range(100)] == ["system"] * 100
    assert ntp.asked == asked
    ntp.synced = True
    clock.follow_os()
    assert ntp.asked == asked + 1 and clock.wall_source() == "ntp"


def test_a_held_clock_does_not_compare_with_the_os() -> None:
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.0)
    clock.hold_wall()  # GPS sets wall time now
    fake.offset = 90.0
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    assert clock.wall_steps == [] and clock.follow_os() is None and fake.reads == 1


def test_after_gps_an_unsynchronised_os_clock_is_not_followed_but_an_ntp_one_is() -> None:
    """GPS set the clock; it is lost: a stale OS date must not step it back, NTP may."""
    fake, ntp = FakeOS(), FakeNtp(False)
    clock = clock_on(fake, ntp, check_interval=0.0)
    clock.hold_wall()
    fake.offset = -90.0  # the OS still has the stale date GPS corrected
    clock.release_wall()
    assert clock.follow_os() is None and clock.wall_steps == []
    assert clock.wall_source() == "system"
    ntp.synced = True  # NTP sets the OS clock right: 0.9 s ahead of ours, which drifted
    fake.offset = 0.9
    step = clock.follow_os()
    assert step == pytest.approx(0.9, abs=0.01)
    assert clock.wall_steps[-1].source == "ntp" and clock.wall_source() == "ntp"


@pytest.mark.parametrize(
    ("result", "maxerror", "expected"),
    [(0, 15_999_999, True), (5, 16_000_000, False), (-1, 0, None)],
)
def test_the_kernel_answer_is_timedatectls_rule(
    monkeypatch: pytest.MonkeyPatch, result: int, maxerror: int, expected: bool | None
) -> None:
    """systemd-timedated's NTPSynchronized: adjtimex's maximum error under 16 s."""

    def adjtimex(ref: Any) -> int:
        timex = ref._obj  # what ctypes.byref points at
        assert timex.modes == 0  # read only: never adjusts the clock
        timex.maxerror = maxerror
        return result

    monkeypatch.setattr(ntp_module, "_adjtimex", lambda: adjtimex)
    assert ntp_module.kernel_ntp_synchronized() is expected


def test_the_kernel_answers_where_it_can() -> None:
    """Linux answers yes or no; a system without adjtimex(2) says it cannot tell (None)."""
    expected = (True, False) if sys.platform.startswith("linux") else (None,)
    assert ntp_module.kernel_ntp_synchronized() in expected
