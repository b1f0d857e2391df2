"""Decoding segments of unknown health, bounded and without exceptions.

A segment may be torn, truncated or hostile; decoding must neither hang,
nor raise, nor let the file choose its own format (a probe would let it pose
as a playlist that opens further files). Each picture's SPEC section 8 frame
code is read from its top rows as it is decoded.

A segment with an audio stream has its audio packets counted and decoded too
(see audio_decode.py), interleaved with the video as they come; a segment
without one is demuxed exactly as before, video only.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from camera.evidence import annexb
from camera.evidence.svf_parse import is_svf_sei
from camera.evidence.verify.audio_decode import AudioDecoder, DecodedAudio
from camera.evidence.verify.files import FORMAT_OF_SUFFIX, Unreadable, open_regular
from camera.framecode import CODE_HEIGHT, read_frame_code

#: NAL unit types a signature-only access unit may hold besides its SVF SEIs:
#: the access unit delimiter the MPEG-TS muxer puts in front of every unit.
NAL_AUD = 9
#: Packets decoded beyond a segment's declared frame count before giving up:
#: room to report "more frames than the manifest says" without decoding an
#: arbitrarily long (or garbage) stream.
DECODE_MARGIN = 64


@dataclass
class DecodedFrame:
    pts: int | None  # in the stream's time base; None if the container lost it
    time_base: Fraction | float
    keyframe: bool
    code: int | None

    @property
    def seconds(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)


@dataclass
class Decoded:
    frames: list[DecodedFrame] = field(default_factory=list)
    codec: str | None = None
    #: Why decoding ended before the end of the file, if it did.
    stopped: str | None = None
    bad_packets: int = 0
    first_bad: str | None = None
    #: Picture-less units holding only signed-video SEIs (a recording's closing signature).
    signature_units: int = 0
    #: The container's keyframe flag on the first packet: a decoder silently
    #: skips leading P frames it has no reference for, so the first *picture*
    #: alone cannot show that a segment was cut mid-GOP.
    first_packet_key: bool | None = None
    #: The segment's (first) audio stream; None when it has none.
    audio: DecodedAudio | None = None


class Prefix:
    """The first ``end`` bytes of an open file, as a file (for decode_file).

    A segment recovery found short may end inside a frame; the manifest says
    where its whole frames end, and only those are decoded and counted.
    """

    def __init__(self, f: BinaryIO, end: int) -> None:
        self._f = f
        self._end = end

    def fileno(self) -> int:
        return self._f.fileno()

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._end - self._f.tell())
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            offset, whence = self._end + offset, os.SEEK_SET
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


class QuietReader:
    """A read-only file for PyAV whose failures are return codes, never exceptions.

    PyAV turns an exception raised inside a read or seek callback into a
    "stashed" error; a second one before it is collected is printed to stderr
    as a traceback ("PyAV library exception being dropped"), and a stashed
    error can surface later, in an unrelated call. FFmpeg's probes seek to
    negative offsets on short files, which a Python file refuses with EINVAL.
    So a failed seek returns a negative errno and a failed read is end of file.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except (OSError, ValueError):
            return b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._f.seek(offset, whence)
        except (OSError, ValueError, OverflowError):
            return -errno.EINVAL

    def tell(self) -> int:
        return self._f.tell()


def _av_message(exc: Exception) -> str:
    """One line from a PyAV failure (no file name: the caller names the file)."""
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def signature_only(data: bytes) -> bool:
    """True for an access unit with no picture, only Signed Video SEIs (and a delimiter).

    A stop closes the recording's last GOP with an SEI in a unit of its own,
    after the last frame; FFmpeg's decoder calls such a unit invalid data.
    Only this exact shape is excused: any slice, or any other NAL unit, and
    an undecodable packet stays a finding.
    """
    kinds = [(annexb.nal_type(nal), nal) for nal in annexb.split_nals(data)]
    signed = [nal for kind, nal in kinds if kind == annexb.NAL_SEI and is_svf_sei(nal)]
    return bool(signed) and len(signed) + sum(kind == NAL_AUD for kind, _ in kinds) == len(kinds)


def _packets(container: Any, streams: tuple[Any, ...], out: Decoded) -> Iterator[Any]:
    """The streams' packets until the demuxer fails (noted in ``out.stopped``).

    PyAV raises more than FFmpegError on damaged input: IndexError when a
    damaged MPEG-TS announces a new stream mid-file, for one. Whatever the
    library raises while reading hostile bytes is a finding about the file.
    """
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except Exception as exc:
            out.stopped = f"stops demuxing after {len(out.frames)} frames: {_av_message(exc)}"
            return
        yield packet


#: Pixel formats whose first plane is 8-bit luma: the code strip is read from
#: it directly, five times faster than converting the whole picture to gray.
LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"}
)


