"""A USB or I2S MEMS microphone on a Pi, captured from ALSA through python-sounddevice (PortAudio).

Why sounddevice and not PyAV's ALSA input, although the PyAV wheel has the
``alsa`` format (``"alsa" in av.formats_available``):

- The wheel bundles its own libasound, built to look for its configuration
  under the build's prefix (``/tmp/vendor/share/alsa``), so ``default``,
  ``plughw:1`` and ``dsnoop`` do not resolve on a normal system (tried:
  "Cannot access file /tmp/vendor/share/alsa/alsa.conf ... Unknown PCM
  default"), and the system's ALSA plugins are out of its reach.
- FFmpeg's ALSA demuxer stamps packets with Unix wall time (``av_gettime``;
  its source says "The PTS are an Unix time in microsecond"), smoothed by a
  delay-locked loop. A Pi has no real-time clock and NTP steps its wall
  clock after boot, often mid-recording: the stamps jump, and the loop's
  rate estimate is wrong for a while after.
- PortAudio uses the system's libasound, and the callback's
  ``time.inputBufferAdcTime`` is the ALSA status timestamp less the queued
  frames, on the stream's clock (``stream.time``), which on ALSA is
  CLOCK_MONOTONIC (ALSA's default for PCM timestamps since kernel 2.6.25, as
  PortAudio's PR #559 records when it moved its own clock there too). So
  the clock's ``from_monotonic`` converts it to device time directly, and
  :class:`~hal.audio.timing.BlockTimer` falls back to the arrival time where
  a plugin reports none or another clock.

sounddevice needs PortAudio from the OS (``apt install libportaudio2``) and
is imported only when a microphone is opened, so it is no dependency of the
simulator or CI; without it the board gets one
:class:`~hal.errors.HardwareMissing` line saying what to install.

PortAudio calls back on its own thread with exactly ``blocksize`` frames;
each block is copied, dated, numbered and handed to the clock's loop with
:meth:`~hal.clock.Clock.call_soon_threadsafe`. A supervisor thread owns the
stream: when it ends by itself (PortAudio's callback thread exits on a read
error, as when a USB microphone is unplugged, and runs the finished
callback) or goes quiet for :data:`STALL_SECONDS`, it is closed and opened
again, backing off per :func:`~hal.sensor.timing.retry_delay` while that
fails. Nothing of this ever raises into the loop: the outage is a log line
and a jump in sample numbers, which the recording declares as an audio gap.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from hal.audio import AudioSource, BlockCallback
from hal.audio.timing import BlockTimer
from hal.clock import Clock
from hal.errors import HardwareMissing
from hal.sensor.timing import retry_delay

log = logging.getLogger(__name__)

NOT_INSTALLED = (
    "sounddevice is not installed (pip install sounddevice; it needs PortAudio: "
    "apt install libportaudio2)"
)
NO_PORTAUDIO = "the PortAudio library is missing (apt install libportaudio2)"
#: A stream that delivers nothing for this long (s) is taken for lost.
STALL_SECONDS = 2.0
#: How long stop() waits for the supervisor; a wedged driver must not hang shutdown.
JOIN_TIMEOUT = 2.0
#: PortAudio's "high" latency: a deeper driver buffer, so a busy Pi overflows
#: less; the blocks' times come from the driver, so the delay costs no sync.
LATENCY = "high"


def import_sounddevice() -> Any:
    """The sounddevice module, imported on first use."""
    try:
        import sounddevice
    except ImportError as exc:
        raise HardwareMissing(NOT_INSTALLED) from exc
    except OSError as exc:  # sounddevice raises it when libportaudio cannot be found
        raise HardwareMissing(NO_PORTAUDIO) from exc
    return sounddevice


def device_arg(source: str) -> int | str | None:
    """sounddevice's device argument: None for the default, an index, or a name substring."""
    if source in ("", "default"):
        return None
    if source.isdigit():
        return int(source)
    return source


