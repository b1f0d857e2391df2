"""A/V sync from the clicks: found to a fraction of a millisecond, through AAC, and judged.

The audio is synthesised here, as SPEC 15's scene plays it: ambient noise
and speech-like voiced bursts below SCENE_MAX_HZ, quiet around each click,
and the click at each whole second of device time, moved by a chosen
offset. Some cases go through a real AAC-LC encode and decode (PyAV's
native encoder, 64 kbit/s mono 48 kHz), as the recorder and verify do.

AAC priming, as it actually happens with PyAV 18 (FFmpeg's native
encoder and decoder, no container in between): the encoder delays its
output by 1024 samples of priming and says so in the packets' pts (the
first packet's pts is the first frame's pts less 1024); the decoder keeps
those samples and its first frame carries that earlier pts. So a decoded
stream placed at its own pts has every sample at its capture time, and
placed at the first *input* frame's time it would be 1024 samples (21.3 ms)
late. A container whose demuxer signals the priming to be skipped (a
Matroska CodecDelay) leads the decoder to drop the samples and move the pts
with them, which is just as right. Verify must therefore place decoded
audio by its pts, never by the first video frame's time:
``test_aac_priming_is_in_the_pts`` pins this down.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camera.evidence.clicks import (
    CLICK_AMPLITUDE,
    CLICK_HZ,
    CLICK_SECONDS,
    MAX_OFFSET_SECONDS,
    QUIET_SECONDS,
    SAMPLE_RATE,
    SCENE_MAX_HZ,
    click_samples,
)
from camera.evidence.verify import av_sync
from camera.evidence.verify.av_sync import (
    GUARD_SECONDS,
    band_energy,
    find_clicks,
    is_click_frame,
    measure_offsets,
)

RATE = SAMPLE_RATE
FPS = 30
#: The AAC encoder's priming (FFmpeg's aac encoder: one frame).
PRIMING = 1024
#: How close a click must be found: clean audio, and through AAC at 64 kbit/s.
#: (Measured: a few microseconds either way; SPEC 15 judges at 10 ms.)
CLEAN_TOLERANCE = 1e-5
AAC_TOLERANCE = 1e-4
#: In -20 dBFS white noise (a hissy microphone, not the scene), no codec.
NOISY_TOLERANCE = 2e-4


def scene(
    seconds: float,
    start: float = 0.0,
    offsets: dict[int, float] | None = None,
    seed: int = 0,
    quiet: bool = True,
) -> tuple[np.ndarray, dict[int, float]]:
    """Audio from device time ``start`` on, and where each click really starts.

    ``offsets`` maps second ``k`` to the click's offset from ``k`` (seconds;
    None leaves that click out); seconds not listed get a click on time.
    The click starts on a whole sample, so the returned times are exact.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = start + np.arange(n) / RATE
    spectrum = np.fft.rfft(rng.normal(0.0, 0.05, n))
    spectrum[np.fft.rfftfreq(n, 1 / RATE) > SCENE_MAX_HZ] = 0
    x = np.fft.irfft(spectrum, n)
    for _ in range(max(1, int(seconds))):  # voiced bursts: a harmonic series under a swell
        f0, at, length = rng.uniform(100, 300), rng.uniform(t[0], t[-1]), rng.uniform(0.2, 0.8)
        near = np.flatnonzero(np.abs(t - at) < length)
        tb = t[near]
        swell = (1 - np.abs(tb - at) / length) ** 2
        for h in range(1, int(SCENE_MAX_HZ // f0) + 1):
            x[near] += swell * (0.3 / h) * np.sin(2 * np.pi * h * f0 * tb + rng.uniform(0, 6))
    offsets = offsets or {}
    truth: dict[int, float] = {}
    click = click_samples(RATE, phase=float(rng.uniform(0, 2 * np.pi)))
    for k in range(max(1, int(np.ceil(start))), int(start + seconds) + 1):
        off = offsets.get(k, 0.0)
        if off is None:
            continue
        i = round((k + off - start) * RATE)
        if quiet:
            q = round(QUIET_SECONDS * RATE)
            x[max(0, i - q) : max(0, i + q)] = 0.0
        lo, hi = max(0, i), min(n, i + len(click))
        if lo < hi:
            x[lo:hi] += click[lo - i : hi - i]
        if i >= 0 and i + len(click) <= n:
            truth[k] = start + i / RATE
    return x.astype(np.float32), truth


def aac_round_trip(pcm: np.ndarray, start: float) -> tuple[np.ndarray, float]:
    """Encode as the recorder does (AAC-LC 64 kbit/s), decode as verify does; (pcm, pts time)."""
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate = RATE
    enc.layout = "mono"
    enc.format = "fltp"
    enc.bit_rate = 64_000
    enc.time_base = Fraction(1, RATE)
    enc.open()
    first = round(start * RATE)
    packets = []
    for i in range(0, len(pcm), enc.frame_size):
        frame = av.AudioFrame.from_ndarray(
            pcm[i : i + enc.frame_size].reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = first + i
        frame.time_base = Fraction(1, RATE)
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = av.CodecContext.create("aac", "r")
    dec.sample_rate = RATE
    dec.layout = "mono"
    dec.extradata = enc.extradata
    frames = []
    for p in [*packets, None]:
        frames += dec.decode(p)
    pcm_out = np.concatenate([f.to_ndarray()[0] for f in frames])
    return pcm_out, float(frames[0].pts * frames[0].time_base)


def frame_times(seconds: float, fps: int = FPS) -> dict[int, float]:
    return {n: n / fps for n in range(round(seconds * fps) + 1)}


def assert_found(found: list[float], truth: dict[int, float], tolerance: float) -> None:
    assert len(found) == len(truth), (found, truth)
    for c, (k, t) in zip(found, sorted(truth.items()), strict=True):
        assert abs(c - t) <= tolerance, f"click {k}: found {c:.6f}, is at {t:.6f}"


# --- the detector -------------------------------------------------------------------------


def test_the_click_is_as_specified() -> None:
    c = click_samples(RATE)
    assert len(c) == round(CLICK_SECONDS * RATE)
    assert np.max(np.abs(c)) == pytest.approx(CLICK_AMPLITUDE, rel=0.01)
    peak = int(np.argmax(np.abs(np.fft.rfft(c, 1 << 16))))
    assert abs(peak * RATE / (1 << 16) - CLICK_HZ) < 100


def test_the_band_keeps_the_scene_out() -> None:
    """A full-scale tone at SCENE_MAX_HZ passes with under 1e-10 of a click's energy (-100 dB)."""
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * SCENE_MAX_HZ * t)
    pad = np.zeros(RATE // 10)
    clicked = band_energy(np.concatenate([pad, click_samples(RATE), pad]), RATE).max()
    assert band_energy(tone, RATE)[1000:-1000].max() < 1e-10 * clicked


@pytest.mark.parametrize("offsets_ms", [(0, 0, 0, 0), (0, 3, -7, 15)])
def test_known_offsets_are_found_in_clean_audio(offsets_ms: tuple[float, ...]) -> None:
    offsets = {k + 1: ms / 1000 for k, ms in enumerate(offsets_ms)}
    pcm, truth = scene(5.5, offsets=offsets)
    assert_found(find_clicks(pcm, RATE, 0.0), truth, CLEAN_TOLERANCE)


def test_clicks_are_found_through_speech_that_does_not_stop_for_them() -> None:
    pcm, truth = scene(4.5, offsets={2: 0.004}, seed=3, quiet=False)
    assert_found(find_clicks(pcm, RATE, 0.0), truth, CLEAN_TOLERANCE)


@settings(max_examples=25, deadline=None)
@given(
    start=st.integers(0, 3 * RATE).map(lambda s: s / RATE),
    offsets=st.lists(st.floats(-0.03, 0.03), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_any_offset_and_start_is_found(start: float, offsets: list[float], seed: int) -> None:
    first = int(np.ceil(start))
    pcm, truth = scene(3.4, start, offsets={first + i: o for i, o in enumerate(offsets)}, seed=seed)
    found = find_clicks(pcm, RATE, start)
    # A click less than the detector's window from either end counts as cut.
    whole = {k: t for k, t in truth.items() if t - start > 0.004 and start + 3.4 - t > 0.008}
    for k, t in whole.items():
        assert any(abs(c - t) <= CLEAN_TOLERANCE for c in found), (k, t, found)
    assert all(any(abs(c - t) <= CLEAN_TOLERANCE for t in truth.values()) for c in found)


def test_clicks_cut_by_the_ends_are_ignored() -> None:
    """Audio starting 1 ms into the click at 1 s, ending 1 ms into the one at 3 s."""
    pcm, truth = scene(4.0)
    cut = pcm[round(1.001 * RATE) : round(3.001 * RATE)]
    found = find_clicks(cut, RATE, 1.001)
    assert_found(found, {2: truth[2]}, CLEAN_TOLERANCE)
    # Cut just inside: most of the click is there, but its centre would be wrong.
    for lost in (0.0002, 0.0035):
        assert find_clicks(pcm[round((1 + lost) * RATE) : 2 * RATE - 1000], RATE, 1 + lost) == []
        assert find_clicks(pcm[RATE + 1000 : round((2 + lost) * RATE)], RATE, 1 + 1000 / RATE) == []


def test_a_click_whose_energy_dips_counts_once() -> None:
    """A dip in the middle of a click (a codec's ripple) splits its run above the threshold."""
    pcm, truth = scene(2.5)
    i = round(truth[1] * RATE) + round(CLICK_SECONDS / 2 * RATE)
    pcm[i - 36 : i + 37] = 0.0  # 1.5 ms of nothing, centred on its middle
    assert_found(find_clicks(pcm, RATE, 0.0), truth, AAC_TOLERANCE)


def test_a_click_straddling_a_filter_block_is_found() -> None:
    """Long audio is filtered in blocks; a click across their boundary is whole."""
    # The click at 1 s starts 100 samples before the first block ends.
    start = 1.0 - (av_sync.block_samples(RATE) - 100) / RATE
    pcm, truth = scene(2.5, start)
    assert_found(find_clicks(pcm, RATE, start), truth, CLEAN_TOLERANCE)


def test_no_clicks_in_silence_speech_or_a_steady_tone() -> None:
    assert find_clicks(np.zeros(RATE, np.float32), RATE, 0.0) == []
    speech, _ = scene(3.0, 0.1, offsets={1: None, 2: None, 3: None}, quiet=False)
    assert find_clicks(speech, RATE, 0.1) == []
    t = np.arange(RATE // 10) / RATE  # a 100 ms whistle, in the middle of silence
    whistle = np.zeros(RATE, np.float32)
    whistle[RATE // 2 : RATE // 2 + len(t)] = 0.5 * np.sin(2 * np.pi * CLICK_HZ * t)
    assert find_clicks(whistle, RATE, 0.0) == []


def test_loud_broadband_noise_hides_no_click_and_makes_none() -> None:
    """A real microphone's hiss reaches the click's band: the threshold follows its floor."""
    rng = np.random.default_rng(4)
    pcm, truth = scene(3.5, offsets={2: -0.006}, seed=4)
    hiss = rng.normal(0.0, 0.1, len(pcm)).astype(np.float32)  # -20 dBFS white noise
    assert find_clicks(hiss, RATE, 0.0) == []
    assert_found(find_clicks(pcm + hiss, RATE, 0.0), truth, NOISY_TOLERANCE)


def test_only_mono_samples() -> None:
    with pytest.raises(ValueError, match="mono"):
        find_clicks(np.zeros((RATE, 1), np.float32), RATE, 0.0)


# --- through AAC --------------------------------------------------------------------------


def test_aac_priming_is_in_the_pts() -> None:
    pcm, truth = scene(3.5, 0.5)
    decoded, at = aac_round_trip(pcm, 0.5)
    assert at == pytest.approx(0.5 - PRIMING / RATE)  # the priming comes out, stamped earlier
    assert len(decoded) >= len(pcm) + PRIMING
    assert_found(find_clicks(decoded, RATE, at), truth, AAC_TOLERANCE)
    # Placed at the input's start instead, every click would be 21.3 ms late.
    late = find_clicks(decoded, RATE, 0.5)
    assert late[0] - truth[1] == pytest.approx(PRIMING / RATE, abs=AAC_TOLERANCE)


@pytest.mark.parametrize("offsets_ms", [(0, 0, 0, 0), (0, 3, -7, 15)])
def test_known_offsets_survive_aac(offsets_ms: tuple[float, ...]) -> None:
    offsets = {k + 1: ms / 1000 for k, ms in enumerate(offsets_ms)}
    pcm, truth = scene(4.2, offsets=offsets, seed=7)
    decoded, at = aac_round_trip(pcm, 0.0)
    found = find_clicks(decoded, RATE, at)
    assert_found(found, truth, AAC_TOLERANCE)
    report = measure_offsets(found, frame_times(4.2), FPS, (at, at + len(decoded) / RATE))
    got = [round(m.offset * 1000, 1) for m in report.matched]
    assert report.frames_without_click == () and report.unmatched_clicks == ()
    assert got == [float(ms) for ms in offsets_ms]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, 2 * RATE).map(lambda s: s / RATE),
    offsets=st.lists(st.floats(-0.02, 0.02), min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_aac_keeps_any_offset_within_a_tenth_of_a_ms(
    start: float, offsets: list[float], seed: int
) -> None:
    first = int(np.ceil(start)) + 1
    pcm, truth = scene(2.6, start, offsets={first: offsets[0], first + 1: offsets[1]}, seed=seed)
    truth = {k: t for k, t in truth.items() if k >= first}
    decoded, at = aac_round_trip(pcm, start)
    found = [c for c in find_clicks(decoded, RATE, at) if c > first - 0.5]
    assert_found(found, truth, AAC_TOLERANCE)


def test_speech_through_aac_makes_no_clicks() -> None:
    speech, _ = scene(3.0, offsets={1: None, 2: None}, seed=11, quiet=False)
    decoded, at = aac_round_trip(speech, 0.0)
    assert find_clicks(decoded, RATE, at) == []


# --- judging the offsets -------------------------------------------------------------------


def report_for(offsets: dict[int, float | None], seconds: float = 5.5, gaps=()):
    clicks = [k + o for k, o in offsets.items() if o is not None]
    return measure_offsets(clicks, frame_times(seconds), FPS, (0.0, seconds), gaps)


def test_offsets_within_the_limit_pass() -> None:
    r = report_for({1: 0.0, 2: 0.003, 3: -0.007, 4: 0.0, 5: 0.0})
    assert r.ok, r.problems()
    assert [m.frame for m in r.matched] == [30, 60, 90, 120, 150]
    assert r.mean_offset == pytest.approx(-0.0008)
    assert r.max_abs_offset == pytest.approx(0.007)
    assert r.problems() == []
    assert "mean -0.8 ms, max |offset| 7.0 ms over 5 clicks" in r.notes()[0]


def test_an_offset_beyond_the_limit_fails_naming_the_frame() -> None:
    r = report_for({1: 0.0, 2: 0.003, 3: -0.007, 4: 0.015, 5: 0.0})
    assert not r.ok
    assert r.max_abs_offset == pytest.approx(0.015)
    [line] = r.problems()
    assert "+15.0 ms at frame 120 (4.0000 s) exceeds +-10 ms; 1 of 5 clicks" in line


def test_exactly_the_limit_passes() -> None:
    r = measure_offsets([1.0 + MAX_OFFSET_SECONDS], frame_times(2), FPS, (0.0, 2.0))
    assert r.ok


def test_a_missing_click_is_reported() -> None:
    r = report_for({1: 0.0, 2: 0.0, 3: None, 4: 0.0, 5: 0.0})
    assert not r.ok
    assert r.frames_without_click == ((90, 3.0),)
    [line] = r.problems()
    assert "frame 90 (3.0000 s)" in line and "no audio gap declared" in line


def test_many_missing_clicks_make_one_bounded_line() -> None:
    r = measure_offsets([], frame_times(20), FPS, (0.0, 20.0))
    assert len(r.frames_without_click) == 19
    [line] = r.problems()
    assert line.endswith(
        "and 16 more (audio missing or out of sync, and no audio gap declared there)"
    )
    assert r.notes() == ["A/V offset not measured: no sync click matched a frame"]


def test_a_declared_gap_excuses_its_clicks_and_no_others() -> None:
    clicks = {1: 0.0, 2: 0.0, 3: None, 4: None, 5: 0.0}
    assert report_for(clicks, gaps=[(2.9, 4.2)]).ok
    partly = report_for(clicks, gaps=[(2.9, 3.5)])
    assert partly.frames_without_click == ((120, 4.0),)
    # A gap that ends just before the click still leaves too little room around it.
    assert report_for({1: 0.0, 2: None}, seconds=2.5, gaps=[(1.5, 1.99)]).ok


def test_clicks_are_expected_only_well_inside_the_audio() -> None:
    """Frames at the audio's ends: no click is expected there (it may be cut)."""
    times = frame_times(5)
    assert measure_offsets([2.0], times, FPS, (1.0, 3.0)).ok
    edge = measure_offsets([2.0], times, FPS, (1.0 - GUARD_SECONDS, 3.0))
    assert edge.frames_without_click == ((30, 1.0),)


def test_a_click_far_from_any_frame_is_unmatched_but_noted() -> None:
    times = frame_times(3)  # video until 3 s, audio until 5.5 s
    r = measure_offsets([1.0, 2.001, 3.0, 5.0], times, FPS, (0.0, 5.5))
    assert r.unmatched_clicks == (5.0,)
    assert [m.frame for m in r.matched] == [30, 60, 90]
    assert r.ok
    note = "1 sync click(s) near no frame whose number is a multiple of 30: 5.0000 s"
    assert note in r.notes()[1]
    alone = measure_offsets([3.6], frame_times(2), FPS, (0.0, 4.0))
    assert alone.matched == () and alone.unmatched_clicks == (3.6,)


def test_two_clicks_for_one_frame_keep_the_nearer() -> None:
    for clicks, spare in (([1.0, 1.9, 2.002], 1.9), ([1.0, 1.998, 2.2], 2.2)):
        r = measure_offsets(clicks, frame_times(2.5), FPS, (0.0, 2.5))
        assert [m.frame for m in r.matched] == [30, 60]
        assert r.unmatched_clicks == (spare,)


def test_only_frames_numbered_a_multiple_of_the_rate_carry_clicks() -> None:
    assert [n for n in range(0, 100) if is_click_frame(n, 25)] == [25, 50, 75]  # not at boot
    # Audio from before boot (AAC priming is stamped earlier): frame 0 still wants no click.
    assert measure_offsets([], frame_times(0.9), FPS, (-0.05, 0.9)).ok
    assert is_click_frame(60, 30.0) and not is_click_frame(45, 30.0)
    # A click 1/30 s late is near frame 31, but frame 31 carries no click: matched to 30.
    r = measure_offsets([1.0 + 1 / FPS], frame_times(2), FPS, (0.0, 2.0))
    assert r.matched[0].frame == 30 and not r.ok
    with pytest.raises(ValueError, match="fps"):
        measure_offsets([], {}, 0.0, (0.0, 1.0))


def test_sensor_timed_frames_are_matched_by_their_capture_times() -> None:
    """Frame 60 captured 4 ms late (a real clock): the click is measured against that."""
    times = frame_times(3)
    times[60] = 2.004
    r = measure_offsets([1.0, 2.0, 3.0], times, FPS, (0.0, 3.5))
    assert [round(m.offset, 6) for m in r.matched] == [0.0, -0.004, 0.0]
