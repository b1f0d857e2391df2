"""The on-disk format's records (SPEC 7): one typed class per object a recording writes.

Manifest, segments, gaps, markers, trigger, stop, wall-clock steps and what
recovery did were dicts of strings built in five modules; a key spelled
twice could drift. Each is a dataclass here, and its ``to_json`` is the
object exactly as it goes on disk: keys in field order, a field marked
:data:`OPTIONAL` left out while it is None, enums as their values, nested
records as objects. So a field is added in one place, in the place it is
written, and every writer (a normal stop, recovery, the journal) follows.

A field that older records lack but newer ones always write, even as null
(the manifest's ``audio``: null when audio is off, absent before audio
existed), defaults to :data:`ABSENT` and is left out only while it is that.

Values are kept as given: no rounding, no int/float coercion. The recorder
rounds device times with :func:`r6` where it always has (segment times are
the frames' own), and a record read back from the journal (``from_json``)
writes the bytes it was read from; byte-identical runs depend on both.

``from_json`` trusts its input: it is for the journal, whose reader checks
every field first. ``verify`` never uses it; it checks raw manifest JSON
against its own rules, since a manifest under test may be hostile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, Self

FORMAT = "bodycam-recording/1"
MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
#: Segment files are named ``segment-NNNN.<ext>`` (and ``.tail`` after recovery).
SEGMENT_PREFIX = "segment-"
TAIL_SUFFIX = ".tail"
#: Container format and file extension of each codec's segments: H.264 in
#: MPEG-TS, MJPEG in Matroska, both readable up to the last complete packet.
CONTAINERS = {"h264": ("mpegts", "ts"), "mjpeg": ("matroska", "mkv")}


def r6(x: float) -> float:
    """Times in manifests: microseconds are plenty, and stable across platforms."""
    return round(x, 6)


class StopReason(StrEnum):
    """Why a recording stopped (SPEC 7); the manifest's ``stop.reason``."""

    BUTTON_HOLD = "button_hold"
    CONSOLE = "console"
    END_OF_RUN = "end_of_run"
    STORAGE_FULL = "storage_full"
    POWER_LOSS = "power_loss"


class Timing(StrEnum):
    """How a recording's frame times were made: what ``verify`` judges them against.

    ``exact``: the virtual clock, frame ``n`` at exactly ``n / fps`` (SPEC 4), so
    any deviation is damage. ``sensor``: a real camera's capture times, which
    jitter around the nominal period and drift with the camera's own clock.
    """

    EXACT = "exact"
    SENSOR = "sensor"


class GapCause(StrEnum):
    """Why frames are missing: only ``camera`` frames were never the firmware's to drop."""

    CAMERA = "camera"
    WRITER_BACKLOG = "writer_backlog"
    ENCODER_BACKLOG = "encoder_backlog"


class AudioGapCause(StrEnum):
    """Why audio samples are missing from a recording."""

    #: The microphone delivered nothing for them (unplugged, driver overrun).
    MICROPHONE = "microphone"
    #: The firmware dropped their packets: the writer backlog bound was reached.
    WRITER_BACKLOG = "writer_backlog"


class StepSource(StrEnum):
    """What stepped the wall clock (a ``wall_clock_steps`` entry's ``source``)."""

    #: A valid GPS fix's UTC (the firmware's clock discipline).
    GPS = "gps"
    #: The OS clock, stepped while NTP synchronised it.
    NTP = "ntp"
    #: The OS clock set otherwise: by hand, a restored date, a simulated jump.
    SYSTEM = "system"


#: Field metadata: the key is left out of the JSON while the value is None
#: (``field(default=None, metadata=OPTIONAL)``).
OPTIONAL = MappingProxyType({"optional": True})


class Absent(Enum):
    """The value of a field a record from older firmware does not have."""

    ABSENT = "absent"


