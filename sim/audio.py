"""The simulated microphone: a seeded sound scene on the virtual clock, a sync click each second.

The scene (SPEC 15) is what a body camera hears on patrol, reduced to what
the audio path must be tested against: ambient noise (room tone, traffic)
that an encoder must spend bits on, speech-like bursts a few times every ten
seconds (voiced tones with harmonics, pitch glide and syllable rhythm, so the
level varies the way speech does), and at every whole second of device time
``k = 1, 2, ...`` the click of :mod:`camera.evidence.clicks`, whose first
sample is exactly sample ``k * rate``. Everything but the click stays below
``SCENE_MAX_HZ`` and is faded out ``QUIET_SECONDS`` either side of every
click, so ``verify`` finds the clicks and nothing else.

Block ``n`` (samples ``n * BLOCK`` onwards) is a pure function of the seed
and ``n``: the noise is one band-limited loop built once from the seed and
read at the block's sample indices; speech bursts are drawn per time slot
from a generator seeded with (seed, slot); the click and the fades depend on
the sample times alone. So a block costs a few vectorised numpy operations,
a run is byte-identical whatever order or subset of blocks it renders, and
there are no seams between blocks (a seam would be a broadband click).

Delivery: block ``n`` is handed over at ``(n + 1) * BLOCK / rate``, when its
last sample has been captured, carrying ``time = n * BLOCK / rate``, the
capture time of its first sample. A real sound card cannot deliver a block
before it has filled it, so the firmware in simulation sees audio with the
same one-block lag it will see on a Pi, and whatever depends on audio having
arrived (a segment closing, the ring evicting) is exercised as it will run
there; the block's own time stays exact.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from camera.evidence.clicks import (
    CLICK_HZ,
    CLICK_SECONDS,
    QUIET_SECONDS,
    SAMPLE_RATE,
    SCENE_MAX_HZ,
    click_samples,
)
from hal.audio import AudioSource, BlockCallback
from hal.clock import Clock, Timer

#: The ambient noise is a loop this many samples long (5.5 s at 48 kHz):
#: long enough not to be heard as a loop, small enough to build at once.
NOISE_LOOP = 1 << 18
#: Ambient noise band (Hz) and level (RMS, full scale 1.0: about -40 dBFS).
NOISE_LOW_HZ = 80.0
NOISE_HIGH_HZ = 3_000.0
AMBIENT_RMS = 0.01
#: Fades around each click's quiet zone: a raised cosine this long (s). A
#: fade spreads a tone by tens of Hz, so the scene's own content stops at
#: :data:`NOISE_HIGH_HZ` / :data:`SPEECH_MAX_HZ`, well below SCENE_MAX_HZ.
FADE_SECONDS = 0.02
#: Speech: at most one burst per slot of this many seconds, present with
#: this probability (so about 2.8 bursts per 10 s) ...
SPEECH_SLOT_SECONDS = 2.5
SPEECH_CHANCE = 0.7
#: ... lasting this long (s), voiced at a fundamental in this range (Hz) ...
SPEECH_SECONDS = (0.5, 1.6)
SPEECH_F0_HZ = (100.0, 300.0)
#: ... with harmonics up to this frequency, at most this many ...
SPEECH_MAX_HZ = 3_000.0
SPEECH_MAX_HARMONICS = 16
#: ... and a peak level in this range (full scale 1.0).
SPEECH_LEVEL = (0.08, 0.3)
#: Seeds the generators for the noise and the speech apart from each other.
_NOISE_STREAM = 1
_SPEECH_STREAM = 2


@dataclass(frozen=True)
class Burst:
    """One speech-like burst: a voiced tone with a gliding pitch and syllable rhythm."""

    start: float
    duration: float
    f0: float
    level: float
    #: Syllables per second (the amplitude rhythm of speech, 3-6 Hz).
    syllable_hz: float
    #: Pitch glide: relative depth and rate (Hz) of the sinusoidal glide.
    glide_depth: float
    glide_hz: float
    #: Relative amplitude and phase of harmonic h (index h - 1).
    harmonics: tuple[tuple[float, float], ...]

    def render(self, t: np.ndarray) -> np.ndarray:
        """The burst at sample times ``t`` (zero outside it)."""
        u = np.clip(t - self.start, 0.0, self.duration)
        outer = 0.5 - 0.5 * np.cos(2 * math.pi * u / self.duration)
        syllables = 0.35 + 0.65 * np.sin(math.pi * self.syllable_hz * u) ** 2
        g = 2 * math.pi * self.glide_hz
        phase = 2 * math.pi * self.f0 * (u + self.glide_depth / g * (1 - np.cos(g * u)))
        # Harmonic h is Im(c_h z^h), z = e^(i phase): powers by repeated
        # multiplication cost far less than a sine per harmonic.
        z = np.exp(1j * phase)
        power = z.copy()
        voice = np.zeros_like(z)
        for amp, phi in self.harmonics:
            voice += complex(amp * math.cos(phi), amp * math.sin(phi)) * power
            power *= z
        return self.level * outer * syllables * voice.imag


@functools.lru_cache(maxsize=256)
def speech_burst(seed: int, slot: int) -> Burst | None:
    """The burst in speech slot ``slot`` of scene ``seed``, if any: a function of both alone."""
    rng = np.random.default_rng((seed, _SPEECH_STREAM, slot))
    if rng.random() >= SPEECH_CHANCE:
        return None
    duration = float(rng.uniform(*SPEECH_SECONDS))
    start = slot * SPEECH_SLOT_SECONDS + float(rng.uniform(0, SPEECH_SLOT_SECONDS - duration))
    f0 = float(rng.uniform(*SPEECH_F0_HZ))
    depth = float(rng.uniform(0.03, 0.08))
    count = min(SPEECH_MAX_HARMONICS, math.floor(SPEECH_MAX_HZ / (f0 * (1 + depth))))
    tilt = float(rng.uniform(0.6, 1.2))  # brighter or duller voices
    harmonics = tuple(
        (float(h**-tilt * rng.uniform(0.5, 1.0)), float(rng.uniform(0, 2 * math.pi)))
        for h in range(1, count + 1)
    )
    return Burst(
        start=start,
        duration=duration,
        f0=f0,
        level=float(rng.uniform(*SPEECH_LEVEL)),
        syllable_hz=float(rng.uniform(3.0, 6.0)),
        glide_depth=depth,
        glide_hz=float(rng.uniform(0.5, 1.5)),
        harmonics=harmonics,
    )


def quiet_gain(t: np.ndarray) -> np.ndarray:
    """The scene's gain at times ``t``: 0 within QUIET_SECONDS of a click, fading back to 1."""
    before = np.ceil(t)  # the next click at or after t ...
    after = np.floor(t)  # ... and the last one at or before it
    to_next = np.where(before >= 1, before - QUIET_SECONDS - t, np.inf)
    from_last = np.where(after >= 1, t - (after + CLICK_SECONDS + QUIET_SECONDS), np.inf)
    d = np.minimum(to_next, from_last)  # distance outside the nearest quiet zone
    fade = 0.5 - 0.5 * np.cos(math.pi * np.clip(d, 0.0, FADE_SECONDS) / FADE_SECONDS)
    return np.where(d <= 0.0, 0.0, fade)


