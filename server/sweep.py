"""The retention sweep (``bodycam server purge``): queue what expired, purge what waited.

Run daily (cron, a systemd timer). At ``now`` it, for each recording held here:

1. finishes a purge a crash cut short;
2. purges a queued recording whose restore window (7 days) has ended;
3. queues a recording whose category's date has passed (and whose COMPLIANCE
   lock, if it had one, has run out), unless it is held;
4. sends the object store any lock it lacks (a renewed COMPLIANCE window, a
   governance date, a legal hold set or lifted), see server.locks.

A purge deletes the recording's objects through ObjectStore.delete (with
the governance bypass: the purge is the deliberate, audited deletion that
GOVERNANCE leaves to a privileged user) and keeps the recording's row as a
tombstone: status ``purged``, when, and why; its files' names and sha256s,
its receipt and every audit entry stay. An object another held recording
still names is kept. Two steps, each audited: ``purging`` (from then on it
cannot be restored), then ``purged``. The second step holds the metadata's
write lock while it deletes, and an ingest checks its objects under that
lock (server.ingest), so a recording committed at the same moment never
names an object a purge just removed.

A store that refuses a deletion (``Locked``: a COMPLIANCE lock or a legal
hold the application did not expect) stops that recording's purge, audited
as ``purge_refused``; nothing else is forced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from camera.evidence.audit import format_utc
from server import audit
from server.datadir import Server
from server.lifecycle import queue_in
from server.locks import sync_hold, sync_lock
from server.meta import Meta, Recording
from server.objects import Locked, ObjectStore
from server.retention import Policy

__all__ = ["RETENTION_ACTOR", "SweepReport", "purge", "sweep"]

#: Who the audit log says queued or purged a recording whose time had come.
RETENTION_ACTOR = "retention"


@dataclass
class SweepReport:
    queued: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    locks_sent: int = 0
    #: Recordings whose category the config no longer names: kept, and said.
    unknown_category: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"QUEUED  {r}" for r in self.queued]
        out += [f"PURGED  {r}" for r in self.purged]
        out += [f"REFUSED {r}: {why}" for r, why in self.refused]
        out += [
            f"KEPT    {r}: its category is not in [retention.categories]; kept until it is"
            for r in self.unknown_category
        ]
        return out

    def summary(self) -> str:
        return (
            f"{len(self.queued)} queued, {len(self.purged)} purged, "
            f"{len(self.refused)} refused, {self.locks_sent} lock(s) sent to the store"
        )


def _store(server: Server) -> ObjectStore:
    if server.store is None:
        raise RuntimeError("open the data directory with objects=True to sweep")
    return server.store


def sweep(server: Server, now: datetime, actor: str = RETENTION_ACTOR) -> SweepReport:
    store = _store(server)
    policy = Policy.from_config(server.config.retention)
    meta = server.meta
    report = SweepReport()
    with meta.read() as conn:
        recs = [r for r in meta.all_recordings(conn) if r.status == "verified"]
        held = {h.recording for h in meta.active_holds(conn)}
    for rec in recs:
        if rec.purge_started_utc is not None:
            _purge_objects(server, store, rec, now, actor, report)
            continue
        if rec.id in held:
            pass
        elif rec.queued_utc is not None:
            restorable = policy.restorable_until(rec)
            assert restorable is not None
            if now >= restorable:
                purge(server, rec.id, now, actor, report)
                continue
        else:
            if not policy.known(rec.category or policy.new_category):
                report.unknown_category.append(rec.id)
            due = policy.deletable(rec)
            if due is not None and now >= due:
                rec = _queue_expired(meta, policy, rec, now, actor)
                if rec.queued_utc is not None:
                    report.queued.append(rec.id)
        report.locks_sent += sync_lock(meta, store, policy, rec, now)
        report.locks_sent += sync_hold(meta, store, rec, rec.id in held)
    return report


def _queue_expired(
    meta: Meta, policy: Policy, rec: Recording, now: datetime, actor: str
) -> Recording:
    days = policy.days(rec.category)
    reason = (
        f"retention expired: category {rec.category} keeps {days} days from "
        f"{rec.retention_from_utc or rec.received_utc}"
    )
    with meta.write() as conn:
        fresh = meta.recording(conn, rec.id)
        # Re-read under the lock: a hold, a restore or a category change may have come first.
        if fresh is None or fresh.status != "verified" or fresh.queued_utc is not None:
            return fresh or rec
        due = policy.deletable(fresh)
        if due is None or now < due or meta.active_holds(conn, rec.id):
            return fresh
        queue_in(meta, conn, fresh, reason=reason, actor=actor, now=now, policy=policy, early=False)
    return dataclasses.replace(fresh, queued_utc=format_utc(now), queue_reason=reason)


def purge(
    server: Server,
    recording_id: str,
    now: datetime,
    actor: str = RETENTION_ACTOR,
    report: SweepReport | None = None,
) -> SweepReport:
    """Purge one queued recording whose restore window has ended (the sweep's step 2)."""
    report = report if report is not None else SweepReport()
    store = _store(server)
    policy = Policy.from_config(server.config.retention)
    meta = server.meta
    with meta.write() as conn:
        rec = meta.recording(conn, recording_id)
        if rec is None or rec.status != "verified" or rec.queued_utc is None:
            return report
        if rec.purge_started_utc is None:
            restorable = policy.restorable_until(rec)
            assert restorable is not None
            why = None
            if meta.active_holds(conn, recording_id):
                why = "held: a held recording is never deleted"
            elif now < restorable:
                why = f"still restorable until {format_utc(restorable)}"
            elif (locked := policy.compliance_until(rec)) is not None and locked > now:
                why = f"its objects are under COMPLIANCE until {format_utc(locked)}"
            if why is not None:
                report.refused.append((recording_id, why))
                return report
            utc = format_utc(now)
            meta.update_recording(conn, recording_id, purge_started_utc=utc)
            audit.append(
                conn,
                utc=utc,
                actor=actor,
                action="purging",
                target=recording_id,
                detail={
                    "reason": rec.queue_reason,
                    "queued_utc": rec.queued_utc,
                    "objects": len(set(rec.files.values())),
                },
            )
            rec = dataclasses.replace(rec, purge_started_utc=utc)
    _purge_objects(server, store, rec, now, actor, report)
    return report


def _purge_objects(
    server: Server,
    store: ObjectStore,
    rec: Recording,
    now: datetime,
    actor: str,
    report: SweepReport,
) -> None:
    """Step two: delete what no other held recording names, then the tombstone."""
    meta = server.meta
    utc = format_utc(now)
    deleted: list[str] = []
    shared: dict[str, list[str]] = {}
    with meta.write() as conn:
        for sha in sorted(set(rec.files.values())):
            others = [
                o.id
                for o in meta.others_naming(conn, sha, rec.id)
                if o.status == "verified" and o.purge_started_utc is None
            ]
            if others:
                shared[sha] = others
                continue
            try:
                store.delete(sha, bypass_governance=True)
            except FileNotFoundError:
                pass  # deleted by an earlier attempt that a crash cut short
            except Locked as exc:
                _refused(meta, store, conn, rec, utc, actor, str(exc), deleted)
                report.refused.append((rec.id, str(exc)))
                break
            deleted.append(sha)
            meta.forget_object(conn, sha)
        else:
            meta.update_recording(
                conn, rec.id, status="purged", purged_utc=utc, purge_reason=rec.queue_reason
            )
            audit.append(
                conn,
                utc=utc,
                actor=actor,
                action="purged",
                target=rec.id,
                detail={
                    "reason": rec.queue_reason,
                    "objects_deleted": len(deleted),
                    "objects_kept_shared": shared,
                },
            )
            report.purged.append(rec.id)


def _refused(
    meta: Meta,
    store: ObjectStore,
    conn: Connection,
    rec: Recording,
    utc: str,
    actor: str,
    why: str,
    deleted: list[str],
) -> None:
    """The store refused: audited; if every object is still there, it can be restored again."""
    intact = not deleted and all(store.has(sha) for sha in set(rec.files.values()))
    if intact:
        meta.update_recording(conn, rec.id, purge_started_utc=None)
    audit.append(
        conn,
        utc=utc,
        actor=actor,
        action="purge_refused",
        target=rec.id,
        detail={"reason": why, "objects_deleted": len(deleted), "restorable": intact},
    )
