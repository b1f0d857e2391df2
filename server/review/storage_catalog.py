"""A camera's storage directory on a laptop (``bodycam review STORAGE``): read in place only.

Each recording is described by ``bodycam inspect``'s code and checked by
``bodycam verify``'s (:func:`camera.evidence.verify.verify_recording`, then
the chain and the audit log with
:func:`camera.evidence.verify.storage.verify_storage`), with the public keys
found beside the recordings, as ``bodycam verify STORAGE`` does without
``--key``; the page says those keys are not independently trusted. A check
decodes every frame (seconds per recording), so it runs on one background
thread, oldest recording first, and the list shows "verifying" until it
is done. A recording is checked again if any of its files changes (size or
modification time), so a file edited while the page is open shows too.

Nothing here writes to STORAGE: exports are made in a temporary directory
elsewhere and removed once sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from camera.errors import InputError
from camera.evidence.receipts import receipt_path
from camera.evidence.records import MANIFEST
from camera.evidence.verify import verify_recording
from camera.evidence.verify.files import Unreadable, load_manifest
from camera.evidence.verify.storage import verify_storage
from camera.evidence.verify.trust import keys_beside
from camera.inspection import inspect_recording
from camera.paths import AUDIT_LOG, find_recordings, is_recording
from server.review.catalog import (
    FAILED,
    PENDING,
    VERIFIED,
    Catalog,
    ChainInfo,
    Check,
    Entry,
    KeyInfo,
    Verdict,
    first_line,
)

__all__ = ["StorageCatalog"]

#: An audit log larger than this is not read for the proof panel (verify reads it all).
MAX_AUDIT_BYTES = 64 << 20


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file's name, size and mtime: a change to any is a reason to check again."""
    out = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((e.name, st.st_size, st.st_mtime_ns))
    except OSError:
        pass
    return tuple(sorted(out))


class _Verifier(threading.Thread):
    """Checks recordings one at a time, in the background; results by (name, fingerprint)."""

    def __init__(self, storage: Path) -> None:
        super().__init__(name="review-verify", daemon=True)
        self.storage = storage
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._wanted: dict[str, tuple[Any, ...]] = {}
        self._done: dict[str, tuple[tuple[Any, ...], Verdict]] = {}
        self._checks: tuple[tuple[Any, ...], list[Check]] | None = None
        self._stopping = False

    def want(self, names: dict[str, tuple[Any, ...]]) -> None:
        with self._lock:
            self._wanted = dict(names)
            self._wake.notify()

    def verdict(self, name: str, fp: tuple[Any, ...]) -> Verdict | None:
        with self._lock:
            held = self._done.get(name)
        return held[1] if held is not None and held[0] == fp else None

    def checks(self) -> list[Check] | None:
        with self._lock:
            wanted = tuple(sorted(self._wanted.items()))
            held = self._checks
        return held[1] if held is not None and held[0] == wanted else None

    def wait_checked(self, timeout: float) -> bool:
        """Until every wanted recording and the storage checks are done; False at the timeout."""

        def done() -> bool:
            wanted = tuple(sorted(self._wanted.items()))
            return self._checks is not None and self._checks[0] == wanted

        with self._lock:
            return self._wake.wait_for(done, timeout)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()

    def _next(self) -> tuple[str | None, tuple[Any, ...]] | None:
        """The next recording to check; (None, all) when only the storage checks are left."""
        with self._lock:
            while not self._stopping:
                for name, fp in self._wanted.items():
                    held = self._done.get(name)
                    if held is None or held[0] != fp:
                        return name, fp
                wanted = tuple(sorted(self._wanted.items()))
                if self._wanted and (self._checks is None or self._checks[0] != wanted):
                    return None, wanted
                self._wake.wait()
        return None

    def run(self) -> None:
        while (job := self._next()) is not None:
            name, fp = job
            if name is None:
                found = self._storage_checks([n for n, _ in fp])
                with self._lock:
                    self._checks = (fp, found)
                    self._wake.notify_all()  # whoever waits in wait_checked()
                continue
            report = verify_recording(self.storage / name, keys_beside(self.storage))
            if report.ok:
                verdict = Verdict(
                    VERIFIED,
                    f"verified: {report.frames} frames, every check of `bodycam verify` passed",
                    notes=tuple(report.notes),
                )
            else:
                verdict = Verdict(
                    FAILED,
                    first_line(report.problems),
                    tuple(report.problems),
                    tuple(report.notes),
                )
            with self._lock:
                self._done[name] = (fp, verdict)

    def _storage_checks(self, names: list[str]) -> list[Check]:
        recordings = [self.storage / n for n in sorted(names)]
        reports = verify_storage(self.storage, recordings, keys_beside(self.storage))
        return [Check(r.check, r.ok, tuple(r.problems), tuple(r.notes)) for r in reports]


