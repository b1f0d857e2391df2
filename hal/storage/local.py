"""A local directory (SD card, SSD, tmpfs) with fsync'ed, atomic writes."""

from __future__ import annotations

import os

from hal.storage import DurableFile, Storage, StorageGuard, fsync_dir


class LocalStorage(Storage):
    guard: StorageGuard | None = None

    def open_write(self, rel: str) -> DurableFile:
        path = self.path(rel)
        existed = path.exists()
        f = DurableFile(path, self.guard)
        if not existed:
            fsync_dir(path.parent)
        return f

    def open_append(self, rel: str) -> DurableFile:
        path = self.path(rel)
        existed = path.exists()
        f = DurableFile(path, self.guard, append=True)
        if not existed:
            fsync_dir(path.parent)
        return f

    def truncate(self, rel: str, size: int) -> None:
        fd = os.open(self.path(rel), os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, rel: str) -> None:
        path = self.path(rel)
        path.unlink()
        fsync_dir(path.parent)

    def free_bytes(self) -> int:
        # One system call where the root exists (asked before every write of a
        # recording, and each call may hand the GIL to capture and wait to get it back).
        try:
            st = os.statvfs(self.root)
        except FileNotFoundError:
            st = os.statvfs(self.root.parent)
        return st.f_bavail * st.f_frsize

    def write_atomic(self, rel: str, data: bytes) -> None:
        path = self.path(rel)
        tmp = path.with_name(f".{path.name}.tmp")
        f = DurableFile(tmp, self.guard)
        try:
            f.write(data)
            f.sync()
        finally:
            f.close()
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def makedirs(self, rel: str) -> None:
        path = self.path(rel)
        if path.is_dir():
            return
        path.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent)
