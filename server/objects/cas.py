"""The embedded object store: a content-addressed directory, written once, read-only after.

Layout (issue 16's contract)::

    objects/<sha[0:2]>/<sha[2:4]>/<sha256>   mode 0444, never overwritten
    objects/tmp/                             uploads in progress (emptied at start)
    objects/locks.db                         retention dates and legal holds (SQLite)

Why each step of a write: the bytes go to a temp file while their sha256 is
computed, so a body that is not what it claims (or a connection that drops
half way) leaves nothing behind; fsync before the name appears, so a power cut
never leaves a named object with missing bytes; ``link`` rather than
``rename`` to place it, because link refuses an existing name (an object is
never overwritten, not even by identical bytes); fsync of the directory so the
name itself survives a power cut; mode 0444 so a careless process cannot
write into evidence.

This is not WORM against root: anyone who owns the machine can delete a file.
Retention and holds are the application's record here (``locks.db``), enforced
by :meth:`CasStore.delete`; an agency that needs storage-enforced retention
uses the S3 store with Object Lock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from hal.storage import fsync_dir
from server.objects import HashMismatch, Locked, Mode, ObjectStore, StoreFull

__all__ = ["DEFAULT_RESERVE", "CasStore"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
#: Room kept free by default: the metadata database and the logs live on the same disk.
DEFAULT_RESERVE = 64 << 20
_TMP = "tmp"
_LOCKS = "locks.db"
_MODES = ("governance", "compliance")


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise ValueError(f"expected a sha256 as 64 lowercase hex digits, got {sha256!r}")
    return sha256


def _utc(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"expected an aware datetime (UTC), got {when!r}")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CasStore(ObjectStore):
    """Objects as files named by their sha256 under ``root``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        reserve_bytes: int = DEFAULT_RESERVE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clean: bool = True,
    ) -> None:
        self.root = Path(root)
        self.reserve_bytes = reserve_bytes
        self._now = now
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / _TMP
        if clean:
            # A killed upload left its temp file: it was never an object, so it goes.
            # (Not when another process may be uploading: an administrator's command.)
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(exist_ok=True)
        self._locks_lock = threading.Lock()
        self._locks = sqlite3.connect(self.root / _LOCKS, check_same_thread=False, timeout=30)
        with self._locks:
            self._locks.execute("PRAGMA synchronous=FULL")
            self._locks.execute(
                "CREATE TABLE IF NOT EXISTS locks (sha256 TEXT PRIMARY KEY, "
                "retain_until TEXT, mode TEXT, legal_hold INTEGER NOT NULL DEFAULT 0)"
            )

    @classmethod
    def from_url(cls, url: str, clean: bool = True) -> CasStore:
        """``file:///abs/path`` with an optional ``?reserve_mb=N`` (default 64)."""
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not path:
            raise ValueError(f"objects URL {url!r}: expected file:///ABSOLUTE/PATH")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"reserve_mb"})
        if unknown:
            raise ValueError(f"objects URL {url!r}: unknown parameter {unknown[0]!r}")
        reserve = DEFAULT_RESERVE
        if "reserve_mb" in query:
            text = query["reserve_mb"][-1]
            if not text.isdigit():
                raise ValueError(
                    f"objects URL {url!r}: reserve_mb: expected megabytes >= 0, got {text!r}"
                )
            reserve = int(text) << 20
        return cls(path, reserve_bytes=reserve, clean=clean)

    def path_of(self, sha256: str) -> Path:
        """Where the object lives (whether or not it does)."""
        sha = _check_sha(sha256)
        return self.root / sha[0:2] / sha[2:4] / sha

    # -- reading ---------------------------------------------------------------
    def has(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return open(self.path_of(sha256), "rb")  # the caller closes it

    def size(self, sha256: str) -> int:
        return self.path_of(sha256).stat().st_size

    def free_bytes(self) -> int | None:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    # -- writing ---------------------------------------------------------------
    def _room_for(self, more: int) -> None:
        free = self.free_bytes()
        if free is not None and free - more < self.reserve_bytes:
            raise StoreFull(
                f"object store {self.root} is full: {free >> 20} MB free, "
                f"{self.reserve_bytes >> 20} MB kept in reserve"
            )

    def put(self, sha256: str, source: BinaryIO, size: int | None = None) -> bool:
        target = self.path_of(sha256)
        if target.is_file():
            self._check_only(sha256, source, size)
            return False
        self._room_for(size or 0)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix=f"{sha256[:16]}.")
        tmp = Path(name)
        try:
            digest, count = self._copy(fd, source, size)
            _verdict(sha256, digest, count, size)
            os.fsync(fd)
            os.fchmod(fd, 0o444)
        except OSError as exc:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(f"object store {self.root} is full: {exc.strerror}") from None
            raise
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        try:
            return self._place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _copy(self, fd: int, source: BinaryIO, size: int | None) -> tuple[str, int]:
        h = hashlib.sha256()
        count = 0
        while chunk := source.read(_CHUNK):
            h.update(chunk)
            count += len(chunk)
            if size is not None and count > size:
                break  # more than declared: _verdict says so, nothing is kept
            if size is None and count % (64 * _CHUNK) < len(chunk):
                self._room_for(0)  # an undeclared length: look again every 64 MB
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        return h.hexdigest(), count

    def _check_only(self, sha256: str, source: BinaryIO, size: int | None) -> None:
        """An object already held: the stream is still read and must be what it claims."""
        h = hashlib.sha256()
        count = 0
        while chunk := source.read(_CHUNK):
            h.update(chunk)
            count += len(chunk)
        _verdict(sha256, h.hexdigest(), count, size)

    def _place(self, tmp: Path, target: Path) -> bool:
        made: list[Path] = []
        for folder in (target.parent.parent, target.parent):
            try:
                folder.mkdir()
                made.append(folder)
            except FileExistsError:
                pass
        for folder in made:
            fsync_dir(folder.parent)
        try:
            os.link(tmp, target)  # never clobbers: EEXIST if the object appeared meanwhile
        except FileExistsError:
            return False  # stored by a concurrent upload of the same bytes
        fsync_dir(target.parent)
        return True

    # -- retention -------------------------------------------------------------
    def _row(self, sha256: str) -> tuple[str | None, str | None, int]:
        row = self._locks.execute(
            "SELECT retain_until, mode, legal_hold FROM locks WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return (None, None, 0) if row is None else (row[0], row[1], row[2])

    def retain(self, sha256: str, until: datetime, mode: Mode) -> None:
        """Record retention until ``until``; a later date or a stricter mode already held stays."""
        if mode not in _MODES:
            raise ValueError(f"expected a retention mode {' or '.join(_MODES)}, got {mode!r}")
        wanted = _utc(until)
        if not self.has(sha256):
            raise FileNotFoundError(f"no object {sha256}")
        with self._locks_lock, self._locks:
            held_until, held_mode, hold = self._row(sha256)
            if held_until is not None and held_until <= _utc(self._now()):
                held_until, held_mode = None, None  # run out: it protects nothing any more
            new_until = max(wanted, held_until) if held_until else wanted
            new_mode = "compliance" if "compliance" in (mode, held_mode) else "governance"
            self._locks.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?)",
                (sha256, new_until, new_mode, hold),
            )

    def legal_hold(self, sha256: str, on: bool) -> None:
        if not self.has(sha256):
            raise FileNotFoundError(f"no object {sha256}")
        with self._locks_lock, self._locks:
            held_until, held_mode, _ = self._row(sha256)
            self._locks.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?)",
                (sha256, held_until, held_mode, int(bool(on))),
            )

    def delete(self, sha256: str, *, bypass_governance: bool = False) -> None:
        target = self.path_of(sha256)
        with self._locks_lock, self._locks:
            until, mode, hold = self._row(sha256)
            if hold:
                raise Locked(f"object {sha256} is under a legal hold")
            if until is not None and until > _utc(self._now()):
                if mode == "compliance":
                    raise Locked(f"object {sha256} is retained (compliance) until {until}")
                if not bypass_governance:
                    raise Locked(
                        f"object {sha256} is retained (governance) until {until}; "
                        "deleting it needs bypass_governance"
                    )
            target.unlink()  # FileNotFoundError if absent
            fsync_dir(target.parent)
            self._locks.execute("DELETE FROM locks WHERE sha256 = ?", (sha256,))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._locks.close()


def _verdict(named: str, digest: str, count: int, size: int | None) -> None:
    """HashMismatch unless the stream was ``size`` bytes (if declared) hashing to ``named``."""
    if size is not None and count != size:
        raise HashMismatch(
            f"the body is {count if count <= size else f'more than {size}'} bytes, "
            f"not the {size} declared"
        )
    if digest != named:
        raise HashMismatch(f"sha256 of the body is {digest}, not the {named} named")
