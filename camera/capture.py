"""The capture path: sensor -> overlay -> encoder -> ring buffer -> listeners.

Runs on the loop thread, one picture at a time, and never touches storage:
the recorder listens for frames and hands them to the writer. On a real clock
the encode itself runs on a thread of its own (libx264 releases the GIL), so a
debounce deadline or a pin edge never waits behind a 720p picture; results
come back to the loop in order. On the virtual clock it stays inline, which
keeps simulated runs deterministic.

A picture the encoder thread has no room for is skipped, and capture says so:
skip listeners are told its number and time on the loop thread, at once, so
the recorder can declare it as an ``encoder_backlog`` gap (frames dropped by
the firmware) rather than mistake the hole for a camera dropout.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from camera.clock_discipline import ClockDiscipline
from camera.encoders import Encoder
from camera.frames import EncodedFrame
from camera.overlay import Overlay
from camera.ring import RingBuffer
from hal.clock import Clock
from hal.sensor import Sensor

Listener = Callable[[EncodedFrame], None]
#: Told (frame number, capture time) of a picture that was captured but skipped.
SkipListener = Callable[[int, float], None]


class EncodeThread:
    """The encoder on its own thread, bounded to ``depth`` pictures in flight.

    Counters are touched only on the loop thread (submit, and the posted
    completion), so they need no lock. Past ``depth`` a picture is skipped, so
    an overloaded host sheds frames instead of queueing memory and latency;
    ``on_skip`` is told which.
    """

    def __init__(
        self,
        clock: Clock,
        encoder: Encoder,
        emit: Callable[[list[EncodedFrame]], None],
        depth: int = 8,
        on_skip: SkipListener | None = None,
    ) -> None:
        self.clock = clock
        self.encoder = encoder
        self.emit = emit
        self.depth = depth
        self.on_skip = on_skip
        self.pending = 0
        self.skipped = 0
        self._queue: queue.SimpleQueue[tuple[np.ndarray, int, float] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bodycam-encode", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray, number: int, time: float) -> None:
        if self.pending >= self.depth:
            self.skipped += 1
            if self.on_skip is not None:
                self.on_skip(number, time)
            return
        self.pending += 1
        self._queue.put((image, number, time))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                frames = self.encoder.encode(*item)
            except Exception as exc:  # raised again on the loop, never lost
                self.clock.call_soon_threadsafe(lambda exc=exc: self._raise(exc))
                continue
            self.clock.call_soon_threadsafe(lambda frames=frames: self._done(frames))

    def _done(self, frames: list[EncodedFrame]) -> None:
        self.pending -= 1
        self.emit(frames)

    def _raise(self, exc: Exception) -> None:
        self.pending -= 1
        raise exc

    def close(self) -> None:
        """Finish what is in flight and hand it to the loop before returning."""
        self._queue.put(None)
        self._thread.join()
        self.clock.run_posted()


class Capture:
    def __init__(
        self,
        clock: Clock,
        sensor: Sensor,
        encoder: Encoder,
        ring: RingBuffer,
        overlay: Overlay | None = None,
        offload: bool = False,
        encode_depth: int = 8,
        discipline: ClockDiscipline | None = None,
    ) -> None:
        self.clock = clock
        self.sensor = sensor
        self.encoder = encoder
        self.ring = ring
        self.overlay = overlay
        #: Whether the wall time the overlay burns in is vouched for (None: always).
        self.discipline = discipline
        self.listeners: list[Listener] = []
        self.skip_listeners: list[SkipListener] = []
        self.frames_captured = 0
        self.last_number: int | None = None
        self.last_time: float | None = None
        self._offload = offload
        #: Pictures in flight to the encoder thread before one is skipped.
        self.encode_depth = encode_depth
        self._thread: EncodeThread | None = None

    def start(self) -> None:
        if self._offload:
            self._thread = EncodeThread(
                self.clock, self.encoder, self._emit, self.encode_depth, self._skipped
            )
        self.sensor.start(self._on_frame)

    def stop(self) -> None:
        self.sensor.stop()
        if self._thread is not None:
            self._thread.close()
            self._thread = None
        self._emit(self.encoder.flush())

    def _on_frame(self, image: np.ndarray, number: int, time: float) -> None:
        if self.overlay is not None:
            d = self.discipline
            self.overlay.draw(image, self.clock.wall(time), d is None or d.disciplined)
        self.frames_captured += 1
        self.last_number, self.last_time = number, time
        if self._thread is not None:
            self._thread.submit(image, number, time)
        else:
            self._emit(self.encoder.encode(image, number, time))

    def _skipped(self, number: int, time: float) -> None:
        for listener in self.skip_listeners:
            listener(number, time)

    def _emit(self, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            self.ring.append(frame)
            for listener in self.listeners:
                listener(frame)
