"""The real clock's wall time follows the system clock (NTP): steps are noticed and listed.

A fake OS clock stands in for ``datetime.now``: it reads the clock's own
device time plus an offset the test moves, so nothing waits for real time
to pass (the loop is driven by timers and ``stop()``; the one wait is the
loop's own, for its check interval, a few hundredths of a second).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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


def clock_on(fake: FakeOS, **kwargs: float) -> MonotonicClock:
    clock = MonotonicClock(utc_now=fake, **kwargs)
    fake.clock = clock
    return clock


def test_defaults_are_the_documented_ones() -> None:
    assert (WALL_CHECK_INTERVAL, WALL_STEP_THRESHOLD) == (1.0, 0.5)


def test_a_step_is_listed_and_slewing_is_not() -> None:
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.0)  # compare on every turn of the loop
    told: list[tuple[float, float]] = []
    clock.wall_listeners.append(lambda t, step: told.append((t, step)))
    # Each timer runs after a comparison: slew 0.3 s (ignored), then NTP steps to +2.3 s.
    clock.call_at(0.0, lambda: setattr(fake, "offset", 0.3))
    clock.call_at(0.0, lambda: setattr(fake, "offset", 2.3))
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(at, step)] = told
    assert step == pytest.approx(2.3, abs=0.01)
    assert clock.wall_steps == [(at, step)]
    assert abs((clock.wall() - fake()).total_seconds()) < 0.01  # wall follows the OS again


def test_a_step_back_is_listed_too() -> None:
    fake = FakeOS()
    clock = clock_on(fake, check_interval=0.0)
    clock.call_at(0.0, lambda: setattr(fake, "offset", -3600.0))  # a bad NTP server, fixed later
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    [(_, step)] = clock.wall_steps
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
    clock.wall_listeners.append(lambda t, step: clock.stop())
    clock.run(until=5.0)
    assert clock.now() < 1.0, "waited for the guard instead of the check"
    [(_, step)] = clock.wall_steps
    assert step == pytest.approx(1.0, abs=0.01)


def test_a_given_start_is_kept_and_never_compared() -> None:
    fake = FakeOS()
    clock = MonotonicClock(BOOT - timedelta(days=1), utc_now=fake, check_interval=0.0)
    fake.clock = clock
    clock.call_at(0.0, clock.stop)
    clock.run(until=5.0)
    assert fake.reads == 0 and clock.wall_steps == [] and not clock.follows_os
