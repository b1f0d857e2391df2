"""A recording described from its manifest, read as evidence that may be damaged.

The manifest is checked with verify's own rules before anything is shown:
every field inspect prints must be there and of its type, or the recording
is one line naming the file and the field (a description built on a
damaged field would be wrong in a way nobody sees). A manifest whose fields
are sound but do not add up (frames that are not the segments' sum, an
edited total) is described, with verify's finding beneath it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.records import MANIFEST
from camera.evidence.verify import rules
from camera.evidence.verify.findings import show
from camera.evidence.verify.recovery import RECOVERY, SHORT, TAIL
from camera.evidence.verify.rules import (
    HEAD,
    HEAD_OPTIONAL,
    LIST,
    MARKER,
    OBJECT,
    POSITIVE,
    SECONDS,
    SEGMENT,
    STOP,
    TEXT,
    TRIGGER,
    Rule,
    check_fields,
    check_list,
    check_manifest,
)
from camera.evidence.verify.track import check_place
from camera.evidence.verify.trust import KeySet
from camera.inspection import timeline
from camera.inspection.disk import compare
from camera.inspection.model import Inspection, Status
from camera.inspection.signature import check_signature

NUMBER: Rule = HEAD["pre_event_seconds"]  # any finite number
DETAIL = {"detail": Rule(lambda v: v is None or isinstance(v, str), "a string")}
#: Verify's gap rule (the frames it checks) and what inspect shows besides.
GAP = {**rules.GAP, "start": SECONDS, "end": SECONDS, "cause": TEXT}
WALL_STEP = {"time": SECONDS, "seconds": NUMBER}
#: What made a step ("gps", "ntp", "system"); steps of older firmware have none.
STEP_SOURCE = {"source": TEXT}
AUDIO = {"codec": TEXT}
AUDIO_OPTIONAL = {"rate": POSITIVE, "channels": POSITIVE}
#: Lists a manifest of older firmware may lack, and what each entry needs.
OPTIONAL_LISTS = (("gaps", GAP), ("wall_clock_steps", WALL_STEP))


def _present(obj: dict[str, Any], rules: dict[str, Rule]) -> dict[str, Rule]:
    return {k: r for k, r in rules.items() if k in obj}


def structure_problems(m: Any) -> list[str]:
    """Why the manifest cannot be described, one line each (empty: it can be)."""
    problems: list[str] = []
    if not isinstance(m, dict):
        return [f"{MANIFEST} is {show(m)}, expected an object"]
    check_fields(m, HEAD, "", problems)
    check_fields(m, _present(m, HEAD_OPTIONAL), "", problems)
    for key, entry in (("trigger", TRIGGER), ("stop", STOP)):
        if OBJECT.ok(m.get(key)):
            check_fields(m[key], entry, key, problems)
    if OBJECT.ok(m.get("trigger")):
        check_fields(m["trigger"], _present(m["trigger"], DETAIL), "trigger", problems)
    for i, marker in enumerate(check_list(m.get("markers"), MARKER, "markers", problems)):
        check_fields(marker, _present(marker, DETAIL), f"markers[{i}]", problems)
    check_list(m.get("segments"), SEGMENT, "segments", problems)
    for key, entry in OPTIONAL_LISTS:
        if key in m and not LIST.ok(m[key]):
            problems.append(f"{MANIFEST}: {key} is {show(m[key])}, expected a list")
        elif key in m:
            check_list(m[key], entry, key, problems)
    if LIST.ok(steps := m.get("wall_clock_steps")):
        for i, step in enumerate(steps):
            if isinstance(step, dict):
                where = f"wall_clock_steps[{i}]"
                check_fields(step, _present(step, STEP_SOURCE), where, problems)
    check_place(m, problems, shape_only=True)  # the trigger's position, the track's points
    audio = m.get("audio")
    if audio is not None and check_fields(audio, AUDIO, "audio", problems):
        check_fields(audio, _present(audio, AUDIO_OPTIONAL), "audio", problems)
    if "recovery" in m and check_fields(m["recovery"], RECOVERY, "recovery", problems):
        check_list(m["recovery"]["tails"], TAIL, "recovery.tails", problems)
        check_list(m["recovery"]["short_segments"], SHORT, "recovery.short_segments", problems)
    return problems


def describe(m: dict[str, Any], keys: KeySet, label: str, where: Path) -> Inspection:
    """Describe a recording from its manifest alone (passed :func:`structure_problems`).

    ``label`` is shown as its path, ``where`` names where its keys were looked
    for. The review page describes a stored recording with this, with no
    directory to look at; :func:`from_manifest` adds what is on disk.
    """
    recovery = m.get("recovery")
    insp = Inspection(
        path=label,
        status=Status.COMPLETE if recovery is None else Status.RECOVERED,
        pre_event_seconds=m["pre_event_seconds"],
        dropped_frames=m["dropped_frames"],
        recovery=recovery,
    )
    timeline.identity(insp, m)
    timeline.moments(
        insp,
        m["trigger"],
        m.get("wall_clock_steps", []),
        m.get("gaps", []),
        m["markers"],
        m["stop"],
    )
    timeline.place(insp, m["trigger"], m.get("track"))
    insp.frames, insp.first_frame, insp.last_frame = m["frames"], m["first_frame"], m["last_frame"]
    insp.start_time, insp.end_time = m["start_time"], m["end_time"]
    timeline.duration(insp)
    insp.signature = check_signature(m, keys, where)
    check_manifest(m, insp.problems)  # what does not add up (the fields are known sound)
    check_place(m, insp.problems)  # a track out of order, or beyond the recording
    return insp


def from_manifest(directory: Path, m: dict[str, Any], keys: KeySet) -> Inspection:
    """Describe a recording whose manifest passed :func:`structure_problems`, and its files."""
    insp = describe(m, keys, str(directory), directory.parent)
    recovery = m.get("recovery")
    tails = [t["file"] for t in recovery["tails"]] if recovery is not None else []
    insp.disk = compare(directory, [(s["file"], s["bytes"]) for s in m["segments"]], tails)
    return insp
