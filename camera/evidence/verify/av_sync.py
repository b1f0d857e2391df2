"""A/V sync from the synthetic scene's clicks (SPEC 15): find them, match them to frames.

The simulated microphone hears a click (:mod:`camera.evidence.clicks`) at
the capture time of every frame whose number is a multiple of the frame
rate. Found in the decoded audio and set against the decoded frame times,
each click is one measurement of the A/V offset, end to end: capture,
encoder, ring, muxer, container timestamps and decoder all lie in between.

Finding them: a complex demodulation at ``CLICK_HZ`` followed by a Gaussian
low-pass is a band-pass whose response falls by over 100 dB at
``SCENE_MAX_HZ``, so the scene's noise and speech (and what AAC's quantisation
does to them) cannot pass for a click. The kernel is symmetric and the
click's envelope too, so the filtered energy is symmetric about the click's
centre: its energy centre locates the click to a fraction of a sample, and
is robust to an encoder smearing the click's onset, which a threshold
crossing is not. The start is that centre less ``CLICK_SECONDS / 2``.

Pure numpy, no I/O: the caller decodes, and says at which device time the
first decoded sample lies (its ``pts``; see the tests for the AAC priming).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from camera.evidence.clicks import (
    CLICK_HZ,
    CLICK_SECONDS,
    MAX_OFFSET_SECONDS,
    click_samples,
)

#: The low-pass's standard deviation in frequency (Hz). The click (a 4 ms
#: raised cosine) has its main lobe within +-500 Hz of CLICK_HZ, which this
#: keeps; SCENE_MAX_HZ lies 5 sigma away, where the filter lets through about
#: -106 dB in energy (measured), so none of the scene's sound passes for a click.
BAND_SIGMA_HZ = 500.0
#: The kernel is cut at this many sigmas (in time) each side: 4 would cap the
#: stop band at -87 dB, 5 at about -106 dB for 15 more taps.
KERNEL_SIGMAS = 5.0
#: A click must rise this far above the envelope's noise floor (its median
#: energy), as an energy ratio (20 dB) ...
FLOOR_RATIO = 100.0
#: ... and reach this fraction of a nominal click's peak energy (-20 dB: a
#: tenth of its amplitude), so digital silence (floor 0) finds nothing.
MIN_PEAK_FRACTION = 0.01
#: Above-threshold runs this long are a steady tone in the click's band, not a click.
MAX_RUN_SECONDS = 4 * CLICK_SECONDS
#: FFT length of the block filter (bounds memory for long recordings).
NFFT = 1 << 17

#: A click is matched to the nearest click frame within this (seconds).
MATCH_SECONDS = 0.5
#: A click frame is expected to have its click only this far inside the
#: audio (and away from a declared audio gap): room for the largest offset
#: that still passes, the detector's window, and the codec's edge effects.
GUARD_SECONDS = 0.025
#: Float rounding of device times (1.01 - 1.0 > 0.01): an offset of exactly
#: the limit passes.
ROUNDING = 1e-9


def _sigma_samples(rate: int) -> float:
    return rate / (2 * math.pi * BAND_SIGMA_HZ)


def _half_width(rate: int) -> int:
    """The kernel's half length in samples."""
    return math.ceil(KERNEL_SIGMAS * _sigma_samples(rate))


def _window(rate: int) -> int:
    """Half the span (samples) over which a click's energy centre is taken."""
    return math.ceil(CLICK_SECONDS / 2 * rate) + _half_width(rate)


def block_samples(rate: int) -> int:
    """Samples filtered per FFT: what is left of :data:`NFFT` after the kernel's overlaps."""
    return NFFT - 4 * _half_width(rate) - 1


def _kernel(rate: int) -> np.ndarray:
    """The Gaussian low-pass, unit DC gain: a tone at CLICK_HZ of amplitude A comes out A/2."""
    half = _half_width(rate)
    t = np.arange(-half, half + 1) / _sigma_samples(rate)
    g = np.exp(-0.5 * t * t)
    return g / g.sum()