class AlsaAudio(AudioSource):
    """Blocks from an ALSA capture device: ``source`` is "default", an index, or a name part.

    ``backoff`` (failures in a row -> seconds) and ``stall_seconds`` are for
    tests, which must not wait out real retry delays.
    """

    @classmethod
    def open(
        cls, clock: Clock, rate: int, channels: int, *, seed: int = 0, source: str = "default"
    ) -> AudioSource:
        return cls(clock, rate, channels, source=source)

    def __init__(
        self,
        clock: Clock,
        rate: int,
        channels: int,
        source: str = "default",
        *,
        backoff: Callable[[int], float] = retry_delay,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        super().__init__(clock, rate, channels)
        self.sd = import_sounddevice()
        self.source = source
        self.device = device_arg(source)
        self.backoff = backoff
        self.stall_seconds = stall_seconds
        self.timer = BlockTimer(clock, rate, repr(source))
        self.device_name = self._check_device()
        #: Blocks received, input overflows reported, streams reopened.
        self.blocks = 0
        self.overflows = 0
        self.reopens = 0
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._generation = 0  # blocks posted by an earlier start() are dropped
        self._stream_token = 0  # a closed stream's finished callback is ignored

    # -- device -----------------------------------------------------------
    def _check_device(self) -> str:
        """The input device's name; HardwareMissing when there is none such, as at boot."""
        sd = self.sd
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise HardwareMissing(
                f"no audio input device {self.source!r} ({exc}; `arecord -l` lists the cards)"
            ) from exc
        if int(info["max_input_channels"]) < self.channels:
            raise HardwareMissing(
                f"audio input {info['name']!r} has {info['max_input_channels']} channel(s), "
                f"{self.channels} configured"
            )
        return str(info["name"])

    def _open_stream(self, generation: int, on_block: BlockCallback) -> Any:
        self._stream_token += 1
        token = self._stream_token
        stream = self.sd.InputStream(
            samplerate=self.rate,
            blocksize=self.block,
            device=self.device,
            channels=self.channels,
            dtype="int16",
            latency=LATENCY,
            callback=functools.partial(self._callback, generation, on_block),
            finished_callback=functools.partial(self._finished, token),
        )
        try:
            stream.start()
        except BaseException:
            self._close(stream)
            raise
        return stream

    def _close(self, stream: Any) -> None:
        self._stream_token += 1  # closing runs its finished callback: not a loss
        try:
            stream.close()  # discards what is pending, as abort() would
        except Exception as exc:  # a vanished device may fail to close; it is gone anyway
            log.warning("microphone %r: close failed: %s", self.source, exc)

    # -- AudioSource ------------------------------------------------------
    def start(self, on_block: BlockCallback) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("microphone already started")
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._generation += 1
        self.timer.resume()  # after a stop(), the pause is a gap
        self._thread = threading.Thread(
            target=self._supervise,
            args=(self._stop_event, self._wake, self._generation, on_block),
            name=f"microphone {self.source}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        self._wake.set()
        self._generation += 1  # anything still queued on the loop is now stale
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning(
                    "microphone %r: capture did not stop within %.1f s", self.source, JOIN_TIMEOUT
                )
                return
        self._thread = None

    # -- supervisor thread ------------------------------------------------
    def _supervise(
        self,
        stop: threading.Event,
        wake: threading.Event,
        generation: int,
        on_block: BlockCallback,
    ) -> None:
        """Keep a stream open until stop(): reopen it when it ends or stalls, backing off."""
        failures = 0
        delay = 0.0
        while not stop.is_set():
            if delay > 0 and stop.wait(delay):
                break
            try:
                stream = self._open_stream(generation, on_block)
            except Exception as exc:  # PortAudioError, or the device gone from the list
                failures += 1
                delay = self.backoff(failures)
                log.warning(
                    "microphone %r: cannot open (%s); retrying in %.1f s", self.source, exc, delay
                )
                continue
            before = self.blocks
            try:
                self._watch(stop, wake)
            finally:
                self._close(stream)
            if stop.is_set():
                break
            self.reopens += 1
            self.timer.resume()
            # A stream that ended without a block is a failure to back off from.
            failures = 0 if self.blocks > before else failures + 1
            delay = self.backoff(failures) if failures else 0.0

    def _watch(self, stop: threading.Event, wake: threading.Event) -> None:
        """Return on stop(), when the stream ends by itself, or when it goes quiet."""
        seen = self.blocks
        while True:
            woken = wake.wait(self.stall_seconds)
            if stop.is_set():
                return
            if woken:
                wake.clear()
                log.warning("microphone %r: capture stream ended; reopening", self.source)
                return
            if self.blocks == seen:
                log.warning(
                    "microphone %r: no audio for %.1f s; reopening",
                    self.source,
                    self.stall_seconds,
                )
                return
            seen = self.blocks

    # -- PortAudio's thread -----------------------------------------------
    def _finished(self, token: int) -> None:
        """PortAudio's finished callback: the stream ended; a loss unless we closed it."""
        if token == self._stream_token:
            self._wake.set()

    def _callback(
        self,
        generation: int,
        on_block: BlockCallback,
        indata: np.ndarray,
        frames: int,
        time_info: Any,
        status: Any,
    ) -> None:
        try:
            arrived = self.clock.now()
            self.blocks += 1
            overflow = bool(getattr(status, "input_overflow", False))
            if overflow:
                self.overflows += 1
            captured = getattr(time_info, "inputBufferAdcTime", None)
            first, t = self.timer.stamp(frames, captured, arrived, overflow=overflow)
            # indata is PortAudio's buffer, reused for the next block: copy it.
            samples = np.array(indata, dtype=np.int16).reshape(frames, self.channels)
            self.clock.call_soon_threadsafe(
                functools.partial(self._deliver, generation, on_block, samples, first, t)
            )
        except Exception:  # never into PortAudio, which would abort the stream
            log.exception("microphone %r: a block could not be handled", self.source)

    def _deliver(
        self, generation: int, on_block: BlockCallback, samples: np.ndarray, first: int, t: float
    ) -> None:
        if generation == self._generation:
            on_block(samples, first, t)
