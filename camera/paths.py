"""Which command-line paths are recordings, and which are only things beside them.

A storage directory on a real card holds more than recordings: ``lost+found``
after an fsck, a README someone copied over, a shell glob that caught a stray
file. Those are not failed recordings, and one of them must not stop the
check of the rest; they are skipped with a note, so nothing passes unseen.
A recording is a directory holding a manifest, a journal (an interrupted
recording) or segment files: anything the camera writes into one. The
storage's own files (the audit log, the exported public keys) are part of the
storage directory, checked with it, and are not listed as skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from camera.evidence.records import JOURNAL, MANIFEST, SEGMENT_PREFIX

#: The audit log beside the recordings (camera.evidence.audit.AUDIT).
AUDIT_LOG = "audit.jsonl"
#: Exported public keys end so: ``<device-id>.pub.pem``, ``<device-id>.<key-id>.pub.pem``.
PUBLIC_KEY_SUFFIX = ".pub.pem"
#: The evidence server's receipts for offloaded recordings (camera.evidence.receipts.RECEIPTS).
RECEIPTS_DIR = "receipts"

#: Why a path that was asked for is skipped when it does not exist (an input error).
MISSING = "no such file or directory"


@dataclass
class Found:
    recordings: list[Path] = field(default_factory=list)
    #: (path, why it is not checked), in the order met.
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: Storage directories with no recording left, all offloaded (their receipts kept).
    offloaded: list[Path] = field(default_factory=list)


def shown(path: Path) -> Path:
    """``path`` as the user gave it, unless it has no name of its own (``.``, ``..``).

    ``Path('.').name`` is empty: reports, and anything that takes a recording's
    name from its path, need the real directory then.
    """
    return path.resolve() if path.name in ("", "..") else path


def is_storage_file(path: Path) -> bool:
    """The audit log, an exported public key, the receipts: a storage directory's own files."""
    if path.name == RECEIPTS_DIR:
        return path.is_dir()
    return path.is_file() and (path.name == AUDIT_LOG or path.name.endswith(PUBLIC_KEY_SUFFIX))


def is_recording(names: Sequence[str]) -> bool:
    """Judged by a directory's entries, so an empty or foreign directory is not one."""
    return MANIFEST in names or JOURNAL in names or any(n.startswith(SEGMENT_PREFIX) for n in names)


def _listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))


def _entries(path: Path) -> list[str] | str:
    """The names in ``path``, or why it can be neither a recording nor a storage directory."""
    if not path.is_dir():
        return "not a recording (not a directory)"
    try:
        return _listing(path)
    except OSError as exc:
        return f"not a recording (cannot be listed: {exc.strerror or exc})"


def find_recordings(paths: Sequence[str | os.PathLike[str]]) -> Found:
    """Each path is a recording, a storage directory of recordings, or skipped with a reason."""
    found = Found()
    for given in paths:
        path = shown(Path(given))
        if not os.path.lexists(path):
            found.skipped.append((path, MISSING))
            continue
        names = _entries(path)
        if isinstance(names, str):
            found.skipped.append((path, names))
            continue
        if is_recording(names):
            found.recordings.append(path)
            continue
        before = len(found.recordings), len(found.skipped)
        for name in names:
            if name.startswith("."):
                continue  # temporary and hidden files, never a recording of ours
            child = path / name
            if is_storage_file(child):
                continue
            inner = _entries(child)
            if isinstance(inner, str):
                found.skipped.append((child, inner))
            elif is_recording(inner):
                found.recordings.append(child)
            else:
                found.skipped.append((child, "not a recording (no manifest, journal or segments)"))
        if (len(found.recordings), len(found.skipped)) == before:
            if RECEIPTS_DIR in names and (path / RECEIPTS_DIR).is_dir():
                found.offloaded.append(path)  # every recording offloaded: still a storage to check
            else:
                found.skipped.append((path, "no recordings in it"))
    return found
