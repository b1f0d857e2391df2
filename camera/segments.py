"""Segment files: encoded frames remuxed into a crash-tolerant container.

Runs on the writer only (a PyAV container is never shared between threads).
H.264 goes into MPEG-TS and MJPEG into Matroska, both readable up to the last
complete packet if power is cut; ``flush_packets`` pushes every packet through
to our file object at once, which hashes and counts the bytes as they pass, so
the sha256 in the manifest is of exactly what reached the card and costs no
second read. Open segments are fsync'ed every ``sync_interval`` of video and
each sync point is journaled, so a power cut loses at most that much: recovery
cuts the segment back to its last journaled size. A pre-event backlog is
written without sync points and made durable in one step at its end
(:meth:`RecordingWriter.write`'s ``defer_sync``); its bytes go to the file
in one write per call, hashed beside the writer, and the kernel is asked to
start writing them out at once (:class:`HashingFile`), so the one fsync at
the end finds little left to do (issue 14).

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

Segments are append-only, which decides how they join up:

* MPEG-TS: FFmpeg's muxer restarts every continuity counter in each file,
  so the file object renumbers them on the way to run on across the
  recording's segments (camera/ts_continuity.py), before the hash: ``cat
  segment-*.ts`` is one clean stream.
* Matroska has no Duration (ffprobe: N/A). FFmpeg writes it, with the
  segment size, seek head and index, only by seeking back into the head of
  the file at the trailer, and skips all of it on an unseekable output like
  ours. Allowing it would rewrite, at every segment close, bytes that have
  been synced and journaled since the first half second: the EBML header
  and Tracks that every frame of the segment needs to decode would sit in a
  power-cut window (a torn sector there loses the whole segment, not just
  its tail), recovery's cut-back would meet a head describing a longer
  file, and the sha256 could no longer be taken as the bytes pass. So no
  Duration: the manifest has each segment's times, and ``bodycam export``
  writes one MP4 that has its duration.

Audio (AAC, from :mod:`camera.encoders.aac`) shares the segment and the
origin: a packet's timestamp is its device time minus ``origin``, exactly as
for a frame, so audio and video are in sync by device time whatever the
segment or the uptime. Interleaving is by device time, done by the caller:
:meth:`RecordingWriter.write` merges the frames and audio packets it is given
by time, and across calls packets go in as they come (audio is late by the
encoder's latency, tens of ms). FFmpeg's own interleaver, which would hold
video for up to 10 s waiting for audio (a microphone that is gone never
sends any), is cut down to holding one packet; :mod:`camera.mux_holds` knows
exactly which packets each muxer still holds, so ``progress()`` stays exact:
each sync record carries the audio packets its bytes hold
(:meth:`SegmentFile.audio_progress`), and each closed segment its
:class:`~camera.evidence.records.AudioSpan`, which recovery rebuilds from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import av

from camera.encoders.aac import PRIMING_SAMPLES
from camera.evidence.journal import Journal
from camera.evidence.records import (
    CONTAINERS,
    SEGMENT_PREFIX,
    AudioSpan,
    Segment,
    Sync,
    r6,
)
from camera.evidence.svf import GopCloser, ProductInfo
from camera.frames import EncodedAudio, EncodedFrame
from camera.mux_holds import Muxed, MuxerHolds
from camera.ts_continuity import ContinuityCounters, ContinuityRewriter
from hal.storage import DurableFile, Storage

if TYPE_CHECKING:
    from camera.evidence.keys import DeviceKey

log = logging.getLogger(__name__)

PTS_HZ = 90_000
TIME_BASE = Fraction(1, PTS_HZ)
#: Packets each container's muxer keeps back after ``mux()`` returns in a
#: video-only segment, until the next packet (or the trailer) pushes them out;
#: tests/test_recorder.py checks these against the FFmpeg in use, so a change
#: there fails a test, not a recovery. With audio, camera/mux_holds.py says.
HELD_BACK = {"mpegts": 0, "matroska": 1}
#: Muxer options of segments with audio (see camera/mux_holds.py): the
#: interleaver holds one packet, and Matroska ends a cluster at every packet
#: (it would write one every 5 s or video keyframe).
AUDIO_OPTIONS = {
    "mpegts": {"max_interleave_delta": "1"},
    "matroska": {"max_interleave_delta": "1", "cluster_size_limit": "0"},
}
#: AAC channel layouts by channel count.
LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """The audio stream of a recording's segments."""

    codec: str = "aac"
    rate: int = 48_000
    channels: int = 1
    bitrate: int = 64_000


