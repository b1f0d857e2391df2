"""End-of-shift offload: every closed recording to the evidence server, deleted only on a receipt.

The rule the products keep, and this keeps (issue 16): the camera lets go of
a recording only after the server has confirmed a complete, verified upload.
So for each closed recording, oldest first:

1. every file's sha256 is worked out on the camera, and each file the server
   does not already hold (``HEAD``) is sent (``PUT``): after a dropped
   connection or a killed process the next run sends only what is missing;
2. the recording is committed; the server verifies it and answers a receipt;
3. the receipt is checked against the PINNED server key and against the
   files the camera holds, then kept (``receipts/<id>.json``, durable
   before anything else happens) and the audit log records ``offloaded``;
4. only then, unless told to keep it, the audit log records ``deleting``,
   the recording is deleted (manifest last, fsync'ed at each step) and the
   audit log records ``deleted``.

A crash anywhere leaves something the next run finishes: before the receipt
is kept, it commits again and gets the same receipt (commits are idempotent);
mid-delete, the kept receipt and the ``offloaded`` and ``deleting`` entries
let it finish deleting; after the delete, it adds the missing ``deleted``
entry. ``deleting`` is what tells a delete this command began from files
someone removed by hand: those are never finished, nor called deleted.

What the server refuses (400, 403, 409) is kept and recorded in the audit log
(``offload_refused``, with the server's reason), and the next recording
still goes; a full server (507), a server that stays unreachable, or a
receipt not signed by the pinned key stops the offload, keeping everything
left. Interrupted recordings are never sent: they need ``bodycam recover``
first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.audit import AUDIT, AuditLog, read_audit
from camera.evidence.keys import DeviceKey, key_id_of
from camera.evidence.receipts import (
    DELETED,
    OFFLOADED,
    RECEIPTS,
    StoredReceipt,
    check_receipt,
    read_receipt,
    receipt_path,
    receipt_sha256,
    write_receipt,
)
from camera.evidence.records import MANIFEST
from camera.offload_card import (
    NotUploadable,
    OnCamera,
    delete_recording,
    others_on,
    recording_files,
    recordings_on,
)
from camera.offload_http import EvidenceServer, Refused, RetryPolicy, ServerFull, Unreachable

__all__ = ["DELETED", "DELETING", "OFFLOADED", "REFUSED", "OffloadReport", "Offloader", "Outcome"]

#: Audit log events this module writes (besides OFFLOADED and DELETED).
DELETING = "deleting"
REFUSED = "offload_refused"
RECEIPT_REJECTED = "receipt_rejected"


@dataclass
class Outcome:
    """What happened to one recording directory."""

    recording: str
    offloaded: bool = False
    deleted: bool = False
    receipt_sha256: str | None = None
    #: Why it stays on the camera (empty when offloaded).
    reason: str = ""
    #: A closed recording that was meant to go (interrupted and busy ones were not).
    closed: bool = True

    def line(self) -> str:
        if self.offloaded:
            sha = (self.receipt_sha256 or "?")[:16]
            kept = "" if self.deleted else "; kept on the camera"
            kept += f": {self.reason}" if self.reason and not self.deleted else ""
            return f"OFFLOADED {self.recording} (receipt sha {sha}...{kept})"
        return f"KEPT {self.recording}: {self.reason}"


@dataclass
class OffloadReport:
    outcomes: list[Outcome] = field(default_factory=list)
    #: Why the offload stopped before the last recording, if it did.
    stopped: str | None = None
    files_sent: int = 0
    files_held: int = 0
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        """Every closed recording went (interrupted or busy ones are not counted)."""
        return all(o.offloaded for o in self.outcomes if o.closed)

    def summary(self) -> str:
        went = sum(o.offloaded for o in self.outcomes)
        kept = len(self.outcomes) - went
        line = (
            f"{went} recording(s) offloaded, {kept} kept on the camera; "
            f"{self.files_sent} file(s) sent ({self.bytes_sent} bytes), "
            f"{self.files_held} already on the server"
        )
        return line + (f"; stopped: {self.stopped}" if self.stopped else "")


class _Stop(Exception):
    """Nothing more goes this time (server full, unreachable, not the pinned server)."""


@dataclass
class _History:
    """What the audit log already says: recordings offloaded (with which receipt) and deleted."""

    offloaded: set[tuple[str, str]] = field(default_factory=set)
    deleting: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, storage: Path) -> _History:
        try:
            entries = read_audit(storage / AUDIT)
        except FileNotFoundError:
            entries = []
        out = cls()
        for e in entries:
            rec, sha = e.get("recording_id"), e.get("receipt_sha256")
            if not isinstance(rec, str):
                continue
            if e["event"] == OFFLOADED and isinstance(sha, str):
                out.offloaded.add((rec, sha))
            elif e["event"] == DELETING:
                out.deleting.add(rec)
            elif e["event"] == DELETED:
                out.deleted.add(rec)
        return out


class Offloader:
    """Offloads one storage directory's closed recordings of one device to one server.

    The caller holds the storage (``bodycam offload`` takes its lock; a
    firmware docking from inside names the recording it is writing in
    ``busy``) and, when the firmware already has the audit log open, passes
    that ``audit`` so entries are appended by one writer. ``utc`` dates the
    audit entries (the camera core reads no clock of its own).
    """

    def __init__(
        self,
        storage: str | os.PathLike[str],
        key: DeviceKey,
        device_id: str,
        server: str,
        server_key: ec.EllipticCurvePublicKey,
        *,
        retry: RetryPolicy,
        utc: Callable[[], datetime],
        client: httpx.Client | None = None,
        delete: bool = True,
        audit: AuditLog | None = None,
        busy: Callable[[], Collection[str]] | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.storage = Path(storage)
        self.key = key
        self.device_id = device_id
        self.server_key = server_key
        self.server_key_id = key_id_of(server_key)
        self.delete = delete
        self.utc = utc
        self.busy = busy or (lambda: ())
        self.on_outcome = on_outcome
        self._given_audit = audit
        self._audit: AuditLog | None = audit
        self._appended = False
        self.server = EvidenceServer(
            server,
            key,
            device_id,
            retry,
            client=client,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )

    # -- the run ------------------------------------------------------------------
    def run(self) -> OffloadReport:
        report = OffloadReport()
        history = _History.read(self.storage)
        try:
            self._finish_deletions(history)
            recordings = recordings_on(self.storage, self.device_id)
            busy = set(self.busy())
            checked_server = False
            for name in others_on(self.storage, self.device_id):
                why = f"not recorded by this device ({self.device_id}, the config's device.id)"
                self._tell(report, Outcome(name, reason=why))
            for rec in recordings:
                outcome = self._triage(rec, busy, history)
                if outcome is None and report.stopped is not None:
                    outcome = Outcome(rec.name, reason=f"not sent: {report.stopped}")
                if outcome is None:
                    try:
                        if not checked_server:
                            self._check_server()
                            checked_server = True
                        outcome = self._offload(rec, history, report)
                    except _Stop as exc:
                        report.stopped = str(exc)
                        outcome = Outcome(rec.name, reason=report.stopped)
                self._tell(report, outcome)
        finally:
            self._close()
        return report

    def _tell(self, report: OffloadReport, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        report.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _close(self) -> None:
        try:
            if self._appended and self._audit is not None:
                self._audit.checkpoint(None, self.utc(), "offload")
        finally:
            if self._audit is not None and self._given_audit is None:
                self._audit.close()
            self.server.close()

    # -- which recordings, and in what state ----------------------------------------------
    def _triage(self, rec: OnCamera, busy: set[str], history: _History) -> Outcome | None:
        """An outcome for a recording that is not to be sent as it is; None to send it."""
        if rec.name in busy:
            return Outcome(rec.name, reason="still being written", closed=False)
        stored = self._stored_receipt(rec.name)
        began = rec.name in history.deleting  # an offload began deleting it
        if not rec.closed:
            if began and stored is not None and not any(os.scandir(rec.path)):
                return self._finish_partial(rec, stored, history, files={})
            if rec.interrupted:
                return Outcome(
                    rec.name,
                    reason=f"interrupted (journal, no {MANIFEST}): never offloaded as it is; "
                    f"run `bodycam recover {rec.path}` first",
                    closed=False,
                )
            return Outcome(
                rec.name,
                reason=f"no {MANIFEST} or journal: not a recording to offload",
                closed=False,
            )
        if began and stored is not None:
            try:
                files = recording_files(rec.path)
            except (NotUploadable, OSError):
                return None  # _offload says what is wrong with it
            named = stored.receipt.get("files")
            if isinstance(named, dict) and files != named and _within(files, named):
                return self._finish_partial(rec, stored, history, files)
        return None

    def _stored_receipt(self, name: str) -> StoredReceipt | None:
        try:
            found = read_receipt(receipt_path(self.storage, name))
        except ValueError:
            return None
        return found if isinstance(found, StoredReceipt) else None

    def _finish_partial(
        self, rec: OnCamera, stored: StoredReceipt, history: _History, files: dict[str, str]
    ) -> Outcome:
        """A delete an earlier run began after a checked receipt: finish it (or keep, if asked)."""
        why = check_receipt(
            stored.receipt,
            self.server_key,
            recording_id=rec.name,
            device_id=self.device_id,
            manifest_sha256=files.get(MANIFEST) if files else None,
            files=None,
        )
        if why is not None or (rec.name, stored.sha256) not in history.offloaded:
            reason = why or "no offloaded entry in the audit log for its receipt"
            return Outcome(
                rec.name, reason=f"partly deleted, and its receipt does not vouch: {reason}"
            )
        outcome = Outcome(rec.name, offloaded=True, receipt_sha256=stored.sha256)
        if not self.delete:
            outcome.reason = "partly deleted by an interrupted offload"
            return outcome
        named = stored.receipt.get("files")
        kept = self._delete(rec, stored.sha256, history, named if isinstance(named, dict) else ())
        outcome.deleted = kept is None
        outcome.reason = kept or ""
        return outcome

    def _finish_deletions(self, history: _History) -> None:
        """Receipts of recordings already gone whose ``deleted`` entry a crash cut off."""
        folder = self.storage / RECEIPTS
        if not folder.is_dir():
            return
        present = {r.name for r in recordings_on(self.storage, self.device_id)}
        for name in sorted(os.listdir(folder)):
            rec = name.removesuffix(".json")
            if not name.endswith(".json") or "." in rec or rec in present:
                continue
            if rec in history.deleted or rec not in history.deleting:
                continue  # gone without this command deleting it: not for it to record
            stored = self._stored_receipt(rec)
            if stored is not None and (rec, stored.sha256) in history.offloaded:
                self._record(DELETED, recording_id=rec, receipt_sha256=stored.sha256)
                history.deleted.add(rec)

    # -- one recording -----------------------------------------------------------------------
    def _check_server(self) -> None:
        """The server must present the pinned key before any evidence is sent to it.

        Only a comparison: a server could claim any key id, and the receipts'
        signatures are what is trusted; this stops an honest mistake (the wrong
        URL or the wrong pinned key) before a single byte goes.
        """
        try:
            info = self.server.info()
        except (Unreachable, Refused, ServerFull) as exc:
            raise _Stop(f"server {self.server.url} not reachable: {exc}") from None
        claimed = info.get("key_id")
        if claimed != self.server_key_id:
            shown = claimed[:16] if isinstance(claimed, str) else repr(claimed)[:16]
            raise _Stop(
                f"server {self.server.url} presents key {shown}..., not the pinned "
                f"{self.server_key_id[:16]}... (wrong --server or --server-key?)"
            )

    def _offload(self, rec: OnCamera, history: _History, report: OffloadReport) -> Outcome:
        try:
            files = recording_files(rec.path)
        except NotUploadable as exc:
            return Outcome(rec.name, reason=f"not offloaded: {exc}")
        except OSError as exc:
            return Outcome(rec.name, reason=f"cannot be read: {exc.strerror or exc}")
        try:
            for name in sorted(files, key=lambda n: (n == MANIFEST, n)):
                self._send(rec, name, files[name], report)
            receipt = self.server.commit(rec.name, files)
        except Refused as exc:
            self._record(REFUSED, recording_id=rec.name, status=exc.status, reason=exc.reason)
            return Outcome(rec.name, reason=f"refused by the server ({exc.status}): {exc.reason}")
        except ServerFull as exc:
            raise _Stop(f"the server is full (507): {exc}") from None
        except Unreachable as exc:
            raise _Stop(f"the server stopped answering: {exc}") from None
        why = check_receipt(
            receipt,
            self.server_key,
            recording_id=rec.name,
            device_id=self.device_id,
            manifest_sha256=files[MANIFEST],
            files=files,
        )
        if why is not None:
            self._record(RECEIPT_REJECTED, recording_id=rec.name, reason=why)
            if "not signed by the pinned server key" in why:
                raise _Stop(f"{rec.name}: {why}; nothing deleted")
            return Outcome(rec.name, reason=f"{why}; nothing deleted")
        write_receipt(self.storage, receipt)
        sha = receipt_sha256(receipt)
        if (rec.name, sha) not in history.offloaded:
            self._record(
                OFFLOADED,
                recording_id=rec.name,
                manifest_sha256=files[MANIFEST],
                receipt_sha256=sha,
                server_key_id=self.server_key_id,
            )
            history.offloaded.add((rec.name, sha))
        outcome = Outcome(rec.name, offloaded=True, receipt_sha256=sha)
        if self.delete:
            kept = self._delete(rec, sha, history, files)
            outcome.deleted = kept is None
            outcome.reason = kept or ""
        return outcome

    def _send(self, rec: OnCamera, name: str, sha: str, report: OffloadReport) -> None:
        path = rec.path / name
        if self.server.ensure(sha, path):
            report.files_sent += 1
            report.bytes_sent += path.stat().st_size
        else:
            report.files_held += 1

    def _delete(
        self, rec: OnCamera, receipt_sha: str, history: _History, named: Collection[str]
    ) -> str | None:
        """Delete the recording; None once done, else why it was kept instead.

        Only files the receipt names go: one that appeared after the upload
        (whatever put it there) was never sent, so the directory stays.
        """
        extra = sorted(set(os.listdir(rec.path)) - set(named))
        if extra:
            return (
                f"{', '.join(extra)} appeared after the upload and is not in the receipt; "
                "nothing deleted"
            )
        if rec.name not in history.deleting:
            self._record(DELETING, recording_id=rec.name, receipt_sha256=receipt_sha)
            history.deleting.add(rec.name)
        delete_recording(rec.path)
        if rec.name not in history.deleted:
            self._record(DELETED, recording_id=rec.name, receipt_sha256=receipt_sha)
            history.deleted.add(rec.name)
        return None

    def _record(self, event: str, **fields: Any) -> None:
        if self._audit is None:
            self._audit = AuditLog(self.storage, self.key)
        self._audit.append(event, None, self.utc(), **fields)
        self._appended = True


def _within(files: dict[str, str], named: dict[str, Any]) -> bool:
    """Every file still here is one the receipt names, with the bytes it names."""
    return all(named.get(name) == sha for name, sha in files.items())
