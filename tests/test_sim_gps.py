"""The simulated GPS: the seeded route, the NMEA it sends, the pty it sends it on, its [gps] table.

The route and the sentences are checked against pynmeagps (the same parser
the firmware's reader uses) and against geometry (haversine distances),
never against themselves; the pty is checked with a minimal stand-in reader
that reads the slave path itself, and with the firmware's real reader.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import select
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynmeagps import NMEAReader
from pynmeagps.exceptions import NMEAParseError
from pynmeagps.nmeatypes_core import VALCKSUM

from camera.cli import main
from hal.gps import Fix, GpsError
from hal.gps.nmea import NmeaGps
from sim.clock import VirtualClock
from sim.gps import (
    DRIVE_SPEED,
    EARTH_RADIUS_M,
    KNOTS_PER_MS,
    WALK_SPEED,
    WALK_TURN_MAX,
    Receiver,
    Route,
    Window,
    distance_m,
    nmea_sentences,
)
from sim.gps_pty import SIM_PORT, PtyGps, SimulatedGps, receiver_for, serving
from sim.scenario import Scenario, ScenarioError, parse_scenario

T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)
#: Half the last digit of NMEA's ddmm.mmmmm, in metres (and then some): what serializing costs.
NMEA_RESOLUTION_M = 0.02


def lines(data: bytes) -> list[bytes]:
    return [line + b"\r\n" for line in data.split(b"\r\n") if line]


def parsed(data: bytes) -> dict[str, object]:
    """The epoch's sentences by message id (RMC, GGA, ...), checksums checked."""
    out: dict[str, object] = {}
    for line in lines(data):
        msg = NMEAReader.parse(line, validate=VALCKSUM)
        out.setdefault(msg.msgID, msg)
    return out


# --- the route ---------------------------------------------------------------------------


def test_distance_m_is_the_haversine() -> None:
    one_degree = EARTH_RADIUS_M * math.pi / 180
    assert distance_m((0.0, 0.0), (1.0, 0.0)) == pytest.approx(one_degree)
    assert distance_m((60.0, 0.0), (60.0, 1.0)) == pytest.approx(one_degree / 2, rel=1e-4)
    assert distance_m((51.5, -0.1), (51.5, -0.1)) == 0.0
    # Across the antimeridian it is short, not half the world.
    assert distance_m((0.0, 179.9995), (0.0, -179.9995)) == pytest.approx(111.19, abs=0.01)


def test_route_is_seeded_and_order_free() -> None:
    times = [0.0, 0.5, 17.25, 59.9, 60.0, 61.3, 300.0, 1234.5]
    a = [Route(5).at(t) for t in times]
    shuffled = Route(5)
    b = {t: shuffled.at(t) for t in reversed(times)}
    assert a == [b[t] for t in times]
    assert a != [Route(6).at(t) for t in times]
    assert a[0][:2] == (51.5007, -0.1246)


def test_route_at_utc_is_at_seconds_since_t0() -> None:
    t0 = T0 - timedelta(seconds=90.25)
    route = Route(2, t0=t0)
    assert route.at(t0 + timedelta(seconds=42.5)) == route.at(42.5)
    with pytest.raises(ValueError, match="starts at 0 s"):
        route.at(t0 - timedelta(seconds=1))


@pytest.mark.parametrize("lat", [51.5007, 70.0, -45.0])
def test_route_walks_then_drives_at_honest_speeds(lat: float) -> None:
    """Each second moves as far (haversine) as the speed says: the projection uses cos(lat)."""
    route = Route(11, start=(lat, 10.0), walk_seconds=120.0)
    legs = route.legs(600.0)
    walking = [g for g in legs if g[0] < 120.0]
    driving = [g for g in legs if g[0] >= 120.0]
    assert walking and len(driving) >= 5
    assert all(WALK_SPEED[0] <= g[3] <= WALK_SPEED[1] for g in walking)
    assert all(DRIVE_SPEED[0] <= g[3] <= DRIVE_SPEED[1] for g in driving)
    for prev, g in itertools.pairwise(walking):  # gentle heading changes
        turn = (g[4] - prev[4] + 180.0) % 360.0 - 180.0
        assert abs(turn) <= WALK_TURN_MAX + 1e-9
    for prev, g in itertools.pairwise(driving):  # corners of a street grid
        turn = (g[4] - prev[4]) % 90.0
        assert min(turn, 90.0 - turn) < 1e-6
    starts = [g[0] for g in legs]
    for t in range(600):
        here, there = route.at(float(t)), route.at(t + 1.0)
        if not any(t < s <= t + 1 for s in starts):  # one leg: straight at one speed
            assert distance_m(here[:2], there[:2]) == pytest.approx(here.speed, rel=1e-4)
        else:  # never a jump at a corner
            assert distance_m(here[:2], there[:2]) <= max(here.speed, there.speed) + 1e-6