def pts_of(time: float, origin: float) -> int:
    """Container timestamp (90 kHz) of a device time, counted from ``origin``.

    ``origin`` is the recording's first frame, so timestamps start at 0 and
    keep capture spacing exactly, whatever the uptime.
    """
    return round((time - origin) * PTS_HZ)


#: Writes this big are hashed beside the writer (HashingFile), smaller ones inline.
HASH_BEHIND = 64 * 1024
_hasher_pool: ThreadPoolExecutor | None = None


def _hasher() -> ThreadPoolExecutor:
    """The one thread that hashes big writes, started on first use."""
    global _hasher_pool
    if _hasher_pool is None:
        _hasher_pool = ThreadPoolExecutor(1, thread_name_prefix="bodycam-sha256")
    return _hasher_pool


class HashingFile:
    """File-like sink for PyAV: hashes and counts what passes, no ``seek``.

    ``rewriter`` (MPEG-TS) renumbers continuity counters on the way, before
    the hash and the file, so both only ever see the final bytes.

    Between :meth:`hold` and :meth:`release` (a backlog written without sync
    points) what passes is gathered in memory and reaches the file in one
    write at the release, renumbered and hashed in one go: a second of 720p
    is otherwise some thirty writes of a few kB, each a system call and a
    hand-over of the GIL to capture. No sync point falls inside a hold (a
    sync releases first), so the journal vouches for no byte held.

    A write that big is hashed on a thread of its own (hashlib lets go of
    the GIL), while the writer writes it and goes on muxing; the next write
    waits for it, so the hash takes the bytes in order, and :meth:`hexdigest`
    waits for all of them. The bytes are never changed once handed to it.
    """

    def __init__(self, out: DurableFile, rewriter: ContinuityRewriter | None = None) -> None:
        self.out = out
        self._sha256 = hashlib.sha256()
        self._rewriter = rewriter
        self._held: bytearray | None = None
        self._hashing: Future[None] | None = None

    def write(self, data: bytes) -> int:
        if self._held is not None:
            self._held += data
        else:
            self._pass(data)
        return len(data)

    def _pass(self, data: bytes | bytearray) -> None:
        if self._rewriter is not None:
            data = self._rewriter.feed(data)  # a bytearray in place, no copy
        self._wait()
        if len(data) >= HASH_BEHIND:
            self._hashing = _hasher().submit(self._sha256.update, data)
        else:
            self._sha256.update(data)
        self.out.write(data)

    def _wait(self) -> None:
        """Until every byte passed so far is in the hash."""
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            hashing.result()

    def hexdigest(self) -> str:
        self._wait()
        return self._sha256.hexdigest()

    def hold(self) -> None:
        if self._held is None:
            self._held = bytearray()

    def release(self) -> None:
        """Write what was held (if anything) and stop holding."""
        held, self._held = self._held, None
        if held:
            self._pass(held)
            self.out.write_behind()  # to the card while the writer muxes the next

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
        audio: AudioFormat | None = None,
        counters: ContinuityCounters | None = None,
    ) -> None:
        """``counters``: where the recording's MPEG-TS continuity counters stand (see
        camera/ts_continuity.py); this segment goes on from them and leaves them at its end."""
        fmt, _ = CONTAINERS[codec]
        self.rel = rel
        self.fps = fps
        self.origin = origin
        self.held_back = HELD_BACK[fmt]
        self._file = storage.open_write(rel)
        rewriter = None
        if fmt == "mpegts":
            rewriter = ContinuityRewriter(counters or ContinuityCounters())
        self._sink = HashingFile(self._file, rewriter)
        options = {"flush_packets": "1", "fflags": "+bitexact"}
        if audio is not None:
            options |= AUDIO_OPTIONS[fmt]
        self._out = av.open(self._sink, "w", format=fmt, options=options)
        self._stream = self._out.add_mux_stream(codec, rate=fps, width=width, height=height)
        self._stream.time_base = TIME_BASE
        self._audio = None if audio is None else self._add_audio_stream(audio)
        self._duration = round(PTS_HZ / fps)
        #: Each stream's time base as the muxer chose it (numerator, denominator).
        self._bases: dict[int, tuple[int, int]] = {}
        self.frames = 0
        #: MJPEG has no signatures in its stream: the manifest lists each frame's sha256.
        self.frame_sha256: list[str] | None = [] if codec == "mjpeg" else None
        self.first: EncodedFrame | None = None
        self.last: EncodedFrame | None = None
        # What the muxer still holds, and so the frames and audio packets in the file.
        # Matroska writes the encoder's priming as CodecDelay and shifts audio blocks by it.
        delay_ms = 0 if audio is None else round(PRIMING_SAMPLES * 1000 / audio.rate)
        self._holds: MuxerHolds[EncodedFrame | EncodedAudio | None] = MuxerHolds(
            fmt, 1 if audio is None else 2, delay_ms
        )
        self._written = 0
        self._last_written: EncodedFrame | None = None
        self.audio_packets = 0
        self._audio_sha256: list[str] = []
        self.audio_first: EncodedAudio | None = None
        self.audio_last: EncodedAudio | None = None
        self._audio_written = 0
        self._audio_last_written: EncodedAudio | None = None

    def _add_audio_stream(self, audio: AudioFormat) -> av.audio.stream.AudioStream:
        """An AAC stream whose parameters (and AudioSpecificConfig) come from an encoder
        set up like the recording's: the muxer opens it for its extradata, never encodes."""
        if audio.codec != "aac" or audio.channels not in LAYOUTS:
            raise ValueError(f"unsupported audio {audio}: expected AAC, mono or stereo")
        stream = self._out.add_stream("aac", rate=audio.rate)
        ctx = stream.codec_context
        ctx.layout = LAYOUTS[audio.channels]
        ctx.bit_rate = audio.bitrate
        ctx.flags |= av.codec.context.Flags.bitexact
        stream.time_base = TIME_BASE
        return stream

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
        self._mux(packet, frame)
        if self.first is None:
            self.first = frame
        self.last = frame
        self.frames += 1

    def add_audio(self, audio: EncodedAudio) -> None:
        """Mux one audio packet, timed like a frame: device time minus ``origin``.

        The caller keeps each stream's packets in order; a packet that would
        start before the origin (negative timestamp) is the caller's to drop.
        """
        if self._audio is None:
            raise ValueError(f"{self.rel}: this segment has no audio stream")
        packet = av.Packet(audio.data)
        packet.pts = packet.dts = pts_of(audio.time, self.origin)
        packet.time_base = TIME_BASE
        packet.duration = round(audio.samples * PTS_HZ / audio.rate)
        packet.is_keyframe = True  # every AAC frame decodes on its own
        packet.stream = self._audio
        self._mux(packet, audio)
        self._audio_sha256.append(hashlib.sha256(audio.data).hexdigest())
        if self.audio_first is None:
            self.audio_first = audio
        self.audio_last = audio
        self.audio_packets += 1

    def _mux(self, packet: av.Packet, item: EncodedFrame | EncodedAudio | None) -> None:
        self._out.mux(packet)
        # mux() has rescaled the packet to the stream's time base: the dts the interleaver
        # sorts by. A stream's time base is fixed once its header is written: asked once.
        index, dts = packet.stream_index, packet.dts
        if (base := self._bases.get(index)) is None:
            tb = packet.time_base
            assert tb is not None
            base = self._bases[index] = (tb.numerator, tb.denominator)
        assert dts is not None
        muxed = Muxed(item, isinstance(item, EncodedAudio), Fraction(dts * base[0], base[1]), index)
        for written in self._holds.add(muxed):
            if isinstance(written.item, EncodedFrame):
                self._written += 1
                self._last_written = written.item
            elif isinstance(written.item, EncodedAudio):
                self._audio_written += 1
                self._audio_last_written = written.item

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
        self._mux(packet, None)

    def hold(self) -> None:
        """Gather what the muxer writes in memory until :meth:`release` (see HashingFile)."""
        self._sink.hold()

    def release(self) -> None:
        self._sink.release()

    def sync(self) -> None:
        self._sink.release()
        self._file.sync()

    def progress(self) -> Sync | None:
        """What the file holds so far (valid right after a sync); None if no whole frame yet.

        Only frames the muxer has written count: one it still holds back is
        not in the file, and a recovery cut to this size would not have it.
        """
        last = self._last_written
        if self._written < 1 or self.first is None or last is None:
            return None
        return Sync(
            file=self.rel.rsplit("/", 1)[-1],
            bytes=self._file.bytes_written,
            frames=self._written,
            first_frame=self.first.number,
            last_frame=last.number,
            start_time=self.first.time,
            end_time=last.time,
            audio=self.audio_progress(),
        )

    def audio_progress(self) -> AudioSpan | None:
        """The audio packets the file holds so far (valid right after a sync), like progress()."""
        last = self._audio_last_written
        if self.audio_first is None or last is None:
            return None
        return _span(self.audio_first, last, self._audio_written)

    def audio_span(self) -> AudioSpan | None:
        """Every audio packet muxed into this segment (all in the file once it is closed)."""
        if self.audio_first is None or self.audio_last is None:
            return None
        span = _span(self.audio_first, self.audio_last, self.audio_packets)
        return dataclasses.replace(span, packet_sha256=tuple(self._audio_sha256))

    def abort(self) -> None:
        """Let go of the file without a trailer (storage failed); recovery cuts it back."""
        with contextlib.suppress(OSError):
            self._file.close()

    def close(self) -> Segment:
        self._out.close()
        self._sink.release()
        self._file.sync()
        self._file.close()
        assert self.first is not None and self.last is not None
        return Segment(
            file=self.rel.rsplit("/", 1)[-1],
            sha256=self._sink.hexdigest(),
            bytes=self._file.bytes_written,
            frames=self.frames,
            first_frame=self.first.number,
            last_frame=self.last.number,
            start_time=self.first.time,
            end_time=self.last.time,
            audio=self.audio_span(),
            frame_sha256=None if self.frame_sha256 is None else tuple(self.frame_sha256),
        )


