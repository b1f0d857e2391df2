"""Continuity: frame codes and timestamps run on across segments, except where declared.

The SPEC section 8 frame codes (when the stream carries them) must run
without gaps or duplicates except where the manifest declares a gap, and
timestamps must follow capture spacing, from the recording's own origin.

How strictly timestamps are judged depends on how they were made (the
manifest's ``timing``). ``exact`` (the virtual clock, and any manifest that
does not say): frame ``n`` at ``n / fps``, so every step is a whole number
of periods within the container's rounding. ``sensor`` (a real clock): the
camera's capture times, which jitter and whose clock runs a little fast or
slow, so each step is judged against the frame numbers it spans with a
jitter tolerance (:data:`JITTER_PERIODS`), and a segment's span with a rate
tolerance (:data:`RATE_TOLERANCE`). Either way a jump in time must come with
frame numbers skipping just as far, which continuity requires to be a
declared gap; and frame codes are exact under both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from camera.evidence.records import Timing
from camera.evidence.verify.decode import Decoded, DecodedFrame
from camera.evidence.verify.findings import Findings, show
from camera.evidence.verify.rules import Expect

#: Timestamps are exact in MPEG-TS (90 kHz); Matroska rounds them to 1 ms.
TIME_TOLERANCE = 0.0011
#: Sensor timing: how far a step between two frames may be from the frame
#: periods their numbers span, in periods. Half a period is the most that
#: keeps the count unambiguous: a step within it of ``k`` periods can only be
#: ``k`` frames, and it is exactly the numbering rule of our sensors (numbers
#: advance by the step rounded to whole periods), so a camera that numbers
#: its frames so always passes while a frame a whole period late without a
#: skipped number (a lost frame not declared) always fails. Real capture
#: timestamps jitter by well under a millisecond (driver or sensor stamps)
#: to a few milliseconds (stamped at the read), far inside it at 30 fps
#: (16.7 ms).
JITTER_PERIODS = 0.5
#: Sensor timing: the rate error a camera's clock may have over a segment,
#: as a fraction. Crystal oscillators are good to 0.01 % and a sensor's frame
#: timing to a few 0.1 % of nominal (29.97 for 30 fps is 0.1 %), so 1 %
#: accepts any real camera while a recording whose ``fps`` is wrong (25
#: against 30 is 17 %) still fails.
RATE_TOLERANCE = 0.01


@dataclass
class Continuity:
    """Where the previous frame left off, across segments.

    ``start_time`` is the recording's (its first segment's); ``origin`` is the
    device time of timestamp 0, decided from the first picture with a
    timestamp (see :func:`timestamp_origin`) and kept for the whole recording.
    """

    next_code: int | None = None
    prev_time: float | None = None
    #: Sensor timing: the previous frame's number (its code, or by the manifest).
    prev_number: int | None = None
    start_time: float | None = None
    origin: float | None = None

    def reset(self) -> None:
        """After a segment that could not be (fully) read: its loss is already reported."""
        self.next_code = self.prev_time = self.prev_number = None


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


def listed_numbers(seg: dict[str, Any], count: int, gaps: set[tuple[int, int]]) -> list[int]:
    """The numbers of a segment's ``count`` pictures by its manifest entry.

    For pictures without frame codes: from ``first_frame`` on, skipping the
    frames declared in gaps. Walks ``count`` steps, never the numbers in
    between, so a hostile ``last_frame`` costs nothing. The caller compares
    where it ends with ``last_frame``.
    """
    skip: dict[int, int] = {}
    for first, n in gaps:
        if n > 0:
            skip[first] = max(skip.get(first, 0), n)
    pos = seg["first_frame"]
    numbers = [pos] if count else []
    for _ in range(count - 1):
        pos += 1
        while pos in skip:
            pos += skip[pos]
        numbers.append(pos)
    return numbers


def numbers_for(
    seg: dict[str, Any], frames: list[DecodedFrame], expect: Expect, found: Findings
) -> list[int] | None:
    """Sensor timing: the frames' numbers by the manifest, where frame codes do not say.

    None when every frame carries its code, when the count is already wrong
    (reported with the counts), or when the numbering does not come out at
    ``last_frame``: then frames are missing (or extra) without a declared
    gap, which is reported here, since without codes nothing else would.
    """
    if expect.timing != Timing.SENSOR or all(f.code is not None for f in frames):
        return None
    if not frames or len(frames) != seg["frames"]:
        return None
    numbers = listed_numbers(seg, len(frames), expect.gaps)
    if numbers[-1] != seg["last_frame"]:
        found.add(
            f"{len(frames)} frames from frame {seg['first_frame']}, skipping the declared "
            f"gaps, end at frame {numbers[-1]}, manifest says last_frame {seg['last_frame']} "
            "(frames missing or extra without a declared gap)"
        )
        return None
    return numbers


def check_frames(
    frames: list[DecodedFrame],
    expect: Expect,
    run: Continuity,
    found: Findings,
    numbers: list[int] | None = None,
) -> None:
    """Frame codes run on (or skip a declared gap); timestamps keep capture spacing.

    ``numbers``: the frames' numbers by the manifest (:func:`listed_numbers`),
    which sensor timing uses where a picture carries no code.
    """
    for i, f in enumerate(frames):
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
        if expect.timing == Timing.SENSOR:
            listed = numbers[i] if numbers is not None and i < len(numbers) else None
            check_sensor_step(f.code, listed, t, expect, run, found)
        elif run.prev_time is not None and expect.fps is not None:
            fps = expect.fps
            k = round((t - run.prev_time) * fps)
            if k < 1 or abs(t - run.prev_time - k / fps) > TIME_TOLERANCE:
                found.add(f"timestamp {t:.4f} s breaks 1/{fps} s spacing", "timestamp problems")
        run.prev_time = t


def check_sensor_step(
    code: int | None,
    listed: int | None,
    t: float,
    expect: Expect,
    run: Continuity,
    found: Findings,
) -> None:
    """One frame of a sensor-timed recording against the one before it.

    Its time must advance, by the frame periods its number advances within
    :data:`JITTER_PERIODS`. The number is the frame code where there is one
    (whose own continuity :func:`check_frames` checks); otherwise the
    manifest's numbering, and then a jump in it must be a declared gap too
    (within a segment it skips only declared gaps; between segments it may not).
    """
    number = code if code is not None else listed
    prev_t, prev_n = run.prev_time, run.prev_number
    run.prev_number = number
    if prev_t is None:
        return
    dt = t - prev_t
    name = f"frame {number}" if number is not None else f"the frame at {t:.4f} s"
    if dt <= 0:
        found.add(
            f"{name}: timestamp {t:.4f} s does not advance past the previous frame's "
            f"{prev_t:.4f} s",
            "timestamp problems",
        )
        return
    fps = expect.fps
    if fps is None or number is None or prev_n is None or number <= prev_n:
        return  # nothing to judge the step by (a code out of order is reported above)
    dn = number - prev_n
    if code is None and dn > 1 and not declared_run(prev_n + 1, dn - 1, expect.gaps):
        found.add(f"frame {number} follows {prev_n} (undeclared gap)", "frame-order problems")
    nominal, allowed = dn / fps, JITTER_PERIODS / fps
    if abs(dt - nominal) > allowed:
        periods = round(dt * fps)
        why = (
            f"; a jump of {periods} frame periods needs frame numbers skipping as many "
            "(a declared gap)"
            if periods > dn
            else ""
        )
        found.add(
            f"{name}: {dt * 1000:.1f} ms after frame {prev_n}, allowed "
            f"{nominal * 1000:.1f} ms +- {allowed * 1000:.1f} ms "
            f"({dn} frame period{'s' if dn > 1 else ''} at {fps:g} fps, sensor timing){why}",
            "timestamp problems",
        )


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
    numbers = None if decoded.stopped else numbers_for(seg, frames, expect, found)
    check_frames(frames, expect, run, found, numbers)
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
    check_segment_times(seg, frames, expect.fps, found, run, expect.timing, numbers)


def check_segment_times(
    seg: dict[str, Any],
    frames: list[DecodedFrame],
    fps: float | None,
    found: Findings,
    run: Continuity | None = None,
    timing: Timing = Timing.EXACT,
    numbers: list[int] | None = None,
) -> None:
    """The segment's pictures start and end at the manifest's times, at its frame rate.

    A picture's device time is the recording's timestamp origin (``run``)
    plus its timestamp. Frame to frame, a wrong rate can hide inside the
    tolerance Matroska's 1 ms timestamps need (1/30 and 1/31 s differ by
    1.07 ms); across a segment it cannot. Frame numbers count captures
    (SPEC 7), so a declared gap keeps the spacing. Sensor timing allows the
    end frames their jitter plus the camera's rate error over the span, not
    each step's tolerance added up: a rate that is off shows here even when
    every step is within its jitter.
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
    if timing == Timing.SENSOR:
        check_sensor_span(frames, fps, run.origin, numbers, found)
        return
    coded = [(code, t) for code, t in times if code is not None]
    if fps is None or len(coded) < 2:
        return
    (code0, t0), (code1, t1) = coded[0], coded[-1]
    expected = (code1 - code0) / fps
    if abs(t1 - t0 - expected) > TIME_TOLERANCE:
        found.add(f"frames {code0}..{code1} span {t1 - t0:.4f} s, {expected:.4f} s at {fps:g} fps")


def check_sensor_span(
    frames: list[DecodedFrame],
    fps: float | None,
    origin: float,
    numbers: list[int] | None,
    found: Findings,
) -> None:
    """A sensor-timed segment's first to last frame: the frame rate it claims, within reason."""
    known = []
    for i, f in enumerate(frames):
        number = f.code if f.code is not None else (numbers[i] if numbers else None)
        if number is not None and f.seconds is not None:
            known.append((number, origin + f.seconds))
    if fps is None or len(known) < 2:
        return
    (n0, t0), (n1, t1) = known[0], known[-1]
    if n1 <= n0:
        return  # out of order: reported frame by frame
    expected = (n1 - n0) / fps
    allowed = JITTER_PERIODS / fps + RATE_TOLERANCE * expected
    if abs(t1 - t0 - expected) > allowed:
        found.add(
            f"frames {n0}..{n1} span {t1 - t0:.4f} s, {expected:.4f} s +- {allowed:.4f} s "
            f"at {fps:g} fps (sensor timing: half a frame period plus "
            f"{RATE_TOLERANCE:.0%} rate error)"
        )
