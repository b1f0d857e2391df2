"""The commit: a recording whose files were uploaded becomes evidence held here, or is refused.

Why it is done this way:

- The recording is put together from the objects in a private directory
  (``DIR/work``) and checked with camera.evidence.verify.verify_recording,
  the code ``bodycam verify`` runs, against the key enrolled for the device
  (never a key the upload brings): one implementation of what "verified"
  means, on the camera's side and here.
- The manifest must be the authenticated device's and name this recording;
  the chain link to the device's previous recording held here must agree
  (server.chain).
- The receipt, the recording's row and the audit entry commit in one
  transaction: a receipt exists only for a recording the metadata holds, and
  the audit entry it names (``audit_seq``) is there.
- Idempotent: a commit of a recording already held with the same files
  answers the same receipt; with other files it is a conflict (409), kept in
  the rejected area like every refusal (server.rejected), never applied. A
  recording that was purged here is not taken again (409; its tombstone stays).
- Retention starts before the receipt: the objects are locked (GOVERNANCE
  until the ``uncategorized`` date, server.retention) before the
  transaction that issues it, so no receipt names bytes the store would let
  anyone delete. Under the transaction's lock the objects of a recording
  whose purge has begun are checked again (server.sweep), so a commit never
  names an object a concurrent purge removed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import Connection

from camera.evidence.audit import format_utc
from camera.evidence.keys import DeviceKey
from camera.evidence.verify import verify_recording
from camera.evidence.verify.files import Unreadable, load_manifest
from camera.evidence.verify.trust import KeySet
from server import audit
from server.chain import ChainCheck, Held, check_links
from server.config import UNCATEGORIZED, Retention
from server.locks import apply_lock
from server.meta import Meta, Recording
from server.objects import ObjectStore
from server.objects.cas import CasStore
from server.protocol import MANIFEST, build_receipt, is_file_name, is_recording_id, is_sha256
from server.rejected import keep_rejected
from server.retention import Policy, parse_utc

__all__ = ["MAX_FILES", "Answer", "Ingest", "parse_files"]

#: Files one commit may name: an 8-hour recording of 10 s segments with audio is ~6000.
MAX_FILES = 100_000
#: Written beside the files in the rejected area: no recording file may take its name.
REASON = "reason.json"


@dataclass
class Answer:
    """What the HTTP layer sends: a status and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _error(status: int, message: str, **more: Any) -> Answer:
    return Answer(status, {"error": " ".join(message.split()), **more})


def parse_files(body: Any) -> dict[str, str] | Answer:
    """The ``files`` table of a commit body, or a 400 saying what is wrong with it."""
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, dict) or not files:
        return _error(400, 'expected a JSON body {"files": {"<name>": "<sha256>", ...}}')
    if len(files) > MAX_FILES:
        return _error(400, f"a commit names at most {MAX_FILES} files, got {len(files)}")
    for name, sha in files.items():
        if not is_file_name(name) or name == REASON:
            return _error(
                400,
                f"file name {json.dumps(name)[:80]}: expected a recording file name "
                "(letters, digits, '.', '_', '-'; not a path)",
            )
        if not is_sha256(sha):
            return _error(400, f"{name}: expected a sha256 (64 lowercase hex digits)")
    if MANIFEST not in files:
        return _error(400, f"the commit must name {MANIFEST}")
    return dict(files)


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0


