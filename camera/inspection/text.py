"""One recording's inspection as a block of aligned lines, for people.

Compact like ``git show --stat`` or ``ffprobe``: a label column, one fact a
line, the details of a list (each gap, step, marker, a segment that is not
as listed) indented beneath it. Everything that came from the recording
(names, sources) is shown escaped, since a hostile manifest could carry
terminal controls. Only what differs from the listing is listed on disk: an
hour of 10 s segments is 360 lines nobody needs when all are there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from camera.evidence.verify.findings import show, show_name
from camera.inspection.model import (
    DiskInfo,
    Inspection,
    SegmentOnDisk,
    SegmentState,
    SignatureInfo,
    SignatureStatus,
    Status,
)

LABEL = 10


def _line(label: str, text: str) -> str:
    return f"{label:<{LABEL}} {text}".rstrip()


def _sub(label: str, text: str) -> str:
    return _line(f"  {label}", text)


def size(n: int) -> str:
    """Bytes for people: ``2.3 MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _at(wall: str | None, t: float) -> str:
    """A moment: its wall time if known, and its device time."""
    return f"{wall} (device {t:.3f} s)" if wall else f"device {t:.3f} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _source(source: str, detail: str | None) -> str:
    return show_name(source) + (f" ({show_name(detail)})" if detail else "")


def _status(insp: Inspection) -> Iterator[str]:
    if insp.status == Status.INTERRUPTED:
        yield _line(
            "status",
            "INTERRUPTED: a journal but no manifest (power lost or the firmware killed)",
        )
        yield _sub("finish", f"run `{insp.recover_command}` to rebuild its manifest")
        yield _sub("shown", "what the journal vouches for so far")
    elif insp.status == Status.RECOVERED:
        yield _line("status", "recovered after an interruption (manifest rebuilt from the journal)")
    else:
        yield _line("status", "complete")


def _video(insp: Inspection) -> Iterator[str]:
    encoder = f" ({show_name(insp.encoder)})" if insp.encoder else ""
    yield _line(
        "video",
        f"{show_name(str(insp.codec))}{encoder} {insp.width}x{insp.height} @ {insp.fps:g} fps",
    )
    a = insp.audio
    if a is None:
        yield _line("audio", "none")
    else:
        rate = f" {a.rate} Hz" if a.rate else ""
        channels = f", {_plural(a.channels, 'channel')}" if a.channels else ""
        yield _line("audio", f"{show_name(a.codec)}{rate}{channels}")


def _span(insp: Inspection) -> Iterator[str]:
    t = insp.trigger
    assert t is not None
    pre = (
        f"; pre-event {insp.pre_event_seconds:.2f} s" if insp.pre_event_seconds is not None else ""
    )
    yield _line(
        "trigger", f"{_source(t.source, t.detail)} at {_at(show_name(t.wall_time), t.time)}{pre}"
    )
    if insp.pre_event_dropped:
        yield _sub("given up", f"{insp.pre_event_dropped} oldest pre-event frames (writer backlog)")
    yield from _place(insp)
    segments = len(insp.disk.segments) if insp.disk else 0
    if insp.frames:
        yield _line(
            "length",
            f"{insp.duration:.1f} s: {insp.frames} frames ({insp.first_frame}-{insp.last_frame})"
            f" in {_plural(segments, 'segment')}, "
            f"device {insp.start_time:.3f}-{insp.end_time:.3f} s",
        )
    else:
        yield _line("length", f"no frames ({_plural(segments, 'segment')})")
    s = insp.stop
    if s is not None:
        yield _line("stop", f"{show_name(s.reason)} at {_at(s.wall_time, s.time)}")
    else:
        yield _line("stop", "none recorded (interrupted)")


