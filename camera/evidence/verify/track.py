"""The manifest's place (SPEC 14): ``trigger.position`` and the ``track``, checked as evidence.

Both are inside the signed manifest, so an edited point fails the
signature; these rules catch what a signature cannot: a manifest signed
with a wrong shape (a firmware bug) or one checked without a key. What they
hold a track to is what the firmware promises:

- points in device-time order, every one within the recording (from its
  first frame to its stop);
- a point with a fix carries every field, and a latitude and longitude that
  are places on Earth; a ``lost`` one carries no coordinate at all (a lost
  fix is recorded as lost, never invented);
- the trigger's position is a fix from at or before the trigger, its
  ``age`` the difference.

Both fields are absent in manifests from before GPS, and then not checked.
"""

from __future__ import annotations

import math
from typing import Any

from camera.evidence.records import MANIFEST, LostReason
from camera.evidence.verify.findings import show
from camera.evidence.verify.rules import (
    HEAD,
    LIST,
    SECONDS,
    STOP,
    TRIGGER,
    Rule,
    check_fields,
    valid,
)

#: Device times in the manifest are rounded to microseconds.
ROUNDED = 1e-6


def _number(v: Any) -> bool:
    return (type(v) is int) or (type(v) is float and math.isfinite(v))


def _or_null(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.ok(v), f"{rule.wanted} or null")


UTC = _or_null(Rule(lambda v: isinstance(v, str) and v != "", "a UTC time"))
LAT = Rule(lambda v: _number(v) and -90 <= v <= 90, "a latitude (-90 to 90 degrees)")
LON = Rule(lambda v: _number(v) and -180 <= v <= 180, "a longitude (-180 to 180 degrees)")
SPEED = _or_null(Rule(lambda v: _number(v) and v >= 0, "metres per second (>= 0)"))
COURSE = _or_null(Rule(lambda v: _number(v) and 0 <= v <= 360, "degrees (0 to 360)"))
WHOLE = _or_null(Rule(lambda v: type(v) is int and v >= 0, "a whole number >= 0"))
HDOP = _or_null(Rule(lambda v: _number(v) and v >= 0, "a number >= 0"))
OFFSET = _or_null(Rule(_number, "seconds (a number)"))
LOST = Rule(
    lambda v: isinstance(v, str) and v in set(LostReason), " or ".join(map(repr, LostReason))
)

POINT: dict[str, Rule] = {
    "time": SECONDS,
    "utc": UTC,
    "lat": LAT,
    "lon": LON,
    "speed": SPEED,
    "course": COURSE,
    "quality": WHOLE,
    "satellites": WHOLE,
    "hdop": HDOP,
    "offset": OFFSET,
}
LOST_POINT: dict[str, Rule] = {"time": SECONDS, "utc": UTC, "lost": LOST}
POSITION: dict[str, Rule] = {
    "time": SECONDS,
    "age": SECONDS,
    "utc": UTC,
    "lat": LAT,
    "lon": LON,
    "speed": SPEED,
    "quality": WHOLE,
    "satellites": WHOLE,
}
#: What a lost point must not carry: anything a fix would say.
COORDINATES = tuple(k for k in POINT if k not in LOST_POINT)


def check_position(m: dict[str, Any], problems: list[str], shape_only: bool = False) -> None:
    """``trigger.position``: null, or a valid fix from at or before the trigger.

    ``shape_only``: its fields alone (what ``bodycam inspect`` needs to show it).
    """
    trigger = m.get("trigger")
    if not isinstance(trigger, dict) or "position" not in trigger:
        return
    position = trigger["position"]
    if position is None:
        return
    if not check_fields(position, POSITION, "trigger.position", problems) or shape_only:
        return
    t = valid(trigger, "time", TRIGGER)
    if t is None:
        return
    if position["time"] > t + ROUNDED:
        problems.append(
            f"{MANIFEST}: trigger.position.time is {show(position['time'])}, "
            f"after the trigger at {show(t)}"
        )
    elif abs(t - position["time"] - position["age"]) > 2 * ROUNDED:
        problems.append(
            f"{MANIFEST}: trigger.position.age is {show(position['age'])}, "
            f"trigger.time - trigger.position.time is {show(round(t - position['time'], 6))}"
        )


def check_track(
    m: dict[str, Any], problems: list[str], shape_only: bool = False
) -> list[dict[str, Any]]:
    """The ``track``'s entries, each as promised; returns those that passed.

    ``shape_only``: each entry's fields, not their order or span.
    """
    if "track" not in m:
        return []
    track = m["track"]
    if not LIST.ok(track):
        problems.append(f"{MANIFEST}: track is {show(track)}, expected a list")
        return []
    good: list[dict[str, Any]] = []
    for i, point in enumerate(track):
        where = f"track[{i}]"
        if isinstance(point, dict) and "lost" in point:
            carried = [k for k in COORDINATES if k in point]
            if carried:
                problems.append(
                    f"{MANIFEST}: {where} is lost but carries {', '.join(carried)}: "
                    "a lost point has no position"
                )
            elif check_fields(point, LOST_POINT, where, problems):
                good.append(point)
        elif check_fields(point, POINT, where, problems):
            good.append(point)
    if len(good) == len(track) and not shape_only:
        _check_times(m, good, problems)
    return good


def _check_times(m: dict[str, Any], track: list[dict[str, Any]], problems: list[str]) -> None:
    """Points in device-time order, within the recording (first frame to stop)."""
    for i in range(1, len(track)):
        if track[i]["time"] < track[i - 1]["time"]:
            problems.append(
                f"{MANIFEST}: track[{i}] at {show(track[i]['time'])} comes before "
                f"track[{i - 1}] at {show(track[i - 1]['time'])} (not in time order)"
            )
            return
    start = valid(m, "start_time", HEAD)
    stop = m.get("stop")
    end = valid(stop, "time", STOP) if isinstance(stop, dict) else None
    for i, point in enumerate(track):
        t = point["time"]
        if (start is not None and t < start - ROUNDED) or (end is not None and t > end + ROUNDED):
            problems.append(
                f"{MANIFEST}: track[{i}] at {show(t)} lies outside the recording "
                f"({show(start)} to {show(end)})"
            )
            return


def check_place(m: dict[str, Any], problems: list[str], shape_only: bool = False) -> None:
    """Both: the trigger's position and the track."""
    check_position(m, problems, shape_only)
    check_track(m, problems, shape_only)
