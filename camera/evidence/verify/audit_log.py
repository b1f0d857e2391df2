"""The audit log against the recordings on the card (SPEC 12).

:func:`camera.evidence.audit.verify_audit` says whether the log is what the
device wrote (hash chain, sequence, signed checkpoints). This module says
whether the card still holds what the log says the device wrote: every
recording a ``stop`` or ``recovery`` entry names must be there with the
manifest the entry hashed, and every recording on the card must be named by
one. Deleting the newest recording leaves no gap in the chain of manifests;
it leaves a ``stop`` entry naming a recording that is gone. A recording
offloaded and deleted is gone too, and accounted for by its receipt
(:mod:`.offloaded`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.audit import AUDIT, verify_audit
from camera.evidence.verify.chain import OnCard
from camera.evidence.verify.findings import show, show_name
from camera.evidence.verify.offloaded import Offloaded
from camera.evidence.verify.rules import SHA256, TEXT

#: The events that vouch for a recording's manifest, and how to say when.
VOUCHING = {"stop": "stopped", "recovery": "recovered"}


@dataclass(frozen=True)
class Vouch:
    """The last entry naming a recording: its line, event, UTC and manifest sha256."""

    line: int
    event: str
    utc: Any
    manifest_sha256: str


def vouching_entries(path: Path) -> dict[str, Vouch]:
    """Recording id -> the last stop/recovery entry naming it (OSError if unreadable).

    The last one, because a recording recovered twice (power cut during
    recovery) is described by the newer entry. Lines that are not entries
    are verify_audit's to report.
    """
    out: dict[str, Vouch] = {}
    for n, line in enumerate(path.read_bytes().split(b"\n"), 1):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(entry, dict) or entry.get("event") not in VOUCHING:
            continue
        rec, digest = entry.get("recording_id"), entry.get("manifest_sha256")
        if TEXT.ok(rec) and SHA256.ok(digest):
            out[rec] = Vouch(n, entry["event"], entry.get("utc"), digest)
    return out


def check_audit_log(
    storage: Path,
    card: dict[str, OnCard],
    keys: dict[str, ec.EllipticCurvePublicKey],
    offloaded: Mapping[str, Offloaded] | None = None,
) -> tuple[list[str], list[str]]:
    """(problems, notes): the log's own integrity, then the log against the card.

    ``offloaded``: recordings gone from the card that a receipt and the log's
    ``offloaded``/``deleted`` entries vouch for; not missing, if the receipt
    names the manifest the log recorded.
    """
    offloaded = offloaded or {}
    path = storage / AUDIT
    if not path.exists():
        if any(rec.signed for rec in card.values()):
            return [
                f"{AUDIT}: audit log missing (the device keeps one beside signed recordings)"
            ], []
        return [], []
    problems: list[str] = []
    if not keys:
        problems.append(f"{AUDIT}: no public key to check its checkpoints (pass --key)")
    report = verify_audit(path, list(keys.values()))
    problems += [p for p in report.problems if keys or "signed by another key" not in p]
    try:
        vouched = vouching_entries(path)
    except OSError:
        return problems, report.notes  # verify_audit has said it cannot be read
    for rec_id, v in vouched.items():
        where = f"{AUDIT} line {v.line}: recording {show_name(rec_id)} {VOUCHING[v.event]} at "
        where += show_name(v.utc) if isinstance(v.utc, str) else show(v.utc)
        rec = card.get(rec_id)
        gone = offloaded.get(rec_id) if rec is None else None
        if gone is not None:
            if gone.manifest_sha256 != v.manifest_sha256:
                problems.append(f"{where}: offloaded with another manifest than the one recorded")
        elif rec is None:
            problems.append(f"{where} is missing (deleted?)")
        elif rec.manifest_sha256 is None:
            problems.append(f"{where}: its manifest is missing or unreadable")
        elif rec.manifest_sha256 != v.manifest_sha256:
            problems.append(f"{where}: manifest differs from the one the audit log recorded")
    for rec in card.values():
        if rec.manifest is not None and rec.name not in vouched:
            problems.append(
                f"{show_name(rec.name)}: not in the audit log (no stop or recovery entry names it)"
            )
    return problems, report.notes
