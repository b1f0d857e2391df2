"""The NMEA reader (hal/gps): real ports (a pty, pyserial's ``loop://``), real pynmeagps sentences.

Sentences are built with pynmeagps' ``NMEAMessage(...).serialize()``, so their
checksums are right by construction and a test that expects a bad checksum
breaks one on purpose. Time is the virtual clock's: it stands still while the
reader works, so ``Fix.time`` is exactly the device time at which a test
wrote the bytes, and every wait is on ``wait_handled``, an event or a join.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time as time_module
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from pynmeagps import GET, NMEAMessage

from hal.board import open_hal
from hal.gps import Fix
from hal.gps.decode import KNOTS, MAX_LINE, NmeaDecoder
from hal.gps.nmea import MAX_IN_FLIGHT, NmeaGps
from sim.clock import VirtualClock
from tests.doubles.nmea_receiver import T0, epoch, gga, rmc

WAIT = 5.0  # seconds a handshake may take on a loaded host (returns as soon as it is done)


def stream(seconds: int) -> bytes:
    return b"".join(epoch(s) for s in range(seconds))


def corrupt(sentence: bytes) -> bytes:
    """The same sentence with one payload byte changed: its checksum no longer matches."""
    i = sentence.index(b",") + 1
    return sentence[:i] + (b"8" if sentence[i : i + 1] != b"8" else b"7") + sentence[i + 1 :]


# -- a receiver the test plays -----------------------------------------------------------------


class CountingClock(VirtualClock):
    """The virtual clock, counting fixes posted to it and not yet run (the most at once)."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.pending = 0
        self.most = 0
        self._count = threading.Lock()

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        with self._count:
            self.pending += 1
            self.most = max(self.most, self.pending)

        def run() -> None:
            with self._count:
                self.pending -= 1
            callback()

        super().call_soon_threadsafe(run)


class Receiver:
    """The device end of the port: writes bytes and waits until the reader has handled them."""

    def __init__(self, write: Callable[[bytes], object], gps: NmeaGps) -> None:
        self._write = write
        self.gps = gps
        self.written = 0

    def send(self, data: bytes, *, chunk: int = 4096) -> None:
        for i in range(0, len(data), chunk):
            part = data[i : i + chunk]
            self._write(part)
            self.written += len(part)
            assert self.gps.wait_handled(self.written, WAIT), "the reader did not keep up"


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd: the receiver's end, slave path: the port the reader opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):  # the test closed it (a receiver unplugged)
                os.close(fd)


def write_all(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


@pytest.fixture
def clock() -> CountingClock:
    return CountingClock()


@pytest.fixture
def on_pty(
    pty_pair: tuple[int, str], clock: CountingClock
) -> Iterator[tuple[NmeaGps, Receiver, list[Fix]]]:
    """A started reader on the pty's slave, the receiver on its master, the fixes it delivered."""
    master, path = pty_pair
    gps = NmeaGps.open(clock, path, 9600)
    fixes: list[Fix] = []
    gps.start(fixes.append)
    try:
        yield gps, Receiver(write_all(master), gps), fixes
    finally:
        gps.close()


def returns_at_once(call: Callable[[], bool]) -> bool:
    """``call()``, which must not wait out its 60 s timeout: a reader that is gone reads nothing."""
    began = time_module.monotonic()
    result = call()
    assert time_module.monotonic() - began < 30.0
    return result


def at(clock: VirtualClock, t: float) -> None:
    """Move the virtual clock to device time ``t`` (nothing else is scheduled)."""
    clock.run(until=t)


# -- one epoch ---------------------------------------------------------------------------------


def test_an_rmc_and_gga_make_one_fix_with_the_receivers_numbers(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    utc = T0.replace(microsecond=500_000)
    at(clock, 12.25)
    receiver.send(
        rmc(utc, -33.868812, 151.209295, knots=10.0, course=271.3)
        + gga(utc, -33.868812, 151.209295, quality=2, satellites=11, hdop=0.7)
    )
    clock.run_posted()
    assert len(fixes) == 1
    fix = fixes[0]
    assert fix.time == 12.25  # stamped at arrival, on the device clock
    assert fix.utc == utc
    assert fix.valid
    assert fix.lat == pytest.approx(-33.868812, abs=1e-6)  # NMEA carries 1e-5 minutes
    assert fix.lon == pytest.approx(151.209295, abs=1e-6)
    assert fix.speed == pytest.approx(10.0 * 1852 / 3600)
    assert fix.course == pytest.approx(271.3)
    assert (fix.quality, fix.satellites, fix.hdop) == (2, 11, 0.7)
    assert gps.stats.sentences == 2 and gps.stats.fixes == 1
    assert gps.stats.last_sentence == 12.25


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "BD"])
def test_every_gnss_talker_gives_fixes(talker: str) -> None:
    decoder = NmeaDecoder()
    fixes = decoder.feed(epoch(3, talker=talker), 1.0)
    assert [f.valid for f in fixes] == [True]
    assert fixes[0].utc == T0 + timedelta(seconds=3)


