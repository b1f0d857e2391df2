"""The timeline under the video: what happened in the recording, where, as the page draws it.

Every moment comes from :class:`camera.inspection.model.Inspection` (what
``bodycam inspect`` prints: the trigger, gaps, clock steps, markers, the
stop, each with its wall time), so the page and the command cannot say
different things. Times are device seconds; the page turns them into video
time by subtracting ``start`` (see :mod:`.playlist`). A gap's cause is shown
by what lost the frames: the camera (``camera``), the encoder
(``encoder_backlog``) or the storage (``writer_backlog``).
"""

from __future__ import annotations

from typing import Any

from camera.inspection.model import Inspection
from camera.inspection.wallclock import parse_utc

__all__ = ["GAP_KIND", "build_timeline"]

#: A gap's cause as the page names it.
GAP_KIND = {"camera": "camera", "encoder_backlog": "encoder", "writer_backlog": "storage"}


def _ms(utc: str | None) -> int | None:
    moment = parse_utc(utc) if utc else None
    return None if moment is None else round(moment.timestamp() * 1000)


def build_timeline(insp: Inspection, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The page's timeline (JSON), or None for a recording with nothing to place on one."""
    if insp.start_time is None or insp.duration is None or insp.trigger is None:
        return None
    start = float(insp.start_time)
    end = start + float(insp.duration)
    trigger = insp.trigger
    moments: list[dict[str, Any]] = [
        {
            "kind": "trigger",
            "id": "trigger",
            "time": trigger.time,
            "label": f"trigger: {trigger.source}"
            + (f" ({trigger.detail})" if trigger.detail else ""),
            "wall": trigger.wall_time,
        }
    ]
    for i, mk in enumerate(insp.markers or []):
        detail = f" ({mk.detail})" if mk.detail else ""
        moments.append(
            {
                "kind": "marker",
                "id": f"marker-{i}",
                "time": mk.time,
                "label": f"marker: {mk.source}{detail}",
                "wall": mk.wall_time,
            }
        )
    for i, st in enumerate(insp.wall_clock_steps or []):
        moments.append(
            {
                "kind": "step",
                "id": f"step-{i}",
                "time": st.time,
                "label": f"clock step {st.seconds:+.3f} s"
                + (f" ({st.source})" if st.source else ""),
                "wall": st.wall_after,
            }
        )
    if insp.stop is not None:
        moments.append(
            {
                "kind": "stop",
                "id": "stop",
                "time": insp.stop.time,
                "label": f"stop: {insp.stop.reason}",
                "wall": insp.stop.wall_time,
            }
        )
    spans: list[dict[str, Any]] = []
    if trigger.time > start:
        spans.append(
            {
                "kind": "pre-event",
                "cause": None,
                "id": "pre-event",
                "start": start,
                "end": min(trigger.time, end),
                "label": f"pre-event {min(trigger.time, end) - start:.1f} s",
                "wall": None,
            }
        )
    for i, g in enumerate(insp.gaps or []):
        kind = GAP_KIND.get(g.cause, g.cause)
        spans.append(
            {
                "kind": "gap",
                "cause": kind,
                "id": f"gap-{i}",
                "start": g.start,
                "end": g.end,
                "label": f"gap ({kind}): {g.frames} frames lost",
                "wall": g.wall_time,
            }
        )
    moments.sort(key=lambda x: x["time"])
    return {
        "start": start,
        "end": end,
        "moments": moments,
        "spans": spans,
        # The device's wall clock, for the time under the playhead (camera.inspection.wallclock).
        "clock": {
            "anchor_time": trigger.time,
            "anchor_ms": _ms(trigger.wall_time),
            "steps": [[s["time"], s["seconds"]] for s in steps],
        },
    }