def _place(insp: Inspection) -> Iterator[str]:
    """Where: the trigger's position and the track; nothing for a recording from before GPS."""
    p, track = insp.position, insp.track
    if p is not None:
        sats = f", {_plural(p.satellites, 'satellite')}" if p.satellites is not None else ""
        utc = f" ({show_name(p.utc)})" if p.utc else ""
        yield _line(
            "position",
            f"{p.lat:.6f}, {p.lon:.6f}: fix of {p.age:.1f} s before the trigger{utc}{sats}",
        )
    elif track is not None:
        yield _line("position", "none: no valid fix at or before the trigger")
    if track is None:
        return
    if not track.points:
        yield _line("track", "no points (GPS off)")
        return
    lost = ""
    if track.lost:
        why = ", ".join(f"{show_name(r)} {n}" for r, n in track.lost_by_reason.items())
        lost = f", {track.lost} lost ({why}; {track.lost_seconds} s without a position)"
    yield _line(
        "track",
        f"{_plural(track.points, 'point')}, device {track.first_time:.3f}-"
        f"{track.last_time:.3f} s: {track.fixes} with a fix{lost}",
    )
    if track.offset is not None:
        yield _sub("offset", f"GPS UTC minus the device clock {track.offset:+.3f} s (last fix)")


def _lost(insp: Inspection) -> Iterator[str]:
    gaps = insp.gaps or []
    causes = ", ".join(f"{show_name(c)} {n}" for c, n in (insp.lost_by_cause or {}).items())
    if gaps:
        yield _line(
            "lost",
            f"{_plural(insp.lost_frames or 0, 'frame')} in {_plural(len(gaps), 'gap')} ({causes}); "
            f"firmware dropped {insp.dropped_frames}",
        )
    else:
        yield _line("lost", f"no frames; firmware dropped {insp.dropped_frames}")
    for g in gaps:
        frames = f"{g.first_frame}-{g.first_frame + g.frames - 1}"
        device = f"device {g.start:.3f}-{g.end:.3f} s"
        when = f"{g.wall_time} ({device})" if g.wall_time else device
        yield _sub(
            "gap", f"{show_name(g.cause)}: {_plural(g.frames, 'frame')} ({frames}) at {when}"
        )


def _steps_and_markers(insp: Inspection) -> Iterator[str]:
    steps = insp.wall_clock_steps or []
    yield _line(
        "clock", f"{_plural(len(steps), 'wall-clock step')}" if steps else "no wall-clock steps"
    )
    for s in steps:
        moved = f": {s.wall_before} -> {s.wall_after}" if s.wall_before and s.wall_after else ""
        source = f" ({show_name(s.source)})" if s.source is not None else ""
        yield _sub("step", f"{s.seconds:+.3f} s{source} at device {s.time:.3f} s{moved}")
    markers = insp.markers or []
    yield _line("markers", str(len(markers)) if markers else "none")
    for m in markers:
        yield _sub("marker", f"{_source(m.source, m.detail)} at {_at(m.wall_time, m.time)}")


_STATE = {
    SegmentState.MISSING: "missing",
    SegmentState.NOT_A_FILE: "not a regular file",
    SegmentState.UNREADABLE: "its size cannot be read",
    SegmentState.REFUSED: "named outside the recording directory: not looked at",
}


def _segment(s: SegmentOnDisk) -> str:
    name = show_name(s.file)
    on_disk = s.on_disk_bytes or 0
    if s.state == SegmentState.SIZE_DIFFERS:
        return f"{name}: {on_disk} bytes on disk, {s.listed_bytes} listed"
    if s.state == SegmentState.PAST_LAST_SYNC:
        return (
            f"{name}: open, {on_disk - s.listed_bytes} bytes past its last sync at "
            f"{s.listed_bytes} (recovery keeps them beside it as a .tail)"
        )
    if s.state == SegmentState.NEVER_SYNCED:
        return f"{name}: {on_disk} bytes never synced (recovery keeps them as a .tail)"
    return f"{name}: {_STATE[s.state]} ({s.listed_bytes} bytes listed)"


