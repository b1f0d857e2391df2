"""Segment files: encoded frames remuxed into a crash-tolerant container.

Runs on the writer only (a PyAV container is never shared between threads).
H.264 goes into MPEG-TS and MJPEG into Matroska, both readable up to the last
complete packet if power is cut; ``flush_packets`` pushes every packet through
to our file object at once, which hashes and counts the bytes as they pass, so
the sha256 in the manifest is of exactly what reached the card and costs no
second read. Open segments are fsync'ed every ``sync_interval`` of video and
each sync point is journaled, so a power cut loses at most that much: recovery
cuts the segment back to its last journaled size.

Two facts of the muxers shape what a sync may claim and what a timestamp is:

* Timestamps count from the recording's first frame (``origin``), not from
  boot: MPEG-TS timestamps are 33 bits of 90 kHz and wrap after 26.5 h of
  uptime, which a camera that is never switched off reaches. A frame's device
  time is the manifest's ``start_time`` plus its timestamp.
* FFmpeg's Matroska muxer writes each block only when the next packet arrives
  (it holds one back to know its duration), and PyAV exposes no way to flush it
  short of closing the file (``av_write_frame(NULL)`` is not reachable). So a
  sync record vouches only for the packets the muxer has actually handed to
  our file: the held-back ones are counted after the next sync.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import av

from camera.evidence.journal import Journal
from camera.evidence.records import CONTAINERS, SEGMENT_PREFIX, Segment, Sync
from camera.evidence.svf import GopCloser, ProductInfo
from camera.frames import EncodedFrame
from hal.storage import DurableFile, Storage

if TYPE_CHECKING:
    from camera.evidence.keys import DeviceKey

PTS_HZ = 90_000
TIME_BASE = Fraction(1, PTS_HZ)
#: Packets each container's muxer keeps back after ``mux()`` returns, until the
#: next packet (or the trailer) pushes them out; tests/test_recorder.py checks
#: these against the FFmpeg in use, so a change there fails a test, not a recovery.
HELD_BACK = {"mpegts": 0, "matroska": 1}


def pts_of(time: float, origin: float) -> int:
    """Container timestamp (90 kHz) of a device time, counted from ``origin``.

    ``origin`` is the recording's first frame, so timestamps start at 0 and
    keep capture spacing exactly, whatever the uptime.
    """
    return round((time - origin) * PTS_HZ)


class HashingFile:
    """File-like sink for PyAV: hashes and counts what passes, no ``seek``."""

    def __init__(self, out: DurableFile) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        return len(data)

    def flush(self) -> None:
        return None


class SegmentFile:
    """One open segment file; it always starts on a keyframe."""

    def __init__(
        self,
        storage: Storage,
        rel: str,
        codec: str,
        width: int,
        height: int,
        fps: int,
        origin: float,
    ) -> None:
        fmt, _ = CONTAINERS[codec]
        self.rel = rel
        self.fps = fps
        self.origin = origin
        self.held_back = HELD_BACK[fmt]
        self._file = storage.open_write(rel)
        self._sink = HashingFile(self._file)
        self._out = av.open(
            self._sink, "w", format=fmt, options={"flush_packets": "1", "fflags": "+bitexact"}
        )
        self._stream = self._out.add_mux_stream(codec, rate=fps, width=width, height=height)
        self._stream.time_base = TIME_BASE
        self._duration = round(PTS_HZ / fps)
        self.frames = 0
        #: MJPEG has no signatures in its stream: the manifest lists each frame's sha256.
        self.frame_sha256: list[str] | None = [] if codec == "mjpeg" else None
        self.first: EncodedFrame | None = None
        self.last: EncodedFrame | None = None
        #: The last frames muxed, enough to name the last one the file holds.
        self._recent: deque[EncodedFrame] = deque(maxlen=self.held_back + 1)

    def add(self, frame: EncodedFrame, before: bytes = b"") -> None:
        """Mux ``frame``; ``before`` (Annex-B, a signature SEI) goes in front of its unit."""
        if self.frame_sha256 is not None:
            self.frame_sha256.append(hashlib.sha256(frame.data).hexdigest())
        # A fresh packet per frame: mux() rescales in place, never hand it shared objects.
        packet = av.Packet(before + frame.data if before else frame.data)
        packet.pts = packet.dts = pts_of(frame.time, self.origin)
        # Our own constant: the muxer may change the stream's time base (Matroska: 1 ms).
        packet.time_base = TIME_BASE
        packet.duration = self._duration
        packet.is_keyframe = frame.keyframe
        packet.stream = self._stream
        self._out.mux(packet)
        if self.first is None:
            self.first = frame
        self.last = frame
        self.frames += 1
        self._recent.append(frame)

    def add_closing(self, data: bytes) -> None:
        """One last packet with no picture: the signature that closes the recording.

        Its timestamp is one tick after the last frame's (a muxer refuses an
        equal one); it carries no slice, so it is no frame and adds no time.
        """
        assert self.last is not None
        packet = av.Packet(data)
        packet.pts = packet.dts = pts_of(self.last.time, self.origin) + 1
        packet.time_base = TIME_BASE
        packet.duration = 0
        packet.stream = self._stream
        self._out.mux(packet)

    def sync(self) -> None:
        self._file.sync()

    def progress(self) -> Sync | None:
        """What the file holds so far (valid right after a sync); None if no whole frame yet.

        Only frames the muxer has written count: one it still holds back is
        not in the file, and a recovery cut to this size would not have it.
        """
        written = self.frames - self.held_back
        if written < 1 or self.first is None:
            return None
        last = self._recent[-1 - self.held_back]
        return Sync(
            file=self.rel.rsplit("/", 1)[-1],
            bytes=self._file.bytes_written,
            frames=written,
            first_frame=self.first.number,
            last_frame=last.number,
            start_time=self.first.time,
            end_time=last.time,
        )

    def abort(self) -> None:
        """Let go of the file without a trailer (storage failed); recovery cuts it back."""
        with contextlib.suppress(OSError):
            self._file.close()

    def close(self) -> Segment:
        self._out.close()
        self._file.sync()
        self._file.close()
        assert self.first is not None and self.last is not None
        return Segment(
            file=self.rel.rsplit("/", 1)[-1],
            sha256=self._sink.sha256.hexdigest(),
            bytes=self._file.bytes_written,
            frames=self.frames,
            first_frame=self.first.number,
            last_frame=self.last.number,
            start_time=self.first.time,
            end_time=self.last.time,
            frame_sha256=None if self.frame_sha256 is None else tuple(self.frame_sha256),
        )


@dataclass(frozen=True)
class Sealer:
    """What the writer needs to sign the end of a recording's video in the stream."""

    key: DeviceKey
    product: ProductInfo


