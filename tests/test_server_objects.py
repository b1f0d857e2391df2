"""What the embedded object store promises beyond the shared contract (tests/test_object_stores.py).

The layout and modes on disk, a killed upload's temp file removed at start,
an object never rewritten, and a full disk (the reserve, or ENOSPC itself)
keeping nothing.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from server.objects import StoreFull, open_store
from server.objects.cas import DEFAULT_RESERVE, CasStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_objects_are_named_by_their_hash_and_read_only(tmp_path: Path) -> None:
    store = CasStore(tmp_path / "objects")
    data = b"evidence"
    assert store.put(sha(data), io.BytesIO(data), len(data)) is True
    path = tmp_path / "objects" / sha(data)[:2] / sha(data)[2:4] / sha(data)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(store.tmp) == []


def test_an_object_already_held_is_never_rewritten(tmp_path: Path) -> None:
    store = CasStore(tmp_path)
    data = b"evidence"
    store.put(sha(data), io.BytesIO(data))
    before = store.path_of(sha(data)).stat()
    assert store.put(sha(data), io.BytesIO(data)) is False
    after = store.path_of(sha(data)).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_killed_uploads_temp_file_is_removed_at_start(tmp_path: Path) -> None:
    CasStore(tmp_path).close()
    left = tmp_path / "tmp" / "0123456789abcdef.partial"
    left.write_bytes(b"half a segment")
    store = CasStore(tmp_path)
    assert os.listdir(store.tmp) == []


def test_below_the_reserve_the_store_is_full_and_keeps_nothing(tmp_path: Path) -> None:
    free = CasStore(tmp_path).free_bytes()
    assert free is not None
    store = CasStore(tmp_path, reserve_bytes=free + (1 << 30))
    data = b"x" * 1000
    with pytest.raises(StoreFull, match="is full"):
        store.put(sha(data), io.BytesIO(data), len(data))
    assert not store.has(sha(data)) and os.listdir(store.tmp) == []


def test_a_disk_that_fills_mid_write_is_store_full_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CasStore(tmp_path, reserve_bytes=0)

    def no_space(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    data = b"x" * 1000
    with pytest.raises(StoreFull, match="No space left on device"):
        store.put(sha(data), io.BytesIO(data), len(data))
    monkeypatch.undo()
    assert not store.has(sha(data)) and os.listdir(store.tmp) == []


def test_the_url_names_the_directory_and_the_reserve(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/objects?reserve_mb=5")
    assert isinstance(store, CasStore)
    assert (store.root, store.reserve_bytes) == (tmp_path / "objects", 5 << 20)
    assert CasStore.from_url(f"file://{tmp_path}").reserve_bytes == DEFAULT_RESERVE


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("file://host/objects", "expected file:///ABSOLUTE/PATH"),
        ("file:///x?reserve=1", "unknown parameter 'reserve'"),
        ("file:///x?reserve_mb=-1", "reserve_mb: expected megabytes >= 0"),
        ("ftp://x/y", "expected file:///ABSOLUTE/PATH or s3://BUCKET"),
    ],
)
def test_url_mistakes_are_one_line_naming_the_url(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        open_store(url)
