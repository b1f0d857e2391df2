"""Continuity: frame codes and timestamps run on across segments, except where declared.

The SPEC section 8 frame codes (when the stream carries them) must run
without gaps or duplicates except where the manifest declares a gap, and
timestamps must follow capture spacing, from the recording's own origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from camera.evidence.verify.decode import Decoded, DecodedFrame
from camera.evidence.verify.findings import Findings, show
from camera.evidence.verify.rules import Expect

#: Timestamps are exact in MPEG-TS (90 kHz); Matroska rounds them to 1 ms.
TIME_TOLERANCE = 0.0011


@dataclass
class Continuity:
    """Where the previous frame left off, across segments.

    ``start_time`` is the recording's (its first segment's); ``origin`` is the
    device time of timestamp 0, decided from the first picture with a
    timestamp (see :func:`timestamp_origin`) and kept for the whole recording.
    """

    next_code: int | None = None
    prev_time: float | None = None
    start_time: float | None = None
    origin: float | None = None

    def reset(self) -> None:
        """After a segment that could not be (fully) read: its loss is already reported."""
        self.next_code = self.prev_time = None


def timestamp_origin(first: float, seg_start: float, start_time: float | None) -> float:
    """The device time of timestamp 0: the recording's ``start_time`` (SPEC 6).

    Timestamps count from the recording's first frame, so device time is
    ``start_time`` plus the timestamp and they never wrap. Recordings made
    before that counted from boot (origin 0); they still verify: the first
    picture tells which convention a recording uses, and only these two are
    accepted (any other offset shows up as a start_time mismatch).
    """
    if start_time is None:
        return 0.0
    if abs(first + start_time - seg_start) > TIME_TOLERANCE >= abs(first - seg_start):
        return 0.0
    return start_time


def declared_run(start: int, lost: int, gaps: set[tuple[int, int]]) -> bool:
    """True if frames ``start .. start + lost - 1`` are all declared, by one or adjacent gaps.

    Adjacent gaps happen when causes meet (an encoder skip right before a
    camera dropout, a camera dropout in the middle of a backlog drop).
    """
    end = start + lost
    pos = start
    while pos < end:
        reach = [pos + n for first, n in gaps if first == pos and 0 < n <= end - pos]
        if not reach:
            return False
        pos = max(reach)
    return True


def check_frames(
    frames: list[DecodedFrame], expect: Expect, run: Continuity, found: Findings
) -> None:
    """Frame codes run on (or skip a declared gap); timestamps keep capture spacing."""
    for f in frames:
        if f.code is not None:
            if run.next_code is not None and f.code != run.next_code:
                lost = f.code - run.next_code
                if lost < 1 or not declared_run(run.next_code, lost, expect.gaps):
                    found.add(
                        f"frame {f.code} follows {run.next_code - 1} (undeclared gap)",
                        "frame-order problems",
                    )
            run.next_code = f.code + 1
        t = f.seconds
        if t is None:
            found.add("a frame has no timestamp", "frames without timestamps")
            continue
        if run.prev_time is not None and expect.fps is not None:
            fps = expect.fps
            k = round((t - run.prev_time) * fps)
            if k < 1 or abs(t - run.prev_time - k / fps) > TIME_TOLERANCE:
                found.add(f"timestamp {t:.4f} s breaks 1/{fps} s spacing", "timestamp problems")
        run.prev_time = t


def check_decoded(
    seg: dict[str, Any], decoded: Decoded, expect: Expect, run: Continuity, found: Findings
) -> None:
    """What the pictures say against the segment's manifest entry."""
    if decoded.stopped:
        found.add(f"does not decode: {decoded.stopped}")
    if decoded.bad_packets:
        found.add(f"{decoded.bad_packets} packets do not decode (first: {decoded.first_bad})")
    if expect.codec and decoded.codec and decoded.codec != expect.codec:
        found.add(f"holds {show(decoded.codec)} video, manifest says {expect.codec}")
    frames = decoded.frames
    if (frames and not frames[0].keyframe) or decoded.first_packet_key is False:
        found.add("does not start on a keyframe")
    check_frames(frames, expect, run, found)
    if decoded.stopped:
        run.reset()
        return  # the counts below would only restate the stop
    if len(frames) != seg["frames"]:
        found.add(f"{len(frames)} frames decoded, manifest says {show(seg['frames'])}")
    codes = [f.code for f in frames if f.code is not None]
    if codes and (codes[0] != seg["first_frame"] or codes[-1] != seg["last_frame"]):
        found.add(
            f"frames {codes[0]}..{codes[-1]}, manifest says "
            f"{seg['first_frame']}..{seg['last_frame']}"
        )
    check_segment_times(seg, frames, expect.fps, found, run)


def check_segment_times(
    seg: dict[str, Any],
    frames: list[DecodedFrame],
    fps: float | None,
    found: Findings,
    run: Continuity | None = None,
) -> None:
    """The segment's pictures start and end at the manifest's times, at its frame rate.

    A picture's device time is the recording's timestamp origin (``run``)
    plus its timestamp. Frame to frame, a wrong rate can hide inside the
    tolerance Matroska's 1 ms timestamps need (1/30 and 1/31 s differ by
    1.07 ms); across a segment it cannot. Frame numbers count captures
    (SPEC 7), so a declared gap keeps the spacing.
    """
    times = [(f.code, f.seconds) for f in frames if f.seconds is not None]
    if not times:
        return
    run = run or Continuity()
    if run.origin is None:
        run.origin = timestamp_origin(times[0][1], seg["start_time"], run.start_time)
    times = [(code, run.origin + t) for code, t in times]
    for which, key, (_, t) in (("first", "start_time", times[0]), ("last", "end_time", times[-1])):
        if abs(t - seg[key]) > TIME_TOLERANCE:
            found.add(f"{which} picture at {t:.4f} s, manifest {key} says {show(seg[key])}")
    coded = [(code, t) for code, t in times if code is not None]
    if fps is None or len(coded) < 2:
        return
    (code0, t0), (code1, t1) = coded[0], coded[-1]
    expected = (code1 - code0) / fps
    if abs(t1 - t0 - expected) > TIME_TOLERANCE:
        found.add(f"frames {code0}..{code1} span {t1 - t0:.4f} s, {expected:.4f} s at {fps:g} fps")