def test_a_non_gnss_talker_is_counted_but_makes_no_fix() -> None:
    decoder = NmeaDecoder()
    assert decoder.feed(epoch(0, talker="II"), 1.0) == []
    assert decoder.stats.sentences == 2
    assert decoder.stats.extra["ignored"] == 2


def test_other_sentence_types_are_parsed_and_ignored() -> None:
    gsa = NMEAMessage("GP", "GSA", GET, opMode="A", navMode=3).serialize()
    decoder = NmeaDecoder()
    fixes = decoder.feed(rmc(T0) + gsa + gga(T0), 1.0)
    assert len(fixes) == 1 and fixes[0].valid
    assert decoder.stats.sentences == 3 and decoder.stats.extra["ignored"] == 1


# -- what the receiver says about its own fix --------------------------------------------------


def test_no_fix_is_invalid_and_has_no_position(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    _, receiver, fixes = on_pty
    at(clock, 3.0)
    # A cold receiver: it knows the time, tracks 3 satellites, has no fix.
    receiver.send(rmc(T0, None, None, status="V") + gga(T0, None, None, quality=0, satellites=3))
    clock.run_posted()
    assert fixes == [Fix(3.0, T0, False, quality=0, satellites=3, hdop=0.8)]


def test_a_stale_position_in_a_no_fix_sentence_is_not_used() -> None:
    """Some receivers repeat the last position with status V: it is not a fix."""
    decoder = NmeaDecoder()
    fixes = decoder.feed(rmc(T0, status="V") + gga(T0, quality=0), 1.0)
    assert len(fixes) == 1
    fix = fixes[0]
    assert not fix.valid
    assert (fix.lat, fix.lon, fix.speed, fix.course) == (None, None, None, None)


@pytest.mark.parametrize(
    ("status", "quality"), [("A", 0), ("V", 1)], ids=["rmc-yes-gga-no", "rmc-no-gga-yes"]
)
def test_a_fix_needs_every_sentence_of_its_epoch_to_say_so(status: str, quality: int) -> None:
    decoder = NmeaDecoder()
    [fix] = decoder.feed(rmc(T0, status=status) + gga(T0, quality=quality), 1.0)
    assert not fix.valid and fix.lat is None


def test_a_receiver_without_time_yet_gives_fixes_without_utc() -> None:
    decoder = NmeaDecoder()
    [fix] = decoder.feed(rmc(None, None, None, status="V") + gga(None, None, None, quality=0), 1.0)
    assert (fix.valid, fix.utc, fix.lat) == (False, None, None)


def test_an_out_of_range_position_is_no_fix() -> None:
    """9959.999 minutes is 100.67 degrees: a checksum-correct sentence can still be nonsense."""
    raw = b"GPGGA,092653.00,9959.99900,N,00007.47600,W,1,09,0.8,0.0,M,0.0,M,,"
    checksum = 0
    for byte in raw:
        checksum ^= byte
    sentence = b"$" + raw + b"*%02X\r\n" % checksum
    decoder = NmeaDecoder()
    decoder.feed(sentence, 1.0)
    [fix] = decoder.feed(epoch(1), 2.0)[:1]
    assert decoder.stats.bad_checksum == 0
    assert (fix.valid, fix.lat, fix.quality) == (False, None, 1)


# -- epochs ------------------------------------------------------------------------------------


def test_an_rmc_alone_is_emitted_when_the_next_epoch_starts_stamped_at_its_own_arrival() -> None:
    decoder = NmeaDecoder()
    assert decoder.feed(rmc(T0), 1.0) == []  # maybe a GGA follows: wait, on no timer
    [fix] = decoder.feed(rmc(T0 + timedelta(seconds=1)), 2.0)
    assert (fix.time, fix.utc, fix.valid, fix.quality) == (1.0, T0, True, None)
    assert fix.speed == pytest.approx(2.9 * KNOTS)


def test_a_gga_alone_takes_the_date_of_the_last_rmc() -> None:
    decoder = NmeaDecoder()
    decoder.feed(epoch(0), 1.0)
    assert decoder.feed(gga(T0 + timedelta(seconds=1)), 2.0) == []
    [fix] = decoder.feed(gga(T0 + timedelta(seconds=2)), 3.0)
    assert (fix.time, fix.utc, fix.valid, fix.speed) == (2.0, T0 + timedelta(seconds=1), True, None)
    assert fix.satellites == 9


def test_a_gga_alone_after_midnight_is_on_the_next_day() -> None:
    late = datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC)
    decoder = NmeaDecoder()
    decoder.feed(rmc(late) + gga(late), 1.0)
    decoder.feed(gga(late + timedelta(seconds=2)), 3.0)
    [fix] = decoder.feed(gga(late + timedelta(seconds=3)), 4.0)
    assert fix.utc == datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)


