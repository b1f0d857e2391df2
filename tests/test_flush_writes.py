"""How the pre-event backlog reaches the card (issue 14): gathered writes, the hash beside
the writer, write-behind and no repeated fsync, and none of it changes a byte.

A deferred write (the pre-event flush) gathers what the muxer hands over and
writes it in one go; big writes are hashed on a thread of their own; the
kernel is asked to start writing them out at once; a sync with nothing new
to sync is skipped. Each is checked for what it must not change: the bytes
on the card, their sha256, and what the journal vouches for.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

import hal.storage
from camera.evidence.journal import Journal, read_journal_lines
from camera.evidence.records import JOURNAL
from camera.frames import EncodedFrame
from camera.segments import HASH_BEHIND, HashingFile, RecordingWriter
from hal.storage import DurableFile, StorageGuard
from hal.storage.local import LocalStorage
from tests.conftest import make_device


class Counting(StorageGuard):
    """Counts the writes and syncs that reach the files."""

    def __init__(self) -> None:
        self.writes: list[int] = []
        self.synced: list[tuple[str, int]] = []

    def before_write(self, nbytes: int) -> None:
        self.writes.append(nbytes)

    def after_sync(self, path: Path, size: int) -> None:
        self.synced.append((path.name, size))


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[EncodedFrame]:
    """Five seconds of signed H.264 from the simulated camera (GOP 1 s)."""
    dev = make_device(tmp_path_factory.mktemp("frames"))
    dev.run(until=5.2)
    out = dev.firmware.ring.frames_from(0.0)
    dev.shutdown()
    return out


def write_recording(
    root: Path, frames: list[EncodedFrame], deferred: bool
) -> tuple[Counting, dict[str, bytes], list[str]]:
    """Frames through a RecordingWriter in 2 s segments: as a flush (chunks of a
    second, one sync at the end) or as live frames (one at a time, sync points)."""
    storage = LocalStorage(root)
    guard = storage.guard = Counting()
    storage.makedirs("rec")
    journal = Journal(storage, "rec")
    writer = RecordingWriter(storage, "rec", "h264", 640, 360, 30, 2.0, journal)
    if deferred:
        for k in range(0, len(frames), 30):
            writer.write(frames[k : k + 30], defer_sync=True)
        writer.sync()
    else:
        for frame in frames:
            writer.write([frame])
    hashes = [s.sha256 for s in writer.close()]
    journal.close()
    files = {p.name: p.read_bytes() for p in sorted((root / "rec").glob("segment-*"))}
    return guard, files, hashes


def test_a_deferred_flush_writes_the_same_bytes_in_a_few_large_writes(
    tmp_path: Path, frames: list[EncodedFrame]
) -> None:
    flush, flushed, flush_hashes = write_recording(tmp_path / "a", frames, deferred=True)
    live, written, live_hashes = write_recording(tmp_path / "b", frames, deferred=False)
    assert flushed == written  # every byte, renumbered counters included
    assert flush_hashes == live_hashes == [hashlib.sha256(d).hexdigest() for d in written.values()]
    assert len(written) >= 3  # segments closed inside the flush, and across its chunks
    # One write per second of video and segment, not one per packet.
    assert len(flush.writes) <= len(frames) // 30 + 2 * len(written) + 8
    assert len(live.writes) >= len(frames)


def test_the_flush_journals_only_what_was_synced(
    tmp_path: Path, frames: list[EncodedFrame]
) -> None:
    """Every size the journal vouches for had been fsynced before its record was written."""
    guard, files, _ = write_recording(tmp_path, frames, deferred=True)
    records = read_journal_lines(tmp_path / "rec" / JOURNAL).records
    for r in records:
        if r.kind in ("sync", "segment"):
            synced = [size for name, size in guard.synced if name == r.payload["file"]]
            assert r.payload["bytes"] in synced
    assert [r.payload["bytes"] for r in records if r.kind == "segment"] == [
        len(d) for d in files.values()
    ]


def test_held_bytes_reach_the_file_only_at_the_release(tmp_path: Path) -> None:
    out = DurableFile(tmp_path / "f")
    sink = HashingFile(out)
    sink.hold()
    parts = [os.urandom(1000) for _ in range(100)]
    for part in parts:
        sink.write(part)
    assert out.bytes_written == 0 and (tmp_path / "f").stat().st_size == 0
    sink.release()
    whole = b"".join(parts)
    assert (tmp_path / "f").read_bytes() == whole
    sink.write(b"live")  # after the release, straight through again
    assert out.bytes_written == len(whole) + 4
    assert sink.hexdigest() == hashlib.sha256(whole + b"live").hexdigest()
    out.close()


def test_big_writes_hashed_beside_the_writer_give_the_same_digest(tmp_path: Path) -> None:
    """Writes above HASH_BEHIND go to the hashing thread, small ones inline, in order."""
    out = DurableFile(tmp_path / "f")
    sink = HashingFile(out)
    sizes = [HASH_BEHIND * 3, 10, HASH_BEHIND, 1, HASH_BEHIND + 7, 100]
    parts = [os.urandom(n) for n in sizes]
    for part in parts:
        sink.write(part)
    assert sink.hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()
    out.close()


def test_a_sync_with_nothing_new_skips_the_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    guard = Counting()
    f = DurableFile(tmp_path / "f", guard)
    f.sync()  # a new file: synced even empty
    f.sync()
    f.write(b"x")
    f.sync()
    f.sync()
    assert len(calls) == 2
    assert guard.synced == [("f", 0), ("f", 0), ("f", 1), ("f", 1)]  # the guard still told
    f.close()


def test_write_behind_asks_the_kernel_for_each_new_range_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        hal.storage, "_sync_file_range", lambda fd, off, n, flags: asked.append((off, n, flags))
    )
    f = DurableFile(tmp_path / "f")
    f.write_behind()  # nothing written: nothing asked
    f.write(b"a" * 100)
    f.write_behind()
    f.write_behind()
    f.write(b"b" * 50)
    f.write_behind()
    assert asked == [(0, 100, 2), (100, 50, 2)]
    f.close()


def test_write_behind_really_calls_the_kernel(tmp_path: Path) -> None:
    # Linux has the call (so this test reaches the kernel there); elsewhere it is a no-op.
    assert (hal.storage._sync_file_range is not None) == sys.platform.startswith("linux")
    f = DurableFile(tmp_path / "f")
    f.write(os.urandom(1 << 20))
    f.write_behind()  # raises nothing, changes nothing
    f.sync()
    f.close()
    assert (tmp_path / "f").stat().st_size == 1 << 20
