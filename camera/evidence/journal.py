"""The recording journal: an append-only, fsync'ed log written as a recording goes.

A manifest is only written when a recording stops; a power cut before that
would leave segments nobody can vouch for. So each recording keeps
``journal.jsonl``: its head (who, what, why) at the start, a ``sync`` record
each time the open segment has been fsync'ed (file, bytes, frames up to
there), each closed segment with its sha256, markers and gaps as they happen,
the track's points (and lost moments) as the receiver gives them, and the
stop. Recovery rebuilds the manifest from it. The journal stays beside
the manifest as the recording's audit trail.

Each line carries a crc32 of its record (``{"sync": {...}, "crc32": "..."}``)
because a damaged line can still be valid JSON (a flipped digit in a byte
count): without the checksum recovery would trust a wrong size and cut, or
describe, a segment by it. A line that does not parse, fails its checksum or
lacks the fields its kind's record needs is skipped and reported by line
number, never taken as the end of the journal: the lines after it still vouch
for evidence. Journals written before the checksum (no line has one) are
still read.

Records are the typed ones of :mod:`camera.evidence.records`: written with
their ``to_json`` and, once a line passed :data:`FIELDS`, read back with
their ``from_json`` (:meth:`JournalContents.of_type`).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from camera.evidence.records import (
    JOURNAL,
    AudioGap,
    AudioGapCause,
    Gap,
    GapCause,
    Head,
    LostReason,
    Marker,
    Segment,
    StepSource,
    Stop,
    StopReason,
    Sync,
    Timing,
    TrackEntry,
    TrackLost,
    TrackPoint,
    WallStep,
)
from hal.storage import Storage

CRC = "crc32"
JournalRecord = (
    Head | Sync | Segment | Marker | Gap | AudioGap | WallStep | TrackPoint | TrackLost | Stop
)
#: Each line's kind (its one key) and the record it holds.
KINDS: dict[str, type[JournalRecord]] = {
    "head": Head,
    "sync": Sync,
    "segment": Segment,
    "marker": Marker,
    "gap": Gap,
    "audio_gap": AudioGap,
    "wall_step": WallStep,
    "track": TrackPoint,
    "track_lost": TrackLost,
    "stop": Stop,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}
R = TypeVar("R", Head, Sync, Segment, Marker, Gap, AudioGap, WallStep, TrackPoint, TrackLost, Stop)


def _record_bytes(kind: str, payload: Any) -> bytes:
    """What the checksum covers: the record as ``json.dumps`` writes it.

    Parsing and re-serialising a record gives the same text (Python's floats
    round-trip), so the reader checks what the line means, not its bytes.
    """
    return json.dumps({kind: payload}).encode()


def crc_of(kind: str, payload: Any) -> str:
    return f"{zlib.crc32(_record_bytes(kind, payload)):08x}"


class Journal:
    def __init__(self, storage: Storage, directory: str) -> None:
        self._file = storage.open_append(f"{directory}/{JOURNAL}")

    def append(self, record: JournalRecord, *, durable: bool = True) -> None:
        """One record, durable before this returns unless ``durable`` is False.

        ``durable=False`` is for records that come every second and may wait
        for the next sync point (half a second of video at most): each fsync
        costs a card write, and a pre-event flush journals dozens of track
        points at once. The next durable append makes them durable with it;
        a power cut before that loses them from the tail, never from the
        middle, and the reader drops a torn tail line by its CRC.
        """
        kind, payload = _KIND_OF[type(record)], record.to_json()
        line = json.dumps({kind: payload, CRC: crc_of(kind, payload)}) + "\n"
        self._file.write(line.encode())
        if durable:
            self._file.sync()

    def sync(self) -> None:
        """Make every record appended so far durable (those appended with ``durable=False``)."""
        self._file.sync()

    def close(self) -> None:
        self._file.close()


# -- reading -----------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_time(v: Any) -> bool:
    return type(v) in (int, float) and v >= 0


def _is_sample(v: Any) -> bool:
    """A sample number: the encoder's priming packet at boot starts before sample 0."""
    return type(v) is int


def _is_count(v: Any) -> bool:
    return type(v) is int and v > 0


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _is_file(v: Any) -> bool:
    return _is_text(v) and "/" not in v and "\0" not in v and v not in (".", "..")


