"""Audio sources in the HAL (issue 11, item 1; SPEC 15).

- :class:`SyntheticAudio` on the virtual clock: blocks delivered when their
  last sample is captured, numbered from boot, a click starting exactly at
  sample ``k * rate`` each second, nothing else above SCENE_MAX_HZ, speech
  bursts, deterministic per (seed, block), and a disconnect as a gap;
- :class:`BlockTimer`: driver times to device time, gaps from time jumps,
  overflows and reopened streams, arrival times smoothed;
- :class:`AlsaAudio` against :mod:`tests.doubles.sounddevice`, a stand-in for
  python-sounddevice (there is no sound card or PortAudio here).
"""

from __future__ import annotations

import itertools
import logging
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.evidence.clicks import (
    CLICK_AMPLITUDE,
    CLICK_HZ,
    CLICK_SECONDS,
    QUIET_SECONDS,
    SAMPLE_RATE,
    SCENE_MAX_HZ,
)
from camera.evidence.verify.av_sync import find_clicks
from hal import registry
from hal.audio import BLOCK_SAMPLES, AudioSource
from hal.audio.alsa import NO_PORTAUDIO, NOT_INSTALLED, AlsaAudio, device_arg
from hal.audio.timing import ARRIVAL_SMOOTHING, BlockTimer
from hal.errors import HardwareMissing
from sim.audio import (
    SPEECH_F0_HZ,
    SPEECH_MAX_HZ,
    SPEECH_SLOT_SECONDS,
    AudioScene,
    SyntheticAudio,
    quiet_gain,
    speech_burst,
)
from sim.clock import VirtualClock
from tests.doubles.sounddevice import (
    USB_MIC,
    FakeSoundDevice,
    install,
    install_without_portaudio,
)

RATE = SAMPLE_RATE
BLOCK = BLOCK_SAMPLES
BLOCK_S = BLOCK / RATE
CLICK_LEN = round(CLICK_SECONDS * RATE)

Delivered = list[tuple[float, np.ndarray, int, float]]  # (delivered at, samples, first, time)


class DriverClock(VirtualClock):
    """The virtual clock plus the real clock's conversion of CLOCK_MONOTONIC readings.

    Monotonic second ``origin`` is device time 0; device time moves only when
    the test runs the loop, so a test places driver timestamps against an
    arrival time it chose.
    """

    def __init__(self, origin: float = 1000.0) -> None:
        super().__init__()
        self.origin = origin

    def from_monotonic(self, seconds: float) -> float:
        return seconds - self.origin


def collect(clock: VirtualClock, out: Delivered):
    def on_block(samples: np.ndarray, first: int, t: float) -> None:
        out.append((clock.now(), samples, first, t))

    return on_block


def scene_pcm(seed: int, seconds: float) -> np.ndarray:
    """The scene's mono samples from boot, as blocks rendered one by one, in full scale 1.0."""
    scene = AudioScene(RATE, 1, BLOCK, seed)
    blocks = [scene.render(n)[:, 0] for n in range(math.ceil(seconds * RATE / BLOCK))]
    return np.concatenate(blocks).astype(np.float64) / 32767.0


def click_band(x: np.ndarray, start: int) -> float:
    """Magnitude of the CLICK_HZ component over one click's length from ``start``."""
    tone = np.exp(-2j * math.pi * CLICK_HZ * np.arange(CLICK_LEN) / RATE)
    return float(abs(np.dot(x[start : start + CLICK_LEN], tone)))