class StorageCatalog(Catalog):
    mode = "storage"

    def __init__(self, storage: str | os.PathLike[str], verify: bool = True) -> None:
        root = Path(storage)
        if not root.is_dir():
            raise InputError(f"{root}: expected a camera's storage directory (no such directory)")
        self.storage = root.resolve()
        self.shown = str(storage)
        self.title = f"storage {self.shown}"
        self._verifier = _Verifier(self.storage)
        if verify:
            self._verifier.start()

    def close(self) -> None:
        self._verifier.stop()
        if self._verifier.is_alive():
            self._verifier.join(timeout=30)

    # -- the recordings ---------------------------------------------------------------------
    def _names(self) -> list[str]:
        found = find_recordings([self.storage])
        return [r.name for r in found.recordings if r.parent == self.storage]

    def _entry(self, name: str, fp: tuple[Any, ...]) -> Entry:
        directory = self.storage / name
        insp = inspect_recording(directory, keys_beside(self.storage))
        try:
            manifest = load_manifest(directory) if insp.error is None else None
            sha = hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()
        except (Unreadable, OSError):
            manifest, sha = None, None
        if not isinstance(manifest, dict) or insp.trigger is None:
            manifest = None
        verdict = self._verifier.verdict(name, fp) or Verdict(
            PENDING, "verifying (decoding every frame, checking every hash and signature)"
        )
        return Entry(
            id=name,
            insp=insp,
            manifest=manifest,
            manifest_sha256=sha,
            verdict=verdict,
            where=str(Path(self.shown) / name),
        )

    def entries(self) -> list[Entry]:
        names = self._names()
        fps = {n: _fingerprint(self.storage / n) for n in names}
        self._verifier.want(fps)
        return [self._entry(n, fps[n]) for n in names]

    def _is_recording(self, name: str) -> bool:
        """A plain name of a recording directory directly in the storage (never a path)."""
        if not name or name in (".", "..") or Path(name).name != name or "\x00" in name:
            return False
        directory = self.storage / name
        try:
            return (
                directory.is_dir()
                and not directory.is_symlink()
                and is_recording(os.listdir(directory))
            )
        except OSError:
            return False

    def entry(self, recording_id: str) -> Entry | None:
        if not self._is_recording(recording_id):
            return None
        return self._entry(recording_id, _fingerprint(self.storage / recording_id))

    def checks(self) -> list[Check]:
        found = self._verifier.checks()
        return found if found is not None else []

    def checking(self) -> bool:
        """Whether a check is still running or queued (the page polls until it is not)."""
        return self._verifier.checks() is None

    def wait_checked(self, timeout: float) -> bool:
        """Until the background check has reached every recording; False at the timeout."""
        return self._verifier.wait_checked(timeout)

    # -- files ------------------------------------------------------------------------------
    def open_file(self, entry: Entry, name: str) -> Path | BinaryIO | None:
        listed = {s["file"] for s in (entry.manifest or {}).get("segments", [])}
        if name not in listed:
            return None
        path = self.storage / entry.id / name
        return path if path.is_file() and not path.is_symlink() else None

    @contextlib.contextmanager
    def materialize(self, entry: Entry) -> Iterator[Path]:
        yield self.storage / entry.id  # read in place: camera.export only reads it

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        where = Path(tempfile.mkdtemp(prefix="bodycam-review-"))
        try:
            yield where
        finally:
            shutil.rmtree(where, ignore_errors=True)

    # -- the proof ----------------------------------------------------------------------------
    def key(self, entry: Entry) -> KeyInfo:
        m = entry.manifest or {}
        key_id = m.get("key_id") if isinstance(m.get("key_id"), str) else None
        keys = keys_beside(self.storage)
        picked = keys.pick(key_id)
        test = m.get("test_key") is True
        if picked is None:
            return KeyInfo(key_id, f"no public key for it found in {self.shown}", False, test)
        path = keys.paths[picked[0]]
        return KeyInfo(
            picked[0],
            f"{Path(self.shown) / path.name}, found beside the recordings on the same card "
            "(not independently trusted: pass a key you trust with `bodycam verify --key`)",
            False,
            test,
            path.read_bytes(),
        )

    def chain(self, entry: Entry) -> ChainInfo:
        m = entry.manifest or {}
        if "previous" not in m:
            return ChainInfo(None, None, "no chain link: the manifest is not signed", None)
        prev = m["previous"]
        if prev is None:
            return ChainInfo(
                None, None, "first of its chain (previous: null): no recording before it", True
            )
        if not isinstance(prev, dict):
            return ChainInfo(None, None, "previous is not an object: see the verdict", False)
        pid, psha = prev.get("recording_id"), prev.get("manifest_sha256")
        if not isinstance(pid, str) or not isinstance(psha, str):
            return ChainInfo(None, None, "previous is malformed: see the verdict", False)
        there = self.storage / pid / MANIFEST
        if self._is_recording(pid) and there.is_file():
            actual = hashlib.sha256(there.read_bytes()).hexdigest()
            if actual == psha:
                return ChainInfo(
                    pid, psha, f"links to {pid} on this card: its manifest matches", True
                )
            return ChainInfo(
                pid,
                psha,
                f"names {pid} with manifest sha256 {psha[:16]}..., but its manifest on this card "
                f"is {actual[:16]}... (changed after this recording was signed)",
                False,
            )
        if receipt_path(self.storage, pid).is_file():
            return ChainInfo(
                pid, psha, f"{pid} was offloaded; its receipt is kept in receipts/", True
            )
        return ChainInfo(
            pid, psha, f"{pid} is not on this card (an earlier card, or offloaded?)", None
        )

    def audit_entries(self, entry: Entry) -> list[dict[str, Any]]:
        path = self.storage / AUDIT_LOG
        try:
            if path.stat().st_size > MAX_AUDIT_BYTES:
                return []
            data = path.read_bytes()
        except OSError:
            return []
        out = []
        for line in data.split(b"\n"):
            try:
                e = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if not isinstance(e, dict) or e.get("recording_id") != entry.id:
                continue
            detail = {
                k: v
                for k, v in e.items()
                if k not in ("seq", "utc", "event", "prev", "recording_id", "signature")
            }
            out.append(
                {"seq": e.get("seq"), "utc": e.get("utc"), "what": e.get("event"), "detail": detail}
            )
        return out

    def verify_commands(self, entry: Entry) -> list[str]:
        where = Path(self.shown) / entry.id
        key = self.key(entry)
        lines = [f"bodycam verify {where}"]
        if key.key_id is not None and key.pem is not None:
            lines.append(f"bodycam verify --key TRUSTED-COPY-OF-{entry.device}.pub.pem {where}")
        return lines
