"""An interrupted recording (a journal, no manifest) described from its journal, read only.

Recovery would cut the open segment back and write a manifest; inspect must
change nothing, so it says what the journal vouches for so far: the head,
the closed segments and the open one's last fsync'ed size, the gaps,
markers and clock steps. On disk the open segment may hold more than that
(bytes recovery keeps beside it as a tail), and a segment opened after the
last fsync is not in the journal at all; both are shown as such, not as
damage. Lines the journal could not read are listed, as recovery lists them.
The trigger's position and the track so far are the journal's too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL
from camera.inspection import timeline
from camera.inspection.disk import compare
from camera.inspection.model import Inspection, Status

#: Skipped journal lines listed one by one up to this many, then counted.
MAX_SKIPPED_SHOWN = 5


def recover_command(directory: Path) -> str:
    return f"bodycam recover {directory}"


def _segments(records: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], str | None]:
    """Each segment file's latest word (closed, else its last sync), in order; the open one."""
    latest: dict[str, dict[str, Any]] = {}
    closed: set[str] = set()
    for kind, payload in records:
        if kind == "segment":
            latest[payload["file"]] = payload
            closed.add(payload["file"])
        elif kind == "sync" and payload["file"] not in closed:
            latest[payload["file"]] = payload
    unclosed = [name for name in latest if name not in closed]
    return list(latest.values()), (unclosed[-1] if unclosed else None)


def _skipped(journal_path: Path, skipped: list[int], why: dict[int, str]) -> list[str]:
    lines = [f"{journal_path.name}: line {n} skipped: {why[n]}" for n in skipped]
    if len(lines) > MAX_SKIPPED_SHOWN:
        more = len(lines) - MAX_SKIPPED_SHOWN
        lines = [*lines[:MAX_SKIPPED_SHOWN], f"{journal_path.name}: {more} more lines skipped"]
    return lines


def from_journal(directory: Path) -> Inspection:
    """Describe an interrupted recording; unreadable if its journal has no head."""
    path = directory / JOURNAL
    journal = read_journal_lines(path)
    heads = journal.of("head")
    if not heads:
        which = (
            f" (unreadable lines: {', '.join(map(str, journal.skipped))})"
            if journal.skipped
            else ""
        )
        return Inspection(
            path=str(directory),
            status=Status.UNREADABLE,
            error=f"{path}: no readable head record{which}; an interrupted recording that "
            "cannot be described (or recovered)",
        )
    head = heads[0]
    insp = Inspection(
        path=str(directory),
        status=Status.INTERRUPTED,
        recover_command=recover_command(directory),
        problems=_skipped(path, journal.skipped, journal.why),
    )
    timeline.identity(insp, head)
    stops = journal.of("stop")
    timeline.moments(
        insp,
        head["trigger"],
        journal.of("wall_step"),
        journal.of("gap"),
        journal.of("marker"),
        stops[-1] if stops else None,
    )
    # A head from before GPS (no position in its trigger) has no track to speak of.
    track = [p.to_json() for p in journal.track()] if "position" in head["trigger"] else None
    timeline.place(insp, head["trigger"], track)
    segments, open_segment = _segments([(r.kind, r.payload) for r in journal.records])
    timeline.span(insp, segments)
    timeline.duration(insp)
    if insp.start_time is not None:
        insp.pre_event_seconds = round(head["trigger"]["time"] - insp.start_time, 6)
    insp.disk = compare(
        directory,
        [(s["file"], s["bytes"]) for s in segments],
        open_segment=open_segment,
        interrupted=True,
    )
    return insp
