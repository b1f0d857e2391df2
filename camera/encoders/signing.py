"""Signing as frames leave the encoder, before the ring buffer (SPEC 12).

Wrapping the encoder, rather than signing in the recorder, is what signs the
pre-event too: every GOP in the ring already carries its signature in the
stream, so any cut at a GOP boundary (a recording, an export) validates on
its own. It runs wherever the encoder runs: on the encode thread in real
time, off the loop, so a signature never costs a live frame its slot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from camera.encoders import Encoder
from camera.evidence.svf import StreamSigner
from camera.frames import EncodedFrame


class SigningEncoder(Encoder):
    """An H.264 encoder whose access units come out signed (Signed Video Framework)."""

    def __init__(
        self, inner: Encoder, signer: StreamSigner, wall_us: Callable[[float], int]
    ) -> None:
        self.inner = inner
        self.codec = inner.codec
        self.name = inner.name
        self.signer = signer
        #: Unix microseconds of a device time, for the GOP timestamps in the SEIs.
        self.wall_us = wall_us

    def encode(self, image: np.ndarray, number: int, time: float) -> list[EncodedFrame]:
        return self._sign(self.inner.encode(image, number, time))

    def flush(self) -> list[EncodedFrame]:
        return self._sign(self.inner.flush())

    def close(self) -> None:
        self.inner.close()

    def _sign(self, frames: list[EncodedFrame]) -> list[EncodedFrame]:
        out = []
        for f in frames:
            data, seal = self.signer.sign(f.data, self.wall_us(f.time) if f.keyframe else None)
            out.append(EncodedFrame(data, f.number, f.time, f.keyframe, seal))
        return out
