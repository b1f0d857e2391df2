"""One running firmware per storage directory: an advisory ``flock`` on the directory itself.

Two firmwares writing the same card would interleave recording ids and
journals, and ``bodycam recover`` run beside a live firmware would cut back
the segment it is still writing. So the firmware holds an exclusive lock on
its storage directory from boot to shutdown, and ``bodycam recover`` takes
the same lock before touching anything.

The lock is a ``flock`` on the directory's own descriptor: no lock file is
added to the evidence store, and the kernel drops the lock when the process
dies however it dies (power cut, SIGKILL, crash), so a stale lock never
blocks the next boot. ``flock`` locks belong to an open file description,
so a second holder in the same process conflicts too, just as a second
process does. The descriptor is not inherited by child processes (PEP 446),
so a helper process cannot keep the card locked after the firmware exits.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StorageLockError(Exception):
    """The storage directory cannot be locked; the message is one line naming it."""


class StorageBusy(StorageLockError):
    """Another running firmware (or ``bodycam recover``) holds the directory."""


class DirectoryLock:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting: a busy card is refused, never queued for."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StorageLockError(
                f"{self.directory}: cannot open the storage directory to lock it: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageBusy(
                f"{self.directory}: storage directory in use: a running firmware "
                "(or bodycam recover) holds its lock"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StorageLockError(
                f"{self.directory}: cannot lock the storage directory: {exc.strerror or exc}"
            ) from None
        self._fd = fd

    def release(self) -> None:
        """Give the directory back; closing the descriptor drops the flock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
