"""What an administrator does to a held recording: categorize, hold, release, queue early, restore.

Each action names who did it and why, and is one audited transaction: the
change and its audit entry commit together or not at all. The object store
is told after (server.locks), so a decision is on the record before any
lock that cannot be undone (COMPLIANCE) is set.

What is refused, and why (one line each, exit 2 at the command line):

- anything on a recording that is not held here as verified (unknown,
  rejected), or whose purge has begun, or that was purged (its tombstone
  stays, unchanged);
- an early purge of a recording whose category is "until released", or
  that is held, or whose objects are under a COMPLIANCE lock still running
  (the store would refuse it too; it is refused here first);
- a restore of a recording that is not queued.

A hold on a queued recording takes it off the queue, and so does a category
change (the new category's date decides again at the next sweep).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, update

from camera.errors import InputError
from camera.evidence.audit import format_utc
from server import audit
from server.datadir import Server
from server.locks import sync_hold, sync_lock
from server.meta import Meta, Recording, holds
from server.objects import ObjectStore
from server.retention import Policy

__all__ = [
    "Done",
    "check_text",
    "parse_now",
    "place_hold",
    "queue_early",
    "queue_in",
    "release_hold",
    "restore",
    "set_category",
    "verified_recording",
]

_DEQUEUE = {"queued_utc": None, "queue_reason": None, "queue_actor": None}


@dataclass(frozen=True)
class Done:
    """What an action did, as the command line says it."""

    recording: str
    line: str
    changed: bool = True


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO 8601 time with its zone (Z or +HH:MM); the clock's time if None."""
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InputError(
            f"--now {text!r}: expected an ISO 8601 time with its zone, e.g. 2026-03-01T00:00:00Z"
        )
    return when.astimezone(UTC)


def check_text(what: str, text: str, limit: int = 1000) -> str:
    """A reason, an actor or a case id: one line, not empty."""
    text = " ".join(str(text).split())
    if not text:
        raise InputError(f"{what}: expected some text (it goes into the audit log)")
    if len(text) > limit:
        raise InputError(f"{what}: expected at most {limit} characters, got {len(text)}")
    return text


def verified_recording(meta: Meta, conn: Connection, recording_id: str) -> Recording:
    """The recording as held here, verified and not being purged; InputError otherwise."""
    rec = meta.recording(conn, recording_id)
    if rec is None:
        raise InputError(f"recording {recording_id}: not held here (`bodycam server list`)")
    if rec.status == "purged":
        raise InputError(
            f"recording {recording_id}: purged {rec.purged_utc} ({rec.purge_reason}); "
            "only its record remains"
        )
    if rec.status != "verified":
        raise InputError(f"recording {recording_id}: {rec.status}, not held as evidence here")
    if rec.purge_started_utc is not None:
        raise InputError(
            f"recording {recording_id}: its purge began {rec.purge_started_utc}; "
            "it can no longer be changed"
        )
    return rec


def _policy(server: Server) -> Policy:
    return Policy.from_config(server.config.retention)


def _store(server: Server) -> ObjectStore:
    if server.store is None:
        raise RuntimeError("open the data directory with objects=True for this action")
    return server.store


def _locked_until(policy: Policy, rec: Recording) -> str:
    days = policy.days(rec.category)
    if days is None:
        return "kept until released"
    expires = policy.expires(rec)
    assert expires is not None
    return f"retained {days} days, to {format_utc(expires)}"