def hf_fraction(x: np.ndarray) -> float:
    """Fraction of the signal's energy above SCENE_MAX_HZ (Hann-windowed spectrum)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[freqs > SCENE_MAX_HZ].sum() / spectrum.sum())


# -- SyntheticAudio on the virtual clock -----------------------------------


def test_blocks_arrive_when_captured_numbered_from_boot() -> None:
    clock = VirtualClock()
    got: Delivered = []
    mic = SyntheticAudio(clock, RATE, 1, seed=1)
    mic.start(collect(clock, got))
    clock.run(until=1.0)
    assert len(got) == math.floor(1.0 / BLOCK_S)  # block 46 ends at 1.0027 s
    for n, (at, samples, first, t) in enumerate(got):
        assert first == n * BLOCK
        assert t == n * BLOCK / RATE  # the first sample's capture time, exactly
        assert at == (n + 1) * BLOCK / RATE  # handed over once its last sample is in
        assert samples.shape == (BLOCK, 1) and samples.dtype == np.int16


def test_start_later_begins_with_the_first_whole_block_and_stereo_repeats_mono() -> None:
    clock = VirtualClock()
    clock.run(until=0.5)
    got: Delivered = []
    mic = SyntheticAudio(clock, RATE, 2, seed=1)
    mic.start(collect(clock, got))
    clock.run(until=1.0)
    first_block = math.ceil(0.5 * RATE / BLOCK)
    assert [g[2] for g in got][:2] == [first_block * BLOCK, (first_block + 1) * BLOCK]
    assert got[0][3] >= 0.5 > (first_block - 1) * BLOCK_S
    samples = got[0][1]
    assert samples.shape == (BLOCK, 2) and np.array_equal(samples[:, 0], samples[:, 1])


def test_stop_from_the_callback_stops_delivery() -> None:
    clock = VirtualClock()
    got: Delivered = []
    mic = SyntheticAudio(clock, RATE, 1)

    def on_block(samples: np.ndarray, first: int, t: float) -> None:
        got.append((clock.now(), samples, first, t))
        if len(got) == 3:
            mic.stop()

    mic.start(on_block)
    clock.run(until=2.0)
    assert len(got) == 3


def test_disconnect_is_a_gap_in_sample_numbers() -> None:
    clock = VirtualClock()
    got: Delivered = []
    mic = SyntheticAudio(clock, RATE, 1, seed=2)
    mic.start(collect(clock, got))
    clock.call_at(2.0, lambda: mic.disconnect(clock.now() + 1.0))
    clock.run(until=4.0)
    firsts = [g[2] for g in got]
    jumps = [(a, b) for a, b in itertools.pairwise(firsts) if b - a != BLOCK]
    assert len(jumps) == 1
    before, after = jumps[0]
    # Every block captured in part while the microphone was gone is lost ...
    assert (before + BLOCK) / RATE <= 2.0 < (before + 2 * BLOCK) / RATE
    assert after == math.ceil(3.0 * RATE / BLOCK) * BLOCK  # ... the first whole one after is back
    assert mic.missed == (after - before) // BLOCK - 1
    # Times stay on the sample clock across the gap.
    assert all(t == first / RATE for _, _, first, t in got)


def test_clicks_start_exactly_at_whole_seconds() -> None:
    x = scene_pcm(seed=5, seconds=6.0)
    for k in range(1, 6):
        c = k * RATE
        zone = x[c - round(QUIET_SECONDS * RATE) : c + CLICK_LEN + round(QUIET_SECONDS * RATE)]
        nonzero = np.flatnonzero(zone) + c - round(QUIET_SECONDS * RATE)
        # The Hann envelope and the sine are both 0 at the click's first sample.
        assert nonzero.min() == c + 1 and nonzero.max() == c + CLICK_LEN - 1
        # Its CLICK_HZ content: a single-bin DFT over the click.
        assert click_band(x, c) == pytest.approx(CLICK_AMPLITUDE * CLICK_LEN / 4, rel=0.01)
        assert np.max(np.abs(x[c : c + CLICK_LEN])) == pytest.approx(CLICK_AMPLITUDE, abs=0.01)
    assert click_band(x, 0) < 0.001 * CLICK_AMPLITUDE * CLICK_LEN  # no click at boot (k = 0)


def test_verify_finds_the_scene_clicks_where_they_are() -> None:
    """The scene plays the click verify looks for, and verify finds it to a fraction of a sample."""
    x = scene_pcm(seed=6, seconds=8.5)
    found = find_clicks(x, RATE, 0.0)
    assert found == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], abs=0.1 / RATE)


def test_nothing_but_the_click_above_scene_max_hz() -> None:
    x = scene_pcm(seed=7, seconds=6.0)
    for k in range(1, 7):
        x[k * RATE : k * RATE + CLICK_LEN] = 0.0  # the quiet zone leaves nothing else there
    # Block seams, a hard gate at the quiet zones or a harmonic above the
    # limit would each put well over 1e-6 of the energy up there.
    assert hf_fraction(x[: 6 * RATE]) < 1e-6


def test_the_scene_is_quiet_around_each_click() -> None:
    x = scene_pcm(seed=8, seconds=4.0)
    q = round(QUIET_SECONDS * RATE)
    for k in range(1, 4):
        c = k * RATE
        assert not np.any(x[c - q : c]) and not np.any(x[c + CLICK_LEN : c + CLICK_LEN + q])
    t = np.array([0.9, 1.0 - QUIET_SECONDS, 1.0 + CLICK_SECONDS + QUIET_SECONDS, 1.5])
    assert list(quiet_gain(t)) == [1.0, 0.0, 0.0, 1.0]


def test_speech_bursts_come_and_go() -> None:
    x = scene_pcm(seed=9, seconds=20.0)
    window = RATE // 10
    # Band energy 100-3500 Hz per 100 ms window, away from the clicks.
    levels = []
    for w in range(0, 200):
        start = w * window
        if (start % RATE) < 0.15 * RATE or (start % RATE) > 0.85 * RATE:
            continue
        seg = x[start : start + window]
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        freqs = np.fft.rfftfreq(len(seg), 1 / RATE)
        levels.append(spectrum[(freqs >= 100) & (freqs <= SCENE_MAX_HZ)].sum())
    levels_arr = np.array(levels)
    quiet = np.median(levels_arr)  # most of the time, only ambient noise
    loud = levels_arr > 20 * quiet  # speech: over 13 dB above it
    assert 0.1 < loud.mean() < 0.6
    # A few separate bursts, not one long one.
    assert np.count_nonzero(np.diff(loud.astype(int)) == 1) >= 3


def test_same_seed_same_bytes_different_seed_different() -> None:
    a = AudioScene(RATE, 1, BLOCK, seed=11)
    b = AudioScene(RATE, 1, BLOCK, seed=11)
    c = AudioScene(RATE, 1, BLOCK, seed=12)
    # Any order, any subset: block n depends on the seed and n alone.
    order = [905, 3, 30, 25, 10, 1]
    assert [a.render(n).tobytes() for n in order] == [
        b.render(n).tobytes() for n in reversed(order)
    ][::-1]
    assert all(a.render(n).tobytes() != c.render(n).tobytes() for n in order)
    # Block 46 (0.981-1.003 s) lies in the quiet zone around the first click: click only.
    assert a.render(46).tobytes() == c.render(46).tobytes()


@given(seed=st.integers(0, 2**32 - 1), slot=st.integers(0, 10**6))
def test_speech_bursts_stay_in_their_slot_and_below_the_click_band(seed: int, slot: int) -> None:
    burst = speech_burst(seed, slot)
    if burst is None:
        return
    assert slot * SPEECH_SLOT_SECONDS <= burst.start
    assert burst.start + burst.duration <= (slot + 1) * SPEECH_SLOT_SECONDS + 1e-9
    assert SPEECH_F0_HZ[0] <= burst.f0 <= SPEECH_F0_HZ[1]
    top = len(burst.harmonics) * burst.f0 * (1 + burst.glide_depth)
    # Room above the top harmonic for the spread the envelopes and fades add.
    assert top <= SPEECH_MAX_HZ <= SCENE_MAX_HZ - 250
    assert speech_burst(seed, slot) == burst


def test_registered_as_backends() -> None:
    assert registry.load("audio", "synthetic") is SyntheticAudio
    assert registry.load("audio", "alsa") is AlsaAudio
    mic = SyntheticAudio.open(VirtualClock(), RATE, 1, seed=3, source="ignored")
    assert isinstance(mic, AudioSource) and mic.scene.seed == 3


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        SyntheticAudio(VirtualClock(), 0, 1)
    with pytest.raises(ValueError, match="click"):
        SyntheticAudio(VirtualClock(), 8000, 1)


# -- BlockTimer --------------------------------------------------------------


def test_driver_time_is_converted_and_numbers_run_on() -> None:
    timer = BlockTimer(DriverClock(origin=100.0), RATE, "test")
    assert timer.stamp(BLOCK, 105.0, arrived=5.04) == (240_000, 5.0)
    # A driver time that wanders by a few ms is not a gap.
    first, t = timer.stamp(BLOCK, 105.0 + BLOCK_S + 0.004, arrived=5.07)
    assert (first, t) == (240_000 + BLOCK, pytest.approx(5.0 + BLOCK_S + 0.004))
    assert timer.rejected == 0 and timer.lost_samples == 0


def test_a_jump_in_driver_time_is_a_gap() -> None:
    timer = BlockTimer(DriverClock(origin=100.0), RATE, "test")
    timer.stamp(BLOCK, 105.0, arrived=5.04)
    first, t = timer.stamp(BLOCK, 105.0 + BLOCK_S + 0.25, arrived=5.30)
    assert first == 240_000 + BLOCK + 12_000 and t == pytest.approx(5.0 + BLOCK_S + 0.25)
    assert timer.lost_samples == 12_000


def test_without_driver_times_blocks_are_dated_by_arrival_smoothed() -> None:
    timer = BlockTimer(VirtualClock(), RATE, "test")  # no from_monotonic: no driver times
    first, t = timer.stamp(BLOCK, None, arrived=2.0)
    assert (first, t) == (round((2.0 - BLOCK_S) * RATE), 2.0 - BLOCK_S)
    # Late by 30 ms: the block still follows on the sample clock, nudged by 1 %.
    first2, t2 = timer.stamp(BLOCK, None, arrived=2.0 + BLOCK_S + 0.03)
    assert first2 == first + BLOCK
    assert t2 == pytest.approx(t + BLOCK_S + ARRIVAL_SMOOTHING * 0.03)


def test_implausible_driver_times_fall_back_to_arrival(caplog: pytest.LogCaptureFixture) -> None:
    timer = BlockTimer(DriverClock(origin=100.0), RATE, "test")
    with caplog.at_level(logging.WARNING):
        assert timer.stamp(BLOCK, 0.0, arrived=3.0)[1] == 3.0 - BLOCK_S  # a plugin's zero
        timer.stamp(BLOCK, 100.0 + 9.0, arrived=3.0 + BLOCK_S)  # after its own arrival
    assert timer.rejected == 2
    assert sum("implausible" in r.getMessage() for r in caplog.records) == 1  # said once


def test_overflow_or_reopen_make_an_arrival_jump_a_gap() -> None:
    timer = BlockTimer(VirtualClock(), RATE, "test")
    first, _ = timer.stamp(BLOCK, None, arrived=1.0)
    # A late callback alone is not a gap: PortAudio buffered the samples.
    assert timer.stamp(BLOCK, None, arrived=1.5)[0] == first + BLOCK
    first3, t3 = timer.stamp(BLOCK, None, arrived=2.5, overflow=True)
    assert first3 > first + 2 * BLOCK + 0.9 * RATE and t3 == 2.5 - BLOCK_S
    timer.resume()
    first4, t4 = timer.stamp(BLOCK, None, arrived=4.0)
    assert first4 == first3 + BLOCK + round((t4 - t3 - BLOCK_S) * RATE) and t4 == 4.0 - BLOCK_S


# -- AlsaAudio against the sounddevice double ---------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    return install(monkeypatch)


def no_backoff(calls: list[int]):
    def backoff(failures: int) -> float:
        calls.append(failures)
        return 0.0

    return backoff


def test_alsa_blocks_carry_converted_driver_times(fake: FakeSoundDevice) -> None:
    clock = DriverClock(origin=1000.0)
    got: Delivered = []
    mic = AlsaAudio(clock, RATE, 1, "USB", stall_seconds=60)
    assert mic.device_name == USB_MIC["name"]
    mic.start(collect(clock, got))
    try:
        stream = fake.running(1)
        assert stream.kwargs["blocksize"] == BLOCK and stream.kwargs["dtype"] == "int16"
        assert stream.kwargs["samplerate"] == RATE and stream.kwargs["device"] == "USB"
        clock.run(until=5.0)
        tone = np.arange(BLOCK, dtype=np.int16)
        stream.feed(tone, adc_time=1000.0 + 5.0 - 0.03)
        stream.feed(tone, adc_time=1000.0 + 5.0 - 0.03 + BLOCK_S)
        clock.run_posted()
    finally:
        mic.stop()
    assert [(g[2], g[3]) for g in got] == [
        (round(4.97 * RATE), pytest.approx(4.97)),
        (round(4.97 * RATE) + BLOCK, pytest.approx(4.97 + BLOCK_S)),
    ]
    # The samples were copied out of PortAudio's buffer before it was reused.
    assert np.array_equal(got[0][1][:, 0], tone) and got[0][1].shape == (BLOCK, 1)
    assert fake.streams[0].closed


def test_alsa_device_loss_is_a_gap_then_it_comes_back(
    fake: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    clock = DriverClock(origin=1000.0)
    got: Delivered = []
    backoffs: list[int] = []
    mic = AlsaAudio(clock, RATE, 1, backoff=no_backoff(backoffs), stall_seconds=60)
    caplog.set_level(logging.WARNING)
    mic.start(collect(clock, got))
    try:
        clock.run(until=2.0)
        first_stream = fake.running(1)
        first_stream.feed(adc_time=1000.0 + 2.0 - BLOCK_S)
        # Unplugged: PortAudio's thread ends the stream; replugging takes two tries.
        fake.fail_opens = 2
        first_stream.lose()
        second = fake.running(2)
        assert backoffs == [1, 2] and fake.opens == 4 and mic.reopens == 1
        clock.run(until=3.5)
        second.feed(adc_time=1000.0 + 3.5 - BLOCK_S)
        clock.run_posted()
    finally:
        mic.stop()
    (_, _, first_a, t_a), (_, _, first_b, t_b) = got
    assert first_b - (first_a + BLOCK) == round((t_b - t_a - BLOCK_S) * RATE) > 0.5 * RATE
    messages = [r.getMessage() for r in caplog.records]
    assert any("stream ended" in m for m in messages)
    assert sum("cannot open" in m for m in messages) == 2
    assert any("lost" in m for m in messages)


def test_alsa_a_silent_stream_is_reopened(fake: FakeSoundDevice) -> None:
    mic = AlsaAudio(DriverClock(), RATE, 1, backoff=no_backoff([]), stall_seconds=0.02)
    mic.start(lambda samples, first, t: None)
    try:
        fake.running(2)  # the first never delivered: closed and opened again
    finally:
        mic.stop()
    assert fake.streams[0].closed and mic.reopens >= 1


def test_alsa_stop_drops_blocks_still_queued_and_closes(fake: FakeSoundDevice) -> None:
    clock = DriverClock()
    got: Delivered = []
    mic = AlsaAudio(clock, RATE, 1, stall_seconds=60)
    mic.start(collect(clock, got))
    stream = fake.running(1)
    clock.run(until=1.0)
    stream.feed(adc_time=clock.origin + 1.0 - BLOCK_S)
    mic.stop()
    clock.run_posted()
    assert got == [] and stream.closed and mic.reopens == 0


def test_alsa_a_failing_callback_never_reaches_portaudio(
    fake: FakeSoundDevice, caplog: pytest.LogCaptureFixture
) -> None:
    clock = DriverClock()
    mic = AlsaAudio(clock, RATE, 2, stall_seconds=60)
    mic.start(lambda samples, first, t: None)
    try:
        stream = fake.running(1)
        with caplog.at_level(logging.ERROR):
            stream.callback(np.zeros((BLOCK, 3), np.int16), BLOCK, None, None)  # wrong shape
    finally:
        mic.stop()
    assert any("could not be handled" in r.getMessage() for r in caplog.records)


def test_alsa_missing_library_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    with pytest.raises(HardwareMissing, match="pip install sounddevice") as exc:
        AlsaAudio(DriverClock(), RATE, 1)
    assert str(exc.value) == NOT_INSTALLED and "\n" not in NOT_INSTALLED
    install_without_portaudio(monkeypatch)
    with pytest.raises(HardwareMissing, match="apt install libportaudio2") as exc:
        AlsaAudio(DriverClock(), RATE, 1)
    assert str(exc.value) == NO_PORTAUDIO


def test_alsa_missing_device_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeSoundDevice(devices=[]))
    with pytest.raises(HardwareMissing, match="no audio input device 'default'"):
        AlsaAudio(DriverClock(), RATE, 1)
    install(monkeypatch, FakeSoundDevice())
    with pytest.raises(HardwareMissing, match="no audio input device 'Blue Yeti'"):
        AlsaAudio(DriverClock(), RATE, 1, "Blue Yeti")
    with pytest.raises(HardwareMissing, match="1 channel"):
        AlsaAudio(DriverClock(), RATE, 2, "USB PnP")


def test_alsa_device_names() -> None:
    assert [device_arg(s) for s in ("default", "", "2", "hw:1,0")] == [None, None, 2, "hw:1,0"]
