"""Derivatives for court: the recording as one MP4, or a clip of it, by ``bodycam export``'s code.

Both are :func:`camera.export.export_recording` (a stream copy: every packet
is the camera's, nothing re-encoded) of the recording as held, into a
private scratch directory; the original is only read. A clip is a run of
whole segments, chosen as the segments that hold the two times asked for:
each segment starts on a keyframe, so the cut is GOP-aligned and the
clip's in-stream signatures still validate GOP by GOP with the device's key
(camera.evidence.svf_check; the clip's last GOP is signed by an SEI in the
GOP after it, so it reads as unsigned unless the clip runs to the end).

The manifest the export reads must be the one the page describes (its
sha256), so a file swapped between the two is refused, not exported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from camera.evidence.records import MANIFEST
from camera.export import ExportError, export_recording
from server.review.catalog import Catalog, Entry
from server.review.playlist import segments_of

__all__ = ["Derivative", "clip_range", "make_export"]


@dataclass(frozen=True)
class Derivative:
    path: Path
    #: The name offered for the download.
    filename: str
    sha256: str
    bytes: int
    frames: int
    #: "mp4" (the whole recording) or "clip"
    kind: str
    #: The clip's segments (indices into the manifest's list), None for the whole recording.
    segments: range | None

    def audit_detail(self, parent_manifest_sha256: str | None) -> dict[str, object]:
        """What the audit entry records: the derivative, and the parent it came from."""
        detail: dict[str, object] = {
            "derivative": self.kind,
            "parent_manifest_sha256": parent_manifest_sha256,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "frames": self.frames,
            "file": self.filename,
        }
        if self.segments is not None:
            detail["segments"] = [self.segments.start, self.segments.stop - 1]
        return detail


def clip_range(entry: Entry, start: float, end: float) -> range:
    """The whole segments holding video times ``start``..``end`` (seconds from the first frame)."""
    assert entry.manifest is not None
    segments = segments_of(entry.manifest)
    if not segments:
        raise ExportError(f"{entry.id}: no segments to cut a clip from")
    if not (start == start and end == end) or end < start:  # NaN, or backwards
        raise ExportError(f"clip from {start} to {end}: expected a start before the end")
    origin = segments[0].start

    def holding(t: float) -> int:
        device = origin + max(t, 0.0)
        index = 0
        for seg in segments:
            if seg.start <= device:
                index = seg.index
        return index

    return range(holding(start), holding(end) + 1)


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_export(
    catalog: Catalog, entry: Entry, scratch: Path, segments: range | None = None
) -> Derivative:
    """The MP4 (``segments`` None) or the clip, written into ``scratch``; ExportError if not."""
    if segments is None:
        filename, kind = f"{entry.id}.mp4", "mp4"
    else:
        first, last = segments.start, segments.stop - 1
        filename, kind = f"{entry.id}.clip-{first:04d}-{last:04d}.mp4", "clip"
    with catalog.materialize(entry) as directory:
        manifest = directory / MANIFEST
        if entry.manifest_sha256 is not None and _hash(manifest) != entry.manifest_sha256:
            raise ExportError(
                f"{entry.id}: {MANIFEST} changed since the page read it; reload and try again"
            )
        result = export_recording(directory, scratch / filename, segments=segments)
    return Derivative(
        result.path, filename, result.sha256, result.bytes, result.frames, kind, segments
    )
