"""H.264 through PyAV: one packet per picture, keyframes on a fixed cadence.

Settings chosen for a pre-event buffer: ``tune=zerolatency`` and no B-frames
so every picture comes out at once as one access unit (no reordering, pts ==
dts); scene-cut keyframes off and a keyframe forced every ``gop`` pictures, so
GOP boundaries are deterministic and the ring can evict whole GOPs; a fixed
thread count so the bitstream is reproducible across hosts. Every keyframe
carries SPS/PPS in band (a standalone context does this for libx264; for
``h264_v4l2m2m``, which doesn't, the headers are cached and prepended), so any
segment can start on any keyframe.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from camera.encoders import Encoder
from camera.errors import BackendError
from camera.frames import EncodedFrame

_SPS = 7
_PPS = 8


def nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex B access unit."""
    types = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def parameter_sets(data: bytes) -> bytes:
    """The SPS/PPS NAL units (with start codes) at the head of an access unit."""
    out = bytearray()
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        j = data.find(b"\x00\x00\x01", i + 3)
        end = len(data) if j < 0 else (j - 1 if data[j - 1] == 0 else j)
        if data[i + 3] & 0x1F in (_SPS, _PPS):
            out += b"\x00\x00\x00\x01" + data[i + 3 : end]
        i = j
    return bytes(out)


_INTRA = av.video.frame.PictureType.I


def bgr_frame(image: np.ndarray) -> av.VideoFrame:
    """A BGR picture as a frame for the encoder, without copying it when it can.

    The encoder converts the picture to yuv420p as it takes it, so the frame
    only has to outlive encode(): wrapping the array (from_numpy_buffer)
    gives the same bitstream as copying it (from_ndarray) and saves a
    full-frame allocation and copy per picture (0.6 ms or more at 720p on the
    2-core bench host). A picture whose rows are not one contiguous block is
    copied.
    """
    if image.flags.c_contiguous:
        return av.VideoFrame.from_numpy_buffer(image, format="bgr24")
    return av.VideoFrame.from_ndarray(image, format="bgr24")


class H264Encoder(Encoder):
    """``name`` is the FFmpeg encoder that opened (see :attr:`Encoder.name`)."""

    codec = "h264"

    def __init__(
        self,
        width: int,
        height: int,
        fps: int,
        *,
        bitrate: int,
        gop: int,
        threads: int = 2,
        name: str = "libx264",
    ) -> None:
        try:
            ctx = av.CodecContext.create(name, "w")
        except (av.FFmpegError, ValueError) as exc:
            detail = " ".join(str(exc).split())
            raise BackendError(f"H.264 encoder {name!r} is not available: {detail}") from exc
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.gop_size = gop
        ctx.max_b_frames = 0
        ctx.bit_rate = bitrate
        options: dict[str, str] = {}
        if name == "libx264":
            options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "threads": str(threads),
                "x264-params": f"scenecut=0:keyint={gop}:min-keyint={gop}",
            }
            ctx.options = dict(options)
        try:
            ctx.open()
        except av.FFmpegError as exc:
            hint = ""
            if name != "libx264":
                hint = (
                    " (no usable hardware encoder device here; encoder auto falls back to libx264)"
                )
            detail = " ".join(str(exc).split())  # one line, whatever FFmpeg said
            raise BackendError(f"H.264 encoder {name!r} cannot open: {detail}{hint}") from exc
        self.name = name
        self.gop = gop
        #: The private options it opened with: the opened context no longer shows
        #: them, and the bench must open its bare encoder exactly alike.
        self.options = options
        self._ctx = ctx
        self._since_key = gop  # the first picture is a keyframe
        self._headers = b""
        self._meta: dict[int, tuple[int, float]] = {}

    @property
    def context(self) -> av.VideoCodecContext:
        """The opened FFmpeg context: its settings, for a side-by-side bare encoder."""
        return self._ctx

    @staticmethod
    def available(name: str) -> bool:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            return False
        return True

    def encode(self, image: np.ndarray, number: int, time: float) -> list[EncodedFrame]:
        frame = bgr_frame(image)
        frame.pts = number
        if self._since_key >= self.gop:
            frame.pict_type = _INTRA
            self._since_key = 0
        self._since_key += 1
        self._meta[number] = (number, time)
        return self._collect(self._ctx.encode(frame))

    def flush(self) -> list[EncodedFrame]:
        return self._collect(self._ctx.encode(None))

    def _collect(self, packets: list[av.Packet]) -> list[EncodedFrame]:
        out = []
        for packet in packets:
            number, time = self._meta.pop(packet.pts)
            data = bytes(packet)
            key = bool(packet.is_keyframe)
            if key:
                data = self._with_headers(data)
            out.append(EncodedFrame(data, number, time, key))
        return out

    def _with_headers(self, data: bytes) -> bytes:
        if _SPS in nal_types(data[:256]):
            if not self._headers:
                self._headers = parameter_sets(data)
            return data
        headers = self._headers or parameter_sets(bytes(self._ctx.extradata or b""))
        return headers + data

    def close(self) -> None:
        self._ctx = None  # type: ignore[assignment]
