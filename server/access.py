"""Reading evidence back out, on the record: every access is an audit entry.

A receipt fetched by a camera and a recording exported by an administrator
(``bodycam server export``) are both ``access`` entries: who, what, and (for
a person) why. The entry is committed before a byte is handed out, so an
access that happened is never missing from the log (one that then failed is
on it too, which says no more than that it was tried).

An export rebuilds the recording directory from its objects, checks each
file's sha256 on the way (a file store does not check what it reads back),
and verifies the copy with the code ``bodycam verify`` runs, against every
key ever enrolled for the device.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import Connection

from camera.errors import BodycamError, InputError
from camera.evidence.audit import format_utc
from camera.evidence.verify import verify_recording
from camera.evidence.verify.trust import KeySet
from server import audit
from server.datadir import Server
from server.lifecycle import check_text, verified_recording

__all__ = ["Exported", "StoreDamaged", "export_recording", "record_access"]

_CHUNK = 1 << 20


class StoreDamaged(BodycamError):
    """An object of a held recording is missing or is not its bytes (exit 1: a failed check)."""


def record_access(
    conn: Connection, *, utc: str, actor: str, recording: str, what: str, **detail: Any
) -> dict[str, Any]:
    """One ``access`` audit entry, in the caller's write transaction."""
    return audit.append(
        conn,
        utc=utc,
        actor=actor,
        action="access",
        target=recording,
        detail={"what": what, **detail},
    )


@dataclass(frozen=True)
class Exported:
    path: Path
    files: int
    bytes: int
    problems: list[str]


def _copy(source: Any, target: Path, sha256: str) -> int:
    h = hashlib.sha256()
    count = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with source, os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            h.update(chunk)
            count += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != sha256:
        raise StoreDamaged(
            f"{target.name}: the store returned bytes with sha256 {h.hexdigest()}, "
            f"not {sha256}: the stored object is damaged"
        )
    return count


def export_recording(
    server: Server,
    recording_id: str,
    out: str | os.PathLike[str],
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Exported:
    """Write ``OUT/<recording>/`` from the store (audited), then verify the copy."""
    if server.store is None:
        raise RuntimeError("open the data directory with objects=True to export")
    reason, actor = check_text("--reason", reason), check_text("--actor", actor, 128)
    target = Path(out) / recording_id
    if target.exists():
        raise InputError(f"{target}: already exists; choose another --out")
    meta = server.meta
    with meta.write() as conn:
        rec = verified_recording(meta, conn, recording_id)
        keys = meta.device_keys(conn, rec.device, active_only=False)
        record_access(
            conn,
            utc=format_utc(now),
            actor=actor,
            recording=recording_id,
            what="export",
            reason=reason,
            to=str(target.resolve()),
        )
    target.mkdir(parents=True)
    size = 0
    for name, sha in sorted(rec.files.items()):
        try:
            source = server.store.open(sha)
        except FileNotFoundError:
            raise StoreDamaged(
                f"{name}: its object {sha} is missing from the store (deleted outside the "
                "application?)"
            ) from None
        size += _copy(source, target / name, sha)
    trusted = KeySet(trusted=True)
    for key_id, pem in keys.items():
        trusted.keys[key_id] = load_pem_public_key(pem.encode())  # type: ignore[assignment]
    report = verify_recording(target, trusted)
    return Exported(target, len(rec.files), size, list(report.problems))
