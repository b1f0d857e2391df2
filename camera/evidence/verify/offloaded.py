"""Recordings that left the card through an offload: what vouches for them (issue 16).

After an offload the camera deletes a recording, but the chain of manifests
(the next recording's ``previous``) and the audit log (its ``stop`` entry)
still name it. A recording that is gone is accounted for only when all of
these agree:

- ``receipts/<id>.json`` holds the server's receipt for it, naming the
  manifest sha256 the chain and the audit log name (in its ``files`` too);
- the audit log has the ``offloaded`` entry naming that receipt's sha256 and
  the ``deleted`` entry for the recording;
- the receipt's server signature checks out, when the server's public key
  is among the keys verify was given (``--key SERVER.pub.pem``) or found
  beside the storage (``server.pub.pem``: like any key found there, not
  independently trusted). Without it verify says the recording is "vouched
  for by receipt <sha>", and that the signature was not checked.

Anything else missing is still a missing recording.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.audit import AUDIT, read_audit
from camera.evidence.canonical import check_document
from camera.evidence.receipts import DELETED, OFFLOADED, RECEIPT_TYPE, RECEIPTS, read_receipt
from camera.evidence.records import MANIFEST
from camera.evidence.verify.findings import show_name
from camera.evidence.verify.rules import SHA256


@dataclass(frozen=True)
class Offloaded:
    """A recording the card no longer holds, and the receipt that vouches for it."""

    recording_id: str
    manifest_sha256: str
    receipt_sha256: str
    #: The receipt's server signature was checked against a key verify had.
    signature_checked: bool

    def vouched(self) -> str:
        """``vouched for by receipt 1a2b...`` (and whether its signature was checked)."""
        checked = "" if self.signature_checked else ", server signature not checked"
        return f"vouched for by receipt {self.receipt_sha256[:16]}...{checked}"


@dataclass
class OffloadEvidence:
    """Every receipt of a storage, sorted into what vouches for a gone recording and what fails."""

    offloaded: dict[str, Offloaded] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: There is a receipts directory (so the storage has offloaded before).
    present: bool = False


def _audit_entries(storage: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """recording id -> receipt sha256s of its ``offloaded`` entries, and of its ``deleted`` ones."""
    offloaded: dict[str, set[str]] = {}
    deleted: dict[str, set[str]] = {}
    try:
        entries = read_audit(storage / AUDIT)
    except OSError:
        return offloaded, deleted
    for e in entries:
        rec, sha = e.get("recording_id"), e.get("receipt_sha256")
        if not isinstance(rec, str) or not SHA256.ok(sha):
            continue
        if e["event"] == OFFLOADED:
            offloaded.setdefault(rec, set()).add(sha)
        elif e["event"] == DELETED:
            deleted.setdefault(rec, set()).add(sha)
    return offloaded, deleted


def _receipt_problem(receipt: Mapping[str, Any], rec_id: str) -> str | None:
    if receipt.get("type") != RECEIPT_TYPE:
        return f"is not a {RECEIPT_TYPE} receipt"
    if receipt.get("recording") != rec_id:
        return f"names recording {show_name(str(receipt.get('recording')))}, not {rec_id}"
    if receipt.get("status") != "verified":
        return "does not say the server verified the recording"
    digest, files = receipt.get("manifest_sha256"), receipt.get("files")
    if not SHA256.ok(digest):
        return "has no manifest_sha256"
    if not isinstance(files, Mapping) or files.get(MANIFEST) != digest:
        return f"does not name its manifest_sha256 as the {MANIFEST} among its files"
    return None


def offload_evidence(
    storage: Path, on_card: set[str], keys: Mapping[str, ec.EllipticCurvePublicKey]
) -> OffloadEvidence:
    """What vouches for the recordings gone from ``storage``; ``on_card`` are those still there.

    ``keys`` are every key verify has, by key id; a receipt's ``server_key_id``
    picks the server's among them. Never raises on content.
    """
    out = OffloadEvidence()
    folder = storage / RECEIPTS
    if not folder.is_dir():
        return out
    out.present = True
    offloaded, deleted = _audit_entries(storage)
    unchecked = 0
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        out.problems.append(f"{RECEIPTS}: cannot be listed: {exc.strerror or exc}")
        return out
    for name in names:
        rec_id = name.removesuffix(".json")
        if name.startswith(".") or not name.endswith(".json") or "." in rec_id:
            continue  # a temp file, or an older receipt kept beside the current one
        where = f"{RECEIPTS}/{show_name(name)}"
        stored = read_receipt(folder / name)
        if isinstance(stored, str):
            out.problems.append(f"{RECEIPTS}/{show_name(stored)}")
            continue
        receipt = stored.receipt
        if (why := _receipt_problem(receipt, rec_id)) is not None:
            out.problems.append(f"{where}: {why}")
            continue
        claimed = receipt.get("server_key_id")
        key = keys.get(claimed) if isinstance(claimed, str) else None
        if key is not None and (why := check_document(key, receipt)) is not None:
            out.problems.append(f"{where}: server {why}")
            continue
        if rec_id in on_card:
            continue  # still here (offloaded and kept): the recording speaks for itself
        sha = stored.sha256
        if sha not in offloaded.get(rec_id, set()) or sha not in deleted.get(rec_id, set()):
            out.problems.append(
                f"{where}: {rec_id} is gone, but the audit log has no offloaded and deleted "
                f"entries naming receipt {sha[:16]}..."
            )
            continue
        out.offloaded[rec_id] = Offloaded(rec_id, receipt["manifest_sha256"], sha, key is not None)
        unchecked += key is None
    if out.offloaded:
        checked = len(out.offloaded) - unchecked
        line = f"{len(out.offloaded)} recording(s) offloaded and deleted, vouched for by receipts"
        if unchecked:
            line += (
                f"; server signatures checked on {checked}, not on {unchecked} (no server key: "
                "pass --key SERVER.pub.pem or keep server.pub.pem beside the storage)"
            )
        else:
            line += "; every server signature checked"
        out.notes.append(line)
    return out