def _span(first: EncodedAudio, last: EncodedAudio, packets: int) -> AudioSpan:
    """Times rounded like the manifest's (a packet's own time is extrapolated, not exact)."""
    return AudioSpan(
        packets=packets,
        first_sample=first.first_sample,
        end_sample=last.end_sample,
        start_time=r6(first.time),
        end_time=r6(last.time + last.samples / last.rate),
    )


@dataclass(frozen=True)
class Sealer:
    """What the writer needs to sign the end of a recording's video in the stream."""

    key: DeviceKey
    product: ProductInfo


class RecordingWriter:
    """Cuts a recording's frames into segments of ``segment_seconds`` at keyframes.

    Audio packets go into whichever segment is open when their turn comes in
    device-time order: rotation stays on video keyframes.
    """

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
        audio: AudioFormat | None = None,
    ) -> None:
        self.storage = storage
        self.audio = audio
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
        #: In a ``defer_sync`` write: no sync points, closed segments journaled without fsync.
        self._deferring = False
        #: Device time of the recording's first frame: timestamp 0 in every segment.
        self.origin: float | None = None
        #: The audio of each closed segment, by file name (absent: it had none).
        self.audio_spans: dict[str, AudioSpan] = {}
        #: Audio packets written; and left out: from before the first frame (no
        #: segment to hold them) or overlapping the packet before (never made by
        #: the encoder; a muxer would refuse them).
        self.audio_packets = 0
        self.audio_dropped = 0
        self._audio_end: int | None = None
        #: MPEG-TS continuity counters, run on from segment to segment so the files concatenate.
        self.counters = ContinuityCounters()

    def write(
        self,
        frames: Sequence[EncodedFrame],
        audio: Sequence[EncodedAudio] = (),
        *,
        defer_sync: bool = False,
    ) -> None:
        """Mux ``frames`` and ``audio`` (each in order) merged by device time.

        Hand over audio and video of the same span in one call (a pre-event
        backlog above all): each call is merged by time, but calls are muxed
        in the order they are made, so video written long before its audio
        would put seconds of pictures ahead of their sound in the file.

        ``defer_sync``: a backlog written at once (the pre-event) skips the
        periodic sync points; the caller's :meth:`sync` after its last write
        makes all of it durable in one step. A sync point exists to bound what
        a power cut loses of video still being captured; for bytes that are
        all written within a fraction of a second, one fsync at the end bounds
        it as well and spares one per half second of video (an SD card's
        fsync costs milliseconds each). The journal vouches for no byte before
        its fsync returned either way; a closed segment is still fsynced
        before its record is written, which waits for the end's journal sync.
        A deferred call's bytes reach the file in one write at its end (or
        at a segment's close), not one per packet (:class:`HashingFile`).
        """
        self._deferring = defer_sync
        if defer_sync and self._open is not None:
            self._open.hold()
        try:
            if not audio:
                self._write_frames(frames)
                return
            # heapq.merge is stable: at equal times the frame goes first, as FFmpeg's
            # interleaver does.
            merged: Iterable[EncodedFrame | EncodedAudio] = heapq.merge(
                frames, audio, key=lambda item: item.time
            )
            for item in merged:
                if isinstance(item, EncodedAudio):
                    self._write_audio(item)
                else:
                    self._write_frames([item])
        finally:
            if defer_sync and self._open is not None:
                self._open.release()  # nothing stays held past the call

    def write_audio(self, packets: Sequence[EncodedAudio]) -> None:
        self.write((), packets)

    def _write_audio(self, packet: EncodedAudio) -> None:
        seg = self._open
        if (
            seg is None
            or self.audio is None
            or self.origin is None
            or pts_of(packet.time, self.origin) < 0
        ):
            self.audio_dropped += 1  # before the first frame: no timestamp to give it
            return
        if self._audio_end is not None and packet.first_sample < self._audio_end:
            log.warning(
                "audio packet at sample %d overlaps the one before; left out", packet.first_sample
            )
            self.audio_dropped += 1
            return
        seg.add_audio(packet)
        self.audio_packets += 1
        self._audio_end = packet.end_sample

    def _write_frames(self, frames: Iterable[EncodedFrame]) -> None:
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
                if self._deferring:
                    seg.hold()
                self._synced_at = frame.time
            seg.add(frame, self.closer.feed(frame.seal) if frame.seal is not None else b"")
            if not self._deferring and frame.time - self._synced_at >= self.sync_interval:
                self._sync(seg)

    def sync(self) -> None:
        """Make everything written so far durable now (and journal it).

        The journal is synced even when the open segment has nothing to vouch
        for yet, so the records deferred writes left behind are durable too.
        """
        self._deferring = False
        if self._open is not None and self._open.last is not None:
            self._sync(self._open)
        else:
            self.journal.sync()

    def _sync(self, seg: SegmentFile, durable: bool = True) -> None:
        """fsync the segment, then journal what it holds (``durable``: fsync the journal too)."""
        seg.sync()
        self._synced_at = seg.last.time if seg.last else self._synced_at
        if (progress := seg.progress()) is not None:
            self.journal.append(progress, durable=durable)
        elif durable:
            self.journal.sync()

    def _new_segment(self, origin: float) -> SegmentFile:
        _, ext = CONTAINERS[self.codec]
        rel = f"{self.directory}/{SEGMENT_PREFIX}{len(self.segments):04d}.{ext}"
        return SegmentFile(
            self.storage,
            rel,
            self.codec,
            *self.size,
            self.fps,
            origin,
            audio=self.audio,
            counters=self.counters,
        )

    def _rotate(self) -> None:
        if self._open is not None:
            if self._deferring and self._open.last is not None:
                # No sync point was journaled for it: one now, as a live segment has,
                # so that a damaged close record still leaves the segment vouched for.
                self._sync(self._open, durable=False)
            info = self._open.close()  # fsynced: the record below may vouch for it
            self.journal.append(info, durable=not self._deferring)
            self.segments.append(info)
            if (span := self._open.audio_span()) is not None:
                self.audio_spans[info.file] = span
            self._open = None

    def close(self) -> list[Segment]:
        """Close the recording: sign its last (partial) GOP in the stream, then the files."""
        if self.sealer is not None and self._open is not None and self._open.last is not None:
            closing = self.closer.close(self.sealer.key.private_key, self.sealer.product)
            if closing:
                self._open.add_closing(closing)
        self._deferring = False
        self._rotate()
        return self.segments

    def abort(self) -> None:
        if self._open is not None:
            self._open.abort()
            self._open = None
        self.journal.close()
