"""The upload protocol's vocabulary: paths, headers, names, and the receipt.

Both ends use it, so it stays light: it imports nothing of ``server`` and only
``camera.evidence`` of the firmware (request signing lives in
camera.evidence.upload_auth, re-exported here, so the camera never has to
import the server package to talk to it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from camera.evidence.canonical import sign_document
from camera.evidence.keys import DeviceKey
from camera.evidence.receipts import RECEIPT_TYPE, check_receipt
from camera.evidence.upload_auth import (
    DEVICE_HEADER,
    KEY_HEADER,
    SIGNATURE_HEADER,
    check_request,
    sign_request,
    signed_bytes,
)

__all__ = [
    "DEVICE_HEADER",
    "KEY_HEADER",
    "MANIFEST",
    "RECEIPT_FIELDS",
    "RECEIPT_TYPE",
    "SIGNATURE_HEADER",
    "build_receipt",
    "check_receipt",
    "check_request",
    "commit_path",
    "is_device_id",
    "is_file_name",
    "is_recording_id",
    "is_sha256",
    "object_path",
    "receipt_path",
    "sign_request",
    "signed_bytes",
]

MANIFEST = "manifest.json"
SERVER_PATH = "/v1/server"
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The device config's rule for an id (camera.config): 1-64 letters, digits or '-'.
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
#: ``<device-id>_<YYYYmmddTHHMMSSZ>_<counter>`` (camera.evidence.custody).
_RECORDING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}_\d{8}T\d{6}Z_\d{4,9}")
#: A file of a recording directory: no path, no dot file, nothing a shell or a URL mangles.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

#: Every field of a receipt, in the order they are documented (README, issue 16's contract).
RECEIPT_FIELDS = (
    "type",
    "recording",
    "device",
    "device_key_id",
    "manifest_sha256",
    "files",
    "status",
    "chain",
    "frames",
    "received_utc",
    "server_key_id",
    "audit_seq",
)


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and _SHA256.fullmatch(text) is not None


def is_device_id(text: object) -> bool:
    return isinstance(text, str) and _DEVICE_ID.fullmatch(text) is not None


def is_recording_id(text: object) -> bool:
    return isinstance(text, str) and _RECORDING_ID.fullmatch(text) is not None


def is_file_name(text: object) -> bool:
    return isinstance(text, str) and _FILE_NAME.fullmatch(text) is not None


def object_path(sha256: str) -> str:
    return f"/v1/objects/{sha256}"


def commit_path(recording_id: str) -> str:
    return f"/v1/recordings/{recording_id}/commit"


def receipt_path(recording_id: str) -> str:
    return f"/v1/recordings/{recording_id}/receipt"


def build_receipt(
    server_key: DeviceKey,
    *,
    recording: str,
    device: str,
    device_key_id: str,
    files: Mapping[str, str],
    chain: str,
    frames: int,
    received_utc: str,
    audit_seq: int,
) -> dict[str, Any]:
    """The signed receipt for a verified recording (canonical JSON, the server key's ECDSA)."""
    body: dict[str, Any] = {
        "type": RECEIPT_TYPE,
        "recording": recording,
        "device": device,
        "device_key_id": device_key_id,
        "manifest_sha256": files[MANIFEST],
        "files": dict(sorted(files.items())),
        "status": "verified",
        "chain": chain,
        "frames": frames,
        "received_utc": received_utc,
        "server_key_id": server_key.key_id,
        "audit_seq": audit_seq,
    }
    return sign_document(server_key, body)
