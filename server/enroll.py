"""Enrolling a camera: the server learns which public key speaks for which device.

Uploads from a device or key not enrolled here are refused (403), and a
recording is verified against its device's enrolled key only, never one it
brings along. Re-enrolling the same key changes nothing; a different key for a
device already enrolled (a re-provisioned camera) needs ``replace`` and is
audited; the old key's row stays, inactive, so what it signed can still be
traced to it. One key speaks for one device only: a key shared by two devices
would let either upload as the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import update

from camera.errors import InputError
from camera.evidence.audit import format_utc
from camera.evidence.keys import load_public_key
from camera.paths import PUBLIC_KEY_SUFFIX
from server import audit
from server.meta import Meta, devices
from server.protocol import is_device_id

__all__ = ["Enrolled", "device_of_file", "enroll"]


@dataclass(frozen=True)
class Enrolled:
    device: str
    key_id: str
    #: "enrolled", "unchanged" or "replaced"
    outcome: str
    replaced: tuple[str, ...] = ()


def device_of_file(path: str | os.PathLike[str]) -> str:
    """``BWC-0001`` for ``.../BWC-0001.pub.pem``; InputError if the name says no device."""
    name = Path(path).name
    if not name.endswith(PUBLIC_KEY_SUFFIX) or not is_device_id(name[: -len(PUBLIC_KEY_SUFFIX)]):
        raise InputError(
            f"{path}: cannot tell the device from the file name (expected "
            f"DEVICE{PUBLIC_KEY_SUFFIX}, as the camera exports it); pass --device ID"
        )
    return name[: -len(PUBLIC_KEY_SUFFIX)]


def enroll(
    meta: Meta,
    pem_path: str | os.PathLike[str],
    device: str | None = None,
    *,
    replace: bool = False,
    actor: str = "cli",
    utc: str | None = None,
) -> Enrolled:
    """Enroll the key in ``pem_path`` for ``device`` (default: from the file name)."""
    public_key, key_id = load_public_key(pem_path)  # DeviceKeyError: one line, exit 2
    pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    device = device if device is not None else device_of_file(pem_path)
    if not is_device_id(device):
        raise InputError(f"--device {device!r}: expected 1-64 letters, digits or '-'")
    stamp = utc or format_utc(datetime.now(UTC))
    with meta.write() as conn:
        owner = meta.key_owner(conn, key_id)
        if owner is not None and owner != device:
            raise InputError(
                f"{pem_path}: key {key_id[:16]}... is enrolled for device {owner}; "
                "one key speaks for one device"
            )
        active = meta.device_keys(conn, device)
        if key_id in active:
            return Enrolled(device, key_id, "unchanged")
        if active and not replace:
            shown = ", ".join(k[:16] + "..." for k in active)
            raise InputError(
                f"device {device} is enrolled with key {shown}; pass --replace to enroll "
                f"key {key_id[:16]}... in its place (audited)"
            )
        conn.execute(update(devices).where(devices.c.id == device).values(active=False))
        if owner == device:  # a key this device had before: active again
            conn.execute(
                update(devices)
                .where(devices.c.id == device, devices.c.key_id == key_id)
                .values(active=True, enrolled_utc=stamp)
            )
        else:
            conn.execute(
                devices.insert().values(
                    id=device, key_id=key_id, public_key_pem=pem, active=True, enrolled_utc=stamp
                )
            )
        outcome = "replaced" if active else "enrolled"
        detail: dict[str, object] = {"key_id": key_id}
        if active:
            detail["replaced_key_ids"] = sorted(active)
        audit.append(
            conn,
            utc=stamp,
            actor=actor,
            action="device_key_replaced" if active else "device_enrolled",
            target=device,
            detail=detail,
        )
    return Enrolled(device, key_id, outcome, tuple(sorted(active)))
