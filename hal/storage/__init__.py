"""Storage: a directory with durable writes.

Evidence must survive power loss, so every file is written through an fd that
can be fsync'ed, directories are fsync'ed after entries appear, and manifests
are replaced atomically (temp file, fsync, rename, fsync the directory).
Storage also carries a timing model (:meth:`Storage.service_time`) so the
simulated writer can advance on virtual time; real storage reports 0 and
simply takes as long as it takes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hal.storage.lock import DirectoryLock


def _find_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` (which Python's os module does not offer), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_sync_file_range = _find_sync_file_range()
#: Start writing the range's dirty pages to the device; do not wait for any.
SYNC_FILE_RANGE_WRITE = 2


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable: a created, renamed or removed name survives power loss.

    The one implementation for the firmware, the offload and the evidence
    store (an interface module, so camera/ and server/ may use it).
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DurableFile:
    """A write-only binary file on a raw fd: no hidden buffering, explicit sync."""

    def __init__(self, path: Path, guard: StorageGuard | None = None, append: bool = False) -> None:
        self.path = path
        self._guard = guard
        mode = os.O_APPEND if append else os.O_TRUNC
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o644)
        #: The file's size as far as this writer knows: what a sync makes durable.
        #: Appending starts from what is already there, so a simulated power cut
        #: keeps earlier boots' lines instead of cutting the file back to zero.
        self.bytes_written = os.fstat(self._fd).st_size if append else 0
        self._behind = self.bytes_written  # write_behind() has been asked up to here
        self._synced = -1  # bytes_written at the last sync (-1: never synced)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        if self._guard is not None:
            self._guard.before_write(len(view))
        while view:
            n = os.write(self._fd, view)
            self.bytes_written += n
            view = view[n:]
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered in Python; present for file-like callers."""

    def write_behind(self) -> None:
        """Have the kernel start writing what was written so far to the device; no wait.

        Promises nothing (only :meth:`sync` makes bytes durable): it lets the
        device work while the writer is still busy with the next bytes of a
        backlog, so the sync at its end finds little left to wait for. Linux
        only; elsewhere nothing.
        """
        if _sync_file_range is not None and self._fd >= 0 and self.bytes_written > self._behind:
            _sync_file_range(
                self._fd, self._behind, self.bytes_written - self._behind, SYNC_FILE_RANGE_WRITE
            )
            self._behind = self.bytes_written

    def sync(self) -> None:
        """Make every byte written durable. A second sync with nothing written in
        between has nothing to add (this fd is the file's only writer) and skips
        the fsync: a segment synced for its last record is closed right after."""
        if self.bytes_written != self._synced:
            os.fsync(self._fd)
            self._synced = self.bytes_written
        if self._guard is not None:
            self._guard.after_sync(self.path, self.bytes_written)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0


class StorageGuard:
    """Hook consulted before each write, for fault-injecting backends."""

    def before_write(self, nbytes: int) -> None:  # pragma: no cover - trivial default
        return None

    def after_sync(self, path: Path, size: int) -> None:  # pragma: no cover - trivial default
        return None


class Storage(ABC):
    """A root directory; paths are relative to it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock: DirectoryLock | None = None

    def path(self, rel: str) -> Path:
        return self.root / rel

    def lock(self) -> None:
        """Claim the directory for this firmware until :meth:`unlock` or the process ends.

        Raises :class:`hal.storage.lock.StorageBusy` if another firmware (or
        ``bodycam recover``) holds it: two writers on one card corrupt both.
        """
        from hal.storage.lock import DirectoryLock

        if self._lock is None:
            self._lock = DirectoryLock(self.root)
        self._lock.acquire()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    @abstractmethod
    def open_write(self, rel: str) -> DurableFile: ...

    @abstractmethod
    def open_append(self, rel: str) -> DurableFile: ...

    @abstractmethod
    def write_atomic(self, rel: str, data: bytes) -> None: ...

    @abstractmethod
    def truncate(self, rel: str, size: int) -> None:
        """Cut a file back to ``size`` bytes, durably (recovery after power loss)."""

    @abstractmethod
    def remove(self, rel: str) -> None: ...

    @abstractmethod
    def free_bytes(self) -> int:
        """Space left for new data."""

    @abstractmethod
    def makedirs(self, rel: str) -> None: ...

    def listdir(self, rel: str = "") -> list[str]:
        try:
            return sorted(os.listdir(self.path(rel)))
        except FileNotFoundError:
            return []

    def read(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def service_time(self, nbytes: int, start: float) -> float:
        """Seconds a write of ``nbytes`` starting at device time ``start`` takes (model)."""
        return 0.0


def enospc(path: str | os.PathLike[str]) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
