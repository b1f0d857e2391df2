"""Sound from the microphone to the recorder: source -> AAC -> audio ring -> listeners.

Runs on the loop thread like capture: the source posts each block there,
AAC-LC encodes it (about 1 % of a core per second of sound on a 2-core
x86 host), every packet goes into the audio ring (so a recording can take
sound from before it was recognised) and to the listeners (the recorder,
which ignores it when not recording). A microphone that is missing or goes
away never stops the pictures: no blocks means no packets, and the gap in
sample numbers is what the recording declares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from camera.audio_ring import AudioRing
from camera.config import Config, audio_retention
from camera.encoders.aac import AACEncoder
from camera.frames import EncodedAudio
from camera.segments import AudioFormat
from hal.board import Hal

log = logging.getLogger(__name__)

AudioListener = Callable[[EncodedAudio], None]


class AudioPath:
    def __init__(self, config: Config, hal: Hal, arena_bytes: int) -> None:
        a = config.audio
        self.format = AudioFormat(a.codec, a.rate, a.channels, a.bitrate)
        self.pre_event = a.pre_event
        self.source = hal.audio
        #: The backend's name ("synthetic", "alsa"), written into manifests.
        self.source_name = hal.names.get("audio", "none") if hal.audio is not None else "none"
        #: Why there is no microphone (None when there is one).
        self.problem = hal.audio_problem if hal.audio is None else None
        if hal.audio is None and self.problem is None:
            self.problem = "the board has no microphone"
        self.encoder = AACEncoder(rate=a.rate, channels=a.channels, bitrate=a.bitrate)
        self.ring = AudioRing(arena_bytes, audio_retention(config))
        self.listeners: list[AudioListener] = []
        self.blocks = 0

    def start(self) -> None:
        if self.source is None:
            log.warning("audio: no microphone (%s): recording pictures without sound", self.problem)
            return
        self.source.start(self._on_block)

    def stop(self) -> None:
        """Stop the microphone and hand on what the encoder still holds."""
        if self.source is not None:
            self.source.stop()
        self._emit(self.encoder.flush())

    def _on_block(self, samples: np.ndarray, first_sample: int, time: float) -> None:
        self.blocks += 1
        self._emit(self.encoder.encode(samples, first_sample, time))

    def _emit(self, packets: list[EncodedAudio]) -> None:
        for packet in packets:
            self.ring.append(packet)
            for listener in self.listeners:
                listener(packet)
