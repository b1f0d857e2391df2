"""What recovery did: the ``recovery`` entry of a recovered manifest (SPEC section 7).

Recovery keeps bytes it cut off as ``segment-NNNN.tail`` files and may leave
segments short; the manifest lists both. A listed tail is accepted on disk
only if it matches its listed size and sha256, and a short segment is decoded
only up to where its whole frames end.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from camera.evidence.records import MANIFEST, SEGMENT_PREFIX, TAIL_SUFFIX
from camera.evidence.verify.files import Unreadable, hash_open, open_regular, segment_path
from camera.evidence.verify.findings import show_name
from camera.evidence.verify.rules import COUNT, LIST, SHA256, TEXT, check_fields, check_list

RECOVERY = {
    "skipped_journal_lines": LIST,
    "tails": LIST,
    "short_segments": LIST,
    "unclosed_segments": LIST,
    "missing_segments": LIST,
}
TAIL = {"file": TEXT, "segment": TEXT, "offset": COUNT, "bytes": COUNT, "sha256": SHA256}
SHORT = {
    "file": TEXT,
    "bytes": COUNT,
    "journal_bytes": COUNT,
    "journal_frames": COUNT,
    "frames": COUNT,
    "complete_bytes": COUNT,
}
TAIL_NAME = re.compile(rf"{re.escape(SEGMENT_PREFIX)}[0-9]+{re.escape(TAIL_SUFFIX)}")


def check_recovery(
    directory: Path, m: dict[str, Any], problems: list[str]
) -> tuple[dict[str, int], set[str]]:
    """The ``recovery`` entry of a recovered manifest, and the tails it keeps.

    Returns where each short segment's whole frames end, and the tail files
    it lists (accepted on disk; each must match its listed size and sha256).
    """
    r = m.get("recovery")
    if r is None:
        return {}, set()
    if not check_fields(r, RECOVERY, "recovery", problems):
        return {}, set()
    tails: set[str] = set()
    for t in check_list(r["tails"], TAIL, "recovery.tails", problems):
        name = show_name(t["file"])
        if not TAIL_NAME.fullmatch(t["file"]):
            problems.append(f"{MANIFEST}: recovery lists {name}, expected segment-NNNN.tail")
            continue
        tails.add(t["file"])
        try:
            with open_regular(segment_path(directory, t["file"])) as f:
                digest, size = hash_open(f)
        except (Unreadable, OSError) as exc:
            detail = str(exc) if isinstance(exc, Unreadable) else f"cannot be read: {exc.strerror}"
            problems.append(f"{name}: {detail}")
            continue
        if size != t["bytes"]:
            problems.append(f"{name}: {size} bytes, manifest says {t['bytes']}")
        if digest != t["sha256"]:
            problems.append(f"{name}: sha256 mismatch (altered or damaged)")
    complete: dict[str, int] = {}
    for s in check_list(r["short_segments"], SHORT, "recovery.short_segments", problems):
        if s["complete_bytes"] > s["bytes"] or s["bytes"] >= s["journal_bytes"]:
            problems.append(
                f"{MANIFEST}: recovery.short_segments: {show_name(s['file'])} "
                f"is not short as described"
            )
            continue
        complete[s["file"]] = s["complete_bytes"]
    return complete, tails
