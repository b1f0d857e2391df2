"""A recording held in the evidence store, described as ``bodycam inspect`` describes one on a card.

The store keeps a recording as objects named by their sha256, not as a
directory, and what ``inspect`` adds from the disk (sizes, files not listed)
was settled at ingest, where every hash was checked. So the description is
built from the manifest alone, with inspect's own pieces in inspect's order
(:func:`camera.inspection.manifest_view.from_manifest` without its ``stat``
of the files): the same structure check, the same timeline (trigger, gaps,
clock steps, markers, stop and their wall times), place and signature check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.records import MANIFEST
from camera.evidence.verify.rules import check_manifest
from camera.evidence.verify.track import check_place
from camera.evidence.verify.trust import KeySet
from camera.inspection import timeline
from camera.inspection.manifest_view import structure_problems
from camera.inspection.model import Inspection, Status
from camera.inspection.signature import check_signature

__all__ = ["describe_manifest"]


def describe_manifest(label: str, m: Any, keys: KeySet) -> Inspection:
    """``m`` (a parsed manifest, perhaps damaged) as an Inspection; ``label`` is its path field."""
    problems = structure_problems(m)
    if problems:
        first = problems[0].removeprefix(MANIFEST)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Inspection(path=label, status=Status.UNREADABLE, error=f"{MANIFEST}{first}{more}")
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
    insp.signature = check_signature(m, keys, Path(label))
    check_manifest(m, insp.problems)
    check_place(m, insp.problems)
    return insp