def _clear_of_clicks(t0: float, t1: float) -> bool:
    """Whether [t0, t1] (under a second) lies where :func:`quiet_gain` is 1 throughout."""
    a = math.floor(t0)
    after_last = a < 1 or t0 >= a + CLICK_SECONDS + QUIET_SECONDS + FADE_SECONDS
    return after_last and t1 <= a + 1 - QUIET_SECONDS - FADE_SECONDS


def _noise_loop(seed: int, rate: int) -> np.ndarray:
    """Pink-ish noise in NOISE_LOW_HZ..NOISE_HIGH_HZ, periodic (the loop joins without a seam)."""
    rng = np.random.default_rng((seed, _NOISE_STREAM))
    freqs = np.fft.rfftfreq(NOISE_LOOP, 1 / rate)
    band = (freqs >= NOISE_LOW_HZ) & (freqs <= NOISE_HIGH_HZ)
    spectrum = np.zeros(freqs.size, dtype=np.complex128)
    k = int(band.sum())
    spectrum[band] = (rng.standard_normal(k) + 1j * rng.standard_normal(k)) / np.sqrt(freqs[band])
    loop = np.fft.irfft(spectrum, NOISE_LOOP)
    return (loop * (AMBIENT_RMS / np.sqrt(np.mean(loop * loop)))).astype(np.float32)


