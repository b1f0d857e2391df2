"""The rejected area: what failed verification is kept, as received, with the reason.

Nothing a camera sends is silently dropped (issue 16; Axis's
``StoreRejectedContent``): a commit that does not verify, or contradicts a
recording already held, is kept as ``DIR/rejected/<recording>/<n>/`` (the
files as committed, plus ``reason.json``), recorded in the ``rejections``
table and audited, all in one transaction. ``n`` counts the attempts for one
recording from 1; a directory left by a crash between the rename and the
commit is never reused (``n`` is past every directory there too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hal.storage import fsync_dir
from server import audit
from server.meta import Meta, rejections

__all__ = ["keep_rejected"]


def _last_on_disk(folder: Path) -> int:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 0
    return max((int(n) for n in names if n.isdigit()), default=0)


def keep_rejected(
    meta: Meta,
    area: Path,
    staged: Path,
    *,
    recording: str,
    device: str,
    reason: str,
    problems: list[str],
    files: dict[str, str],
    utc: str,
    recording_row: dict[str, Any] | None,
) -> str:
    """Move ``staged`` (the recording's files) into the area; its path relative to DIR.

    ``recording_row``: the recordings row to write with status rejected
    (None when a verified recording of that id is held: it is never touched).
    """
    folder = area / recording
    with meta.write() as conn:
        n = max(meta.last_rejection(conn, recording), _last_on_disk(folder)) + 1
        kept = f"{area.name}/{recording}/{n}"
        reason_doc = {
            "recording": recording,
            "n": n,
            "device": device,
            "utc": utc,
            "reason": reason,
            "problems": problems,
            "files": files,
        }
        with open(staged / "reason.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(reason_doc, indent=2, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        new_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        if new_folder:
            fsync_dir(area)
        os.rename(staged, folder / str(n))
        fsync_dir(folder)
        conn.execute(
            rejections.insert().values(
                recording=recording,
                n=n,
                device=device,
                reason=reason,
                problems=problems,
                files=files,
                utc=utc,
            )
        )
        if recording_row is not None:
            meta.put_recording(conn, {**recording_row, "status": "rejected", "receipt": None})
        audit.append(
            conn,
            utc=utc,
            actor=f"device:{device}",
            action="rejected",
            target=recording,
            detail={"n": n, "reason": reason, "problems": len(problems), "kept": kept},
        )
    return kept
