"""Telling the object store what protects a recording's objects, and remembering what it was told.

The application decides (server.retention); the store enforces it under the
application (S3 Object Lock) or keeps the application's record (the file
store). Decisions are committed first, with their audit entry; the store is
told after; the recording's ``lock_mode``/``lock_until``/``lock_hold`` record
what it was told, last. A crash between the two leaves the row saying less
than was decided, and the sweep (server.sweep) sends it again: a retention is
only ever extended, so sending one twice is harmless.

A legal hold is per object, and an object can belong to more than one
recording: it is lifted only when no other recording naming it is held.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from server.meta import Meta, Recording
from server.objects import ObjectStore
from server.retention import Lock, Policy

__all__ = ["apply_lock", "sync_hold", "sync_lock"]


def apply_lock(store: ObjectStore, shas: Iterable[str], lock: Lock) -> None:
    for sha in sorted(set(shas)):
        store.retain(sha, lock.until, lock.mode)


def sync_lock(
    meta: Meta, store: ObjectStore, policy: Policy, rec: Recording, now: datetime
) -> bool:
    """Send the lock the recording needs, if the store lacks it; True if one was sent."""
    lock = policy.needs_lock(rec, now)
    if lock is None:
        return False
    apply_lock(store, rec.files.values(), lock)
    with meta.write() as conn:
        meta.update_recording(conn, rec.id, lock_mode=lock.mode, lock_until=lock.until_utc)
    return True


def _held_elsewhere(meta: Meta, sha: str, recording_id: str) -> bool:
    with meta.read() as conn:
        return any(
            meta.active_holds(conn, other.id)
            for other in meta.others_naming(conn, sha, recording_id)
            if other.status == "verified"
        )


def sync_hold(meta: Meta, store: ObjectStore, rec: Recording, held: bool | None = None) -> bool:
    """Set or lift the store's legal hold to match the recording's holds; True if changed.

    ``held``: whether it has a hold, if the caller knows (the sweep asks once for all).
    """
    if held is None:
        with meta.read() as conn:
            held = bool(meta.active_holds(conn, rec.id))
    if held == rec.lock_hold:
        return False
    for sha in sorted(set(rec.files.values())):
        if held or not _held_elsewhere(meta, sha, rec.id):
            store.legal_hold(sha, held)
    with meta.write() as conn:
        meta.update_recording(conn, rec.id, lock_hold=held)
    return True
