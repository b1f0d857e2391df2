"""Encoders turn captured pictures into :class:`~camera.frames.EncodedFrame`.

One interface for H.264 (PyAV/FFmpeg) and MJPEG (OpenCV): one picture in,
zero or more encoded frames out, each carrying its frame number, capture time
and keyframe flag, so the ring buffer and the recorder never care which codec
made them. Encoders are chosen by name from configuration and their modules
import lazily (no codec probing at import time).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from camera.errors import BackendError
from camera.frames import EncodedFrame

if TYPE_CHECKING:
    from camera.config import VideoConfig

log = logging.getLogger(__name__)

#: The Pi 4 / Zero 2 W's hardware H.264 encoder, as FFmpeg names it.
HARDWARE_H264 = "h264_v4l2m2m"


class Encoder(ABC):
    #: codec name as written in manifests and given to the muxer ("h264", "mjpeg")
    codec: str
    #: The implementation that actually opened ("libx264", "h264_v4l2m2m",
    #: "opencv-mjpeg"), as written in manifests: with ``auto`` only the
    #: encoder itself knows which one it is.
    name: str

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
    """The encoder for ``codec``; ``encoder`` picks the H.264 implementation.

    ``auto`` tries the hardware encoder (``h264_v4l2m2m``, the Pi 4 / Zero 2 W)
    where FFmpeg has it and falls back to libx264 when it does not open (the
    Pi 5 has none; FFmpeg builds include the codec even where no V4L2 M2M
    device exists). A named encoder is that one or a BackendError: a forced
    choice that silently became another would make the config lie.
    """
    if codec == "mjpeg":
        from camera.encoders.mjpeg import MJPEGEncoder

        return MJPEGEncoder(quality=quality)
    if codec == "h264":
        from camera.encoders.h264 import H264Encoder

        names = [HARDWARE_H264, "libx264"] if encoder == "auto" else [encoder]
        errors = []
        for name in names:
            try:
                opened = H264Encoder(
                    width, height, fps, bitrate=bitrate, gop=gop, threads=threads, name=name
                )
            except BackendError as exc:
                errors.append(str(exc))
                continue
            for why in errors:
                log.info("encoder auto: %s; trying the next", why)
            return opened
        raise BackendError("; ".join(errors))
    raise BackendError(f"unknown codec {codec!r}: expected h264 or mjpeg")


def encoder_for(video: VideoConfig, encoder: str | None = None) -> Encoder:
    """The encoder ``[video]`` asks for (``encoder`` overrides ``video.encoder``)."""
    return open_encoder(
        video.codec,
        encoder or video.encoder,
        video.width,
        video.height,
        video.fps,
        bitrate=video.bitrate,
        gop=video.gop,
        quality=video.quality,
        threads=video.threads,
    )
