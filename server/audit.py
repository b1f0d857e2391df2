"""The server's audit log: every action, hash-chained, so an edited or removed row shows.

Modelled on the camera's ``audit.jsonl`` (camera.evidence.audit): entries are
numbered from 0 without gaps, each names the hash of the one before
(``prev_hash``, :data:`GENESIS` for the first), and each row's ``hash`` is the
sha256 of the canonical JSON of all its other fields. Editing a row breaks its
own hash; re-hashing it breaks the next row's ``prev_hash``; removing one
breaks the numbering. Removing rows from the end is what a chain alone cannot
show, so :func:`verify_audit` also checks that the audit entry every receipt
names (``audit_seq``) is there and is that recording's ingest: a receipt the
camera holds is signed, and it pins the log's length at its time.

A chain alone does not stop someone who rewrites the whole table (every hash
recomputed from the edit on). So each entry is also signed by the server key
(``signature``: ECDSA over ``{"type", "seq", "hash"}``, like the camera's
signed checkpoints, but on every entry: one signature costs ~50 µs, nothing
beside an ingest). A rewrite then needs the server's private key, which
never leaves ``DIR/server.key``; :func:`verify_audit` checks each entry
against the server's public key.

Appends happen inside the caller's write transaction (server.meta.Meta.write),
so an entry and the change it records commit together or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, select

from camera.evidence.canonical import SIGNATURE, canonical, check_document, sign_document
from camera.evidence.keys import DeviceKey
from server.meta import SIGNER, Meta, audit, recordings

__all__ = ["GENESIS", "AuditReport", "append", "entry_hash", "sign_entry", "verify_audit"]

GENESIS = "0" * 64
FIELDS = ("seq", "prev_hash", "utc", "actor", "action", "target", "detail")
SIGNED_TYPE = "bodycam.server-audit/1"


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the entry's fields (all but ``hash``)."""
    return hashlib.sha256(canonical({k: entry[k] for k in FIELDS})).hexdigest()


def _signed_body(seq: int, hash_: str) -> dict[str, Any]:
    return {"type": SIGNED_TYPE, "seq": seq, "hash": hash_}


def sign_entry(key: DeviceKey, seq: int, hash_: str) -> str:
    """The server key's signature over an entry's seq and hash (base64 DER)."""
    return str(sign_document(key, _signed_body(seq, hash_))[SIGNATURE])


def append(
    conn: Connection, *, utc: str, actor: str, action: str, target: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """Add one entry after the last; the entry as stored (with ``seq``, ``hash``, ``signature``).

    Signed by the key of the :meth:`Meta.write` transaction ``conn`` belongs to.
    """
    last = conn.execute(
        select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (0, GENESIS) if last is None else (last.seq + 1, last.hash)
    entry: dict[str, Any] = {
        "seq": seq,
        "prev_hash": prev,
        "utc": utc,
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
    }
    entry["hash"] = entry_hash(entry)
    signer = conn.info.get(SIGNER)
    entry["signature"] = sign_entry(signer, seq, entry["hash"]) if signer is not None else None
    conn.execute(audit.insert().values(**entry))
    return entry


@dataclass
class AuditReport:
    problems: list[str]
    entries: int

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(
    rows: list[dict[str, Any]], problems: list[str], key: ec.EllipticCurvePublicKey | None
) -> None:
    expected, prev = 0, GENESIS
    for row in rows:
        seq = row["seq"]
        label = f"audit seq {seq}"
        if seq != expected:
            what = "entries removed from the start" if expected == 0 else "entry removed"
            problems.append(f"{label}: expected seq {expected} ({what})")
        if row["prev_hash"] != prev:
            problems.append(
                f"{label}: prev_hash does not match the entry before it (entry edited or removed)"
            )
        try:
            recomputed = entry_hash(row)
        except (ValueError, TypeError):
            recomputed = None
        if row["hash"] != recomputed:
            problems.append(f"{label}: hash does not match its fields (entry edited)")
        if key is not None:
            why = (
                "no server signature"
                if row.get("signature") is None
                else check_document(
                    key, {**_signed_body(seq, row["hash"]), SIGNATURE: row["signature"]}
                )
            )
            if why is not None:
                problems.append(
                    f"{label}: {why} by the server key (entry written or rewritten without it)"
                )
        expected, prev = seq + 1, row["hash"]


def _receipts_named(conn: Connection, rows: list[dict[str, Any]], problems: list[str]) -> None:
    by_seq = {row["seq"]: row for row in rows}
    query = select(recordings.c.id, recordings.c.receipt).where(
        recordings.c.status.in_(("verified", "purged"))  # a tombstone keeps its receipt
    )
    for rec in conn.execute(query):
        seq = (rec.receipt or {}).get("audit_seq")
        entry = by_seq.get(seq) if isinstance(seq, int) else None
        if entry is None:
            problems.append(
                f"recording {rec.id}: its receipt names audit seq {seq}, which is not in the "
                "audit log (entries removed)"
            )
        elif (entry["action"], entry["target"]) != ("ingest", rec.id):
            problems.append(
                f"recording {rec.id}: its receipt names audit seq {seq}, which records "
                f"{entry['action']} of {entry['target']} (entries replaced)"
            )


def verify_audit(meta: Meta, public_key: ec.EllipticCurvePublicKey | None = None) -> AuditReport:
    """Walk the whole log; every problem names the entry where it stops being what was written.

    Signatures are checked against ``public_key`` (default: the key ``meta``
    signs with; neither: not checked, for a schema opened without a key).
    """
    problems: list[str] = []
    if public_key is None and meta.signer is not None:
        public_key = meta.signer.public_key
    with meta.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(audit).order_by(audit.c.seq))]
        _walk(rows, problems, public_key)
        _receipts_named(conn, rows, problems)
    return AuditReport(problems, len(rows))