class RecordingWriter:
    """Cuts a recording's frames into segments of ``segment_seconds`` at keyframes."""

    def __init__(
        self,
        storage: Storage,
        directory: str,
        codec: str,
        width: int,
        height: int,
        fps: int,
        segment_seconds: float,
        journal: Journal,
        sync_interval: float = 0.5,
        sealer: Sealer | None = None,
    ) -> None:
        self.storage = storage
        self.sealer = sealer
        #: Follows the signed GOPs of the frames written, to close the last one.
        self.closer = GopCloser()
        self.journal = journal
        self.directory = directory
        self.codec = codec
        self.size = (width, height)
        self.fps = fps
        self.segment_seconds = segment_seconds
        self.sync_interval = sync_interval
        self.segments: list[Segment] = []
        self._open: SegmentFile | None = None
        self._synced_at = 0.0
        #: Device time of the recording's first frame: timestamp 0 in every segment.
        self.origin: float | None = None

    def write(self, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            seg = self._open
            if seg is None or (
                frame.keyframe
                and seg.first is not None
                and frame.time - seg.first.time >= self.segment_seconds - 0.5 / self.fps
            ):
                if seg is None and not frame.keyframe:
                    continue  # a segment must start on a keyframe
                self._rotate()
                if self.origin is None:
                    self.origin = frame.time
                seg = self._open = self._new_segment(self.origin)
                self._synced_at = frame.time
            seg.add(frame, self.closer.feed(frame.seal) if frame.seal is not None else b"")
            if frame.time - self._synced_at >= self.sync_interval:
                self._sync(seg)

    def sync(self) -> None:
        """Make everything written so far durable now (and journal it)."""
        if self._open is not None and self._open.last is not None:
            self._sync(self._open)

    def _sync(self, seg: SegmentFile) -> None:
        seg.sync()
        self._synced_at = seg.last.time if seg.last else self._synced_at
        if (progress := seg.progress()) is not None:
            self.journal.append(progress)

    def _new_segment(self, origin: float) -> SegmentFile:
        _, ext = CONTAINERS[self.codec]
        rel = f"{self.directory}/{SEGMENT_PREFIX}{len(self.segments):04d}.{ext}"
        return SegmentFile(self.storage, rel, self.codec, *self.size, self.fps, origin)

    def _rotate(self) -> None:
        if self._open is not None:
            info = self._open.close()
            self.journal.append(info)
            self.segments.append(info)
            self._open = None

    def close(self) -> list[Segment]:
        """Close the recording: sign its last (partial) GOP in the stream, then the files."""
        if self.sealer is not None and self._open is not None and self._open.last is not None:
            closing = self.closer.close(self.sealer.key.private_key, self.sealer.product)
            if closing:
                self._open.add_closing(closing)
        self._rotate()
        return self.segments

    def abort(self) -> None:
        if self._open is not None:
            self._open.abort()
            self._open = None
        self.journal.close()
