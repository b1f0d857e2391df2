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
"""

from __future__ import annotations

import errno
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from camera.evidence.audit import DeviceAudit
from camera.evidence.custody import Custody, manifest_sha256
from camera.evidence.journal import Journal, JournalRecord
from camera.evidence.manifest import write_manifest
from camera.evidence.records import (
    FORMAT,
    Gap,
    GapCause,
    Head,
    Manifest,
    Marker,
    PreEventDropped,
    Stop,
    StopReason,
    Timing,
    Trigger,
    WallStep,
    r6,
)
from camera.frames import EncodedFrame
from camera.recovery import recover_recording
from camera.ring import RingBuffer
from camera.segments import RecordingWriter, Sealer
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

    @property
    def all_gaps(self) -> list[Gap]:
        """Every gap so far, the one still being counted included."""
        return [*self.gaps, *([self.backlog_gap] if self.backlog_gap else [])]

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
    ) -> None:
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
        pattern = re.compile(rf"^{re.escape(self.device_id)}_\d{{8}}T\d{{6}}Z_(\d{{4}})$")
        found = [int(m.group(1)) for n in self.storage.listdir() if (m := pattern.match(n))]
        return max(found, default=0)

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
        fitted = self._fit_pre_event(self.ring.frames_from(trigger_time - self.pre_event))
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
        )
        rec = Recording(rec_id, rec_id, trigger, first or EncodedFrame(b"", -1, trigger_time, True))
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
            )

        self.worker.submit(open_writer)
        if self.audit is not None:
            self.audit.later(
                "trigger", trigger_time, recording_id=rec_id, source=source, detail=detail
            )
        # The pre-event burst goes in chunks of about a second, so the writer
        # syncs as it goes and live frames queue right behind it. A hole in it
        # is declared and journaled in order with the frames around it.
        chunk: list[EncodedFrame] = []
        for frame in frames:
            if rec.seen is not None and frame.number > rec.seen.number + 1:
                self._submit(rec, chunk)
                chunk = []
                self._missing(rec, rec.seen, frame)
            chunk.append(frame)
            rec.seen = frame
            if len(chunk) == v.fps:
                self._submit(rec, chunk)
                chunk = []
        self._submit(rec, chunk)
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

    def _fit_pre_event(
        self, frames: list[EncodedFrame]
    ) -> tuple[list[EncodedFrame], list[EncodedFrame]] | None:
        """(frames to queue, oldest frames given up) within the backlog bound, or None.

        Gives up whole GOPs from the oldest end, so the copy still starts on a
        keyframe; None when not even the newest GOP fits.
        """
        room = self.queue_bytes - self.worker.queued_bytes
        rest = sum(f.size for f in frames)
        for i, frame in enumerate(frames):
            if frame.keyframe and rest <= room:
                return frames[i:], frames[:i]
            rest -= frame.size
        return (frames, []) if not frames else None

    def _fits(self, frame: EncodedFrame) -> bool:
        """Whether ``frame`` can be queued without passing the writer backlog bound."""
        return self.worker.queued_bytes + frame.size <= self.queue_bytes

    def _submit(self, rec: Recording, frames: list[EncodedFrame]) -> None:
        if not frames:
            return

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                if self.storage_full():  # keep the reserve for the journal and manifest
                    raise enospc(self.storage.root)
                writer.write(frames)

        self.worker.submit(write, sum(f.size for f in frames))

    # -- live ------------------------------------------------------------
    def on_frame(self, frame: EncodedFrame) -> None:
        rec = self.recording
        if rec is None:
            return
        if rec.first.number < 0:  # nothing was buffered: start on the first keyframe queued
            if not frame.keyframe or not self._fits(frame):
                return
            rec.first = frame
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
        self._submit(rec, [frame])
        rec.last = frame

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

    def _wall_step(self, t: float, seconds: float) -> None:
        """Journal a wall-clock step so a recovered manifest still records it."""
        rec = self.recording
        if rec is not None:
            self._journal(rec, WallStep(time=r6(t), seconds=seconds))

    def mark(self, source: str, t: float, detail: str | None = None) -> None:
        rec = self.recording
        if rec is not None:
            marker = Marker(source=source, detail=detail, time=r6(t))
            rec.markers.append(marker)
            self._journal(rec, marker)
            if self.audit is not None:
                self.audit.later("marker", t, recording_id=rec.id, source=source, detail=detail)

    def _journal(self, rec: Recording, record: JournalRecord) -> None:
        """A journal record, written by the writer in order with the frames."""

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                writer.journal.append(record)

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
        gaps = rec.all_gaps
        steps = [
            WallStep(time=r6(at), seconds=step)
            for at, step in self.clock.wall_steps
            if rec.first.time <= at <= t
        ]
        result: dict[str, Any] = {}

        def finish() -> None:
            writer = rec.writer
            if writer is None:
                return  # the directory was never made: nothing was written
            if rec.failed is None:
                writer.journal.append(stop)
                segments = writer.close()
                writer.journal.close()
                manifest = Manifest.build(head, segments, stop, markers, gaps, steps)
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
        )
