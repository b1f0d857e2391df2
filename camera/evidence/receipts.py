"""Receipts: the evidence server's signed word that it holds a recording, kept on the camera.

Why a receipt, and why it is checked so closely (issue 16): the camera deletes
a recording only when the server has confirmed a complete, verified upload.
The confirmation is a document signed by the server's key (the one pinned in
the camera's config, never one fetched and trusted on the fly) naming the
recording, the device, the manifest's sha256 and the sha256 of every file.
Before anything is deleted the camera checks each of those against what it
holds; afterwards the receipt stays on the card for good, as
``<storage>/receipts/<recording-id>.json``, because the chain of manifests
(``previous``) and the audit log still name the recording that is gone, and
the receipt is what vouches for it.

The file holds the receipt's canonical JSON (camera.evidence.canonical) and
nothing else, so ``sha256sum`` of the file is the receipt's sha256: the value
the audit log's ``offloaded`` and ``deleted`` entries name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.canonical import canonical, check_document
from camera.evidence.records import MANIFEST
from hal.storage import fsync_dir

__all__ = [
    "DELETED",
    "OFFLOADED",
    "RECEIPTS",
    "RECEIPT_TYPE",
    "StoredReceipt",
    "check_receipt",
    "read_receipt",
    "receipt_path",
    "receipt_sha256",
    "write_receipt",
]

#: The directory beside the recordings that keeps every receipt the camera accepted.
RECEIPTS = "receipts"
#: The device audit log's events of an offload: the receipt kept, the recording deleted.
OFFLOADED = "offloaded"
DELETED = "deleted"
RECEIPT_TYPE = "bodycam.receipt/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: What a recording id may be to name a receipt file (no path separators, no dot files).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def receipt_bytes(receipt: Mapping[str, Any]) -> bytes:
    """What the receipt file holds: its canonical JSON (ValueError if it has none)."""
    return canonical(dict(receipt))


def receipt_sha256(receipt: Mapping[str, Any]) -> str:
    """The receipt's sha256: of its canonical JSON, which is also the file's bytes."""
    return hashlib.sha256(receipt_bytes(receipt)).hexdigest()


def receipt_path(storage: str | os.PathLike[str], recording_id: str) -> Path:
    """``<storage>/receipts/<recording-id>.json``; ValueError for an id unfit for a file name."""
    if not _SAFE_NAME.fullmatch(recording_id):
        raise ValueError(f"expected a recording id usable as a file name, got {recording_id!r}")
    return Path(storage) / RECEIPTS / f"{recording_id}.json"


def check_receipt(
    receipt: Any,
    server_key: ec.EllipticCurvePublicKey,
    *,
    recording_id: str,
    device_id: str,
    manifest_sha256: str | None,
    files: Mapping[str, str] | None,
) -> str | None:
    """None if ``receipt`` lets the camera delete the recording, else why not (one line).

    ``manifest_sha256`` and ``files`` are what the camera holds; None skips
    that comparison (verify after the recording is gone checks the receipt
    against the chain and the audit log instead).
    """
    if not isinstance(receipt, Mapping):
        return "receipt is not a JSON object"
    if (why := check_document(server_key, receipt)) is not None:
        return f"receipt not signed by the pinned server key: {why}"
    expected: list[tuple[str, object]] = [
        ("type", RECEIPT_TYPE),
        ("recording", recording_id),
        ("device", device_id),
        ("status", "verified"),
    ]
    if manifest_sha256 is not None:
        expected.append(("manifest_sha256", manifest_sha256))
    for name, want in expected:
        if receipt.get(name) != want:
            return f"receipt's {name} is {_short(receipt.get(name))}, expected {_short(want)}"
    named = receipt.get("files")
    if not isinstance(named, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in named.items()
    ):
        return "receipt's files is not a table of file name to sha256"
    if named.get(MANIFEST) != receipt.get("manifest_sha256"):
        return f"receipt's files name another {MANIFEST} than its manifest_sha256"
    if files is not None and dict(named) != dict(files):
        return f"receipt's files differ from the recording's: {_difference(named, files)}"
    return None


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _difference(named: Mapping[str, str], held: Mapping[str, str]) -> str:
    missing = sorted(set(held) - set(named))
    extra = sorted(set(named) - set(held))
    changed = sorted(k for k in set(named) & set(held) if named[k] != held[k])
    parts = []
    for what, names in (("not named", missing), ("not held", extra), ("other sha256", changed)):
        if names:
            parts.append(f"{what}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    return "; ".join(parts)


def write_receipt(storage: str | os.PathLike[str], receipt: Mapping[str, Any]) -> Path:
    """Keep ``receipt`` durably as ``receipts/<recording>.json`` (temp, fsync, rename, fsync).

    The same receipt already there: nothing to do. Another one (a server that
    signed the same recording again): the older file is kept beside it as
    ``<recording>.<its sha256 prefix>.json``, never deleted.
    """
    data = receipt_bytes(receipt)
    path = receipt_path(storage, str(receipt["recording"]))
    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        fsync_dir(folder.parent)
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = None
    if old == data:
        return path
    if old is not None:
        kept = path.with_name(f"{path.stem}.{hashlib.sha256(old).hexdigest()[:16]}.json")
        os.replace(path, kept)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(folder)
    return path


@dataclass(frozen=True)
class StoredReceipt:
    """A receipt file as read back: the parsed receipt and the sha256 of the file's bytes."""

    path: Path
    receipt: dict[str, Any]
    sha256: str


def read_receipt(path: str | os.PathLike[str]) -> StoredReceipt | str:
    """The receipt in ``path``, or why it cannot be one (one line, never raises on content)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return f"{p.name}: no such receipt"
    except OSError as exc:
        return f"{p.name}: cannot read: {exc.strerror or exc}"
    try:
        receipt = json.loads(data)
    except (ValueError, RecursionError):
        return f"{p.name}: not JSON"
    if not isinstance(receipt, dict):
        return f"{p.name}: not a JSON object"
    return StoredReceipt(p, receipt, hashlib.sha256(data).hexdigest())
