"""What ``bodycam inspect`` found about one recording, as plain typed facts.

One dataclass per object of the ``--json`` output (the keys are these fields,
in this order, documented in :mod:`camera.inspection`); the human text is
rendered from the same objects, so the two cannot say different things.
Values read from a manifest are shown as they are there (numbers stay
numbers); wall times other than the trigger's are derived
(:mod:`camera.inspection.wallclock`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Where a recording stands."""

    #: Stopped normally: its manifest was written at the stop.
    COMPLETE = "complete"
    #: Interrupted, and its manifest since rebuilt from the journal (``recovery``).
    RECOVERED = "recovered"
    #: A journal but no manifest: power lost or killed; ``bodycam recover`` finishes it.
    INTERRUPTED = "interrupted"
    #: Its manifest (or an interrupted one's journal) cannot be read: see ``error``.
    UNREADABLE = "unreadable"


class SegmentState(StrEnum):
    """A listed segment on disk now, by its size (sha256 is ``bodycam verify``'s)."""

    OK = "ok"
    MISSING = "missing"
    SIZE_DIFFERS = "size_differs"
    #: Something other than a regular file (a directory, a FIFO) under its name.
    NOT_A_FILE = "not_a_file"
    #: Its size cannot be read (an I/O error on a failing card).
    UNREADABLE = "unreadable"
    #: The manifest names a file outside the recording directory; not looked at.
    REFUSED = "refused"
    #: Interrupted only: the open segment holds bytes past its last fsync
    #: (recovery keeps them beside it as ``segment-NNNN.tail``).
    PAST_LAST_SYNC = "past_last_sync"
    #: Interrupted only: a segment file the journal never vouched for (all tail).
    NEVER_SYNCED = "never_synced"


class SignatureStatus(StrEnum):
    """The quick check of the manifest's signature against the key beside it."""

    GOOD = "good"
    BAD = "bad"
    UNSIGNED = "unsigned"
    NO_KEY = "no_key"


@dataclass(slots=True, kw_only=True)
class TriggerInfo:
    source: str
    detail: str | None
    time: float
    #: As the manifest has it (the device's clock at the trigger).
    wall_time: str


@dataclass(slots=True, kw_only=True)
class PositionInfo:
    """The trigger's position: the last valid fix at or before it, ``age`` seconds old."""

    time: float
    age: float
    utc: str | None
    lat: float
    lon: float
    satellites: int | None


@dataclass(slots=True, kw_only=True)
class TrackInfo:
    """The track in numbers: how much of the recording is placed, and how much is lost."""

    points: int
    #: Points with a position.
    fixes: int
    #: Points without one, and why (``no_fix``, ``no_data``).
    lost: int
    lost_by_reason: dict[str, int]
    #: Whole device seconds with a lost point and no fix.
    lost_seconds: int
    first_time: float | None
    last_time: float | None
    #: GPS UTC minus the device's wall clock, at the last point that says it.
    offset: float | None


@dataclass(slots=True, kw_only=True)
class StopInfo:
    reason: str
    time: float
    wall_time: str | None


@dataclass(slots=True, kw_only=True)
class GapInfo:
    cause: str
    frames: int
    first_frame: int
    start: float
    end: float
    #: Wall time at ``start``.
    wall_time: str | None


@dataclass(slots=True, kw_only=True)
class StepInfo:
    """A wall-clock step: UTC stamps after ``time`` moved by ``seconds``."""

    time: float
    seconds: float
    #: What made it ("gps", "ntp", "system"); None in recordings of older firmware.
    source: str | None
    wall_before: str | None
    wall_after: str | None


@dataclass(slots=True, kw_only=True)
class MarkerInfo:
    source: str
    detail: str | None
    time: float
    wall_time: str | None


@dataclass(slots=True, kw_only=True)
class AudioInfo:
    codec: str
    rate: int | None
    channels: int | None


@dataclass(slots=True, kw_only=True)
class SegmentOnDisk:
    file: str
    #: What the manifest (or, interrupted, the journal's last sync) says.
    listed_bytes: int
    on_disk_bytes: int | None
    state: SegmentState


@dataclass(slots=True, kw_only=True)
class ExtraFile:
    file: str
    bytes: int | None


@dataclass(slots=True, kw_only=True)
class DiskInfo:
    listed_bytes: int
    #: The listed segments' sizes on disk now (missing ones count 0).
    on_disk_bytes: int
    segments: list[SegmentOnDisk]
    #: Files in the directory the manifest does not account for.
    extra_files: list[ExtraFile]

    @property
    def as_listed(self) -> bool:
        return all(s.state == SegmentState.OK for s in self.segments) and not self.extra_files


@dataclass(slots=True, kw_only=True)
class SignatureInfo:
    status: SignatureStatus
    #: One line: what was found (the verify finding when it failed).
    detail: str
    #: The public key file it was checked against, when one was.
    key: str | None
    key_id: str | None
    test_key: bool
    #: Always false: inspect uses the key found beside the recordings, on the
    #: same card; ``bodycam verify --key`` checks against one you trust.
    trusted: bool = False


@dataclass(slots=True, kw_only=True)
class Inspection:
    path: str
    status: Status
    error: str | None = None
    recover_command: str | None = None
    recording_id: str | None = None
    device_id: str | None = None
    codec: str | None = None
    encoder: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    audio: AudioInfo | None = None
    trigger: TriggerInfo | None = None
    pre_event_seconds: float | None = None
    #: The trigger's position (None: no valid fix, GPS off, or older firmware).
    position: PositionInfo | None = None
    #: The track's summary (None: a recording from before GPS has no track).
    track: TrackInfo | None = None
    start_time: float | None = None
    end_time: float | None = None
    duration: float | None = None
    frames: int | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    stop: StopInfo | None = None
    lost_frames: int | None = None
    lost_by_cause: dict[str, int] | None = None
    dropped_frames: int | None = None
    pre_event_dropped: int | None = None
    gaps: list[GapInfo] | None = None
    wall_clock_steps: list[StepInfo] | None = None
    markers: list[MarkerInfo] | None = None
    disk: DiskInfo | None = None
    recovery: dict[str, Any] | None = None
    signature: SignatureInfo | None = None
    #: Where the manifest does not add up (its totals, order): run verify.
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
