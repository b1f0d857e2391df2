"""A recording's moments (trigger, gaps, clock steps, markers, stop) with their wall times.

Shared by the two sources of facts, a manifest and an interrupted
recording's journal: both hold these as the same JSON objects (the
records of :mod:`camera.evidence.records`), checked before they get here.
Every frame missing from the recording counts, whatever its cause: the
manifest's ``dropped_frames`` is only what the firmware dropped, so a camera
that went dark for 45 frames reads "0 dropped" there; here it is 45 lost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from camera.evidence.records import GapCause
from camera.inspection.model import (
    AudioInfo,
    GapInfo,
    Inspection,
    MarkerInfo,
    PositionInfo,
    StepInfo,
    StopInfo,
    TrackInfo,
    TriggerInfo,
)
from camera.inspection.wallclock import WallClock, parse_utc

Json = Mapping[str, Any]

#: The fields a manifest and a journal head share, copied as they are.
IDENTITY = ("recording_id", "device_id", "codec", "encoder", "width", "height", "fps")


def identity(insp: Inspection, d: Json) -> None:
    """Who recorded what: the head of a manifest or of a journal."""
    for key in IDENTITY:
        setattr(insp, key, d.get(key))
    audio = d.get("audio")
    if isinstance(audio, Mapping):
        rate, channels = audio.get("rate"), audio.get("channels")
        insp.audio = AudioInfo(
            codec=audio["codec"],
            rate=rate if type(rate) is int else None,
            channels=channels if type(channels) is int else None,
        )
    dropped = d.get("pre_event_dropped")
    frames = dropped.get("frames") if isinstance(dropped, Mapping) else 0
    insp.pre_event_dropped = frames if type(frames) is int else None


def moments(
    insp: Inspection,
    trigger: Json,
    steps: Sequence[Json],
    gaps: Sequence[Json],
    markers: Sequence[Json],
    stop: Json | None,
) -> None:
    """Fill in the trigger, gaps (and lost frames), steps, markers and stop, wall times too."""
    clock = WallClock(
        trigger["time"],
        parse_utc(trigger["wall_time"]),
        tuple((s["time"], s["seconds"]) for s in steps),
    )
    insp.trigger = TriggerInfo(
        source=trigger["source"],
        detail=trigger.get("detail"),
        time=trigger["time"],
        wall_time=trigger["wall_time"],
    )
    insp.gaps = [
        GapInfo(
            cause=g["cause"],
            frames=g["frames"],
            first_frame=g["first_frame"],
            start=g["start"],
            end=g["end"],
            wall_time=clock.at(g["start"]),
        )
        for g in gaps
    ]
    by_cause: dict[str, int] = {}
    for g in insp.gaps:
        by_cause[g.cause] = by_cause.get(g.cause, 0) + g.frames
    insp.lost_by_cause = by_cause
    insp.lost_frames = sum(by_cause.values())
    if insp.dropped_frames is None:  # a journal: what its manifest would say
        insp.dropped_frames = sum(n for c, n in by_cause.items() if c != GapCause.CAMERA)
    insp.wall_clock_steps = []
    for s in steps:
        before, after = clock.around_step(s["time"], s["seconds"])
        insp.wall_clock_steps.append(
            StepInfo(
                time=s["time"],
                seconds=s["seconds"],
                source=s.get("source"),
                wall_before=before,
                wall_after=after,
            )
        )
    insp.markers = [
        MarkerInfo(
            source=m["source"],
            detail=m.get("detail"),
            time=m["time"],
            wall_time=clock.at(m["time"]),
        )
        for m in markers
    ]
    if stop is not None:
        insp.stop = StopInfo(
            reason=stop["reason"], time=stop["time"], wall_time=clock.at(stop["time"])
        )


def place(insp: Inspection, trigger: Json, track: Sequence[Json] | None) -> None:
    """The trigger's position and the track's summary (``track`` None: from before GPS)."""
    position = trigger.get("position")
    if isinstance(position, Mapping):
        insp.position = PositionInfo(
            time=position["time"],
            age=position["age"],
            utc=position["utc"],
            lat=position["lat"],
            lon=position["lon"],
            satellites=position["satellites"],
        )
    if track is None:
        return
    lost = [p for p in track if "lost" in p]
    by_reason: dict[str, int] = {}
    for p in lost:
        by_reason[p["lost"]] = by_reason.get(p["lost"], 0) + 1
    placed = {math.floor(p["time"]) for p in track if "lost" not in p}
    offsets = [p["offset"] for p in track if p.get("offset") is not None]
    insp.track = TrackInfo(
        points=len(track),
        fixes=len(track) - len(lost),
        lost=len(lost),
        lost_by_reason=by_reason,
        lost_seconds=len({math.floor(p["time"]) for p in lost} - placed),
        first_time=track[0]["time"] if track else None,
        last_time=track[-1]["time"] if track else None,
        offset=offsets[-1] if offsets else None,
    )


def span(insp: Inspection, segments: Sequence[Json]) -> None:
    """Frames and times from the segments, as a manifest adds them up."""
    insp.frames = sum(s["frames"] for s in segments)
    if not segments:
        return
    first, last = segments[0], segments[-1]
    insp.first_frame, insp.last_frame = first["first_frame"], last["last_frame"]
    insp.start_time, insp.end_time = first["start_time"], last["end_time"]


def duration(insp: Inspection) -> None:
    """From the first frame to the end of the last one (one frame period after it)."""
    if insp.start_time is None or insp.end_time is None or not insp.frames:
        insp.duration = 0.0 if insp.frames == 0 else None
        return
    period = 1 / insp.fps if isinstance(insp.fps, int | float) and insp.fps > 0 else 0.0
    insp.duration = round(insp.end_time - insp.start_time + period, 6)
