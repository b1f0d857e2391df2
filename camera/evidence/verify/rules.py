"""The manifest's rules (SPEC section 7): its fields, their types, and what must add up.

The manifest under test is evidence to check, never instructions: each field
is validated before any later check relies on it, and every missing or
ill-typed field is one line naming it and what was expected. Totals, order,
pre-event and dropped frames are checked against the segments and gaps it
lists, so an entry cannot be dropped or edited with the rest left as it was.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from camera.evidence.records import (
    CONTAINERS,
    FORMAT,
    MANIFEST,
    StepSource,
    StopReason,
    Timing,
)
from camera.evidence.verify.findings import show, show_name
from camera.framecode import CODE_BITS


def _is_int(v: Any) -> bool:
    return type(v) is int  # JSON true/false are bools, never counts


def _is_number(v: Any) -> bool:
    return _is_int(v) or (type(v) is float and math.isfinite(v))


@dataclass(frozen=True)
class Rule:
    ok: Callable[[Any], bool]
    wanted: str


TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
COUNT = Rule(lambda v: _is_int(v) and v >= 0, "a whole number >= 0")
POSITIVE = Rule(lambda v: _is_int(v) and v > 0, "a whole number > 0")
FRAME = Rule(lambda v: _is_int(v) and 0 <= v < 1 << CODE_BITS, "a frame number (0 to 2^32-1)")
SECONDS = Rule(lambda v: _is_number(v) and v >= 0, "device seconds (a number >= 0)")
RATE = Rule(lambda v: _is_number(v) and 0 < v <= 1000, "frames per second (0 < fps <= 1000)")
SHA256 = Rule(
    lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
    "64 lowercase hex digits",
)
CODEC = Rule(lambda v: isinstance(v, str) and v in CONTAINERS, " or ".join(map(repr, CONTAINERS)))
STOP_REASON = Rule(
    lambda v: isinstance(v, str) and v in set(StopReason), "one of " + ", ".join(StopReason)
)
OBJECT = Rule(lambda v: isinstance(v, dict), "an object")
LIST = Rule(lambda v: isinstance(v, list), "a list")
FRAME_OR_NULL = Rule(lambda v: v is None or FRAME.ok(v), "a frame number or null")
BOOL = Rule(lambda v: type(v) is bool, "true or false")
OBJECT_OR_NULL = Rule(lambda v: v is None or isinstance(v, dict), "an object or null")
SHA256_LIST = Rule(
    lambda v: isinstance(v, list) and all(SHA256.ok(h) for h in v),
    "a list of sha256 (64 lowercase hex digits each)",
)

HEAD: dict[str, Rule] = {
    "format": Rule(lambda v: v == FORMAT, repr(FORMAT)),
    "device_id": TEXT,
    "recording_id": TEXT,
    "codec": CODEC,
    "width": POSITIVE,
    "height": POSITIVE,
    "fps": RATE,
    "trigger": OBJECT,
    # Negative when a trigger came before the first frame after boot: the
    # recording then starts at the first frame there is.
    "pre_event_seconds": Rule(_is_number, "seconds (a number)"),
    "start_time": SECONDS,
    "end_time": SECONDS,
    "stop": OBJECT,
    "frames": COUNT,
    "first_frame": FRAME_OR_NULL,
    "last_frame": FRAME_OR_NULL,
    "dropped_frames": COUNT,
    "markers": LIST,
    "segments": LIST,
}
#: Fields newer firmware writes and older manifests lack, checked when present.
HEAD_OPTIONAL: dict[str, Rule] = {
    "encoder": TEXT,
    "timing": Rule(
        lambda v: isinstance(v, str) and v in set(Timing),
        " or ".join(repr(t.value) for t in Timing),
    ),
}
TRIGGER = {"source": TEXT, "time": SECONDS, "wall_time": TEXT}
STOP = {"reason": STOP_REASON, "time": SECONDS}
MARKER = {"source": TEXT, "time": SECONDS}
WALL_STEP = {"time": SECONDS, "seconds": Rule(_is_number, "seconds (a number)")}
#: A step's source, checked when present: steps of older firmware have none.
WALL_STEP_SOURCE = Rule(
    lambda v: isinstance(v, str) and v in set(StepSource),
    " or ".join(repr(s.value) for s in StepSource),
)
GAP = {"first_frame": FRAME, "frames": COUNT}
SEGMENT = {
    "file": TEXT,
    "sha256": SHA256,
    "bytes": COUNT,
    "frames": COUNT,
    "first_frame": FRAME,
    "last_frame": FRAME,
    "start_time": SECONDS,
    "end_time": SECONDS,
}
REQUIRED = tuple(HEAD)
#: Who wrote a signed manifest, with what, after which (SPEC 12); ``signature``
#: itself is the signature check's to report.
PROVENANCE = {
    "firmware_version": TEXT,
    "config_sha256": SHA256,
    "key_id": SHA256,
    "test_key": BOOL,
    "previous": OBJECT_OR_NULL,
}
PREVIOUS = {"recording_id": TEXT, "manifest_sha256": SHA256}


def check_fields(obj: Any, rules: dict[str, Rule], where: str, problems: list[str]) -> bool:
    """Append one line per missing or ill-typed field of ``obj``; True if all are good.

    ``where`` names the object for the reader ("", "trigger", "segments[2]").
    Extra fields are allowed: the manifest has "at least" these (SPEC 7).
    """
    prefix = f"{MANIFEST}: {where}" if where else MANIFEST
    if not isinstance(obj, dict):
        problems.append(f"{prefix} is {show(obj)}, expected an object")
        return False
    good = True
    missing = [key for key in rules if key not in obj]
    if missing:
        problems.append(f"{prefix}: missing {', '.join(missing)}")
        good = False
    for key, rule in rules.items():
        if key in obj and not rule.ok(obj[key]):
            dotted = f"{where}.{key}" if where else key
            problems.append(f"{MANIFEST}: {dotted} is {show(obj[key])}, expected {rule.wanted}")
            good = False
    return good


def valid(obj: dict[str, Any], key: str, rules: dict[str, Rule]) -> Any:
    """``obj[key]`` if present and valid by ``rules``, else None (already reported)."""
    value = obj.get(key)
    return value if key in obj and rules[key].ok(value) else None


def check_list(
    items: Any, rules: dict[str, Rule], where: str, problems: list[str]
) -> list[dict[str, Any]]:
    """The entries of a manifest list that pass ``rules``; the others are reported."""
    if not isinstance(items, list):
        return []
    return [
        item for i, item in enumerate(items) if check_fields(item, rules, f"{where}[{i}]", problems)
    ]


@dataclass
class Expect:
    """What the manifest says about the pictures, where it says it validly."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    gaps: set[tuple[int, int]] = field(default_factory=set)
    #: How the frame times were made; exact (the strict check) unless the
    #: manifest validly says ``sensor``, so a missing or bad field never loosens it.
    timing: Timing = Timing.EXACT