def code_strip(picture: Any) -> np.ndarray:
    """The top rows of a picture's luma, where SPEC section 8 puts the frame code.

    read_frame_code compares each block with its inverse, so limited or full
    range luma read straight from the plane gives the same number.
    """
    rows = min(CODE_HEIGHT, picture.height)
    if picture.format.name not in LUMA_FIRST:
        return picture.to_ndarray(format="gray")[:rows]
    plane = picture.planes[0]
    luma = np.frombuffer(plane, np.uint8, count=rows * plane.line_size)
    return luma.reshape(rows, plane.line_size)[:, : picture.width]


def decode_file(
    f: BinaryIO,
    container_format: str,
    declared_frames: int | None = None,
    dims: tuple[int, int] | None = None,
    audio: AudioDecoder | None = None,
) -> Decoded:
    """Decode every picture of an open segment file, reading its frame code.

    Never raises for damaged input. A packet that does not decode is counted
    and skipped (the frames after it are still evidence). Decoding stops at a
    demuxer failure; when a picture is not ``dims`` (width, height) or,
    without them, differs from the first, since damaged headers can claim huge pictures; and after
    ``declared_frames`` (or one per byte of the file) plus DECODE_MARGIN
    packets, so the work is bounded whatever the bytes say. The container
    format is given, never probed: probing would let a file pose as a
    playlist or another format that opens further files.

    ``audio``: the decoder for the audio stream, if there is one; pass the
    same one for every segment of a recording (and ``keep_pcm``) to get its
    PCM for sync measurement. Without it each segment's audio is decoded by a
    fresh decoder, for the counts in ``Decoded.audio`` only.
    """
    out = Decoded()
    file_bytes = os.fstat(f.fileno()).st_size
    limit = min(file_bytes, declared_frames if declared_frames is not None else file_bytes)
    limit += DECODE_MARGIN
    try:
        container = av.open(QuietReader(f), format=container_format, metadata_errors="replace")
    except Exception as exc:
        out.stopped = f"does not open as {container_format}: {_av_message(exc)}"
        return out
    with container:
        if not container.streams.video:
            out.stopped = "has no video stream"
            return out
        stream = container.streams.video[0]
        with contextlib.suppress(Exception):
            out.codec = stream.codec_context.name
        time_base = stream.time_base or Fraction(0)
        streams: tuple[Any, ...] = (stream,)
        audio_index = -1
        if container.streams.audio:
            sound = container.streams.audio[0]
            audio = audio or AudioDecoder()
            try:
                out.audio = audio.start(sound)
                streams, audio_index = (stream, sound), sound.index
            except Exception as exc:  # a hostile stream header: say so, decode the video
                out.audio = DecodedAudio(first_bad=f"audio stream: {_av_message(exc)}")
        n = 0
        for packet in _packets(container, streams, out):
            if packet.stream_index == audio_index:
                assert audio is not None and out.audio is not None
                if not packet.size:
                    continue
                if out.audio.packets >= file_bytes + DECODE_MARGIN:
                    out.stopped = f"more than {out.audio.packets} audio packets; stopped decoding"
                    break
                audio.feed(packet, out.audio)
                continue
            n += 1
            if out.first_packet_key is None and packet.size:
                out.first_packet_key = bool(packet.is_keyframe)
            if n > limit:
                frames = "" if declared_frames is None else f" for {declared_frames} frames"
                out.stopped = f"more than {limit} packets{frames}; stopped decoding"
                break
            try:
                pictures = packet.decode()
            except Exception as exc:
                if out.codec == "h264" and signature_only(bytes(packet)):
                    out.signature_units += 1
                    continue
                out.bad_packets += 1
                out.first_bad = out.first_bad or f"packet {n}: {_av_message(exc)}"
                continue
            for picture in pictures:
                shape = (picture.width, picture.height)
                dims = dims or shape
                if shape != dims:
                    out.stopped = (
                        f"frame {len(out.frames)} is {shape[0]}x{shape[1]}, "
                        f"expected {dims[0]}x{dims[1]}"
                    )
                    return out
                try:
                    gray = code_strip(picture)
                except Exception as exc:
                    out.bad_packets += 1
                    out.first_bad = out.first_bad or f"packet {n}: {_av_message(exc)}"
                    continue
                out.frames.append(
                    DecodedFrame(
                        picture.pts, time_base, bool(picture.key_frame), read_frame_code(gray)
                    )
                )
    return out


def decode_segment(path: Path) -> list[DecodedFrame]:
    """Every picture of an undamaged segment; raises Unreadable if it is damaged."""
    container_format = FORMAT_OF_SUFFIX.get(path.suffix)
    if container_format is None:
        raise Unreadable(f"{path.name}: not a segment file ({', '.join(FORMAT_OF_SUFFIX)})")
    with open_regular(path) as f:
        decoded = decode_file(f, container_format)
    trouble = decoded.stopped or decoded.first_bad
    if trouble:
        raise Unreadable(f"{path.name}: {trouble}")
    return decoded.frames