#: Left out of the JSON (where None would be written as null); see the module doc.
ABSENT = Absent.ABSENT


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Record:
    """Base of the records: JSON in field order, and back from trusted JSON."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is ABSENT or (value is None and f.metadata.get("optional")):
                continue
            out[f.name] = _plain(value)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        """From a checked journal payload; keys the record does not know are dropped."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})  # type: ignore[arg-type]


class LostReason(StrEnum):
    """Why a track point has no position (SPEC 14: a lost fix is recorded as lost)."""

    #: The receiver sent an epoch and said it has no fix (RMC status V, GGA quality 0).
    NO_FIX = "no_fix"
    #: Nothing came from the receiver for a second: stalled, unplugged, or never opened.
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True, kw_only=True)
class Position(Record):
    """The trigger's ``position``: the last valid fix at or before the trigger.

    ``time`` is the device time the fix arrived, ``age`` the trigger time minus
    it: a fix from a minute ago says where the officer was a minute ago, and the
    reader must be told so. ``utc`` is the receiver's time of the fix.
    """

    time: float
    age: float
    utc: str | None
    lat: float
    lon: float
    speed: float | None
    quality: int | None
    satellites: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackPoint(Record):
    """One epoch with a fix: where the receiver said the camera was, as it said it.

    Every key is written, null where the receiver did not say (a GGA-only epoch
    has no speed), so a point with a fix always has the same shape. ``offset``
    is GPS UTC minus the device's wall clock at ``time`` (before any step that
    fix itself caused): the device's clock error, seconds, visible per point.
    """

    time: float
    utc: str | None
    lat: float
    lon: float
    speed: float | None
    course: float | None
    quality: int | None
    satellites: int | None
    hdop: float | None
    offset: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackLost(Record):
    """A moment without a position: never a coordinate, never an interpolated one."""

    time: float
    #: The receiver's time of an epoch without a fix, if it had one.
    utc: str | None
    lost: LostReason

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        return cls(time=d["time"], utc=d["utc"], lost=LostReason(d["lost"]))