def check_manifest(m: Any, problems: list[str]) -> tuple[Expect, list[dict[str, Any]]] | None:
    """Validate the manifest; return what later checks may rely on, or None to stop.

    Only a wrong ``format`` (or no object at all) stops verification: for any
    other damage the segments are still hashed and decoded, since that is the
    evidence an investigator most needs.
    """
    if not isinstance(m, dict):
        problems.append(f"{MANIFEST} is {show(m)}, expected an object")
        return None
    if "format" in m and m["format"] != FORMAT:
        problems.append(f"{MANIFEST}: format is {show(m['format'])}, expected {FORMAT!r}")
        return None
    check_fields(m, HEAD, "", problems)
    check_fields(m, {k: r for k, r in HEAD_OPTIONAL.items() if k in m}, "", problems)
    if OBJECT.ok(m.get("trigger")):
        check_fields(m["trigger"], TRIGGER, "trigger", problems)
    if OBJECT.ok(m.get("stop")):
        check_fields(m["stop"], STOP, "stop", problems)
    check_list(m.get("markers"), MARKER, "markers", problems)
    check_wall_steps(m, problems)
    gaps = None
    if "gaps" in m:  # optional: older manifests did not have it
        if LIST.ok(m["gaps"]):
            gaps = check_list(m["gaps"], GAP, "gaps", problems)
        else:
            problems.append(f"{MANIFEST}: gaps is {show(m['gaps'])}, expected a list")
    segments = check_list(m.get("segments"), SEGMENT, "segments", problems)
    if LIST.ok(m.get("segments")) and len(segments) == len(m["segments"]):
        check_totals(m, segments, problems)
        check_segment_order(segments, problems)
    if gaps is not None and len(gaps) == len(m["gaps"]):
        check_dropped(m, gaps, problems)
    check_pre_event(m, problems)
    expect = Expect(
        codec=valid(m, "codec", HEAD),
        width=valid(m, "width", HEAD),
        height=valid(m, "height", HEAD),
        fps=valid(m, "fps", HEAD),
        gaps={(g["first_frame"], g["frames"]) for g in gaps or []},
        timing=Timing(valid(m, "timing", HEAD_OPTIONAL) or Timing.EXACT),
    )
    return expect, segments