def test_route_turns_away_from_the_pole() -> None:
    route = Route(4, start=(79.99, 0.0), walk_seconds=0.0)
    assert all(abs(route.at(float(t)).lat) <= 80.2 for t in range(0, 20_000, 50))


@given(
    seed=st.integers(0, 2**64 - 1),
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 180),
    t=st.floats(0, 10_000),
)
def test_route_positions_are_positions(seed: int, lat: float, lon: float, t: float) -> None:
    p = Route(seed, start=(lat, lon)).at(t)
    assert -90 <= p.lat <= 90 and -180 <= p.lon < 180
    assert 0 <= p.course < 360 and 0 < p.speed <= DRIVE_SPEED[1]
    # Never further from the start than the fastest speed allows.
    assert distance_m((lat, lon), p[:2]) <= DRIVE_SPEED[1] * t + 1e-6


# --- the sentences -----------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32),
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 180),
    t=st.integers(0, 5000),
    offset=st.floats(-1e6, 1e6),
)
def test_sentences_say_where_the_route_is(
    seed: int, lat: float, lon: float, t: int, offset: float
) -> None:
    """pynmeagps reads back the route's position (to NMEA's resolution), time, speed, course."""
    route = Route(seed, start=(lat, lon), t0=T0 + timedelta(seconds=offset))
    receiver = Receiver(route, seed=seed)
    epoch = receiver.epoch(t)
    msgs = parsed(receiver.output(epoch))
    rmc, gga = msgs["RMC"], msgs["GGA"]
    p = route.at(epoch.utc)
    assert rmc.status == "A" and gga.quality == 1 and gga.numSV == epoch.satellites
    for msg in (rmc, gga):
        assert distance_m((msg.lat, msg.lon), p[:2]) < NMEA_RESOLUTION_M
        assert msg.time == epoch.utc.time()
    assert rmc.date == epoch.utc.date()
    assert rmc.spd / KNOTS_PER_MS == pytest.approx(p.speed, abs=0.001)
    assert rmc.cog == pytest.approx(p.course, abs=0.006)
    assert {"GSA", "GSV"} <= msgs.keys()


def test_epochs_are_on_whole_gps_seconds() -> None:
    """A device clock off by a fraction sees epochs at that fraction, 1 s apart."""
    route = Route(0, t0=T0 + timedelta(seconds=-90.25))
    receiver = Receiver(route, latency=0.1)
    sched = receiver.schedule()
    first = [next(sched) for _ in range(3)]
    assert [when for when, _ in first] == pytest.approx([0.35, 1.35, 2.35])
    assert [e.utc for _, e in first] == [T0 + timedelta(seconds=s) for s in (-90, -89, -88)]


def test_flood_sends_rate_epochs_per_second() -> None:
    receiver = Receiver(Route(0, t0=T0 + timedelta(microseconds=123_456)), rate_hz=50)
    epochs = [receiver.epoch(i) for i in range(60)]
    assert epochs[0].utc == T0 + timedelta(seconds=0.14)  # the first 1/50 s on or after boot
    times = [e.utc for e in epochs]
    assert all(b - a == timedelta(seconds=0.02) for a, b in itertools.pairwise(times))
    stamps = {parsed(receiver.output(e))["RMC"].time for e in epochs}
    assert len(stamps) == 60  # every epoch has its own time of day


def test_cold_start_then_fix_loss() -> None:
    """Cold: no fix and no time. Lost fix: time, but no position."""
    receiver = Receiver(Route(1, t0=T0), cold_start=5.0, fix_loss=[Window(8.0, 2.0)])
    states = []
    for i in range(12):
        epoch = receiver.epoch(i)
        data = receiver.output(epoch)
        rmc, gga = parsed(data)["RMC"], parsed(data)["GGA"]
        has_time = rmc.time != "" and gga.time != "" and rmc.date != ""
        fix = rmc.status == "A" and gga.quality > 0
        if not fix:
            assert rmc.status == "V" and gga.quality == 0
            assert rmc.lat == rmc.lon == gga.lat == gga.lon == ""
            assert b"5130." not in data  # no position hides in any sentence
        states.append((has_time, fix))
    cold, ok, lost = (False, False), (True, True), (True, False)
    assert states == [cold] * 5 + [ok] * 3 + [lost] * 2 + [ok] * 2


