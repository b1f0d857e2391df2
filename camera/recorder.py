"""The recorder: from a trigger to segments and a manifest, without stalling capture.

Runs on the loop thread; all file work goes to the writer as tasks, in order:
the pre-event frames copied out of the ring at the trigger (so later ring
overwrites can't touch them), then every live frame, then the close and the
manifest. Live frames are bounded by ``queue_bytes`` of writer backlog: past
that, frames are dropped up to the next keyframe (a P-frame without its
reference is useless) and the gap is recorded, so memory stays bounded and
capture never waits. The pre-event copy is outside that bound: it is already
bounded by the ring's arena.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from camera.frames import EncodedFrame
from camera.journal import Journal
from camera.manifest import FORMAT, build_manifest, r6, write_manifest
from camera.recovery import recover_recording
from camera.ring import RingBuffer
from camera.segments import RecordingWriter
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


@dataclass
class Recording:
    """Loop-side state of the recording in progress."""

    id: str
    directory: str
    trigger: dict[str, Any]
    first: EncodedFrame
    writer: RecordingWriter | None = None  # made by the first writer task
    markers: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    queued_bytes: int = 0
    dropping: bool = False
    failed: BaseException | None = None
    last: EncodedFrame | None = None

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
        self.recording: Recording | None = None
        clock.wall_listeners.append(self._wall_step)
        self.counter = self._last_counter()
        self.dropped_frames = 0

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

    def start(self, source: str, trigger_time: float) -> Recording | None:
        """Start a recording whose trigger's first edge was at ``trigger_time``.

        Returns None (and records nothing) when the card is full: evidence is
        never deleted to make room.
        """
        if self.storage_full():
            return None
        frames = self.ring.frames_from(trigger_time - self.pre_event)
        if not frames:
            log.warning("trigger %s at %.3f: nothing buffered yet", source, trigger_time)
        self.counter += 1
        first = frames[0] if frames else None
        stamp_time = first.time if first else trigger_time
        rec_id = f"{self.device_id}_{self.clock.wall(stamp_time):%Y%m%dT%H%M%SZ}_{self.counter:04d}"
        trigger = {
            "source": source,
            "time": r6(trigger_time),
            "wall_time": iso_utc(self.clock, trigger_time),
        }
        rec = Recording(rec_id, rec_id, trigger, first or EncodedFrame(b"", -1, trigger_time, True))
        self.recording = rec
        v = self.video
        head = self._head(rec)

        def open_writer() -> None:
            self.storage.makedirs(rec.directory)
            journal = Journal(self.storage, rec.directory)
            journal.append("head", head)
            rec.writer = RecordingWriter(
                self.storage,
                rec.directory,
                v.codec,
                v.width,
                v.height,
                v.fps,
                self.segment_seconds,
                journal,
            )

        self.worker.submit(open_writer)
        # The pre-event burst goes in chunks of about a second, so the writer
        # syncs as it goes and live frames queue right behind it.
        for i in range(0, len(frames), v.fps):
            chunk = frames[i : i + v.fps]
            self._submit(rec, chunk, live=False)
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

    def _submit(self, rec: Recording, frames: list[EncodedFrame], live: bool) -> None:
        nbytes = sum(f.size for f in frames)

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                if self.storage_full():  # keep the reserve for the journal and manifest
                    raise enospc(self.storage.root)
                writer.write(frames)

        def done() -> None:
            if live:
                rec.queued_bytes -= nbytes

        if live:
            rec.queued_bytes += nbytes
        self.worker.submit(write, nbytes, done)

    # -- live ------------------------------------------------------------
    def on_frame(self, frame: EncodedFrame) -> None:
        rec = self.recording
        if rec is None:
            return
        if rec.first.number < 0:  # nothing was buffered: start on the first keyframe
            if not frame.keyframe:
                return
            rec.first = frame
        if rec.last is not None and frame.number <= rec.last.number:
            return  # already in the pre-event copy
        if (rec.dropping and not frame.keyframe) or (
            rec.queued_bytes + frame.size > self.queue_bytes
        ):
            self._drop(rec, frame, "writer_backlog")
            return
        if rec.dropping:
            rec.dropping = False
            self._journal(rec, "gap", dict(rec.gaps[-1]))
        elif rec.last is not None and frame.number > rec.last.number + 1:
            self._sensor_gap(rec, rec.last, frame)
        self._submit(rec, [frame], live=True)
        rec.last = frame

    def _drop(self, rec: Recording, frame: EncodedFrame, cause: str) -> None:
        if not rec.dropping:
            rec.dropping = True
            rec.gaps.append(
                {
                    "start": r6(frame.time),
                    "end": r6(frame.time),
                    "first_frame": frame.number,
                    "frames": 0,
                    "cause": cause,
                }
            )
        gap = rec.gaps[-1]
        gap["end"] = r6(frame.time)
        gap["frames"] += 1
        self.dropped_frames += 1

    def _sensor_gap(self, rec: Recording, before: EncodedFrame, after: EncodedFrame) -> None:
        """Frames the sensor never delivered (disconnect): declared, not dropped."""
        lost = after.number - before.number - 1
        period = (after.time - before.time) / (lost + 1)
        gap = {
            "start": r6(before.time + period),
            "end": r6(after.time - period),
            "first_frame": before.number + 1,
            "frames": lost,
            "cause": "camera",
        }
        rec.gaps.append(gap)
        self._journal(rec, "gap", dict(gap))

    def _wall_step(self, t: float, seconds: float) -> None:
        """Journal a wall-clock step so a recovered manifest still records it."""
        rec = self.recording
        if rec is not None:
            self._journal(rec, "wall_step", {"time": r6(t), "seconds": seconds})

    def mark(self, source: str, t: float) -> None:
        rec = self.recording
        if rec is not None:
            marker = {"source": source, "time": r6(t)}
            rec.markers.append(marker)
            self._journal(rec, "marker", marker)

    def _journal(self, rec: Recording, kind: str, payload: dict[str, Any]) -> None:
        """A journal record, written by the writer in order with the frames."""

        def write() -> None:
            if (writer := rec.live_writer) is not None:
                writer.journal.append(kind, payload)

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

    def stop(self, reason: str, t: float) -> None:
        rec = self.recording
        if rec is None:
            return
        self.recording = None
        stop = {"reason": reason, "time": r6(t)}
        head = self._head(rec)
        markers = list(rec.markers)
        gaps = [dict(g) for g in rec.gaps]
        steps = [
            {"time": r6(at), "seconds": step}
            for at, step in self.clock.wall_steps
            if rec.first.time <= at <= t
        ]
        result: dict[str, Any] = {}

        def finish() -> None:
            writer = rec.writer
            if writer is None:
                return  # the directory was never made: nothing was written
            if rec.failed is None:
                writer.journal.append("stop", stop)
                segments = [s.as_dict() for s in writer.close()]
                writer.journal.close()
                manifest = build_manifest(head, segments, stop, markers, gaps, steps)
                write_manifest(self.storage, rec.directory, manifest)
            else:
                # Storage failed under us: finish exactly as recovery after a power
                # cut would, from the journal and the last synced sizes.
                writer.abort()
                manifest = recover_recording(self.storage, rec.directory, stop)
            result.update(manifest)

        def done() -> None:
            if self.on_finished is not None and result:
                self.on_finished(result)

        self.worker.submit(finish, 0, done)

    def _head(self, rec: Recording) -> dict[str, Any]:
        v = self.video
        return {
            "format": FORMAT,
            "device_id": self.device_id,
            "recording_id": rec.id,
            "codec": v.codec,
            "width": v.width,
            "height": v.height,
            "fps": v.fps,
            "trigger": rec.trigger,
            "pre_event_requested": self.pre_event,
        }