def band_energy(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Energy of the signal's band around CLICK_HZ, sample by sample (its complex envelope squared).

    Overlap-save in blocks (:func:`block_samples`), so a long recording never
    needs one FFT of its whole length. Outside the audio the signal counts as silence.
    """
    x = np.asarray(pcm)
    n = len(x)
    g = _kernel(rate)
    half = _half_width(rate)
    block = block_samples(rate)
    spectrum = np.fft.fft(g, NFFT)
    step = -2j * math.pi * CLICK_HZ / rate
    out = np.empty(n, dtype=np.float64)
    for s in range(0, n, block):
        e = min(n, s + block)
        lo, hi = max(0, s - half), min(n, e + half)
        z = x[lo:hi].astype(np.float64) * np.exp(step * np.arange(lo, hi))
        y = np.fft.ifft(np.fft.fft(z, NFFT) * spectrum)
        # Full convolution: output index i is input index i - half.
        seg = y[s - lo + half : e - lo + half]
        out[s:e] = seg.real * seg.real + seg.imag * seg.imag
    return out


@cache
def _nominal_peak(rate: int) -> float:
    """The filtered energy peak of a click as the scene plays it (:func:`click_samples`)."""
    pad = _window(rate)
    click = click_samples(rate)
    return float(band_energy(np.pad(click, pad), rate).max())


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(mask.astype(np.int8)))
    starts = list(edges[mask[edges + 1]] + 1)
    ends = list(edges[~mask[edges + 1]] + 1)
    if mask.size and mask[0]:
        starts.insert(0, 0)
    if mask.size and mask[-1]:
        ends.append(mask.size)
    return list(zip(starts, ends, strict=True))


def _centre(energy: np.ndarray, peak: int, half: int) -> float:
    """Energy centre (fractional sample) of the click around ``peak``, the window recentred on it.

    Plain energy weights: cutting the tails at a fraction of the peak, or
    subtracting the noise floor, made no measurable difference through AAC
    and in loud broadband noise, so the simplest estimate stays.
    """
    centre = float(peak)
    for _ in range(3):
        lo = max(0, round(centre) - half)
        w = energy[lo : min(len(energy), round(centre) + half + 1)]
        total = float(w.sum())
        if total <= 0.0:
            break
        centre = lo + float(np.dot(np.arange(len(w)), w)) / total
    return centre


def find_clicks(pcm: np.ndarray, rate: int, start: float) -> list[float]:
    """Device times of the clicks' starts in mono audio whose first sample is at ``start``.

    ``pcm``: float samples, full scale 1.0 (as PyAV decodes AAC); ``start``:
    the device time of its first sample, which for decoded audio is the first
    frame's pts (AAC's priming samples included, stamped before the capture).

    A click cut by the start or end of the audio is ignored: its energy
    centre would lie wrong. So is a steady tone in the click's band (longer
    than :data:`MAX_RUN_SECONDS`).
    """
    x = np.asarray(pcm)
    if x.ndim != 1:
        raise ValueError(f"find_clicks needs mono samples (one dimension), got shape {x.shape}")
    if rate <= 2 * (CLICK_HZ + 4 * BAND_SIGMA_HZ):
        raise ValueError(f"a sample rate of {rate} Hz cannot carry a {CLICK_HZ:g} Hz click")
    half = _window(rate)
    if len(x) < 2 * half + 1:
        return []
    energy = band_energy(x, rate)
    floor = float(np.median(energy[:: max(1, len(energy) // 1_000_000)]))
    threshold = max(FLOOR_RATIO * floor, MIN_PEAK_FRACTION * _nominal_peak(rate))
    centres: list[float] = []
    for a, b in _runs(energy > threshold):
        if b - a > MAX_RUN_SECONDS * rate:
            continue
        centre = _centre(energy, a + int(np.argmax(energy[a:b])), half)
        if centre - half < 0 or centre + half > len(x) - 1:
            continue  # cut by the start or end of the audio
        if centres and centre - centres[-1] < CLICK_SECONDS * rate:
            continue  # a dip inside one click split its run: its centre is already found
        centres.append(centre)
    return [start + c / rate - CLICK_SECONDS / 2 for c in centres]


@dataclass(frozen=True)
class ClickMatch:
    """One click against the frame it marks: ``offset`` > 0 means the audio is late."""

    frame: int
    frame_time: float
    click: float

    @property
    def offset(self) -> float:
        return self.click - self.frame_time


@dataclass(frozen=True)
class SyncReport:
    """The A/V offset measured over a recording's clicks, and what did not add up.

    ``frames_without_click`` holds ``(frame, capture time)`` of each click
    frame inside the audio, outside any declared audio gap, that no click
    matched. ``unmatched_clicks`` are clicks no frame claims (a frame lost in
    a declared video gap, audio beyond the video, a duplicate): noted, not a
    failure, since the offset is judged on the clicks that match.
    """

    clicks: tuple[float, ...]
    matched: tuple[ClickMatch, ...]
    mean_offset: float | None
    max_abs_offset: float | None
    unmatched_clicks: tuple[float, ...]
    frames_without_click: tuple[tuple[int, float], ...]
    fps: float
    #: The audio's span, as given.
    span: tuple[float, float]

    @property
    def ok(self) -> bool:
        return not self.frames_without_click and (
            self.max_abs_offset is None or self.max_abs_offset <= MAX_OFFSET_SECONDS + ROUNDING
        )

    def problems(self, shown: int = 3) -> list[str]:
        """One line per kind of failure, each naming at most ``shown`` cases, then a count."""
        lines: list[str] = []
        late = [m for m in self.matched if abs(m.offset) > MAX_OFFSET_SECONDS + ROUNDING]
        if late:
            worst = max(late, key=lambda m: abs(m.offset))
            lines.append(
                f"A/V offset {_ms(worst.offset)} at frame {worst.frame} "
                f"({worst.frame_time:.4f} s) exceeds +-{MAX_OFFSET_SECONDS * 1000:g} ms; "
                f"{len(late)} of {len(self.matched)} clicks beyond it, mean {_ms(self.mean_offset)}"
            )
        if self.frames_without_click:
            missing = self.frames_without_click
            named = ", ".join(f"frame {n} ({t:.4f} s)" for n, t in missing[:shown])
            more = len(missing) - shown
            lines.append(
                f"no sync click within {MATCH_SECONDS:g} s of {named}"
                + (f" and {more} more" if more > 0 else "")
                + " (audio missing or out of sync, and no audio gap declared there)"
            )
        return lines

    def notes(self, shown: int = 3) -> list[str]:
        """What was measured, and clicks no frame claims."""
        lines = []
        if self.matched:
            lines.append(
                f"A/V offset mean {_ms(self.mean_offset)}, max |offset| "
                f"{_ms(self.max_abs_offset, sign=False)} over {len(self.matched)} clicks "
                f"(limit {MAX_OFFSET_SECONDS * 1000:g} ms)"
            )
        else:
            lines.append("A/V offset not measured: no sync click matched a frame")
        if self.unmatched_clicks:
            named = ", ".join(f"{t:.4f} s" for t in self.unmatched_clicks[:shown])
            more = len(self.unmatched_clicks) - shown
            lines.append(
                f"{len(self.unmatched_clicks)} sync click(s) near no frame whose number is a "
                f"multiple of {self.fps:g}: {named}" + (f" and {more} more" if more > 0 else "")
            )
        return lines


def _ms(seconds: float | None, sign: bool = True) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:{'+' if sign else ''}.1f} ms"


def is_click_frame(number: int, fps: float) -> bool:
    """Frames whose number is a whole multiple of the frame rate, frame 0 not included.

    Frame numbers count captures from boot (SPEC 8), so these are the frames
    at device time k = 1, 2, 3 ... s, where the scene plays its clicks; at
    boot (k = 0) it plays none.
    """
    k = round(number / fps)
    return k > 0 and abs(k * fps - number) < 1e-6


def _expected(t: float, span: tuple[float, float], gaps: Sequence[tuple[float, float]]) -> bool:
    """Whether a click frame at capture time ``t`` must have its click in this audio."""
    lo, hi = t - GUARD_SECONDS, t + CLICK_SECONDS + GUARD_SECONDS
    if lo < span[0] or hi > span[1]:
        return False
    return not any(g0 < hi and lo < g1 for g0, g1 in gaps)


def measure_offsets(
    clicks: Sequence[float],
    frame_times: Mapping[int, float],
    fps: float,
    span: tuple[float, float],
    gaps: Sequence[tuple[float, float]] = (),
) -> SyncReport:
    """Match each click to its frame and measure the offsets (SPEC 15: within 10 ms).

    ``frame_times``: device capture time by frame number (decoded). ``span``:
    device times of the audio's first and last sample; ``gaps``: declared
    audio gaps as ``(start, end)`` device times. Each click goes to the click
    frame (number a multiple of ``fps``) with the nearest capture time within
    :data:`MATCH_SECONDS`; a frame claimed twice keeps the nearer click.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    frames = sorted((t, n) for n, t in frame_times.items() if is_click_frame(n, fps))
    times = [t for t, _ in frames]
    best: dict[int, ClickMatch] = {}
    unmatched: list[float] = []
    for c in sorted(clicks):
        i = bisect_left(times, c)
        near = [frames[j] for j in (i - 1, i) if 0 <= j < len(frames)]
        if not near:
            unmatched.append(c)
            continue
        t, n = min(near, key=lambda f: abs(c - f[0]))
        if abs(c - t) > MATCH_SECONDS:
            unmatched.append(c)
            continue
        match = ClickMatch(frame=n, frame_time=t, click=c)
        held = best.get(n)
        if held is None or abs(match.offset) < abs(held.offset):
            best[n] = match
            if held is not None:
                unmatched.append(held.click)
        else:
            unmatched.append(c)
    matched = tuple(sorted(best.values(), key=lambda m: m.frame_time))
    offsets = [m.offset for m in matched]
    missing = tuple((n, t) for t, n in frames if n not in best and _expected(t, span, gaps))
    return SyncReport(
        clicks=tuple(sorted(clicks)),
        matched=matched,
        mean_offset=sum(offsets) / len(offsets) if offsets else None,
        max_abs_offset=max(map(abs, offsets)) if offsets else None,
        unmatched_clicks=tuple(sorted(unmatched)),
        frames_without_click=missing,
        fps=fps,
        span=span,
    )