Check = Callable[[Any], bool]


def _one_of(
    values: type[StopReason]
    | type[GapCause]
    | type[AudioGapCause]
    | type[Timing]
    | type[StepSource]
    | type[LostReason],
) -> Check:
    return lambda v: isinstance(v, str) and v in set(values)


def _fields_ok(obj: Any, need: dict[str, Check], may: dict[str, Check] | None = None) -> bool:
    """``obj`` is an object with every ``need`` field good, and any ``may`` field present good."""
    return (
        isinstance(obj, dict)
        and all(key in obj and ok(obj[key]) for key, ok in need.items())
        and all(ok(obj[key]) for key, ok in (may or {}).items() if key in obj)
    )


_SPAN: dict[str, Check] = {
    "file": _is_file,
    "bytes": _is_int,
    "frames": _is_int,
    "first_frame": _is_int,
    "last_frame": _is_int,
    "start_time": _is_time,
    "end_time": _is_time,
}
_GAP: dict[str, Check] = {
    "start": _is_time,
    "end": _is_time,
    "first_frame": _is_int,
    "frames": _is_int,
    "cause": _one_of(GapCause),
}
#: Audio times may precede boot by one AAC frame (the encoder's priming packet).
_AUDIO_SPAN: dict[str, Check] = {
    "packets": _is_count,
    "first_sample": _is_sample,
    "end_sample": _is_sample,
    "start_time": _is_number,
    "end_time": _is_number,
}
_AUDIO_GAP: dict[str, Check] = {
    "start": _is_number,
    "end": _is_number,
    "first_sample": _is_sample,
    "samples": _is_int,
    "cause": _one_of(AudioGapCause),
}
_AUDIO_HEAD: dict[str, Check] = {
    "codec": _is_text,
    "rate": _is_count,
    "channels": _is_count,
    "bitrate": _is_count,
    "source": lambda v: v is None or _is_text(v),
    "pre_event": lambda v: type(v) is bool,
    "start_time": _is_time,
}


def _is_hashes(v: Any) -> bool:
    return isinstance(v, list) and all(_is_text(h) for h in v)


def _audio(need: dict[str, Check]) -> Check:
    """An optional audio object: null, or one with every field good (and its
    packet hashes, where it has them, a list of sha256)."""
    return lambda v: (
        v is None
        or (
            _fields_ok(v, need)
            and (v.get("packet_sha256") is None or _is_hashes(v["packet_sha256"]))
        )
    )


def _or_null(check: Check) -> Check:
    return lambda v: v is None or check(v)


_NUMBER_OR_NULL = _or_null(_is_number)
_INT_OR_NULL = _or_null(_is_int)
_UTC = _or_null(_is_text)
_POSITION: dict[str, Check] = {
    "time": _is_time,
    "age": _is_time,
    "utc": _UTC,
    "lat": _is_number,
    "lon": _is_number,
    "speed": _NUMBER_OR_NULL,
    "quality": _INT_OR_NULL,
    "satellites": _INT_OR_NULL,
}
_TRACK_POINT: dict[str, Check] = {
    "time": _is_time,
    "utc": _UTC,
    "lat": _is_number,
    "lon": _is_number,
    "speed": _NUMBER_OR_NULL,
    "course": _NUMBER_OR_NULL,
    "quality": _INT_OR_NULL,
    "satellites": _INT_OR_NULL,
    "hdop": _NUMBER_OR_NULL,
    "offset": _NUMBER_OR_NULL,
}
_DETAIL: dict[str, Check] = {"detail": lambda v: isinstance(v, str)}
_TRIGGER: dict[str, Check] = {"source": _is_text, "time": _is_time, "wall_time": _is_text}
#: What a trigger may carry besides: its detail, and (newer firmware) its position.
_TRIGGER_MAY: dict[str, Check] = {
    **_DETAIL,
    "position": lambda v: v is None or _fields_ok(v, _POSITION),
}
#: The fields each kind's record needs, so that ``from_json`` can build it. A
#: record without them is as unreadable as a torn line (an old journal has no
#: checksum to catch it).
FIELDS: dict[str, dict[str, Check]] = {
    "head": {
        "format": _is_text,
        "device_id": _is_text,
        "recording_id": _is_text,
        "codec": _is_text,
        "width": _is_int,
        "height": _is_int,
        "fps": lambda v: type(v) in (int, float) and v > 0,
        "trigger": lambda v: _fields_ok(v, _TRIGGER, _TRIGGER_MAY),
        "pre_event_requested": _is_time,
    },
    "sync": _SPAN,
    "segment": {**_SPAN, "sha256": _is_text},
    "marker": {"source": _is_text, "time": _is_time},
    "gap": _GAP,
    "audio_gap": _AUDIO_GAP,
    "wall_step": {"time": _is_time, "seconds": _is_number},
    "track": _TRACK_POINT,
    "track_lost": {"time": _is_time, "utc": _UTC, "lost": _one_of(LostReason)},
    "stop": {"reason": _one_of(StopReason), "time": _is_time},
}
#: Fields a kind may lack (journals of older firmware), checked when present.
OPTIONAL: dict[str, dict[str, Check]] = {
    "head": {
        "pre_event_dropped": lambda v: v is None or _fields_ok(v, _GAP),
        "encoder": _is_text,
        "timing": _one_of(Timing),
        "audio": _audio(_AUDIO_HEAD),
    },
    "sync": {"audio": _audio(_AUDIO_SPAN)},
    "segment": {"audio": _audio(_AUDIO_SPAN), "frame_sha256": _is_hashes},
    "marker": _DETAIL,
    "wall_step": {"source": _one_of(StepSource)},
}


