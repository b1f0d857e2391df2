"""``bodycam inspect``: what a recording is, what happened in it, and what is on disk now.

A quick look for a person at a bench (or a script), not a check: it reads the
manifest (or, for an interrupted recording, the journal), ``stat``s the
files and checks the manifest's signature with the key beside the
recordings. It reads no video; ``bodycam verify`` does (hashes, decoding,
continuity, in-stream signatures), and the output says so. Nothing is changed.

Per recording: id and path; device, video and audio; the trigger (source,
detail, device and wall time, and its position) and pre-event; the track
(points with a fix, points lost, and the GPS-versus-device clock offset);
every frame lost, by cause (the manifest's ``dropped_frames`` counts only
what the firmware dropped, so a camera gap is counted here separately);
clock steps, markers and the stop with device and wall times; each segment
on disk against the manifest's size, and files it does not list; whether it
was interrupted (and the ``bodycam recover`` command) or recovered (and what
recovery did); and the manifest signature. Wall times other than the
trigger's are derived: see :mod:`camera.inspection.wallclock`.

``--json`` prints one JSON list, one object per recording, every object with
every key below (null where a recording does not say; an ``unreadable`` one
has only ``path``, ``status``, ``error`` set). Times are device seconds,
wall times UTC strings as the firmware writes them, sizes bytes:

- ``path`` (as given), ``status``: ``complete`` | ``recovered`` |
  ``interrupted`` | ``unreadable``; ``error``: the one line saying why an
  unreadable one is; ``recover_command``: ``bodycam recover PATH`` for an
  interrupted one.
- ``recording_id``, ``device_id``, ``codec``, ``encoder``, ``width``,
  ``height``, ``fps``; ``audio``: {``codec``, ``rate``, ``channels``} or null.
- ``trigger``: {``source``, ``detail``, ``time``, ``wall_time``};
  ``pre_event_seconds``.
- ``position``: the trigger's, {``time``, ``age``, ``utc``, ``lat``, ``lon``,
  ``satellites``} (null: no valid fix before it, or a recording from before
  GPS); ``track``: {``points``, ``fixes``, ``lost``, ``lost_by_reason``
  {reason: points}, ``lost_seconds`` (whole device seconds with a lost point
  and no fix), ``first_time``, ``last_time``, ``offset`` (GPS UTC minus the
  device clock at the last point that says it)}, null for a recording from
  before GPS.
- ``start_time``, ``end_time``, ``duration`` (first frame to the end of the
  last), ``frames``, ``first_frame``, ``last_frame``.
- ``stop``: {``reason``, ``time``, ``wall_time``} (null: interrupted before one).
- ``lost_frames`` (every missing frame), ``lost_by_cause`` {cause: frames},
  ``dropped_frames`` (the firmware's share, as in the manifest),
  ``pre_event_dropped`` (oldest pre-event frames given up, not in the recording).
- ``gaps``: [{``cause``, ``frames``, ``first_frame``, ``start``, ``end``,
  ``wall_time``}]; ``wall_clock_steps``: [{``time``, ``seconds``,
  ``source`` (null in recordings of older firmware), ``wall_before``,
  ``wall_after``}]; ``markers``: [{``source``, ``detail``,
  ``time``, ``wall_time``}].
- ``disk``: {``listed_bytes``, ``on_disk_bytes``, ``segments``: [{``file``,
  ``listed_bytes``, ``on_disk_bytes``, ``state``}], ``extra_files``:
  [{``file``, ``bytes``}]}; ``state`` is ``ok``, ``missing``,
  ``size_differs``, ``not_a_file``, ``unreadable``, ``refused`` (named outside
  the recording), or for an interrupted recording ``past_last_sync`` and
  ``never_synced``. An interrupted recording's sizes are the journal's.
- ``recovery``: the manifest's ``recovery`` object, as it is (null if none).
- ``signature``: {``status``: ``good`` | ``bad`` | ``unsigned`` | ``no_key``,
  ``detail``, ``key`` (the file checked with), ``key_id``, ``test_key``,
  ``trusted`` (always false: the key beside the recordings is on the same
  card)}; null for an interrupted recording (no manifest to sign).
- ``problems``: lines where the manifest does not add up, or journal lines
  that could not be read.
"""

from __future__ import annotations

import os
from pathlib import Path

from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify.files import Unreadable, load_manifest
from camera.evidence.verify.trust import KeySet
from camera.inspection.journal_view import from_journal
from camera.inspection.manifest_view import from_manifest, structure_problems
from camera.inspection.model import Inspection, Status
from camera.inspection.text import render

__all__ = ["Inspection", "Status", "inspect_recording", "render"]


def _unreadable(directory: Path, error: str) -> Inspection:
    return Inspection(path=str(directory), status=Status.UNREADABLE, error=error)


def inspect_recording(directory: Path, keys: KeySet) -> Inspection:
    """Describe one recording directory; ``keys`` are those beside it. Never raises on
    what is in the directory: what cannot be read is an ``unreadable`` inspection."""
    if not os.path.lexists(directory / MANIFEST):
        if os.path.lexists(directory / JOURNAL):
            return from_journal(directory)
        return _unreadable(
            directory,
            f"{directory}: no {MANIFEST} and no {JOURNAL}: segment files with nothing to "
            "describe them by",
        )
    try:
        m = load_manifest(directory)
    except Unreadable as exc:
        return _unreadable(directory, f"{directory / MANIFEST} {exc}")
    problems = structure_problems(m)
    if problems:
        first = problems[0].removeprefix(MANIFEST)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _unreadable(directory, f"{directory / MANIFEST}{first}{more}")
    return from_manifest(directory, m, keys)
