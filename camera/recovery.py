"""Recovery of recordings interrupted by a power cut (or a storage failure).

A recording directory with a journal but no manifest was interrupted. From the
journal: the head, every closed segment (with its sha256), markers, gaps, and
the last fsync'ed size of the segment that was open. That segment is cut back
to that size (a whole number of complete packets, so it decodes to its last
frame), re-hashed, and the manifest is written with stop reason
``power_loss`` unless the journal already recorded a stop. A segment file the
journal never vouched for (no sync yet: under one sync interval of video) is
removed; nothing the journal vouched for is ever dropped.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from camera.errors import BodycamError
from camera.journal import JOURNAL, read_journal
from camera.manifest import MANIFEST, build_manifest, r6, write_manifest
from hal.storage import Storage

log = logging.getLogger(__name__)


class RecoveryError(BodycamError):
    """A recording cannot be rebuilt (no journal head)."""


def interrupted(storage: Storage) -> list[str]:
    """Recording directories under the storage root that have a journal but no manifest."""
    found = []
    for name in storage.listdir():
        path = storage.path(name)
        if path.is_dir() and (path / JOURNAL).is_file() and not (path / MANIFEST).exists():
            found.append(name)
    return found


def _sha256(storage: Storage, rel: str) -> str:
    h = hashlib.sha256()
    with storage.path(rel).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recover_recording(
    storage: Storage, directory: str, stop: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Rebuild ``directory``'s manifest from its journal; returns the manifest."""
    records = read_journal(storage.path(f"{directory}/{JOURNAL}"))
    heads = [p for kind, p in records if kind == "head"]
    if not heads:
        raise RecoveryError(f"{directory}: journal has no head record; cannot rebuild")
    closed = [p for kind, p in records if kind == "segment"]
    closed_files = {s["file"] for s in closed}
    last_sync: dict[str, dict[str, Any]] = {}
    for kind, p in records:
        if kind == "sync" and p["file"] not in closed_files:
            last_sync[p["file"]] = p
    segments = list(closed)
    for name, sync in sorted(last_sync.items()):
        rel = f"{directory}/{name}"
        if not storage.path(rel).is_file():
            continue
        storage.truncate(rel, sync["bytes"])
        segments.append({**sync, "sha256": _sha256(storage, rel)})
        segments[-1] = {
            k: segments[-1][k]
            for k in (
                "file",
                "sha256",
                "bytes",
                "frames",
                "first_frame",
                "last_frame",
                "start_time",
                "end_time",
            )
        }
    vouched = {s["file"] for s in segments}
    for name in storage.listdir(directory):
        if name.startswith("segment-") and name not in vouched:
            log.warning("%s/%s: never synced, removed", directory, name)
            storage.remove(f"{directory}/{name}")
        elif name.startswith(".") and name.endswith(".tmp"):
            storage.remove(f"{directory}/{name}")
    segments.sort(key=lambda s: s["file"])
    if stop is None:
        stops = [p for kind, p in records if kind == "stop"]
        end = segments[-1]["end_time"] if segments else heads[0]["trigger"]["time"]
        stop = stops[-1] if stops else {"reason": "power_loss", "time": r6(end)}
    markers = [p for kind, p in records if kind == "marker"]
    gaps = [p for kind, p in records if kind == "gap"]
    steps = [p for kind, p in records if kind == "wall_step"]
    manifest = build_manifest(heads[0], segments, stop, markers, gaps, steps)
    write_manifest(storage, directory, manifest)
    return manifest


def recover_storage(storage: Storage) -> list[dict[str, Any]]:
    """Recover every interrupted recording; one bad one does not stop the rest."""
    recovered = []
    for name in interrupted(storage):
        try:
            recovered.append(recover_recording(storage, name))
            log.warning("%s: recovered after interruption", name)
        except (RecoveryError, OSError, KeyError, TypeError, ValueError) as exc:
            log.error("%s: cannot recover: %s", name, exc)
    return recovered
