"""The recorder: from a trigger to segments and a manifest, without stalling capture.

Runs on the loop thread; all file work goes to the writer as tasks, in order:
the pre-event frames copied out of the ring at the trigger (so later ring
overwrites can't touch them), then every live frame, then the close and the
manifest.

Memory is bounded in total (SPEC 6): one writer backlog bound,
``queue_bytes``, covers everything queued for storage, pre-event copies and
live frames of every recording alike (a recording stopped during a stall
still holds its queued frames). The worker counts it, from submission to the
end of each task, so it never resets with a recording, and it is checked
before anything is queued:

* A pre-event copy that does not fit what is left of the bound gives up its
  oldest groups of pictures (whole GOPs, so it still starts on a keyframe);
  the manifest's ``pre_event_dropped`` says what was given up and why, and
  ``pre_event_seconds`` the coverage delivered. A trigger that cannot get even
  the newest GOP queued is refused (``refusal`` says why) and logged.
* A live frame that does not fit is dropped, and so is every frame up to the
  next keyframe (a P-frame without its reference is useless); the gap is
  declared with cause ``writer_backlog``. Capture never waits.

Frames that never reached the recorder are declared as gaps too, in the
pre-event copy as live, and journaled so recovery keeps them: cause
``camera`` for pictures the sensor never delivered, ``encoder_backlog`` for
pictures capture skipped because the encoder was busy (capture tells the
recorder their numbers: :meth:`Recorder.on_skipped`). Frames the firmware
dropped (``writer_backlog``, ``encoder_backlog``) count in ``dropped_frames``.

Sound (SPEC 15), when the recorder has an audio format:

* It starts at the first pre-event frame with ``audio_pre_event``, else at
  the trigger's first edge (recognised later: the audio ring still has it).
  Those packets go to the writer in the same writes as the pre-event frames,
  split between the chunks by time, so the file interleaves them as captured.
* Live packets (:meth:`Recorder.on_audio`) go through the worker like frames
  and count against the same backlog bound. A packet that does not fit, or
  comes while frames are being dropped for the backlog, is dropped itself
  (declared, cause ``writer_backlog``): sound never takes the room a
  keyframe needs.
* A jump in sample numbers between consecutive packets is a declared audio
  gap, cause ``microphone``, journaled before the packet after it is
  written. A recording whose microphone gave nothing at all gets one gap
  over all of it, from the asked start to the stop.

Place (SPEC 14), when the recorder has :class:`Positions`: the trigger
carries the last valid fix at or before its first edge (with its age), and
the track starts with the points of the pre-event still in the position
log's ring; every later point is journaled as it comes
(:meth:`Recorder.on_track`), so recovery after a power cut rebuilds it too.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from camera.evidence.audit import DeviceAudit
from camera.evidence.custody import Custody, last_counter, manifest_sha256
from camera.evidence.journal import Journal, JournalRecord
from camera.evidence.manifest import write_manifest
from camera.evidence.records import (
    FORMAT,
    AudioGap,
    AudioGapCause,
    AudioHead,
    Gap,
    GapCause,
    Head,
    Manifest,
    Marker,
    Position,
    PreEventDropped,
    StepSource,
    Stop,
    StopReason,
    Timing,
    TrackEntry,
    Trigger,
    WallStep,
    r6,
)
from camera.frames import EncodedAudio, EncodedFrame
from camera.recovery import recover_recording
from camera.ring import RingBuffer
from camera.segments import AudioFormat, RecordingWriter, Sealer
from hal.clock import Clock
from hal.storage import Storage, enospc
from hal.worker import Worker

log = logging.getLogger(__name__)


def iso_utc(clock: Clock, t: float) -> str:
    return clock.wall(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class VideoFormat:
    codec: str
    width: int
    height: int
    fps: int
    #: The encoder that opened and how frame times were made: written into the
    #: journal head and the manifest (None: not known, left out).
    encoder: str | None = None
    timing: Timing | None = None


class AudioPackets(Protocol):
    """Where the sound from before a trigger is kept (:class:`camera.audio_ring.AudioRing`)."""

    def packets_from(self, t: float) -> list[EncodedAudio]:
        """Packets whose first sample is at or after device time ``t``, oldest first."""
        ...


class Positions(Protocol):
    """Where the camera was (:class:`camera.position.PositionLog`)."""

    def position_at(self, t: float) -> Position | None:
        """The last valid fix at or before device time ``t``, with its age."""
        ...

    def points_from(self, t: float) -> list[TrackEntry]:
        """Track points already made at or after device time ``t`` (the pre-event's)."""
        ...


@dataclass
class Recording:
    """Loop-side state of the recording in progress."""

    id: str
    directory: str
    trigger: Trigger
    first: EncodedFrame
    writer: RecordingWriter | None = None  # made by the first writer task
    markers: list[Marker] = field(default_factory=list)
    #: Gaps closed (and journaled), in order of their frames.
    gaps: list[Gap] = field(default_factory=list)
    #: Dropping live frames for the writer backlog until the next keyframe.
    dropping: bool = False
    #: The ``writer_backlog`` gap being counted, until it is closed and journaled;
    #: it follows every gap in ``gaps``.
    backlog_gap: Gap | None = None
    failed: BaseException | None = None
    #: The last frame queued for writing.
    last: EncodedFrame | None = None
    #: The last frame the recorder was handed, written or dropped.
    seen: EncodedFrame | None = None
    #: The oldest pre-event GOPs given up to the backlog bound (None: nothing given up).
    pre_event_dropped: PreEventDropped | None = None
    #: The recording's sound as asked for (None: audio is off).
    audio: AudioHead | None = None
    #: The last audio packet the recorder was handed, written or dropped.
    audio_seen: EncodedAudio | None = None
    #: Audio gaps closed (and journaled), in sample order; then the backlog one being counted.
    audio_gaps: list[AudioGap] = field(default_factory=list)
    audio_backlog_gap: AudioGap | None = None
    #: Device time from which packets are the recording's: its asked start, or
    #: its first frame if later (sound before that has no timestamp).
    audio_from: float = 0.0
    #: Track points and lost moments so far (journaled as they came).
    track: list[TrackEntry] = field(default_factory=list)

    @property
    def all_gaps(self) -> list[Gap]:
        """Every gap so far, the one still being counted included."""
        return [*self.gaps, *([self.backlog_gap] if self.backlog_gap else [])]

    @property
    def all_audio_gaps(self) -> list[AudioGap]:
        """Every audio gap so far, the one still being counted included."""
        return [*self.audio_gaps, *([self.audio_backlog_gap] if self.audio_backlog_gap else [])]

    @property
    def live_writer(self) -> RecordingWriter | None:
        """The writer, unless storage failed under it (then nothing more is written)."""
        return self.writer if self.failed is None else None


class Recorder:
    def __init__(
        self,
        clock: Clock,
        storage: Storage,
        worker: Worker,
        ring: RingBuffer,
        video: VideoFormat,
        *,
        device_id: str,
        pre_event: float,
        segment_seconds: float,
        queue_bytes: int,
        reserve_bytes: int = 0,
        on_finished: Callable[[dict[str, Any]], None] | None = None,
        on_durable: Callable[[Recording], None] | None = None,
        custody: Custody | None = None,
        sealer: Sealer | None = None,
        audit: DeviceAudit | None = None,
        audio: AudioFormat | None = None,
        audio_ring: AudioPackets | None = None,
        audio_pre_event: bool = False,
        audio_source: str | None = None,
        positions: Positions | None = None,
    ) -> None:
        """``audio``: the segments' sound (None: audio is off); ``audio_ring``: the
        packets from before a trigger; ``audio_source``: the microphone's backend
        name, written into the manifest; ``positions``: the trigger's position and
        the pre-event's track points (None: none, as with GPS off)."""
        self.clock = clock
        self.storage = storage
        self.worker = worker
        self.ring = ring
        self.video = video
        self.device_id = device_id
        self.pre_event = pre_event
        self.segment_seconds = segment_seconds
        self.queue_bytes = queue_bytes
        self.reserve_bytes = reserve_bytes
        self.on_finished = on_finished
        self.on_durable = on_durable
        #: Signs and chains every manifest; the sealer signs the video's last GOP.
        self.custody = custody
        self.sealer = sealer
        self.audit = audit
        self.audio = audio
        self.audio_ring = audio_ring
        self.audio_pre_event = audio_pre_event
        self.audio_source = audio_source
        self.positions = positions
        self.recording: Recording | None = None
        clock.wall_listeners.append(self._wall_step)
        self.counter = self._last_counter()
        self.dropped_frames = 0
        #: Why the last start() returned None ("storage full", "writer backlog").
        self.refusal: str | None = None
        #: Runs [first frame, count] of frames capture skipped (encoder busy), as
        #: far back as the ring reaches, so a hole in the pre-event can be told apart.
        self._skipped: deque[list[int]] = deque(maxlen=ring.max_frames)

    def _last_counter(self) -> int:
        # The card's recordings and the offloaded ones (their receipts): an id the
        # evidence server already holds is never used again (issue 16).
        return last_counter(self.storage, self.device_id)

    @property
    def active(self) -> bool:
        return self.recording is not None

    # -- start -----------------------------------------------------------
    def storage_full(self) -> bool:
        return self.storage.free_bytes() < self.reserve_bytes

    def start(
        self, source: str, trigger_time: float, detail: str | None = None
    ) -> Recording | None:
        """Start a recording whose trigger's first edge was at ``trigger_time``.

        Returns None (and records nothing; ``refusal`` says why) when the card
        is full, as evidence is never deleted to make room, or when not even the
        newest GOP of the pre-event fits the writer backlog bound.
        """
        self.refusal = None
        if self.storage_full():
            self.refusal = "storage full"
            return None
        candidates = self.ring.frames_from(trigger_time - self.pre_event)
        # All the sound any candidate start could take: from the oldest frame
        # with pre-event sound, else from the trigger.
        pool = self._ring_audio(
            candidates[0].time if self.audio_pre_event and candidates else trigger_time
        )
        fitted = self._fit_pre_event(candidates, pool)
        if fitted is None:
            self.refusal = "writer backlog"
            log.warning(
                "trigger %s at %.3f refused: %d bytes already queued for storage (bound %d)",
                source,
                trigger_time,
                self.worker.queued_bytes,
                self.queue_bytes,
            )
            return None
        frames, given_up = fitted
        if not frames:
            log.warning("trigger %s at %.3f: nothing buffered yet", source, trigger_time)
        self.counter += 1
        first = frames[0] if frames else None
        stamp_time = first.time if first else trigger_time
        rec_id = f"{self.device_id}_{self.clock.wall(stamp_time):%Y%m%dT%H%M%SZ}_{self.counter:04d}"
        trigger = Trigger(
            source=source,
            detail=detail,
            time=r6(trigger_time),
            wall_time=iso_utc(self.clock, trigger_time),
            position=None if self.positions is None else self.positions.position_at(trigger_time),
        )
        rec = Recording(rec_id, rec_id, trigger, first or EncodedFrame(b"", -1, trigger_time, True))
        sound: list[EncodedAudio] = []
        if self.audio is not None:
            asked = first.time if self.audio_pre_event and first else trigger_time
            rec.audio = AudioHead(
                codec=self.audio.codec,
                rate=self.audio.rate,
                channels=self.audio.channels,
                bitrate=self.audio.bitrate,
                source=self.audio_source,
                pre_event=self.audio_pre_event,
                start_time=r6(asked),
            )
            # Sound before the first frame has no timestamp in the segments.
            rec.audio_from = max(asked, first.time) if first else asked
            sound = [p for p in pool if p.time >= rec.audio_from] if first else []
        if given_up:
            rec.pre_event_dropped = PreEventDropped(
                start=r6(given_up[0].time),
                end=r6(given_up[-1].time),
                first_frame=given_up[0].number,
                frames=len(given_up),
                cause=GapCause.WRITER_BACKLOG,
            )
            log.warning(
                "%s: oldest %.3f s of pre-event (%d frames) given up to the writer backlog bound",
                rec_id,
                frames[0].time - given_up[0].time,
                len(given_up),
            )
        self.recording = rec
        v = self.video
        head = self._head(rec)

        def open_writer() -> None:
            self.storage.makedirs(rec.directory)
            journal = Journal(self.storage, rec.directory)
            journal.append(head)
            rec.writer = RecordingWriter(
                self.storage,
                rec.directory,
                v.codec,
                v.width,
                v.height,
                v.fps,
                self.segment_seconds,
                journal,
                sealer=self.sealer,
                audio=self.audio,
            )

        self.worker.submit(open_writer)
        if self.positions is not None:  # the pre-event's points, journaled after the head
            for point in self.positions.points_from(stamp_time):
                self.on_track(point)
        if self.audit is not None:
            self.audit.later(
                "trigger", trigger_time, recording_id=rec_id, source=source, detail=detail
            )
        # Gaps in the pre-event sound are journaled before any of it is written.
        pending = deque(p for p in sound if self._admit_audio(rec, p))

        def sound_until(t: float | None) -> list[EncodedAudio]:
            """The pre-event sound before device time ``t`` (None: all that is left)."""
            out: list[EncodedAudio] = []
            while pending and (t is None or pending[0].time < t):
                out.append(pending.popleft())
            return out

        # The pre-event burst goes in chunks of about a second, so each task's
        # bytes leave the backlog count as they are written and live frames
        # queue right behind it; each chunk carries the sound of its span, so
        # the file interleaves them as captured. The chunks skip the periodic
        # sync points: sync_pre_event below makes all of them durable in one
        # step (RecordingWriter.write's defer_sync). A hole in it is declared
        # and journaled in order with the frames around it.
        chunk: list[EncodedFrame] = []
        for frame in frames:
            hole = rec.seen is not None and frame.number > rec.seen.number + 1
            if hole or len(chunk) == v.fps:
                self._submit(rec, chunk, sound_until(frame.time), defer_sync=True)
                chunk = []
            if hole:
                assert rec.seen is not None
                self._missing(rec, rec.seen, frame)
            chunk.append(frame)
            rec.seen = frame
        self._submit(rec, chunk, sound_until(None), defer_sync=True)
        if frames:
            rec.last = frames[-1]

        def sync_pre_event() -> None:
            if (writer := rec.live_writer) is not None:
                writer.sync()

        def durable() -> None:
            if self.on_durable is not None and rec.live_writer is not None:
                self.on_durable(rec)

        # The moment the whole pre-event is on the card (fsync returned): the
        # figure a bench measures and an officer's evidence depends on.
        self.worker.submit(sync_pre_event, 0, durable)
        return rec

    def _ring_audio(self, t: float) -> list[EncodedAudio]:
        if self.audio is None or self.audio_ring is None:
            return []
        return self.audio_ring.packets_from(t)

    def _fit_pre_event(
        self, frames: list[EncodedFrame], sound: Sequence[EncodedAudio] = ()
    ) -> tuple[list[EncodedFrame], list[EncodedFrame]] | None:
        """(frames to queue, oldest frames given up) within the backlog bound, or None.

        Gives up whole GOPs from the oldest end, so the copy still starts on a
        keyframe; None when not even the newest GOP fits. The ``sound`` that
        goes with a start counts too: from that frame on with pre-event sound,
        all of it (it starts at the trigger) without.
        """
        room = self.queue_bytes - self.worker.queued_bytes
        rest = sum(f.size for f in frames)
        times = [p.time for p in sound]
        # after[i]: bytes of sound[i:]
        after = [*itertools.accumulate((p.size for p in reversed(sound)), initial=0)][::-1]
        for i, frame in enumerate(frames):
            heard = after[bisect.bisect_left(times, frame.time) if self.audio_pre_event else 0]
            if frame.keyframe and rest + heard <= room:
                return frames[i:], frames[:i]
            rest -= frame.size
        return (frames, []) if not frames else None

    def _fits(self, item: EncodedFrame | EncodedAudio) -> bool:
        """Whether ``item`` can be queued without passing the writer backlog bound."""
        return self.worker.queued_bytes + item.size <= self.queue_bytes

    def _submit(
        self,
        rec: Recording,
        frames: list[EncodedFrame],
        sound: Sequence[EncodedAudio] = (),
        *,
        defer_sync: bool = False,
    ) -> None:
        """One writer task: ``frames`` and ``sound`` muxed together, merged by time
        (``defer_sync``: no sync points, a later writer.sync() makes it durable)."""
        if not frames and not sound:
            return

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                if self.storage_full():  # keep the reserve for the journal and manifest
                    raise enospc(self.storage.root)
                writer.write(frames, sound, defer_sync=defer_sync)

        self.worker.submit(write, sum(f.size for f in frames) + sum(p.size for p in sound))

    # -- live ------------------------------------------------------------
    def on_frame(self, frame: EncodedFrame) -> None:
        rec = self.recording
        if rec is None:
            return
        sound: list[EncodedAudio] = []
        if rec.first.number < 0:  # nothing was buffered: start on the first keyframe queued
            if not frame.keyframe or not self._fits(frame):
                return
            rec.first = frame
            if rec.audio is not None:  # sound can be written from this frame on
                rec.audio_from = max(rec.audio_from, frame.time)
                sound = [p for p in self._ring_audio(rec.audio_from) if self._admit_audio(rec, p)]
        seen = rec.seen
        if seen is not None and frame.number <= seen.number:
            return  # already in the pre-event copy
        if seen is not None and frame.number > seen.number + 1:
            self._missing(rec, seen, frame)
        rec.seen = frame
        if (rec.dropping and not frame.keyframe) or not self._fits(frame):
            self._drop(rec, frame)
            return
        if rec.dropping:
            rec.dropping = False
            self._close_backlog_gap(rec)
        self._submit(rec, [frame], sound)
        rec.last = frame

    def on_audio(self, packet: EncodedAudio) -> None:
        """A live audio packet: written after what is queued, like a frame (ignored when idle).

        Packets come in sample order; one the pre-event copy already holds is
        skipped, and one from before the recording's sound starts (or before
        its first frame, which gives the timestamps) is not the recording's.
        """
        rec = self.recording
        if rec is None or rec.audio is None or rec.first.number < 0:
            return
        if packet.time < rec.audio_from or not self._admit_audio(rec, packet):
            return
        if rec.dropping or not self._fits(packet):
            self._drop_audio(rec, packet)
            return
        self._close_audio_backlog_gap(rec)
        self._submit(rec, [], [packet])

    def _admit_audio(self, rec: Recording, packet: EncodedAudio) -> bool:
        """Follow the sample numbers: a jump is a declared gap; False for a packet
        that starts before the end of the last one handed (already written)."""
        seen = rec.audio_seen
        if seen is not None and packet.first_sample < seen.end_sample:
            return False
        if seen is not None and packet.first_sample > seen.end_sample:
            self._close_audio_backlog_gap(rec)
            gap = AudioGap(
                start=r6(seen.time + seen.samples / seen.rate),
                end=r6(packet.time),
                first_sample=seen.end_sample,
                samples=packet.first_sample - seen.end_sample,
                cause=AudioGapCause.MICROPHONE,
            )
            rec.audio_gaps.append(gap)
            self._journal(rec, gap)
        rec.audio_seen = packet
        return True

    def _drop_audio(self, rec: Recording, packet: EncodedAudio) -> None:
        """Drop a live packet for the writer backlog, counting it in the open audio gap."""
        gap = rec.audio_backlog_gap
        if gap is None:
            gap = AudioGap(
                start=r6(packet.time),
                end=r6(packet.time),
                first_sample=packet.first_sample,
                samples=0,
                cause=AudioGapCause.WRITER_BACKLOG,
            )
        rec.audio_backlog_gap = replace(
            gap,
            end=r6(packet.time + packet.samples / packet.rate),
            samples=packet.end_sample - gap.first_sample,
        )

    def _close_audio_backlog_gap(self, rec: Recording) -> None:
        if rec.audio_backlog_gap is not None:
            rec.audio_gaps.append(rec.audio_backlog_gap)
            self._journal(rec, rec.audio_backlog_gap)
            rec.audio_backlog_gap = None

    def on_skipped(self, number: int, time: float) -> None:
        """Capture skipped frame ``number`` (the encoder was busy): remember it.

        Kept while the ring can still reach it, so a hole in a pre-event copy
        made later is declared as what it is, not as a camera dropout.
        """
        runs = self._skipped
        if runs and runs[-1][0] + runs[-1][1] == number:
            runs[-1][1] += 1
        else:
            runs.append([number, 1])
        keep = self.ring.oldest_number
        rec = self.recording
        if keep is not None and rec is not None and rec.seen is not None:
            keep = min(keep, rec.seen.number)
        while keep is not None and len(runs) > 1 and runs[0][0] + runs[0][1] <= keep:
            runs.popleft()

    def _drop(self, rec: Recording, frame: EncodedFrame) -> None:
        """Drop a live frame for the writer backlog, counting it in the open gap."""
        rec.dropping = True
        gap = rec.backlog_gap
        if gap is None:
            gap = Gap(
                start=r6(frame.time),
                end=r6(frame.time),
                first_frame=frame.number,
                frames=0,
                cause=GapCause.WRITER_BACKLOG,
            )
        rec.backlog_gap = replace(gap, end=r6(frame.time), frames=gap.frames + 1)
        self.dropped_frames += 1

    def _close_backlog_gap(self, rec: Recording) -> None:
        """The drop run is over (resumed, or a hole of another cause follows): journal it."""
        if rec.backlog_gap is not None:
            rec.gaps.append(rec.backlog_gap)
            self._journal(rec, rec.backlog_gap)
            rec.backlog_gap = None

    def _missing(self, rec: Recording, before: EncodedFrame, after: EncodedFrame) -> None:
        """Frames between two the recorder was handed: declared as gaps, by cause.

        A gap lists exactly the frames it covers, so a drop run that a hole
        interrupts is closed first and a new one opens after it.
        """
        self._close_backlog_gap(rec)
        period = (after.time - before.time) / (after.number - before.number)
        for first, count, cause in self._holes(before.number + 1, after.number):
            gap = Gap(
                start=r6(before.time + (first - before.number) * period),
                end=r6(before.time + (first + count - 1 - before.number) * period),
                first_frame=first,
                frames=count,
                cause=cause,
            )
            rec.gaps.append(gap)
            self._journal(rec, gap)
            if cause != GapCause.CAMERA:  # skipped by us, not lost by the sensor
                self.dropped_frames += count

    def _holes(self, start: int, end: int) -> list[tuple[int, int, GapCause]]:
        """Frames ``start .. end - 1`` as runs (first, count, cause), in order."""
        holes: list[tuple[int, int, GapCause]] = []
        pos = start
        for first, count in self._skipped:
            lo, hi = max(first, pos), min(first + count, end)
            if lo >= hi:
                continue
            if lo > pos:
                holes.append((pos, lo - pos, GapCause.CAMERA))
            holes.append((lo, hi - lo, GapCause.ENCODER_BACKLOG))
            pos = hi
        if pos < end:
            holes.append((pos, end - pos, GapCause.CAMERA))
        return holes

    def _wall_step(self, t: float, seconds: float, source: str) -> None:
        """Journal a wall-clock step so a recovered manifest still records it."""
        rec = self.recording
        if rec is not None:
            step = WallStep(time=r6(t), seconds=seconds, source=StepSource(source))
            self._journal(rec, step)

    def on_track(self, point: TrackEntry) -> None:
        """A track point or lost moment: kept and journaled while recording (else ignored)."""
        rec = self.recording
        if rec is not None:
            rec.track.append(point)
            # Once a second, and dozens at once in a pre-event flush: durable with
            # the next sync point rather than an fsync each.
            self._journal(rec, point, durable=False)

    def mark(self, source: str, t: float, detail: str | None = None) -> None:
        rec = self.recording
        if rec is not None:
            marker = Marker(source=source, detail=detail, time=r6(t))
            rec.markers.append(marker)
            self._journal(rec, marker)
            if self.audit is not None:
                self.audit.later("marker", t, recording_id=rec.id, source=source, detail=detail)

    def _journal(self, rec: Recording, record: JournalRecord, *, durable: bool = True) -> None:
        """A journal record, written by the writer in order with the frames.

        ``durable=False``: made durable by the next sync point, not by an fsync
        of its own (see :meth:`Journal.append`).
        """

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                writer.journal.append(record, durable=durable)

        self.worker.submit(write)

    # -- failure and stop --------------------------------------------------
    def storage_failed(self, exc: BaseException) -> None:
        """The writer hit a storage error: write nothing more for this recording.

        The caller then stops it (``storage_full``); what is written stays and
        is finished from the journal, exactly as after a power cut.
        """
        rec = self.recording
        if rec is None:
            return
        rec.failed = exc
        log.error("storage error during %s: %s", rec.id, exc)
        if getattr(exc, "errno", None) != errno.ENOSPC:
            log.error("treating %r as storage full", exc)

    def stop(self, reason: StopReason, t: float) -> None:
        rec = self.recording
        if rec is None:
            return
        self.recording = None
        stop = Stop(reason=StopReason(reason), time=r6(t))
        head = self._head(rec)
        markers = list(rec.markers)
        track = list(rec.track)
        gaps = rec.all_gaps
        audio_gaps = rec.all_audio_gaps
        silent = self._silence(rec, t)
        if silent is not None:
            audio_gaps.append(silent)
        steps = [
            WallStep(time=r6(at), seconds=step, source=StepSource(source))
            for at, step, source in self.clock.wall_steps
            if rec.first.time <= at <= t
        ]
        result: dict[str, Any] = {}

        def finish() -> None:
            writer = rec.writer
            if writer is None:
                return  # the directory was never made: nothing was written
            if rec.failed is None:
                if silent is not None:
                    writer.journal.append(silent)
                writer.journal.append(stop)
                segments = writer.close()
                writer.journal.close()
                manifest = Manifest.build(
                    head, segments, stop, markers, gaps, steps, audio_gaps=audio_gaps, track=track
                )
                if self.custody is not None:
                    result.update(self.custody.write(self.storage, rec.directory, manifest))
                else:
                    write_manifest(self.storage, rec.directory, manifest)
                    result.update(manifest.to_json())
            else:
                # Storage failed under us: finish exactly as recovery after a power
                # cut would, from the journal and the last synced sizes.
                writer.abort()
                result.update(
                    recover_recording(self.storage, rec.directory, stop, custody=self.custody)
                )
            if self.audit is not None:
                self.audit.record(
                    "stop",
                    stop.time,
                    recording_id=rec.id,
                    reason=stop.reason.value,
                    frames=result["frames"],
                    manifest_sha256=result and manifest_sha256(self.storage, rec.directory),
                )
                self.audit.checkpoint(stop.time, "stop")

        def done() -> None:
            if self.on_finished is not None and result:
                self.on_finished(result)

        self.worker.submit(finish, 0, done)

    def _silence(self, rec: Recording, t: float) -> AudioGap | None:
        """The gap over the whole recording when the microphone gave it nothing at all."""
        if rec.audio is None or rec.audio_seen is not None:
            return None
        start, rate = rec.audio.start_time, rec.audio.rate
        samples = round((t - start) * rate)
        if samples <= 0:
            return None
        return AudioGap(
            start=start,
            end=r6(t),
            first_sample=round(start * rate),  # sample n is nominally at n / rate
            samples=samples,
            cause=AudioGapCause.MICROPHONE,
        )

    def _head(self, rec: Recording) -> Head:
        v = self.video
        return Head(
            format=FORMAT,
            device_id=self.device_id,
            recording_id=rec.id,
            codec=v.codec,
            width=v.width,
            height=v.height,
            fps=v.fps,
            trigger=rec.trigger,
            pre_event_requested=self.pre_event,
            pre_event_dropped=rec.pre_event_dropped,
            encoder=v.encoder,
            timing=v.timing,
            audio=rec.audio,
        )
