"""``bodycam server list``: every recording the store has a record of, and where it stands.

One row per recording: verified (and so kept), queued for deletion (and
until when it can be restored), being purged, purged (the tombstone, with
its reason), or rejected; its category, its holds, and the date the
category keeps it to (or "until released"), with the lock the store holds.
"""

from __future__ import annotations

from typing import Any

from camera.evidence.audit import format_utc
from server.datadir import Server
from server.meta import Recording
from server.retention import Policy

__all__ = ["format_table", "list_recordings"]


def _status(rec: Recording) -> str:
    if rec.status != "verified":
        return str(rec.status)
    if rec.purge_started_utc is not None:
        return "purging"
    return "queued" if rec.queued_utc is not None else "kept"


def list_recordings(server: Server) -> list[dict[str, Any]]:
    policy = Policy.from_config(server.config.retention)
    meta = server.meta
    with meta.read() as conn:
        recs = meta.all_recordings(conn)
        held: dict[str, list[str]] = {}
        for h in meta.active_holds(conn):
            held.setdefault(h.recording, []).append(h.case_id)
    rows = []
    for rec in recs:
        row: dict[str, Any] = {
            "recording": rec.id,
            "device": rec.device,
            "status": _status(rec),
            "category": rec.category,
            "holds": held.get(rec.id, []),
            "received_utc": rec.received_utc,
            "retained_until": None,
            "deletable_utc": None,
            "restorable_until": None,
            "lock": {"mode": rec.lock_mode, "until": rec.lock_until, "legal_hold": rec.lock_hold},
        }
        if rec.status == "verified":
            expires = policy.expires(rec)
            row["retained_until"] = "until released" if expires is None else format_utc(expires)
            deletable = policy.deletable(rec)
            row["deletable_utc"] = format_utc(deletable) if deletable else None
            restorable = policy.restorable_until(rec)
            row["restorable_until"] = format_utc(restorable) if restorable else None
        if rec.status == "purged":
            row["purged_utc"] = rec.purged_utc
            row["purge_reason"] = rec.purge_reason
        rows.append(row)
    return rows


def _when(row: dict[str, Any]) -> str:
    if row["status"] == "purged":
        return f"purged {row['purged_utc']}: {row['purge_reason']}"
    if row["status"] == "queued":
        return f"queued; restorable until {row['restorable_until']}"
    if row["status"] in ("rejected", "purging"):
        return ""
    if row["holds"]:
        return "held"
    until = row["retained_until"]
    lock = row["lock"]
    if lock["mode"] == "compliance" and lock["until"] and until != "until released":
        return f"{until} (compliance lock to {lock['until']})"
    return str(until)


def format_table(rows: list[dict[str, Any]]) -> list[str]:
    """Aligned text lines: RECORDING STATUS CATEGORY HOLDS RETENTION."""
    head = ("RECORDING", "STATUS", "CATEGORY", "HOLDS", "RETENTION")
    table = [head] + [
        (
            r["recording"],
            r["status"],
            r["category"] or "-",
            ",".join(r["holds"]) or "-",
            _when(r) or "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(head) - 1)]
    widths.append(0)  # the last column is not padded
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