class Ingest:
    """Commits, one recording at a time per id; safe to call from several threads."""

    def __init__(
        self,
        meta: Meta,
        store: ObjectStore,
        key: DeviceKey,
        work: Path,
        rejected: Path,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: Policy | None = None,
    ) -> None:
        self.meta, self.store, self.key = meta, store, key
        self.work, self.rejected = work, rejected
        self._now = now
        self.policy = policy or Policy.from_config(Retention())
        self._guard = threading.Lock()
        self._busy: dict[str, _Turn] = {}

    @contextmanager
    def _one_at_a_time(self, recording_id: str) -> Iterator[None]:
        """Commits of one recording run in turn (the database decides between processes)."""
        with self._guard:
            entry = self._busy.setdefault(recording_id, _Turn())
            entry.waiting += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.waiting -= 1
                if entry.waiting == 0:
                    del self._busy[recording_id]

    def commit(self, device: str, recording_id: str, files: dict[str, str]) -> Answer:
        if not is_recording_id(recording_id):
            return _error(
                400,
                f"recording id {json.dumps(recording_id)[:80]}: expected "
                "<device-id>_<YYYYmmddTHHMMSSZ>_<counter>",
            )
        missing = [name for name, sha in sorted(files.items()) if not self.store.has(sha)]
        if missing:
            shown = ", ".join(f"{n} ({files[n][:16]}...)" for n in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            return _error(400, f"not uploaded yet: {shown}{more}", missing=missing)
        with self._one_at_a_time(recording_id):
            return self._commit(device, recording_id, files)

    # -- inside --------------------------------------------------------------------
    def _commit(self, device: str, recording_id: str, files: dict[str, str]) -> Answer:
        with self.meta.read() as conn:
            held = self.meta.recording(conn, recording_id)
            keys = self.meta.device_keys(conn, device)
        if held is not None and held.status in ("verified", "purged"):
            return self._again(held, device, recording_id, files)
        staged = self._assemble(recording_id, files)
        try:
            problems, manifest, frames, key_id = self._verify(staged, device, recording_id, keys)
            chain = ChainCheck([], "")
            if not problems and manifest is not None:
                chain = self._chain(device, recording_id, manifest, files[MANIFEST])
                problems = chain.problems
            if problems:
                return self._reject(staged, device, recording_id, files, problems, manifest)
            return self._accept(device, recording_id, files, manifest, chain, frames, key_id)
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)

    def _again(
        self, held: Recording, device: str, recording_id: str, files: dict[str, str]
    ) -> Answer:
        """A commit for a recording already verified here: the same receipt, or a conflict."""
        if held.status == "purged":
            reason = (
                f"recording {recording_id} was purged here {held.purged_utc} "
                f"({held.purge_reason}); it is not taken again"
            )
        elif held.device == device and held.files == files and held.receipt is not None:
            return Answer(200, {"receipt": held.receipt})
        else:
            reason = (
                f"recording {recording_id} is held with manifest {held.manifest_sha256}; "
                "this commit differs"
            )
        staged = self._assemble(recording_id, files)
        try:
            kept = keep_rejected(
                self.meta,
                self.rejected,
                staged,
                recording=recording_id,
                device=device,
                reason=reason,
                problems=[reason],
                files=files,
                utc=self._utc(),
                recording_row=None,
            )
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)
        return _error(409, reason, kept=kept)

    def _assemble(self, recording_id: str, files: dict[str, str]) -> Path:
        """The recording directory rebuilt from the objects, in a fresh private place."""
        where = self.work / uuid.uuid4().hex / recording_id
        where.mkdir(parents=True)
        for name, sha in files.items():
            target = where / name
            if isinstance(self.store, CasStore):
                try:
                    os.link(self.store.path_of(sha), target)  # read-only, shared, no copy
                    continue
                except OSError:
                    pass  # another file system: copy
            with self.store.open(sha) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        return where

    def _verify(
        self, directory: Path, device: str, recording_id: str, keys: dict[str, str]
    ) -> tuple[list[str], dict[str, Any] | None, int, str | None]:
        """(problems, manifest if readable, frames, key id it names) for the assembled recording."""
        trusted = KeySet(trusted=True)
        for key_id, pem in keys.items():
            trusted.keys[key_id] = load_pem_public_key(pem.encode())  # type: ignore[assignment]
        report = verify_recording(directory, trusted)
        problems = list(report.problems)
        try:
            manifest = load_manifest(directory)
        except Unreadable:
            manifest = None  # verify said why
        if not isinstance(manifest, dict):
            return problems, None, report.frames, None
        if manifest.get("device_id") != device:
            problems.append(
                f"{MANIFEST}: device_id is {json.dumps(manifest.get('device_id'))[:40]}, "
                f"but the upload came from device {device}"
            )
        if manifest.get("recording_id") != recording_id:
            problems.append(
                f"{MANIFEST}: recording_id is {json.dumps(manifest.get('recording_id'))[:80]}, "
                f"but the commit is for {recording_id}"
            )
        if not recording_id.startswith(f"{device}_"):
            problems.append(f"recording id {recording_id} is not one of device {device}'s")
        key_id = manifest.get("key_id")
        return problems, manifest, report.frames, key_id if isinstance(key_id, str) else None

    def _held_manifest(self, rec: Recording) -> Held:
        try:
            with self.store.open(rec.manifest_sha256) as f:
                manifest = json.loads(f.read())
        except (OSError, ValueError):
            manifest = None
        return Held(rec.id, rec.manifest_sha256, manifest if isinstance(manifest, dict) else None)

    def _chain(
        self, device: str, recording_id: str, manifest: dict[str, Any], manifest_sha256: str
    ) -> ChainCheck:
        with self.meta.read() as conn:

            def held(named: str) -> Held | None:
                rec = self.meta.recording(conn, named)
                if rec is None or rec.status != "verified" or rec.device != device:
                    return None
                return self._held_manifest(rec)

            following = [
                self._held_manifest(r) for r in self.meta.following(conn, device, recording_id)
            ]
            return check_links(recording_id, manifest, manifest_sha256, held, following)

    def _reject(
        self,
        staged: Path,
        device: str,
        recording_id: str,
        files: dict[str, str],
        problems: list[str],
        manifest: dict[str, Any] | None,
    ) -> Answer:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        reason = f"recording {recording_id} failed verification: {first}{more}"
        utc = self._utc()
        row = self._row(device, recording_id, files, manifest, utc, chain=None, frames=None)
        kept = keep_rejected(
            self.meta,
            self.rejected,
            staged,
            recording=recording_id,
            device=device,
            reason=reason,
            problems=problems,
            files=files,
            utc=utc,
            recording_row=row,
        )
        return _error(400, reason, problems=problems, kept=kept)

    def _accept(
        self,
        device: str,
        recording_id: str,
        files: dict[str, str],
        manifest: dict[str, Any] | None,
        chain: ChainCheck,
        frames: int,
        key_id: str | None,
    ) -> Answer:
        utc = self._utc()
        lock = self.policy.wanted_lock(UNCATEGORIZED, None, parse_utc(utc))
        apply_lock(self.store, files.values(), lock)
        with self.meta.write() as conn:
            held = self.meta.recording(conn, recording_id)
            gone = [
                sha
                for sha in sorted(self.meta.purging_objects(conn, sorted(set(files.values()))))
                if not self.store.has(sha)
            ]
            if gone or (held is not None and held.status != "rejected"):
                receipt = None  # purged meanwhile, or another server process committed it
            else:
                receipt = self._record(
                    conn, device, recording_id, files, manifest, chain, frames, key_id, utc
                )
                self.meta.update_recording(
                    conn, recording_id, lock_mode=lock.mode, lock_until=lock.until_utc
                )
        if gone:
            missing = sorted(name for name, sha in files.items() if sha in gone)
            return _error(
                400,
                f"not uploaded yet: {', '.join(missing[:5])} (deleted by a purge meanwhile)",
                missing=missing,
            )
        if receipt is None:
            assert held is not None
            return self._again(held, device, recording_id, files)
        return Answer(200, {"receipt": receipt})

    def _record(
        self,
        conn: Connection,
        device: str,
        recording_id: str,
        files: dict[str, str],
        manifest: dict[str, Any] | None,
        chain: ChainCheck,
        frames: int,
        key_id: str | None,
        utc: str,
    ) -> dict[str, Any]:
        """The audit entry, the signed receipt naming it, the recording's row: one transaction."""
        entry = audit.append(
            conn,
            utc=utc,
            actor=f"device:{device}",
            action="ingest",
            target=recording_id,
            detail={
                "manifest_sha256": files[MANIFEST],
                "files": len(files),
                "chain": chain.status,
                "frames": frames,
                "device_key_id": key_id,
            },
        )
        receipt = build_receipt(
            self.key,
            recording=recording_id,
            device=device,
            device_key_id=key_id or "",
            files=files,
            chain=chain.status,
            frames=frames,
            received_utc=utc,
            audit_seq=entry["seq"],
        )
        row = self._row(device, recording_id, files, manifest, utc, chain.status, frames)
        self.meta.put_recording(
            conn,
            {
                **row,
                "status": "verified",
                "receipt": receipt,
                "category": UNCATEGORIZED,
                "retention_from_utc": utc,
            },
        )
        return receipt

    @staticmethod
    def _row(
        device: str,
        recording_id: str,
        files: dict[str, str],
        manifest: dict[str, Any] | None,
        utc: str,
        chain: str | None,
        frames: int | None,
    ) -> dict[str, Any]:
        previous = manifest.get("previous") if manifest else None
        if not isinstance(previous, dict):
            previous = {}
        named, sha = previous.get("recording_id"), previous.get("manifest_sha256")
        return {
            "id": recording_id,
            "device": device,
            "manifest_sha256": files[MANIFEST],
            "files": files,
            "chain": chain,
            "frames": frames,
            "received_utc": utc,
            "previous_recording": named if isinstance(named, str) else None,
            "previous_sha256": sha if is_sha256(sha) else None,
        }

    def _utc(self) -> str:
        return format_utc(self._now())