def _disk(disk: DiskInfo, interrupted: bool) -> Iterator[str]:
    listed = "vouched for" if interrupted else "listed"
    n = len(disk.segments)
    if disk.as_listed:
        yield _line("disk", f"{_plural(n, 'segment')}, {size(disk.on_disk_bytes)}, as {listed}")
    else:
        good = sum(s.state == SegmentState.OK for s in disk.segments)
        yield _line(
            "disk",
            f"{good} of {_plural(n, 'segment')} as {listed}; {size(disk.on_disk_bytes)} on disk, "
            f"{size(disk.listed_bytes)} {listed}",
        )
    for s in disk.segments:
        if s.state != SegmentState.OK:
            yield _sub("segment", _segment(s))
    for e in disk.extra_files:
        what = f" ({e.bytes} bytes)" if e.bytes is not None else ""
        yield _sub("extra", f"{show_name(e.file)}{what}: not in the manifest")


def _recovery(r: dict[str, Any]) -> Iterator[str]:
    skipped = r["skipped_journal_lines"]
    tails, short = r["tails"], r["short_segments"]
    unclosed, missing = r["unclosed_segments"], r["missing_segments"]
    if not (skipped or tails or short or unclosed or missing):
        yield _line("recovery", "nothing cut, no journal line skipped, no segment short or lost")
        return
    lines = ", ".join(show(n) for n in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
    yield _line(
        "recovery", f"journal lines skipped: {lines}" if skipped else "no journal line skipped"
    )
    for t in tails:
        yield _sub(
            "tail",
            f"{show_name(t['file'])}: {t['bytes']} bytes kept, cut from {show_name(t['segment'])} "
            f"after byte {t['offset']}",
        )
    for s in short:
        yield _sub(
            "short",
            f"{show_name(s['file'])}: {s['bytes']} of the {s['journal_bytes']} bytes the journal "
            f"vouched for; {s['frames']} of {s['journal_frames']} frames whole",
        )
    for name in unclosed:
        yield _sub(
            "unclosed", f"{show(name)}: its closing record was lost; described from its bytes"
        )
    for name in missing:
        yield _sub("missing", f"{show(name)}: in the journal, not on disk")


def _signature(sig: SignatureInfo) -> Iterator[str]:
    key = f"with {sig.key}, " if sig.key else ""
    if sig.status == SignatureStatus.GOOD:
        yield _line(
            "signature", f"good, {key}found beside the recordings (not independently trusted)"
        )
    elif sig.status == SignatureStatus.BAD:
        yield _line("signature", f"BAD, {key}{sig.detail}")
    elif sig.status == SignatureStatus.UNSIGNED:
        yield _line("signature", f"unsigned: {sig.detail}")
    else:
        yield _line("signature", f"not checked: {sig.detail}")
    if sig.test_key and sig.status == SignatureStatus.GOOD:  # only then is the claim signed
        yield _sub("test key", "a simulation's: proves the bytes are intact, not who wrote them")


def render(insp: Inspection) -> str:
    """The block for one recording (no trailing newline); unreadable ones are not blocks."""
    assert insp.status != Status.UNREADABLE, "unreadable recordings are one error line"
    lines = [
        _line("recording", show_name(str(insp.recording_id))),
        _line("path", insp.path),
        *_status(insp),
        _line("device", show_name(str(insp.device_id))),
        *_video(insp),
        *_span(insp),
        *_lost(insp),
        *_steps_and_markers(insp),
    ]
    if insp.disk is not None:
        lines += _disk(insp.disk, insp.status == Status.INTERRUPTED)
    if insp.recovery is not None:
        lines += _recovery(insp.recovery)
    if insp.signature is not None:
        lines += _signature(insp.signature)
    lines += [_line("problem", p) for p in insp.problems]
    if insp.status != Status.INTERRUPTED:
        lines.append(
            _line(
                "checked",
                f"sizes and the manifest signature only; `bodycam verify {insp.path}` "
                "checks the video",
            )
        )
    return "\n".join(lines)
