"""Encoders turn captured pictures into :class:`~camera.frames.EncodedFrame`.

One interface for H.264 (PyAV/FFmpeg) and MJPEG (OpenCV): one picture in,
zero or more encoded frames out, each carrying its frame number, capture time
and keyframe flag, so the ring buffer and the recorder never care which codec
made them. Encoders are chosen by name from configuration and their modules
import lazily (no codec probing at import time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from camera.errors import BackendError
from camera.frames import EncodedFrame


class Encoder(ABC):
    #: codec name as written in manifests and given to the muxer ("h264", "mjpeg")
    codec: str

    @abstractmethod
    def encode(self, image: np.ndarray, number: int, time: float) -> list[EncodedFrame]:
        """Encode one BGR picture captured as frame ``number`` at device ``time``."""

    def flush(self) -> list[EncodedFrame]:
        """Frames still inside the encoder (none for low-latency settings)."""
        return []

    def close(self) -> None:
        return None


def open_encoder(
    codec: str,
    encoder: str,
    width: int,
    height: int,
    fps: int,
    *,
    bitrate: int,
    gop: int,
    quality: int,
    threads: int,
) -> Encoder:
    """The encoder for ``codec``; ``encoder`` picks the H.264 implementation."""
    if codec == "mjpeg":
        from camera.encoders.mjpeg import MJPEGEncoder

        return MJPEGEncoder(quality=quality)
    if codec == "h264":
        from camera.encoders.h264 import H264Encoder

        names = ["libx264"] if encoder in ("auto", "libx264") else [encoder]
        if encoder == "auto" and H264Encoder.available("h264_v4l2m2m"):
            names.insert(0, "h264_v4l2m2m")
        errors = []
        for name in names:
            try:
                return H264Encoder(
                    width, height, fps, bitrate=bitrate, gop=gop, threads=threads, name=name
                )
            except BackendError as exc:
                errors.append(str(exc))
        raise BackendError("; ".join(errors))
    raise BackendError(f"unknown codec {codec!r}: expected h264 or mjpeg")
