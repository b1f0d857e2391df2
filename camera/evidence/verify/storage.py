"""What links the recordings of a storage directory: the chain and the audit log (SPEC 12).

Each recording can be perfect on its own while the card is not: a recording
deleted from the middle leaves its neighbours intact, and deleting the last
one leaves nothing behind in any manifest. These checks look at the storage
directory as a whole, and report as checks of their own (``chain``, ``audit
log``), beside the recordings' reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from camera.evidence.verify.audit_log import check_audit_log
from camera.evidence.verify.chain import check_chain, read_card
from camera.evidence.verify.findings import show
from camera.evidence.verify.offloaded import offload_evidence
from camera.evidence.verify.trust import KeySet

CHAIN = "chain"
AUDIT_LOG = "audit log"
RECEIPTS = "receipts"


@dataclass
class StorageReport:
    """One storage-level check of one storage directory."""

    path: Path
    check: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_storage(storage: Path, recordings: list[Path], keys: KeySet) -> list[StorageReport]:
    """The chain of ``recordings`` (all of the storage's) and the audit log beside them.

    A storage that has offloaded (it has ``receipts/``) gets a third check,
    ``receipts``: the receipts that vouch for recordings no longer on the card.
    Never raises: like verify_recording, an internal error is a finding.
    """
    chain = StorageReport(storage, CHAIN)
    audit = StorageReport(storage, AUDIT_LOG)
    receipts = StorageReport(storage, RECEIPTS)
    evidence = None
    try:
        card = read_card(recordings)
        evidence = offload_evidence(storage, set(card), keys.keys)
        receipts.problems, receipts.notes = evidence.problems, evidence.notes
        chain.problems, chain.notes = check_chain(card, evidence.offloaded)
        audit.problems, audit.notes = check_audit_log(storage, card, keys.keys, evidence.offloaded)
        keys.used.update(keys.keys)  # the audit log's checkpoints rely on all of them
    except Exception as exc:
        chain.problems.append(
            f"internal error while verifying: {type(exc).__name__}: {show(str(exc))}"
        )
    return [chain, audit] + ([receipts] if evidence is not None and evidence.present else [])