def check_wall_steps(m: dict[str, Any], problems: list[str]) -> None:
    """Each ``wall_clock_steps`` entry has a device time, a step and, if any, a known source.

    Optional as a whole too: manifests from before wall-clock steps lack it.
    """
    if "wall_clock_steps" not in m:
        return
    steps = m["wall_clock_steps"]
    if not LIST.ok(steps):
        problems.append(f"{MANIFEST}: wall_clock_steps is {show(steps)}, expected a list")
        return
    for i, step in enumerate(steps):
        rules = WALL_STEP
        if isinstance(step, dict) and "source" in step:
            rules = {**WALL_STEP, "source": WALL_STEP_SOURCE}
        check_fields(step, rules, f"wall_clock_steps[{i}]", problems)


def check_provenance(m: dict[str, Any], problems: list[str]) -> dict[str, Any] | None:
    """The provenance fields of a signed manifest; returns ``previous`` if it is a valid link.

    ``previous`` is null for the device's first recording on the card, else
    the recording before it and the sha256 of that manifest's bytes.
    """
    check_fields(m, PROVENANCE, "", problems)
    previous = m.get("previous")
    if isinstance(previous, dict) and check_fields(previous, PREVIOUS, "previous", problems):
        return previous
    return None


def check_totals(m: dict[str, Any], segments: list[dict[str, Any]], problems: list[str]) -> None:
    """The recording's frames, first/last frame and times must be those of its segments.

    Otherwise a segment could be dropped from the list (and from the disk)
    with the totals left as they were.
    """
    frames = sum(s["frames"] for s in segments)
    if valid(m, "frames", HEAD) is not None and m["frames"] != frames:
        problems.append(
            f"{MANIFEST}: frames is {show(m['frames'])}, the segments hold {frames} "
            "(frame count does not add up across segments)"
        )
    first = segments[0] if segments else {}
    last = segments[-1] if segments else {}
    for key, seg in (("first_frame", first), ("last_frame", last)):
        if key in m and FRAME_OR_NULL.ok(m[key]) and m[key] != seg.get(key):
            problems.append(
                f"{MANIFEST}: {key} is {show(m[key])}, the segments say {show(seg.get(key))}"
            )
    for key, seg in (("start_time", first), ("end_time", last)):
        if seg and valid(m, key, HEAD) is not None and abs(m[key] - seg[key]) > 1e-6:
            problems.append(
                f"{MANIFEST}: {key} is {show(m[key])}, the segments say {show(seg[key])}"
            )


def check_segment_order(segments: list[dict[str, Any]], problems: list[str]) -> None:
    """Each segment's own numbers make sense, and segments follow one another.

    Catches reordered or duplicated entries before any file is read.
    """
    names: set[str] = set()
    prev: dict[str, Any] | None = None
    for s in segments:
        name = show_name(s["file"])
        if s["file"] in names:
            problems.append(f"{MANIFEST}: {name} is listed twice")
        names.add(s["file"])
        span = s["last_frame"] - s["first_frame"] + 1
        if span < 1 or s["frames"] > span:
            problems.append(
                f"{MANIFEST}: {name} claims {show(s['frames'])} frames in "
                f"{s['first_frame']}..{s['last_frame']}"
            )
        if s["end_time"] < s["start_time"]:
            problems.append(f"{MANIFEST}: {name} ends before it starts")
        if prev is not None and (
            s["first_frame"] <= prev["last_frame"] or s["start_time"] < prev["end_time"]
        ):
            problems.append(f"{MANIFEST}: {name} does not follow {show_name(prev['file'])}")
        prev = s


def check_pre_event(m: dict[str, Any], problems: list[str]) -> None:
    """``pre_event_seconds`` is the trigger time minus the first frame's time (SPEC 7)."""
    trigger = m.get("trigger")
    pre, start = valid(m, "pre_event_seconds", HEAD), valid(m, "start_time", HEAD)
    if pre is None or start is None or not isinstance(trigger, dict):
        return
    t = valid(trigger, "time", TRIGGER)
    if t is not None and abs(pre - (t - start)) > 1e-5:
        problems.append(
            f"{MANIFEST}: pre_event_seconds is {show(pre)}, "
            f"trigger.time - start_time is {show(t - start)}"
        )


def check_dropped(m: dict[str, Any], gaps: list[dict[str, Any]], problems: list[str]) -> None:
    """``dropped_frames`` is the frames the firmware dropped, as listed in ``gaps``.

    Gaps with cause "camera" are frames the sensor never delivered: declared
    (so continuity accepts them) but not dropped.
    """
    dropped = sum(g["frames"] for g in gaps if g.get("cause") != "camera")
    if valid(m, "dropped_frames", HEAD) is not None and m["dropped_frames"] != dropped:
        problems.append(
            f"{MANIFEST}: dropped_frames is {show(m['dropped_frames'])}, "
            f"the gaps add up to {show(dropped)}"
        )