def set_category(
    server: Server,
    recording_id: str,
    category: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Done:
    """Assign a category (audited); the store's lock follows (COMPLIANCE is never shortened)."""
    store = _store(server)
    policy = _policy(server)
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    if not policy.known(category):
        raise InputError(
            f"category {category!r}: expected one of {', '.join(sorted(policy.categories))} "
            "(server.toml [retention.categories])"
        )
    meta = server.meta
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        old = rec.category
        if old == category:
            return Done(recording_id, f"recording {recording_id}: already {category}", False)
        dequeued = rec.queued_utc is not None
        meta.update_recording(
            conn, recording_id, category=category, **(_DEQUEUE if dequeued else {})
        )
        rec = dataclasses.replace(rec, category=category, **(_DEQUEUE if dequeued else {}))
        detail: dict[str, object] = {"from": old, "to": category, "reason": reason}
        if dequeued:
            detail["dequeued"] = True
        audit.append(
            conn,
            utc=format_utc(now),
            actor=actor,
            action="category",
            target=recording_id,
            detail=detail,
        )
    sync_lock(meta, store, policy, rec, now)
    line = f"recording {recording_id}: category {old} -> {category} ({_locked_until(policy, rec)})"
    if dequeued:
        line += "; taken off the deletion queue"
    locked = policy.compliance_until(rec)
    if policy.days(category) is not None and locked is not None and locked > now:
        line += (
            f"; its objects stay under COMPLIANCE until {format_utc(locked)} (it cannot be "
            "shortened), so it is not deleted before then"
        )
    return Done(recording_id, line)


def place_hold(
    server: Server,
    recording_id: str,
    case_id: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Done:
    """A legal hold for a case: never queued or purged while any hold stands."""
    store = _store(server)
    case_id = check_text("--case", case_id, 128)
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    meta = server.meta
    utc = format_utc(now)
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        if any(h.case_id == case_id for h in meta.active_holds(conn, recording_id)):
            return Done(
                recording_id, f"recording {recording_id}: already held for case {case_id}", False
            )
        dequeued = rec.queued_utc is not None
        if dequeued:
            meta.update_recording(conn, recording_id, **_DEQUEUE)
        conn.execute(
            holds.insert().values(
                recording=recording_id, case_id=case_id, reason=reason, actor=actor, placed_utc=utc
            )
        )
        detail: dict[str, object] = {"case": case_id, "reason": reason}
        if dequeued:
            detail["dequeued"] = True
        audit.append(conn, utc=utc, actor=actor, action="hold", target=recording_id, detail=detail)
    sync_hold(meta, store, rec)
    more = "; taken off the deletion queue" if dequeued else ""
    return Done(recording_id, f"recording {recording_id}: held for case {case_id}{more}")


def release_hold(
    server: Server,
    recording_id: str,
    case_id: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Done:
    """Release one case's hold; the store's legal hold goes with the last one."""
    store = _store(server)
    case_id = check_text("--case", case_id, 128)
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    meta = server.meta
    utc = format_utc(now)
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        active = meta.active_holds(conn, recording_id)
        mine = [h for h in active if h.case_id == case_id]
        if not mine:
            cases = ", ".join(h.case_id for h in active) or "none"
            raise InputError(
                f"recording {recording_id}: no hold for case {case_id} (held for: {cases})"
            )
        conn.execute(
            update(holds)
            .where(holds.c.id.in_([h.id for h in mine]))
            .values(released_utc=utc, released_by=actor, release_reason=reason)
        )
        left = [h.case_id for h in active if h.case_id != case_id]
        audit.append(
            conn,
            utc=utc,
            actor=actor,
            action="release",
            target=recording_id,
            detail={"case": case_id, "reason": reason, "still_held_for": left},
        )
    sync_hold(meta, store, rec)
    still = f"; still held for {', '.join(left)}" if left else "; no hold left"
    return Done(recording_id, f"recording {recording_id}: hold for case {case_id} released{still}")


def queue_early(
    server: Server,
    recording_id: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Done:
    """An administrator's early purge of a timed-category recording: queued, restorable."""
    policy = _policy(server)
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    meta = server.meta
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        if rec.queued_utc is not None:
            return Done(
                recording_id, f"recording {recording_id}: already queued {rec.queued_utc}", False
            )
        active = meta.active_holds(conn, recording_id)
        if active:
            raise InputError(
                f"recording {recording_id}: held for case {', '.join(h.case_id for h in active)}; "
                "a held recording is never deleted"
            )
        if policy.days(rec.category) is None:
            raise InputError(
                f"recording {recording_id}: category {rec.category} is kept until released; "
                "change its category first (`bodycam server category`)"
            )
        locked = policy.compliance_until(rec)
        if locked is not None and locked > now:
            raise InputError(
                f"recording {recording_id}: its objects are under COMPLIANCE until "
                f"{format_utc(locked)}; nobody can delete them before then"
            )
        queue_in(meta, conn, rec, reason=reason, actor=actor, now=now, policy=policy, early=True)
    restorable = policy.restorable_until(_queued(rec, now))
    assert restorable is not None
    until = format_utc(restorable)
    return Done(
        recording_id,
        f"recording {recording_id}: queued for deletion; restorable until {until} "
        f"(`bodycam server restore`), purged by the first sweep after that",
    )


def _queued(rec: Recording, now: datetime) -> Recording:
    return dataclasses.replace(rec, queued_utc=format_utc(now))


def queue_in(
    meta: Meta,
    conn: Connection,
    rec: Recording,
    *,
    reason: str,
    actor: str,
    now: datetime,
    policy: Policy,
    early: bool,
) -> None:
    """Queue inside the caller's transaction (shared with the sweep)."""
    utc = format_utc(now)
    meta.update_recording(conn, rec.id, queued_utc=utc, queue_reason=reason, queue_actor=actor)
    restorable = policy.restorable_until(_queued(rec, now))
    assert restorable is not None
    audit.append(
        conn,
        utc=utc,
        actor=actor,
        action="queued",
        target=rec.id,
        detail={
            "reason": reason,
            "category": rec.category,
            "early": early,
            "restorable_until": format_utc(restorable),
        },
    )


def restore(
    server: Server,
    recording_id: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Done:
    """Take a queued recording off the queue; its category's days count again from now."""
    store = _store(server)
    policy = _policy(server)
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    meta = server.meta
    utc = format_utc(now)
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        if rec.queued_utc is None:
            raise InputError(
                f"recording {recording_id}: not queued for deletion; nothing to restore"
            )
        meta.update_recording(conn, recording_id, retention_from_utc=utc, **_DEQUEUE)
        audit.append(
            conn,
            utc=utc,
            actor=actor,
            action="restored",
            target=recording_id,
            detail={
                "reason": reason,
                "queued_utc": rec.queued_utc,
                "queue_reason": rec.queue_reason,
            },
        )
        rec = dataclasses.replace(rec, retention_from_utc=utc, **_DEQUEUE)
    sync_lock(meta, store, policy, rec, now)
    return Done(recording_id, f"recording {recording_id}: restored ({_locked_until(policy, rec)})")
