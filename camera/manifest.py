"""The recording manifest (SPEC section 7): what a recording is, and proof of its bytes.

Written atomically (temp file, fsync, rename) so a reader never sees half a
manifest. Built from values the core already holds; no clock reads here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hal.storage import Storage

FORMAT = "bodycam-recording/1"
STOP_REASONS = ("button_hold", "console", "end_of_run", "storage_full", "power_loss")
MANIFEST = "manifest.json"
#: Segment files are named ``segment-NNNN.<ext>`` (and ``.tail`` after recovery).
SEGMENT_PREFIX = "segment-"


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """Canonical bytes: stable key order and float formatting, for byte-identical runs."""
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


def write_manifest(storage: Storage, directory: str, manifest: Mapping[str, Any]) -> None:
    storage.write_atomic(f"{directory}/{MANIFEST}", dumps(manifest))


ORDER = (
    "format",
    "device_id",
    "recording_id",
    "codec",
    "width",
    "height",
    "fps",
    "trigger",
    "pre_event_seconds",
    "pre_event_requested",
    "pre_event_dropped",
    "start_time",
    "end_time",
    "stop",
    "frames",
    "first_frame",
    "last_frame",
    "dropped_frames",
    "gaps",
    "markers",
    "wall_clock_steps",
    "segments",
    # Only in a manifest rebuilt after an interruption: what recovery did.
    "recovery",
)


def r6(x: float) -> float:
    """Times in manifests: microseconds are plenty, and stable across platforms."""
    return round(x, 6)


def build_manifest(
    head: Mapping[str, Any],
    segments: list[dict[str, Any]],
    stop: Mapping[str, Any],
    markers: list[dict[str, Any]],
    gaps: list[dict[str, Any]],
    wall_clock_steps: list[dict[str, Any]] | None = None,
    recovery: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest from a recording's head (known at start) and what was written.

    One function for a normal stop and for recovery after a power cut, so both
    produce the same shape from the same facts. ``recovery`` (what recovery
    did: journal lines skipped, bytes cut into tails, short segments) is only
    present in a recovered manifest.
    """
    first = segments[0] if segments else None
    last = segments[-1] if segments else None
    trigger_time = head["trigger"]["time"]
    start_time = first["start_time"] if first else trigger_time
    m = dict(head)
    m.setdefault("pre_event_dropped", None)  # journals from before the backlog bound
    m.update(
        pre_event_seconds=r6(trigger_time - start_time),
        start_time=r6(start_time),
        end_time=r6(last["end_time"]) if last else r6(start_time),
        stop=dict(stop),
        frames=sum(s["frames"] for s in segments),
        first_frame=first["first_frame"] if first else None,
        last_frame=last["last_frame"] if last else None,
        # Dropped by the firmware (writer backlog); frames the sensor never
        # delivered are in ``gaps`` with cause "camera" but were not dropped.
        dropped_frames=sum(g["frames"] for g in gaps if g.get("cause") != "camera"),
        gaps=[dict(g) for g in gaps],
        markers=[dict(x) for x in markers],
        # Wall-clock corrections during the recording: UTC stamps before and
        # after a step differ by it; device times (and frame order) do not.
        wall_clock_steps=[dict(x) for x in wall_clock_steps or []],
        segments=[dict(s) for s in segments],
    )
    if recovery is not None:
        m["recovery"] = dict(recovery)
    return {k: m[k] for k in ORDER if k in m}