class Record(NamedTuple):
    line: int  # 1-based line number in the journal file
    kind: str
    payload: dict[str, Any]


@dataclass
class JournalContents:
    records: list[Record] = field(default_factory=list)
    #: Line numbers (1-based) that could not be read, in file order.
    skipped: list[int] = field(default_factory=list)
    #: Why each skipped line was skipped, by line number (for the log).
    why: dict[int, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The payloads of one kind, as JSON (for tools and tests)."""
        return [r.payload for r in self.records if r.kind == kind]

    def of_type(self, cls: type[R]) -> list[R]:
        """The records of one kind, typed; every field they need was checked on reading."""
        return [cls.from_json(p) for p in self.of(_KIND_OF[cls])]

    def track(self) -> list[TrackEntry]:
        """The track's points and lost moments, typed, in the order they were journaled."""
        out: list[TrackEntry] = []
        for r in self.records:
            if r.kind == "track":
                out.append(TrackPoint.from_json(r.payload))
            elif r.kind == "track_lost":
                out.append(TrackLost.from_json(r.payload))
        return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes) -> tuple[str, dict[str, Any], bool] | str:
    """(kind, payload, had a checksum) or why the line cannot be read."""
    try:
        obj = json.loads(line, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return "not JSON (torn or damaged)"
    if not isinstance(obj, dict):
        return "not a record"
    crc = obj.pop(CRC, None)
    if len(obj) != 1:
        return "not one record"
    kind, payload = next(iter(obj.items()))
    if crc is not None and crc != crc_of(kind, payload):
        return "checksum mismatch"
    fields = FIELDS.get(kind)
    if fields is None:
        return f"unknown record kind {kind!r}"[:80]
    if not _fields_ok(payload, fields, OPTIONAL.get(kind)):
        return f"{kind} record lacks the fields it needs"
    return kind, payload, crc is not None


def read_journal_lines(path: Path) -> JournalContents:
    """Every readable record with its line number, and the lines that were not.

    Once any line carries a checksum the journal is one this firmware wrote,
    so a line without one has lost it to damage and is skipped too.
    """
    out = JournalContents()
    try:
        data = path.read_bytes()
    except OSError:
        return out
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last record
    parsed = [_parse(line) for line in lines]
    checksummed = any(isinstance(p, tuple) and p[2] for p in parsed)
    for number, p in enumerate(parsed, start=1):
        if isinstance(p, tuple) and checksummed and not p[2]:
            p = "no checksum"
        if isinstance(p, str):
            out.skipped.append(number)
            out.why[number] = p
            continue
        out.records.append(Record(number, p[0], p[1]))
    return out


def read_journal(path: Path) -> list[tuple[str, Any]]:
    """The readable records of a journal, in order (unreadable lines left out)."""
    return [(r.kind, r.payload) for r in read_journal_lines(path).records]
