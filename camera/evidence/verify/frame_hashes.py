"""MJPEG's per-frame hashes (SPEC 12): the signed manifest vouches for each frame.

MJPEG has no signatures in its stream, so the manifest lists the sha256 of
every frame's packet per segment, and the manifest is signed. A segment whose
bytes were re-hashed into the manifest after a frame was altered fails here,
frame by frame. A segment recovery described from the file itself (the open
one at a power cut) has no list: that is a note, not a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from camera.evidence.records import MANIFEST
from camera.evidence.verify.decode import DECODE_MARGIN, Prefix, QuietReader
from camera.evidence.verify.files import FORMAT_OF_SUFFIX, Unreadable, open_regular, segment_path
from camera.evidence.verify.findings import Findings, Report, show
from camera.evidence.verify.rules import SHA256_LIST

FIELD = "frame_sha256"


def packet_hashes(path: Path, end: int | None, limit: int) -> Iterator[str]:
    """sha256 of each video packet's bytes, at most ``limit``; stops quietly on damage."""
    try:
        f = open_regular(path)
    except (Unreadable, OSError):
        return
    with f:
        source = f if end is None else Prefix(f, end)
        try:
            container = av.open(
                QuietReader(source), format=FORMAT_OF_SUFFIX.get(path.suffix, "matroska")
            )
        except Exception:
            return
        with container:
            if not container.streams.video:
                return
            packets = container.demux(container.streams.video[0])
            n = 0
            while n < limit:
                try:
                    packet = next(packets)
                except StopIteration:
                    return
                except Exception:  # damaged: decode reports where
                    return
                if packet.size:
                    n += 1
                    yield hashlib.sha256(bytes(packet)).hexdigest()


def check_frame_hashes(
    directory: Path,
    segments: list[dict[str, Any]],
    complete: dict[str, int],
    recovered: bool,
    required: bool,
    report: Report,
) -> None:
    """Every frame's packet against the manifest's signed list, named by segment and frame.

    ``required``: the list must be there (the manifest is signed, or keys
    were given); a manifest from before signing has none, and that is fine.
    """
    for i, seg in enumerate(segments):
        found = Findings(seg["file"])
        listed = seg.get(FIELD)
        if listed is None:
            if not required:
                continue
            if recovered:
                report.notes.append(
                    f"{found.name}: no {FIELD} (a recovered segment): its frames are vouched "
                    "for by the segment's sha256 only"
                )
            else:
                report.problems.append(f"{found.name}: no {FIELD} in the manifest (unsigned)")
            continue
        if not SHA256_LIST.ok(listed):
            wanted = SHA256_LIST.wanted
            report.problems.append(
                f"{MANIFEST}: segments[{i}].{FIELD} is {show(listed)}, expected {wanted}"
            )
            continue
        try:
            path = segment_path(directory, seg["file"])
        except Unreadable:
            continue  # check_segment has said so
        if not path.is_file():
            continue  # likewise
        codes = report.segment_codes.get(seg["file"], [])
        got = list(packet_hashes(path, complete.get(seg["file"]), len(listed) + DECODE_MARGIN))
        for k, (have, want) in enumerate(zip(got, listed, strict=False)):
            if have != want:
                code = codes[k] if len(codes) == len(got) else None
                number = code if code is not None else seg["first_frame"] + k
                found.add(
                    f"frame {number} altered (hash differs from the manifest's frame list)",
                    "altered frames",
                )
        if len(got) != len(listed):
            found.add(f"{len(got)} frames, the manifest's frame list has {len(listed)}")
        report.problems += found.close()