#: An entry of the manifest's ``track``.
TrackEntry = TrackPoint | TrackLost


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger(Record):
    """What started the recording; ``detail`` qualifies a console trigger."""

    source: str
    detail: str | None = field(default=None, metadata=OPTIONAL)
    time: float
    wall_time: str
    #: The last valid fix at or before ``time`` (:class:`Position`); null when
    #: there was none (GPS off, or no fix yet), absent in older records.
    position: Position | Absent | None = ABSENT

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        position = d.get("position", ABSENT)
        return cls(
            source=d["source"],
            detail=d.get("detail"),
            time=d["time"],
            wall_time=d["wall_time"],
            position=(
                position if position is None or position is ABSENT else Position.from_json(position)
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop(Record):
    reason: StopReason
    time: float

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        return cls(reason=StopReason(d["reason"]), time=d["time"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Marker(Record):
    """A start gesture during a recording: a moment the officer flagged."""

    source: str
    detail: str | None = field(default=None, metadata=OPTIONAL)
    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap(Record):
    """Frames ``first_frame .. first_frame + frames - 1`` are missing, and why."""

    start: float
    end: float
    first_frame: int
    frames: int
    cause: GapCause

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            start=d["start"],
            end=d["end"],
            first_frame=d["first_frame"],
            frames=d["frames"],
            cause=GapCause(d["cause"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreEventDropped(Gap):
    """The oldest pre-event frames given up to the writer backlog bound (not in the recording).

    The same fields as a gap, but not a gap in the recording: it lies before it.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class WallStep(Record):
    """A wall-clock correction: UTC stamps after ``time`` differ by ``seconds``."""

    time: float
    seconds: float
    #: What made the step; absent in records of firmware from before sources.
    source: StepSource | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        source = d.get("source")
        return cls(
            time=d["time"],
            seconds=d["seconds"],
            source=None if source is None else StepSource(source),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioGap(Record):
    """Samples ``first_sample .. first_sample + samples - 1`` are missing, and why.

    Sample numbers count from boot like frame numbers; ``start`` is the device
    time of the first missing sample, ``end`` of the first one after the gap.
    """

    start: float
    end: float
    first_sample: int
    samples: int
    cause: AudioGapCause

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            start=d["start"],
            end=d["end"],
            first_sample=d["first_sample"],
            samples=d["samples"],
            cause=AudioGapCause(d["cause"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSpan(Record):
    """A segment's audio packets: how many, and the samples and device times they cover.

    Between ``first_sample`` and ``end_sample`` the packets are back to back
    except where a declared :class:`AudioGap` lies.
    """

    packets: int
    first_sample: int
    end_sample: int  # the sample after the last packet's last
    start_time: float  # device time of the first sample
    end_time: float  # device time of ``end_sample``
    #: Each packet's sha256 (the raw AAC frame, as encoded), in order: in a closed
    #: segment's entry, so sound can be checked packet by packet wherever it was
    #: copied (an export, a cut), as MJPEG's ``frame_sha256`` lets pictures be.
    #: Absent in sync records, older manifests and segments cut by a power loss.
    packet_sha256: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)


def _span_of(d: Mapping[str, Any] | None) -> AudioSpan | None:
    return None if d is None else AudioSpan.from_json(d)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(Record):
    """What an open segment held at an fsync: recovery may cut it back to ``bytes``."""

    file: str
    bytes: int
    frames: int
    first_frame: int
    last_frame: int
    start_time: float
    end_time: float
    #: The audio packets those bytes hold (absent: none, or a video-only recording).
    audio: AudioSpan | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        return cls(**{**_video_span(d), "audio": _span_of(d.get("audio"))})

    def closed(self, sha256: str) -> Segment:
        """The segment as it stands when cut back to this sync."""
        return Segment(
            file=self.file,
            sha256=sha256,
            bytes=self.bytes,
            frames=self.frames,
            first_frame=self.first_frame,
            last_frame=self.last_frame,
            start_time=self.start_time,
            end_time=self.end_time,
            audio=self.audio,
        )


def _video_span(d: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("file", "bytes", "frames", "first_frame", "last_frame", "start_time", "end_time")
    return {k: d[k] for k in keys}


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment(Record):
    """A closed segment file: its bytes' sha256, and the frames and times it holds."""

    file: str
    sha256: str
    bytes: int
    frames: int
    first_frame: int
    last_frame: int
    start_time: float
    end_time: float
    #: The audio packets the file holds (absent: none, or a video-only recording).
    audio: AudioSpan | None = field(default=None, metadata=OPTIONAL)
    #: MJPEG only (no signatures in its stream): each frame's sha256, in order.
    frame_sha256: tuple[str, ...] | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        hashes = d.get("frame_sha256")
        return cls(
            **_video_span(d),
            sha256=d["sha256"],
            audio=_span_of(d.get("audio")),
            frame_sha256=None if hashes is None else tuple(hashes),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Tail(Record):
    """Bytes of ``segment`` past ``offset`` (its last sync), kept beside it by recovery."""

    file: str
    segment: str
    offset: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortSegment(Record):
    """A segment shorter than the journal says; its whole frames end at ``complete_bytes``."""

    file: str
    bytes: int
    journal_bytes: int
    journal_frames: int
    frames: int
    complete_bytes: int


@dataclass(slots=True, kw_only=True)
class RecoveryInfo(Record):
    """The manifest's ``recovery`` entry: what recovery did. Filled in as it goes."""

    skipped_journal_lines: list[int] = field(default_factory=list)
    tails: list[Tail] = field(default_factory=list)
    short_segments: list[ShortSegment] = field(default_factory=list)
    unclosed_segments: list[str] = field(default_factory=list)
    missing_segments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioHead(Record):
    """A recording's audio as known when it starts: the journal head's ``audio``."""

    codec: str
    rate: int
    channels: int
    bitrate: int
    #: The microphone's backend ("synthetic", "alsa"): ``verify`` measures A/V
    #: sync from the clicks only in a synthetic scene.
    source: str | None
    #: Whether the pre-event carries sound (``audio.pre_event``).
    pre_event: bool
    #: Device time the recording's sound was asked to start: its first
    #: pre-event frame with pre-event sound, else the trigger's first edge.
    start_time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioBlock(AudioHead):
    """The manifest's ``audio``: the head's part, and what was written.

    ``samples`` counts the samples of the packets written; ``first_time`` and
    ``end_time`` (just after the last sample) are None when none were.
    """

    first_time: float | None
    end_time: float | None
    packets: int
    samples: int
    gaps: tuple[AudioGap, ...]

    @classmethod
    def build(
        cls, head: AudioHead, segments: Sequence[Segment], gaps: Iterable[AudioGap]
    ) -> AudioBlock:
        """Totals from the segments' audio; a gap inside a segment's span is not samples."""
        spans = [s.audio for s in segments if s.audio is not None]
        gaps = tuple(gaps)
        missing = sum(
            g.samples
            for g in gaps
            if any(sp.first_sample <= g.first_sample < sp.end_sample for sp in spans)
        )
        return cls(
            **{f.name: getattr(head, f.name) for f in fields(AudioHead)},
            first_time=spans[0].start_time if spans else None,
            end_time=spans[-1].end_time if spans else None,
            packets=sum(sp.packets for sp in spans),
            samples=sum(sp.end_sample - sp.first_sample for sp in spans) - missing,
            gaps=gaps,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Head(Record):
    """What is known when a recording starts: the journal's first record."""

    format: str
    device_id: str
    recording_id: str
    codec: str
    width: int
    height: int
    fps: float
    trigger: Trigger
    pre_event_requested: float
    #: None, and written as null, also for journals from before the backlog bound.
    pre_event_dropped: PreEventDropped | None = None
    #: The encoder that actually opened ("libx264", "h264_v4l2m2m", "opencv-mjpeg"):
    #: ``auto`` picks by hardware, so only the recording can say which ran.
    #: Absent in journals of older firmware, and then in their manifests too.
    encoder: str | None = field(default=None, metadata=OPTIONAL)
    #: How frame times were made (:class:`Timing`); absent in older journals.
    timing: Timing | None = field(default=None, metadata=OPTIONAL)
    #: The recording's audio; None (null) when audio is off, absent in
    #: journals from before audio (and then in their manifests too).
    audio: AudioHead | Absent | None = ABSENT

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Self:
        dropped = d.get("pre_event_dropped")
        timing = d.get("timing")
        audio = d.get("audio", ABSENT)
        return cls(
            format=d["format"],
            device_id=d["device_id"],
            recording_id=d["recording_id"],
            codec=d["codec"],
            width=d["width"],
            height=d["height"],
            fps=d["fps"],
            trigger=Trigger.from_json(d["trigger"]),
            pre_event_requested=d["pre_event_requested"],
            pre_event_dropped=None if dropped is None else PreEventDropped.from_json(dropped),
            encoder=d.get("encoder"),
            timing=None if timing is None else Timing(timing),
            audio=audio if audio is None or audio is ABSENT else AudioHead.from_json(audio),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest(Record):
    """``manifest.json``: its fields, in this order, are the file's keys (SPEC 7)."""

    format: str
    device_id: str
    recording_id: str
    codec: str
    #: Which implementation encoded it (see :class:`Head`); absent in older manifests.
    encoder: str | None = field(default=None, metadata=OPTIONAL)
    width: int
    height: int
    fps: float
    #: How frame times were made (:class:`Timing`); absent in older manifests,
    #: which ``verify`` then judges as exact.
    timing: Timing | None = field(default=None, metadata=OPTIONAL)
    trigger: Trigger
    #: Trigger time minus the first frame's; negative when the trigger came
    #: before the first frame after boot.
    pre_event_seconds: float
    pre_event_requested: float
    pre_event_dropped: PreEventDropped | None
    start_time: float
    end_time: float
    stop: Stop
    frames: int
    first_frame: int | None
    last_frame: int | None
    #: Dropped by the firmware (writer or encoder backlog); frames the sensor
    #: never delivered are in ``gaps`` with cause "camera" but were not dropped.
    dropped_frames: int
    gaps: tuple[Gap, ...]
    markers: tuple[Marker, ...]
    #: Wall-clock corrections during the recording: UTC stamps before and
    #: after a step differ by it; device times (and frame order) do not.
    wall_clock_steps: tuple[WallStep, ...]
    #: Where the camera was, epoch by epoch (SPEC 14): fixes and lost
    #: moments in device-time order, from the first frame to the stop; empty
    #: when GPS is off, absent in manifests from before GPS.
    track: tuple[TrackEntry, ...] | Absent = ABSENT
    #: The recording's sound (:class:`AudioBlock`); null when audio is off,
    #: absent in manifests from before audio.
    audio: AudioBlock | Absent | None = ABSENT
    segments: tuple[Segment, ...]
    #: Only in a manifest rebuilt after an interruption: what recovery did.
    recovery: RecoveryInfo | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def build(
        cls,
        head: Head,
        segments: Sequence[Segment],
        stop: Stop,
        markers: Iterable[Marker],
        gaps: Iterable[Gap],
        wall_clock_steps: Iterable[WallStep] = (),
        recovery: RecoveryInfo | None = None,
        audio_gaps: Iterable[AudioGap] = (),
        track: Iterable[TrackEntry] | Absent = ABSENT,
    ) -> Manifest:
        """The manifest from a recording's head (known at start) and what was written.

        One function for a normal stop and for recovery after a power cut, so
        both produce the same shape from the same facts; the ``audio`` block
        too, from the head's, the segments' audio and the audio gaps. The
        ``track`` keeps the points from the first frame to the stop: the
        journal may hold one from before the first frame (a trigger with
        nothing buffered) or after the last (power cut before the next sync).
        """
        first = segments[0] if segments else None
        last = segments[-1] if segments else None
        trigger_time = head.trigger.time
        start_time = first.start_time if first else trigger_time
        gaps = tuple(gaps)
        return cls(
            format=head.format,
            device_id=head.device_id,
            recording_id=head.recording_id,
            codec=head.codec,
            encoder=head.encoder,
            width=head.width,
            height=head.height,
            fps=head.fps,
            timing=head.timing,
            trigger=head.trigger,
            pre_event_seconds=r6(trigger_time - start_time),
            pre_event_requested=head.pre_event_requested,
            pre_event_dropped=head.pre_event_dropped,
            start_time=r6(start_time),
            end_time=r6(last.end_time) if last else r6(start_time),
            stop=stop,
            frames=sum(s.frames for s in segments),
            first_frame=first.first_frame if first else None,
            last_frame=last.last_frame if last else None,
            dropped_frames=sum(g.frames for g in gaps if g.cause != GapCause.CAMERA),
            gaps=gaps,
            markers=tuple(markers),
            wall_clock_steps=tuple(wall_clock_steps),
            track=(
                track
                if track is ABSENT
                else tuple(p for p in track if start_time <= p.time <= stop.time)
            ),
            audio=(
                head.audio
                if head.audio is None or head.audio is ABSENT
                else AudioBlock.build(head.audio, segments, audio_gaps)
            ),
            segments=tuple(segments),
            recovery=recovery,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Previous(Record):
    """The device's previous recording: the link that makes a deleted one show."""

    recording_id: str
    manifest_sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance(Record):
    """Who wrote a manifest, with what, after which (SPEC 12); then ``signature``."""

    firmware_version: str
    config_sha256: str
    #: sha256 of the public key's DER: which key signed (and must verify) this.
    key_id: str
    #: A simulation's key, derived from the device id and seed: anyone can
    #: recompute it, so it proves the bytes are intact, not who wrote them.
    test_key: bool
    #: None (null) for the device's first recording on this card.
    previous: Previous | None


#: The manifest's keys in file order (``recovery`` only after an interruption).
ORDER = (
    *(f.name for f in fields(Manifest)),
    *(f.name for f in fields(Provenance)),
    "signature",
)