def test_stall_is_silence() -> None:
    receiver = Receiver(Route(1, t0=T0), stall=[Window(2.0, 3.0)])
    sizes = [len(receiver.output(receiver.epoch(i))) for i in range(7)]
    assert [n == 0 for n in sizes] == [False, False, True, True, True, False, False]


def test_corrupt_sentences_fail_their_checksum() -> None:
    receiver = Receiver(Route(1, t0=T0), corrupt_rate=1.0)
    clean = Receiver(Route(1, t0=T0))
    for i in range(20):
        bad, good = lines(receiver.output(receiver.epoch(i))), lines(clean.output(clean.epoch(i)))
        assert len(bad) == len(good)
        for b, g in zip(bad, good, strict=True):
            assert len(b) == len(g) and sum(x != y for x, y in zip(b, g, strict=True)) == 1
            assert b[:7] == g[:7] and b[-5:] == g[-5:]  # address and checksum untouched
            with pytest.raises(NMEAParseError, match="checksum"):
                NMEAReader.parse(b, validate=VALCKSUM)


def test_garbage_lines_are_no_sentences() -> None:
    receiver = Receiver(Route(1, t0=T0), garbage_rate=1.0)
    clean = Receiver(Route(1, t0=T0))
    data = receiver.output(receiver.epoch(3))
    sentences = [line for line in lines(data) if line.startswith(b"$")]
    junk = [line for line in lines(data) if not line.startswith(b"$")]
    assert sentences == lines(clean.output(clean.epoch(3)))
    assert len(junk) == len(sentences) and not any(b"$" in j for j in junk)


def test_output_is_a_function_of_seed_and_epoch() -> None:
    def make() -> Receiver:
        return Receiver(Route(9, t0=T0), seed=9, corrupt_rate=0.3, garbage_rate=0.3)

    a, b = make(), make()
    forward = [a.output(a.epoch(i)) for i in range(10)]
    backward = [b.output(b.epoch(i)) for i in reversed(range(10))][::-1]
    assert forward == backward
    other = Receiver(Route(9, t0=T0), seed=10, corrupt_rate=0.3, garbage_rate=0.3)
    assert forward != [other.output(other.epoch(i)) for i in range(10)]


def test_sentences_never_read_the_host_clock() -> None:
    """pynmeagps fills a missing time or date from datetime.now(): every field is given."""
    epoch = Receiver(Route(0, t0=T0), cold_start=10.0).epoch(0)
    for sentence in nmea_sentences(epoch):
        fields = sentence.split(b"*")[0].split(b",")
        if fields[0].endswith((b"RMC", b"GGA")):
            assert fields[1] == b""
        if fields[0].endswith(b"RMC"):
            assert fields[9] == b""


# --- the pty -----------------------------------------------------------------------------


