"""What is on disk now against what the manifest (or the journal) lists.

Sizes only: a ``stat`` per file is instant even for hours of video, while a
sha256 reads every byte, which is ``bodycam verify``'s job (it says so). A
deleted segment, a truncated one, or a file someone added then shows at a
glance, and the total on disk is what is really there, not what was written.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from camera.evidence.records import JOURNAL, MANIFEST, SEGMENT_PREFIX
from camera.evidence.verify.files import Unreadable, segment_path
from camera.inspection.model import DiskInfo, ExtraFile, SegmentOnDisk, SegmentState


def _size(directory: Path, name: str) -> int | SegmentState:
    """The size of a listed file, or why there is none to compare."""
    try:
        path = segment_path(directory, name)
    except Unreadable:
        return SegmentState.REFUSED
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return SegmentState.MISSING
    except OSError as exc:
        return SegmentState.MISSING if exc.errno == errno.ENOENT else SegmentState.UNREADABLE
    return st.st_size if stat.S_ISREG(st.st_mode) else SegmentState.NOT_A_FILE


def _entry(
    directory: Path, name: str, listed: int, open_segment: bool = False, journaled: bool = True
) -> SegmentOnDisk:
    size = _size(directory, name)
    if isinstance(size, SegmentState):
        return SegmentOnDisk(file=name, listed_bytes=listed, on_disk_bytes=None, state=size)
    if not journaled:
        state = SegmentState.NEVER_SYNCED
    elif size == listed:
        state = SegmentState.OK
    elif open_segment and size > listed:
        state = SegmentState.PAST_LAST_SYNC
    else:
        state = SegmentState.SIZE_DIFFERS
    return SegmentOnDisk(file=name, listed_bytes=listed, on_disk_bytes=size, state=state)


def _names(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _extra(directory: Path, name: str) -> ExtraFile:
    try:
        st = os.lstat(directory / name)
    except OSError:
        return ExtraFile(file=name, bytes=None)
    return ExtraFile(file=name, bytes=st.st_size if stat.S_ISREG(st.st_mode) else None)


def compare(
    directory: Path,
    listed: Sequence[tuple[str, int]],
    also_accounted: Iterable[str] = (),
    open_segment: str | None = None,
    interrupted: bool = False,
) -> DiskInfo:
    """``listed`` (file, bytes) against the directory; other files are extras.

    ``also_accounted`` are files the manifest explains elsewhere (recovery's
    tails). For an ``interrupted`` recording the listing is the journal's:
    ``open_segment`` may have grown past its listed, last-synced size, and a
    segment file the journal never listed is expected, as never synced,
    rather than extra.
    """
    segments = [_entry(directory, name, size, name == open_segment) for name, size in listed]
    known = {name for name, _ in listed} | set(also_accounted) | {MANIFEST, JOURNAL}
    extras: list[ExtraFile] = []
    for name in _names(directory):
        if name in known:
            continue
        if interrupted and name.startswith(SEGMENT_PREFIX):
            segments.append(_entry(directory, name, 0, journaled=False))
            continue
        extras.append(_extra(directory, name))
    return DiskInfo(
        listed_bytes=sum(size for _, size in listed),
        on_disk_bytes=sum(s.on_disk_bytes or 0 for s in segments),
        segments=segments,
        extra_files=extras,
    )
