"""FakeSoundDevice: a stand-in for the part of python-sounddevice we call; not sounddevice.

It mimics only what :mod:`hal.audio.alsa` uses, with sounddevice's names and
signatures: ``PortAudioError``, ``query_devices(device, kind)`` (a dict with
``name`` and ``max_input_channels``; ValueError for no matching input
device), ``InputStream(samplerate=, blocksize=, device=, channels=, dtype=,
latency=, callback=, finished_callback=)`` with ``start()``, ``close()``
and ``active``, and the callback's arguments: ``indata`` (an int16 array
``(frames, channels)`` that is overwritten by the next block, as PortAudio's
buffer is), ``frames``, ``time`` (``inputBufferAdcTime``, ``currentTime``)
and ``status`` (``input_overflow``).

There is no PortAudio, no ALSA and no audio thread behind it: a test calls
:meth:`FakeInputStream.feed`, which runs the callback on the test's thread
as PortAudio would on its own, so the test decides every block's driver
timestamp. :meth:`FakeInputStream.lose` ends a stream the way PortAudio does
when the device vanishes (its callback thread exits on the read error and
the finished callback runs); ``fail_opens`` makes the next opens fail as an
unplugged device's would.

Install it with :func:`install` (``sys.modules["sounddevice"]``), as the
backend imports ``sounddevice`` lazily.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

#: An ALSA USB microphone as PortAudio lists it.
USB_MIC = {"name": "USB PnP Sound Device: Audio (hw:1,0)", "max_input_channels": 1}
DEFAULT = {"name": "default", "max_input_channels": 128}


class PortAudioError(Exception):
    """sounddevice.PortAudioError."""


@dataclass
class FakeTimeInfo:
    """The callback's ``time`` (PortAudio's PaStreamCallbackTimeInfo)."""

    inputBufferAdcTime: float  # sounddevice's (PortAudio's) spelling
    currentTime: float
    outputBufferDacTime: float = 0.0


@dataclass
class FakeCallbackFlags:
    """The callback's ``status`` (sounddevice.CallbackFlags), input side only."""

    input_overflow: bool = False
    input_underflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow or self.input_underflow


class FakeInputStream:
    """One opened stream; the test drives its callback with :meth:`feed`."""

    def __init__(self, fake: FakeSoundDevice, **kwargs: Any) -> None:
        self.fake = fake
        self.kwargs = kwargs
        self.callback: Callable[..., None] = kwargs["callback"]
        self.finished_callback: Callable[[], None] | None = kwargs.get("finished_callback")
        self.started = False
        #: Times start() succeeded (a stream may be closed again by the time a test looks).
        self.starts = 0
        self.closed = False
        channels = int(kwargs["channels"])
        self._buffer = np.zeros((int(kwargs["blocksize"]), channels), dtype=np.int16)

    @property
    def active(self) -> bool:
        return self.started and not self.closed

    def start(self) -> None:
        with self.fake.cond:
            if self.fake.fail_starts > 0:
                self.fake.fail_starts -= 1
                raise PortAudioError(
                    "Error starting stream: Device unavailable [PaErrorCode -9985]"
                )
            self.started = True
            self.starts += 1
            self.fake.cond.notify_all()

    def close(self, ignore_errors: bool = True) -> None:
        if self.closed:
            return
        was_active = self.active
        with self.fake.cond:
            self.closed = True
            self.fake.cond.notify_all()
        if was_active and self.finished_callback is not None:
            self.finished_callback()  # PortAudio calls it on stop/abort/close too

    def feed(
        self,
        samples: np.ndarray | None = None,
        *,
        adc_time: float,
        current_time: float | None = None,
        overflow: bool = False,
    ) -> None:
        """Hand one block to the callback: ``adc_time`` is its first sample's stream time."""
        if not self.active:
            raise RuntimeError("fake: feeding a stream that is not running")
        block = self._buffer
        block[...] = 0 if samples is None else np.asarray(samples).reshape(block.shape)
        current = adc_time + len(block) / float(self.kwargs["samplerate"])
        self.callback(
            block,
            len(block),
            FakeTimeInfo(adc_time, current if current_time is None else current_time),
            FakeCallbackFlags(input_overflow=overflow),
        )
        block[...] = -1  # PortAudio reuses its buffer: a kept reference would see this

    def lose(self) -> None:
        """The device vanished: PortAudio's callback thread exits and the stream finishes."""
        with self.fake.cond:
            self.started = False
            self.fake.cond.notify_all()
        if self.finished_callback is not None:
            self.finished_callback()


class FakeSoundDevice(types.ModuleType):
    """The fake ``sounddevice`` module: devices, streams opened, failures to script."""

    def __init__(self, devices: Sequence[dict[str, Any]] = (DEFAULT, USB_MIC)) -> None:
        super().__init__("sounddevice")
        self.PortAudioError = PortAudioError
        self.devices = list(devices)
        #: How many of the next InputStream() / start() calls fail.
        self.fail_opens = 0
        self.fail_starts = 0
        self.opens = 0
        self.streams: list[FakeInputStream] = []
        self.cond = threading.Condition()

    def query_devices(self, device: int | str | None = None, kind: str | None = None) -> dict:
        inputs = [d for d in self.devices if d["max_input_channels"] > 0]
        if device is None:
            if not inputs:
                raise PortAudioError("Error querying device -1")
            return dict(inputs[0])
        if isinstance(device, int):
            if not 0 <= device < len(self.devices):
                raise PortAudioError(f"Error querying device {device}")
            return dict(self.devices[device])
        for d in inputs:
            if device.lower() in d["name"].lower():
                return dict(d)
        raise ValueError(f"No input device matching {device!r}")

    def InputStream(self, **kwargs: Any) -> FakeInputStream:  # sounddevice's spelling
        with self.cond:
            self.opens += 1
            if self.fail_opens > 0:
                self.fail_opens -= 1
                self.cond.notify_all()
                raise PortAudioError("Error opening InputStream: Device unavailable")
        stream = FakeInputStream(self, **kwargs)
        with self.cond:
            self.streams.append(stream)
            self.cond.notify_all()
        return stream

    def wait_for(self, predicate: Callable[[FakeSoundDevice], bool], timeout: float = 10.0) -> None:
        """Block until ``predicate(self)`` holds (the backend's thread opened something)."""
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError("fake sounddevice: timed out waiting for the backend")

    def running(self, count: int, timeout: float = 10.0) -> FakeInputStream:
        """Wait until ``count`` streams were opened and the last one started; return it."""
        index = count - 1
        self.wait_for(lambda f: len(f.streams) > index and f.streams[index].starts > 0, timeout)
        return self.streams[count - 1]


def install(
    monkeypatch: pytest.MonkeyPatch, fake: FakeSoundDevice | None = None
) -> FakeSoundDevice:
    """Make ``import sounddevice`` return ``fake`` (a new one by default)."""
    fake = fake if fake is not None else FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake


class _NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``sounddevice`` as far as its dlopen of PortAudio, which fails."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "sounddevice":
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        raise OSError("PortAudio library not found")  # sounddevice's own words


def install_without_portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import sounddevice`` fails as it does on a machine without libportaudio2."""
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