class SlaveReader:
    """A minimal stand-in for the firmware's reader: reads the slave path, counts bytes."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
        self.data = bytearray()
        self.calls: list[int] = []

    def wait_handled(self, n_bytes: int, timeout: float) -> bool:
        self.calls.append(n_bytes)
        while len(self.data) < n_bytes:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return False
            self.data += os.read(self.fd, 65536)
        return len(self.data) == n_bytes

    def close(self) -> None:
        os.close(self.fd)


def test_pty_carries_every_epoch_at_its_time() -> None:
    receiver = Receiver(Route(3, t0=T0), garbage_rate=0.2, stall=[Window(2.0, 1.0)])
    gps = SimulatedGps(receiver)
    clock = VirtualClock(T0)
    reader = SlaveReader(gps.path)
    seen: list[tuple[float, int]] = []
    real = reader.wait_handled

    def waited(n: int, timeout: float) -> bool:
        seen.append((clock.now(), n))
        return real(n, timeout)

    reader.wait_handled = waited  # type: ignore[method-assign]
    try:
        gps.start(clock, reader)
        clock.run(until=5.5)
    finally:
        gps.close()
        reader.close()
    expected = b"".join(receiver.output(receiver.epoch(i)) for i in range(6))
    assert bytes(reader.data) == expected
    # One write per epoch at epoch + latency, waited for with the running total;
    # the stalled second writes nothing and waits for nothing.
    assert [t for t, _ in seen] == pytest.approx([0.1, 1.1, 3.1, 4.1, 5.1])
    assert seen[-1][1] == len(expected) == gps.written
    assert gps.epochs == 6 and gps.dropped == 0 and gps.timeouts == 0


def test_a_reader_that_never_answers_is_given_up_once() -> None:
    class Gone:
        calls = 0

        def wait_handled(self, n_bytes: int, timeout: float) -> bool:
            self.calls += 1
            return False

    gps = SimulatedGps(Receiver(Route(0, t0=T0)))
    clock = VirtualClock(T0)
    gone = Gone()
    try:
        gps.start(clock, gone)
        clock.run(until=20.0)
    finally:
        gps.close()
    assert gone.calls == 1 and gps.timeouts == 1 and gps.epochs == 20


def test_without_a_reader_the_pty_fills_and_drops() -> None:
    gps = SimulatedGps(Receiver(Route(0, t0=T0)))
    clock = VirtualClock(T0)
    try:
        gps.start(clock, None)
        clock.run(until=600.0)  # far more than a pty holds
    finally:
        gps.close()
    assert gps.epochs == 600 and gps.written > 0 and gps.dropped > 0


def test_stop_ends_the_epochs_and_close_frees_the_pty() -> None:
    gps = SimulatedGps(Receiver(Route(0, t0=T0)))
    clock = VirtualClock(T0)
    gps.start(clock, None)
    clock.run(until=3.5)
    gps.stop()
    clock.run(until=10.0)
    assert gps.epochs == 4  # 0.1, 1.1, 2.1, 3.1
    path = gps.path
    gps.close()
    gps.close()
    assert not Path(path).exists()
    with pytest.raises(RuntimeError, match="already started"):
        gps.start(clock, None)


def test_the_real_reader_stamps_each_fix_at_its_epoch() -> None:
    """Through hal.gps.nmea on the pty, as the firmware reads it: exact device times."""
    route = Route(8, t0=T0 + timedelta(seconds=0.5))
    receiver = Receiver(route, latency=0.2, corrupt_rate=0.1, fix_loss=[Window(3.0, 1.0)])
    gps = SimulatedGps(receiver)
    clock = VirtualClock(T0)
    reader = NmeaGps.open(clock, gps.path, 9600)
    fixes: list[tuple[float, Fix]] = []
    reader.start(lambda fix: fixes.append((clock.now(), fix)))
    try:
        gps.start(clock, reader)
        clock.run(until=8.0)
    finally:
        gps.stop()
        reader.close()
        gps.close()
    assert gps.timeouts == 0 and fixes
    assert any(f.quality is None or f.speed is None for _, f in fixes)  # a corrupted half
    for delivered, fix in fixes:
        # Stamped when its epoch arrived; delivered then, or (an epoch missing its
        # RMC or GGA) when the next epoch's first sentence says it is complete.
        epoch_time = (fix.utc - route.t0).total_seconds()
        assert fix.time == pytest.approx(epoch_time + 0.2, abs=1e-9)
        whole = fix.quality is not None and (fix.speed is not None or not fix.valid)
        assert delivered == pytest.approx(fix.time + (0.0 if whole else 1.0), abs=1e-9)
        if fix.valid:
            assert fix.time not in Window(3.0, 1.0)
            p = route.at(fix.utc)
            assert distance_m((fix.lat, fix.lon), p[:2]) < NMEA_RESOLUTION_M
        else:
            assert fix.lat is None
    assert reader.stats.bad_checksum > 0  # the corrupted sentences were seen and skipped


def test_the_stable_port_name_resolves_only_while_served() -> None:
    gps = SimulatedGps(Receiver(Route(0, t0=T0)))
    clock = VirtualClock(T0)
    try:
        with serving(gps):
            reader = PtyGps.open(clock, SIM_PORT, 9600)
        reader.close()
        assert reader.name == gps.path  # the firmware's own reader, on this run's pty
        with pytest.raises(GpsError, match="sim:gps"):
            PtyGps.open(clock, SIM_PORT, 9600)
    finally:
        gps.close()


# --- [gps] in a scenario -----------------------------------------------------------------

BASE = '[scenario]\nname = "g"\nduration = 30.0\nseed = 4\n'


def scenario(text: str) -> Scenario:
    return parse_scenario(tomllib.loads(BASE + text), "g.toml")


def test_gps_table_defaults_and_seed() -> None:
    s = scenario("")
    assert not s.gps.enabled and s.gps.latency == 0.1 and s.gps_seed == 4
    s = scenario("[gps]\nenabled = true\nseed = 9\nstart = { lat = 48.85, lon = 2.35 }\n")
    receiver = receiver_for(s)
    assert receiver.route.seed == 9 == receiver.seed
    assert receiver.route.at(0.0)[:2] == (48.85, 2.35)


def test_gps_time_offset_moves_the_receivers_clock() -> None:
    s = scenario("[gps]\nenabled = true\ntime_offset = -90\n")
    receiver = receiver_for(s)
    assert receiver.route.t0 == s.start - timedelta(seconds=90)
    assert receiver.epoch(0).utc == s.start - timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gps]\nenabeld = true\n", "gps.enabeld: unknown key (did you mean 'enabled'?)"),
        ("[gps]\nlatency = 1.5\n", "gps.latency: expected less than 1, got 1.5"),
        ("[gps]\ncorrupt_rate = -0.1\n", "gps.corrupt_rate: expected at least 0, got -0.1"),
        ("[gps]\nflood_hz = 50.5\n", "gps.flood_hz: expected an integer, got 50.5"),
        ("[gps]\nflood_hz = 500\n", "gps.flood_hz: expected at most 100, got 500"),
        ("[gps]\nstart = { lat = 89.0, lon = 0 }\n", "gps.start.lat: expected at most 80"),
        ("[gps]\nstart = { lat = 1.0, lng = 0 }\n", "gps.start.lon: missing required key"),
        ("[gps]\nstart = { lat = 1.0, lon = 0, x = 1 }\n", "gps.start.x: unknown key"),
        (
            "[[gps.fix_loss]]\nat = 10.0\nduration = 2.0\n[[gps.fix_loss]]\nat = 31.0\n"
            "duration = 1.0\n",
            "gps.fix_loss[2].at: expected a time within duration 30.0, got 31.0",
        ),
        ("[[gps.stall]]\nat = 1.0\nduration = 0\n", "gps.stall[1].duration: expected more than 0"),
        ("[[gps.stall]]\nat = 1.0\nduration = 2\nlen = 3\n", "gps.stall[1].len: unknown key"),
        ("[gps.stall]\nat = 1.0\n", "gps.stall: expected an array of tables ([[gps.stall]])"),
        (
            "[gps]\nenabled = true\n[config.gps]\nport = '/dev/serial0'\n",
            "config.gps.port: expected no port when [gps] enabled is true",
        ),
        (
            "start = 2060-01-01T00:00:00Z\n[gps]\nenabled = true\ntime_offset = 3e8\n",
            "gps.time_offset: expected GPS time (start + time_offset, over the run) in the years",
        ),
        (
            "[expect]\nclock_step_sources = ['gps', 'gsp']\n",
            "expect.clock_step_sources[2]: expected 'gps', 'ntp' or 'system', got 'gsp'",
        ),
        ("[expect]\ntrack_points_min = -1\n", "expect.track_points_min: expected at least 0"),
    ],
)
def test_gps_table_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(text)
    assert str(info.value).startswith(f"g.toml: {message}"), str(info.value)


def test_scenario_check_accepts_and_rejects(capsys, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        BASE + "[gps]\nenabled = true\ncold_start = 5\n[[gps.fix_loss]]\nat = 10\nduration = 3\n"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + "[gps]\nenabled = true\n[[gps.stall]]\nat = 40\nduration = 3\n")
    assert main(["scenario", "check", str(good)]) == 0
    assert main(["scenario", "check", str(bad)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "bad.toml: gps.stall[1].at" in err


def test_readme_gps_example_is_a_valid_table() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("A scenario's `[gps]` table", 1)[1]
    block = re.search(r"```toml\n(\[gps\]\n.*?)```", section, re.S).group(1)
    data = tomllib.loads(BASE.replace("30.0", "60.0") + block)
    s = parse_scenario(data, "README.md")
    assert s.gps.enabled and s.gps.flood_hz == 50 and len(s.gps.fix_loss) == len(s.gps.stall) == 1
