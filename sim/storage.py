"""Simulated storage: a real directory plus a timing and fault model.

Bytes really land on disk (so recordings can be decoded and verified), while
how long each write takes is modelled on the virtual clock: a fixed latency,
a bandwidth, stall windows during which nothing completes, and a capacity
after which writes fail with ENOSPC. Faults are chosen by the scenario, not by
hooks inside the firmware.
"""

from __future__ import annotations

import os
from pathlib import Path

from hal.storage import DurableFile, StorageGuard, enospc
from hal.storage.local import LocalStorage


class _Capacity(StorageGuard):
    def __init__(self, storage: SimStorage) -> None:
        self.storage = storage

    def before_write(self, nbytes: int) -> None:
        s = self.storage
        if s.capacity_bytes is not None and s.bytes_written + nbytes > s.capacity_bytes:
            raise enospc(s.root)
        s.bytes_written += nbytes

    def after_sync(self, path: Path, size: int) -> None:
        self.storage.synced[path] = size


class SimStorage(LocalStorage):
    def __init__(
        self,
        root: str | os.PathLike[str],
        bandwidth: float = 20e6,
        latency: float = 0.002,
    ) -> None:
        super().__init__(root)
        self.bandwidth = bandwidth  # bytes per second (a mid-range SD card)
        self.latency = latency  # seconds per write request
        self.stalls: list[tuple[float, float]] = []  # [start, end) device seconds
        self.capacity_bytes: int | None = None
        self.bytes_written = 0
        self.synced: dict[Path, int] = {}  # bytes of each file known to be on the card
        self.opened: set[Path] = set()  # files this run wrote (power_cut touches no others)
        self.guard = _Capacity(self)

    def stall(self, start: float, end: float) -> None:
        """Writes that would be in progress during [start, end) wait until end."""
        self.stalls.append((start, end))
        self.stalls.sort()

    def fill(self, free_bytes: int = 0) -> None:
        """The card is (nearly) full: ``free_bytes`` more, then writes fail with ENOSPC."""
        self.capacity_bytes = self.bytes_written + free_bytes

    def free_bytes(self) -> int:
        if self.capacity_bytes is None:
            return super().free_bytes()
        return max(0, self.capacity_bytes - self.bytes_written)

    def power_cut(self) -> None:
        """What a pulled battery leaves: every file cut back to its last fsync.

        Appended files (segments, journals) were opened here, so each one's
        synced size is known; a file never synced is left empty.
        """
        for path in sorted(self.opened):
            if path.is_file():
                size = self.synced.get(path, 0)
                if path.stat().st_size > size:
                    os.truncate(path, size)

    def open_write(self, rel: str) -> DurableFile:
        self.opened.add(self.path(rel))
        return super().open_write(rel)

    def open_append(self, rel: str) -> DurableFile:
        self.opened.add(self.path(rel))
        return super().open_append(rel)

    def service_time(self, nbytes: int, start: float) -> float:
        t = start
        for s, e in self.stalls:
            if s <= t < e:
                t = e
        t += self.latency + nbytes / self.bandwidth
        for s, e in self.stalls:  # a stall that begins mid-write holds it up
            if start < s < t:
                t += e - s
        return t - start