class AudioScene:
    """Renders block ``n`` of a seeded scene: int16 ``(block, channels)``."""

    def __init__(self, rate: int, channels: int, block: int, seed: int = 0) -> None:
        if rate < 2 * SCENE_MAX_HZ or rate <= 2 * CLICK_HZ:
            raise ValueError(f"a {rate} Hz scene cannot carry the {CLICK_HZ:g} Hz click")
        self.rate = rate
        self.channels = channels
        self.block = block
        self.seed = seed
        self._noise = _noise_loop(seed, rate)
        self._click = click_samples(rate)

    def mono(self, n: int) -> np.ndarray:
        """Block ``n`` as float64 mono, full scale 1.0, before quantisation."""
        s0 = n * self.block
        s1 = s0 + self.block
        index = np.arange(s0, s1)
        t = index / self.rate
        x = self._noise[index % NOISE_LOOP].astype(np.float64)
        first = math.floor(s0 / self.rate / SPEECH_SLOT_SECONDS)
        last = math.floor((s1 - 1) / self.rate / SPEECH_SLOT_SECONDS)
        for slot in range(first, last + 1):
            burst = speech_burst(self.seed, slot)
            if burst is not None and burst.start < t[-1] and burst.start + burst.duration > t[0]:
                x += burst.render(t)
        if not _clear_of_clicks(t[0], t[-1]):
            x *= quiet_gain(t)
        # Clicks whose samples [k * rate, k * rate + len) overlap [s0, s1).
        length = len(self._click)
        k_first = max(1, -(-(s0 - length + 1) // self.rate))
        for k in range(k_first, (s1 - 1) // self.rate + 1):
            c0 = k * self.rate
            lo, hi = max(s0, c0), min(s1, c0 + length)
            x[lo - s0 : hi - s0] += self._click[lo - c0 : hi - c0]
        return x

    def render(self, n: int) -> np.ndarray:
        pcm = np.clip(np.round(self.mono(n) * 32767.0), -32768, 32767).astype(np.int16)
        return np.repeat(pcm[:, None], self.channels, axis=1)


class SyntheticAudio(AudioSource):
    """Plays :class:`AudioScene` on the clock, block by block; ``disconnect()`` drops some."""

    @classmethod
    def open(
        cls, clock: Clock, rate: int, channels: int, *, seed: int = 0, source: str = "default"
    ) -> AudioSource:
        return cls(clock, rate, channels, seed=seed)

    def __init__(
        self, clock: Clock, rate: int = SAMPLE_RATE, channels: int = 1, seed: int = 0
    ) -> None:
        super().__init__(clock, rate, channels)
        self.scene = AudioScene(rate, channels, self.block, seed)
        self.missed = 0  # blocks lost to disconnect(): the gap a recording must show
        self._down_until = -math.inf
        self._timer: Timer | None = None
        self._on_block: BlockCallback | None = None

    def start(self, on_block: BlockCallback) -> None:
        if self._timer is not None:
            raise RuntimeError("microphone already started")
        self._on_block = on_block
        now = self.clock.now()
        # The first block captured wholly after now.
        n = max(0, math.ceil(now * self.rate / self.block))
        while self._first_time(n) < now:
            n += 1
        while n > 0 and self._first_time(n - 1) >= now:
            n -= 1
        self._schedule(n)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._on_block = None

    def disconnect(self, until: float) -> None:
        """The microphone is gone until device time ``until``: blocks not whole are lost."""
        self._down_until = max(self._down_until, until)

    def _first_time(self, n: int) -> float:
        return n * self.block / self.rate

    def _schedule(self, n: int) -> None:
        self._timer = self.clock.call_at(self._first_time(n + 1), lambda: self._tick(n))

    def _tick(self, n: int) -> None:
        on_block = self._on_block
        if on_block is None:
            return
        # Schedule first: on_block may call stop(), which must then cancel this one.
        self._schedule(n + 1)
        t = self._first_time(n)
        if t < self._down_until:
            self.missed += 1
            return
        on_block(self.scene.render(n), n * self.block, t)
