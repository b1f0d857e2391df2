"""The evidence store's recordings, for the review page mounted in ``bodycam server``.

A recording held here was verified at ingest by ``bodycam verify``'s code
against the device's enrolled key (server.ingest); its verdict is that
check, with the chain status it recorded. A rejected one is listed as failed
with the reason it was refused, described from the copy kept in
``DIR/rejected/``; it is not evidence, so it is not played. A purged one
is gone (its tombstone is ``bodycam server list``'s).

Every view and export goes on the server's audit log before a byte is sent
(:meth:`StoreCatalog.record`, an ``access`` entry as server.access writes
them), so who looked at what, and what they took away, is on the record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select

from camera.evidence.audit import format_utc
from camera.evidence.verify.trust import KeySet
from camera.inspection import inspect_recording
from camera.inspection.model import Inspection, Status
from server import audit as server_audit
from server.access import record_access
from server.datadir import Server
from server.meta import Recording, audit, devices, rejections
from server.objects.cas import CasStore
from server.protocol import MANIFEST
from server.review.catalog import (
    FAILED,
    VERIFIED,
    Catalog,
    ChainInfo,
    Entry,
    KeyInfo,
    Verdict,
)
from server.review.describe import describe_manifest

__all__ = ["StoreCatalog"]

#: A manifest larger than this was never a camera's (camera.export's bound).
MAX_MANIFEST_BYTES = 16 << 20
#: Parsed manifests kept in memory (objects never change, so a cached one is never stale).
MANIFESTS_KEPT = 256


class StoreCatalog(Catalog):
    mode = "store"

    def __init__(self, server: Server) -> None:
        if server.store is None:
            raise RuntimeError("open the data directory with its object store to review it")
        self.server = server
        self.store = server.store
        self.meta = server.meta
        self.title = f"evidence store {server.data.root}"
        self._manifests: OrderedDict[str, dict[str, Any] | None] = OrderedDict()

    # -- the recordings ---------------------------------------------------------------------
    def _keys(self, device: str) -> KeySet:
        with self.meta.read() as conn:
            pems = self.meta.device_keys(conn, device, active_only=False)
        keys = KeySet(trusted=True)
        for key_id, pem in pems.items():
            keys.keys[key_id] = load_pem_public_key(pem.encode())  # type: ignore[assignment]
            keys.paths[key_id] = Path(f"the key enrolled for {device} ({key_id[:16]}...)")
        return keys

    def _manifest(self, sha256: str) -> dict[str, Any] | None:
        """The manifest object, read once (objects never change), checked against its name."""
        if sha256 in self._manifests:
            self._manifests.move_to_end(sha256)
        else:
            parsed: Any = None
            try:
                with self.store.open(sha256) as f:
                    raw = f.read(MAX_MANIFEST_BYTES + 1)
                if len(raw) <= MAX_MANIFEST_BYTES and hashlib.sha256(raw).hexdigest() == sha256:
                    parsed = json.loads(raw)
            except (OSError, ValueError, RecursionError):
                parsed = None
            self._manifests[sha256] = parsed if isinstance(parsed, dict) else None
            while len(self._manifests) > MANIFESTS_KEPT:
                self._manifests.popitem(last=False)
        return self._manifests.get(sha256)

    def _rejection(self, recording_id: str) -> tuple[str, list[str], int] | None:
        with self.meta.read() as conn:
            row = conn.execute(
                select(rejections)
                .where(rejections.c.recording == recording_id)
                .order_by(rejections.c.n.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.reason, list(row.problems), row.n)

    def _entry(self, rec: Recording) -> Entry | None:
        if rec.status == "verified" and rec.purge_started_utc is None:
            return self._held(rec)
        if rec.status == "rejected":
            return self._rejected(rec)
        return None

    def _held(self, rec: Recording) -> Entry:
        m = self._manifest(rec.manifest_sha256)
        if m is None:
            insp = Inspection(
                path=rec.id,
                status=Status.UNREADABLE,
                error=f"{MANIFEST} object {rec.manifest_sha256[:16]}... is missing or damaged",
            )
            verdict = Verdict(FAILED, insp.error or "")
        else:
            insp = describe_manifest(rec.id, m, self._keys(rec.device))
            receipt = rec.receipt or {}
            verdict = Verdict(
                VERIFIED,
                f"verified at ingest {rec.received_utc} against the key enrolled for "
                f"{rec.device} (receipt audit seq {receipt.get('audit_seq')}); chain: {rec.chain}",
            )
        category = rec.category
        if rec.queued_utc is not None:
            category = f"{category} (queued for deletion {rec.queued_utc})"
        return Entry(
            id=rec.id,
            insp=insp,
            manifest=m if insp.error is None else None,
            manifest_sha256=rec.manifest_sha256,
            verdict=verdict,
            where=f"held since {rec.received_utc}",
            category=category,
            extra={"record": rec},
        )

    def _rejected(self, rec: Recording) -> Entry:
        found = self._rejection(rec.id)
        reason, problems, n = found if found is not None else ("rejected", [], 0)
        kept = self.server.data.rejected / rec.id / str(n)
        insp = inspect_recording(kept, self._keys(rec.device))
        insp.path = rec.id
        if insp.device_id is None:
            insp.device_id = rec.device
        return Entry(
            id=rec.id,
            insp=insp,
            manifest=None,
            manifest_sha256=rec.manifest_sha256,
            verdict=Verdict(FAILED, reason, tuple(problems)),
            where=f"rejected {rec.received_utc}, kept in rejected/{rec.id}/{n}/",
            category=None,
            extra={"record": rec},
        )

    def entries(self) -> list[Entry]:
        with self.meta.read() as conn:
            recs = self.meta.all_recordings(conn)
        return [e for rec in recs if (e := self._entry(rec)) is not None]

    def entry(self, recording_id: str) -> Entry | None:
        with self.meta.read() as conn:
            rec = self.meta.recording(conn, recording_id)
        return None if rec is None else self._entry(rec)

    @staticmethod
    def _files(entry: Entry) -> dict[str, str]:
        rec: Recording = entry.extra["record"]
        return rec.files if rec.status == "verified" else {}

    # -- files ------------------------------------------------------------------------------
    def open_file(self, entry: Entry, name: str) -> Path | BinaryIO | None:
        sha = self._files(entry).get(name)
        if sha is None or name == MANIFEST:
            return None
        if isinstance(self.store, CasStore):
            path = self.store.path_of(sha)
            return path if path.is_file() else None
        try:
            return self.store.open(sha)
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        where = self.server.data.work / f"review-{uuid.uuid4().hex}"
        where.mkdir(parents=True)
        try:
            yield where
        finally:
            shutil.rmtree(where, ignore_errors=True)

    @contextlib.contextmanager
    def materialize(self, entry: Entry) -> Iterator[Path]:
        """The recording rebuilt from its objects (linked where the store is a directory)."""
        with self.scratch() as where:
            target = where / entry.id
            target.mkdir()
            for name, sha in self._files(entry).items():
                if isinstance(self.store, CasStore):
                    try:
                        os.link(self.store.path_of(sha), target / name)
                        continue
                    except OSError:
                        pass  # another file system: copy
                with self.store.open(sha) as src, open(target / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            yield target

    # -- the proof ----------------------------------------------------------------------------
    def key(self, entry: Entry) -> KeyInfo:
        m = entry.manifest or {}
        key_id = m.get("key_id") if isinstance(m.get("key_id"), str) else None
        test = m.get("test_key") is True
        device = entry.device or ""
        with self.meta.read() as conn:
            row = conn.execute(
                select(devices).where(devices.c.id == device, devices.c.key_id == (key_id or ""))
            ).first()
        if row is None:
            return KeyInfo(key_id, f"not enrolled here for device {device}", False, test)
        state = "its active key" if row.active else "a key since replaced (kept on record)"
        return KeyInfo(
            key_id,
            f"enrolled for {device} on {row.enrolled_utc}, {state}: the key the upload was "
            "checked against",
            True,
            test,
            row.public_key_pem.encode(),
        )

    def chain(self, entry: Entry) -> ChainInfo:
        rec: Recording = entry.extra["record"]
        status = rec.chain or ""
        if rec.status != "verified":
            return ChainInfo(rec.previous_recording, rec.previous_sha256, "not checked", None)
        ok = True if status == "ok" or status.startswith("none") else None
        return ChainInfo(
            rec.previous_recording,
            rec.previous_sha256,
            f"checked at ingest against the recordings held here: {status}",
            ok,
        )

    def audit_entries(self, entry: Entry) -> list[dict[str, Any]]:
        with self.meta.read() as conn:
            rows = conn.execute(
                select(audit).where(audit.c.target == entry.id).order_by(audit.c.seq)
            ).all()
        out = []
        for row in rows:
            detail = dict(row.detail) if isinstance(row.detail, dict) else {}
            what = row.action
            if row.action == "access" and "what" in detail:
                what = f"access: {detail.pop('what')}"
            out.append(
                {"seq": row.seq, "utc": row.utc, "what": what, "actor": row.actor, "detail": detail}
            )
        return out

    def verify_commands(self, entry: Entry) -> list[str]:
        key = self.key(entry)
        keyfile = f"{entry.device}.{(key.key_id or 'KEY')[:16]}.pub.pem"
        return [
            f"bodycam server export --data {self.server.data.root} {entry.id} --out OUT "
            '--reason "why you take a copy"',
            f"bodycam verify --key {keyfile} OUT/{entry.id}",
        ]

    def record(self, actor: str, what: str, recording: str | None, **detail: Any) -> None:
        utc = format_utc(datetime.now(UTC))
        with self.meta.write() as conn:
            if recording is not None:
                record_access(conn, utc=utc, actor=actor, recording=recording, what=what, **detail)
            else:
                server_audit.append(
                    conn,
                    utc=utc,
                    actor=actor,
                    action="access",
                    target="recordings",
                    detail={"what": what, **detail},
                )