def test_a_gga_alone_before_any_rmc_has_no_utc() -> None:
    decoder = NmeaDecoder()
    decoder.feed(gga(T0), 1.0)
    [fix] = decoder.feed(gga(T0 + timedelta(seconds=1)), 2.0)
    assert (fix.utc, fix.valid) == (None, True)


def test_a_repeated_sentence_of_the_same_time_starts_a_new_epoch() -> None:
    """A receiver that repeats its time (or a flood) still gives one fix per RMC+GGA."""
    decoder = NmeaDecoder()
    fixes = decoder.feed(epoch(0) + epoch(0) + rmc(T0), 1.0)
    assert len(fixes) == 2
    assert len(decoder.feed(gga(T0), 2.0)) == 1


def test_the_pending_epoch_is_never_emitted_on_its_own(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    _, receiver, fixes = on_pty
    receiver.send(rmc(T0))
    clock.run_posted()
    assert fixes == []
    at(clock, 1.0)
    receiver.send(epoch(1))
    clock.run_posted()
    assert [(f.time, f.utc) for f in fixes] == [(0.0, T0), (1.0, T0 + timedelta(seconds=1))]


# -- bad input ---------------------------------------------------------------------------------


def test_a_bad_checksum_is_counted_and_skipped(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    t1 = T0 + timedelta(seconds=1)
    receiver.send(corrupt(rmc(T0)) + gga(T0) + rmc(t1) + corrupt(gga(t1)) + epoch(2))
    clock.run_posted()
    assert gps.stats.bad_checksum == 2
    assert gps.stats.sentences == 4
    # The corrupted RMC cost epoch 0 its speed and date, not its fix; nothing of it was read.
    assert [(f.utc, f.speed is not None) for f in fixes] == [
        (None, False),
        (t1, True),
        (T0 + timedelta(seconds=2), True),
    ]


def test_garbage_lines_are_counted_and_a_sentence_after_junk_still_reads() -> None:
    decoder = NmeaDecoder()
    junk = b"\x00\xff hello\r\nGA,1,2*33\r\n$$$\r\n"
    fixes = decoder.feed(junk + b"noise" + rmc(T0) + b"\xfe\xfe" + gga(T0), 1.0)
    assert len(fixes) == 1 and fixes[0].valid
    assert decoder.stats.garbage >= 4
    assert decoder.stats.extra["garbage_bytes"] > 0


def test_a_flood_without_newlines_costs_bounded_memory_and_is_counted(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    flood = bytes(range(256)).replace(b"\n", b"").replace(b"$", b"") * 1000  # ~254 kB, no line
    receiver.send(flood)
    assert gps.decoder.buffered <= MAX_LINE
    assert gps.stats.extra["garbage_bytes"] >= len(flood) - MAX_LINE
    receiver.send(b"\r\n" + epoch(0))
    assert gps.stats.extra["garbage_bytes"] == len(flood)
    assert gps.stats.garbage == 1  # one line of junk, however the reads cut it
    clock.run_posted()
    assert [f.valid for f in fixes] == [True]


def test_a_50_hz_flood_drops_fixes_and_never_holds_the_loop_beyond_the_bound(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    epochs = 250  # five seconds at 50 Hz, while the loop is busy and takes none
    receiver.send(b"".join(epoch(s) for s in range(epochs)))
    assert clock.pending == MAX_IN_FLIGHT
    assert gps.stats.fixes == MAX_IN_FLIGHT
    assert gps.stats.dropped == epochs - MAX_IN_FLIGHT
    clock.run_posted()
    assert len(fixes) == MAX_IN_FLIGHT
    receiver.send(epoch(epochs))  # the loop caught up: fixes flow again
    clock.run_posted()
    assert len(fixes) == MAX_IN_FLIGHT + 1
    assert clock.most == MAX_IN_FLIGHT


def test_a_stalled_receiver_gives_no_fixes_and_keeps_the_reader_alive(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    receiver.send(rmc(T0))  # half an epoch, then silence
    assert not gps.wait_handled(receiver.written + 1, 0.3)
    clock.run_posted()
    assert fixes == []
    assert not gps.finished.is_set()
    receiver.send(gga(T0))  # it speaks again
    clock.run_posted()
    assert len(fixes) == 1


def test_a_port_that_goes_away_ends_the_reader_quietly(
    pty_pair: tuple[int, str], clock: CountingClock, caplog: pytest.LogCaptureFixture
) -> None:
    master, path = pty_pair
    gps = NmeaGps.open(clock, path, 9600)
    gps.start(lambda fix: None)
    receiver = Receiver(write_all(master), gps)
    receiver.send(epoch(0))
    os.close(master)  # the receiver is unplugged
    assert gps.finished.wait(WAIT)
    assert gps.stats.extra["errors"] == 1
    assert returns_at_once(lambda: gps.wait_handled(receiver.written + 1, 60.0)) is False
    assert len([r for r in caplog.records if "read failed" in r.message]) == 1
    gps.close()


def test_a_port_closed_under_the_reader_ends_it(clock: CountingClock) -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    gps = NmeaGps(clock, port, name="loop")
    gps.start(lambda fix: None)
    port.close()
    assert gps.finished.wait(WAIT)
    gps.close()


def test_close_is_prompt_idempotent_and_stops_deliveries(
    on_pty: tuple[NmeaGps, Receiver, list[Fix]], clock: CountingClock
) -> None:
    gps, receiver, fixes = on_pty
    receiver.send(epoch(0))
    gps.close()
    assert gps.finished.is_set()
    assert not gps.port.is_open
    clock.run_posted()  # posted before close(): not delivered to a closed source's user
    assert fixes == []
    gps.close()
    with pytest.raises(RuntimeError, match="closed"):
        gps.start(fixes.append)


# -- wait_handled ------------------------------------------------------------------------------


def test_wait_handled_counts_every_byte_read(clock: CountingClock) -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    gps = NmeaGps(clock, port, name="loop")
    assert not gps.wait_handled(1, 0.05)  # not started: nothing is read
    gps.start(lambda fix: None)
    try:
        assert gps.wait_handled(0, 0.0)
        data = b"junk\r\n" + epoch(0)[:-5]  # garbage and a partial line count too
        port.write(data)
        assert gps.wait_handled(len(data), WAIT)
        assert gps.bytes_handled == len(data)
        assert not gps.wait_handled(len(data) + 1, 0.05)
    finally:
        gps.close()
    assert returns_at_once(lambda: gps.wait_handled(len(data) + 1, 60.0)) is False


# -- properties --------------------------------------------------------------------------------

STREAM = stream(6)


def without_time(fixes: list[Fix]) -> list[Fix]:
    return [Fix(0.0, *[getattr(f, k) for k in Fix.__slots__[1:]]) for f in fixes]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_any_chunking_of_a_stream_gives_the_same_fixes(cuts: list[int]) -> None:
    whole = NmeaDecoder().feed(STREAM, 0.0)
    decoder = NmeaDecoder()
    pieces = [fix for chunk in chunked(STREAM, cuts) for fix in decoder.feed(chunk, 0.0)]
    assert pieces == whole
    assert len(whole) == 6


@settings(max_examples=25)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_through_the_reader_thread_gives_the_same_fixes(cuts: list[int]) -> None:
    clock = VirtualClock(T0)
    port = serial.serial_for_url("loop://", timeout=0.1)
    gps = NmeaGps(clock, port, name="loop")
    fixes: list[Fix] = []
    gps.start(fixes.append)
    try:
        receiver = Receiver(port.write, gps)
        for chunk in chunked(STREAM, cuts):
            receiver.send(chunk)
            clock.run_posted()
    finally:
        gps.close()
    assert fixes == NmeaDecoder().feed(STREAM, 0.0)


junk_line = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"").replace(b"*", b""))


@given(st.lists(st.tuples(st.integers(0, 11), junk_line), max_size=8))
def test_junk_lines_interleaved_change_no_fix(junk: list[tuple[int, bytes]]) -> None:
    """Lines that cannot carry a checksum, between sentences: the fixes are the same."""
    lines = STREAM.splitlines(keepends=True)
    for where, line in sorted(junk, reverse=True):
        lines.insert(where, line + b"\n")
    decoder = NmeaDecoder()
    assert decoder.feed(b"".join(lines), 0.0) == NmeaDecoder().feed(STREAM, 0.0)
    assert decoder.stats.bad_checksum == 0
    assert decoder.buffered == 0


@given(st.lists(st.binary(max_size=600), max_size=12), st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_and_stay_bounded(chunks: list[bytes], tail: bytes) -> None:
    decoder = NmeaDecoder()
    for i, chunk in enumerate([*chunks, STREAM[: len(tail)], tail]):
        for fix in decoder.feed(chunk, float(i)):
            assert fix.valid == (fix.lat is not None)
        assert decoder.buffered <= MAX_LINE


@given(
    st.lists(st.sampled_from(STREAM.splitlines(keepends=True)), max_size=20),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
)
def test_corrupted_sentences_never_raise_nor_invent_a_fix(
    lines: list[bytes], flips: list[tuple[int, int]]
) -> None:
    data = bytearray(b"".join(lines))
    for where, value in flips:
        if data:
            data[where % len(data)] = value
    decoder = NmeaDecoder()
    for fix in decoder.feed(bytes(data), 0.0):
        if fix.valid:
            assert fix.lat is not None and 51.49 < fix.lat < 51.51  # only what was sent


# -- the board ---------------------------------------------------------------------------------


def sim_hal(tmp_path: Path, **kwargs: object):
    return open_hal("sim", storage_root=tmp_path, width=640, height=360, fps=10, **kwargs)


def test_the_board_opens_the_receiver_when_gps_is_asked_for(
    tmp_path: Path, pty_pair: tuple[int, str]
) -> None:
    master, path = pty_pair
    hal = sim_hal(tmp_path, gps=(path, 9600))
    try:
        assert isinstance(hal.gps, NmeaGps)
        assert (hal.names["gps"], hal.gps_problem) == ("nmea", None)
        fixes: list[Fix] = []
        hal.gps.start(fixes.append)
        Receiver(write_all(master), hal.gps).send(epoch(0))
        hal.clock.run_posted()
        assert [f.valid for f in fixes] == [True]
    finally:
        hal.close()
    assert hal.gps.finished.is_set() and not hal.gps.port.is_open


def test_a_receiver_that_does_not_open_is_a_problem_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "ttyGPS"
    hal = sim_hal(tmp_path / "rec", gps=(str(missing), 9600))
    try:
        assert hal.gps is None
        assert hal.gps_problem is not None and str(missing) in hal.gps_problem
        assert any(str(missing) in r.getMessage() for r in caplog.records)
    finally:
        hal.close()


def test_no_gps_asked_for_or_backend_none_opens_nothing(tmp_path: Path) -> None:
    for kwargs in ({}, {"gps": ("/dev/nonexistent", 9600), "overrides": {"gps": "none"}}):
        hal = sim_hal(tmp_path, **kwargs)
        try:
            assert (hal.gps, hal.gps_problem) == (None, None)
        finally:
            hal.close()


def test_a_pi_board_reads_gps_through_nmea() -> None:
    from hal import registry

    assert registry.board("pi").backends["gps"] == "nmea"
    assert {"nmea", "none"} <= set(registry.names("gps"))


def test_time_of_day_and_date_come_from_pynmeagps_types() -> None:
    """Guards the field types the decoder relies on (pynmeagps gives ``""`` when it cannot read)."""
    [fix] = NmeaDecoder().feed(epoch(0), 0.0)
    assert isinstance(fix.utc, datetime) and fix.utc.tzinfo is UTC
    assert fix.utc.date() == date(2026, 3, 14) and fix.utc.time() == time(9, 26, 53)
