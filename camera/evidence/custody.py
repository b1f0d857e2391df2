"""Chain of custody: who wrote a manifest, with what, and which recording came before.

Every manifest the device writes (at a stop, and when recovery rebuilds one
after a power cut) goes through :meth:`Custody.write`, the one place that adds
the provenance fields and signs. ``previous`` names the device's previous
recording and the sha256 of its manifest bytes, so deleting a recording from
the middle of a card breaks a link that ``verify`` reports.

``previous`` is worked out from the card at the moment of signing, not kept in
memory: the recording with the highest counter below this one's that has a
manifest. Recordings are written one at a time and in counter order, and
recovery (at boot, before any new recording) takes the interrupted ones in
counter order too, so the scan sees exactly the manifests written before this
one, whatever happened in between (reboots, power cuts, recovery).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from camera.evidence.canonical import canonical, sign_document
from camera.evidence.keys import DeviceKey
from camera.evidence.manifest import dumps
from camera.evidence.records import MANIFEST, Manifest, Previous, Provenance
from hal.storage import Storage


def recording_pattern(device_id: str) -> re.Pattern[str]:
    """``<device-id>_<YYYYmmddTHHMMSSZ>_<counter>``: group 1 is the counter."""
    return re.compile(rf"^{re.escape(device_id)}_\d{{8}}T\d{{6}}Z_(\d{{4,}})$")


def config_sha256(config: Any) -> str:
    """sha256 of the resolved configuration (defaults included), as canonical JSON.

    The resolved config, not the file: two files that differ only in comments
    or in spelling out a default run the same firmware, and a default that
    changed between firmware versions shows up here.
    """
    return hashlib.sha256(canonical(config.model_dump(mode="json"))).hexdigest()


def manifest_sha256(storage: Storage, directory: str) -> str:
    """sha256 of a recording's manifest bytes: what ``previous`` and the audit log name."""
    return hashlib.sha256(storage.read(f"{directory}/{MANIFEST}")).hexdigest()


@dataclass(frozen=True)
class Custody:
    key: DeviceKey
    device_id: str
    firmware_version: str
    config_sha256: str

    def previous(self, storage: Storage, recording_id: str) -> Previous | None:
        """The device's last manifest before ``recording_id``: id and sha256 of its bytes."""
        pattern = recording_pattern(self.device_id)
        mine = pattern.match(recording_id)
        limit = int(mine.group(1)) if mine else None
        found: list[tuple[int, str]] = []
        for name in storage.listdir():
            m = pattern.match(name)
            if m and (limit is None or int(m.group(1)) < limit):
                found.append((int(m.group(1)), name))
        for _, name in sorted(found, reverse=True):
            try:
                digest = manifest_sha256(storage, name)
            except OSError:
                continue  # interrupted and not recovered (yet): not part of the chain
            return Previous(recording_id=name, manifest_sha256=digest)
        return None

    def seal(self, storage: Storage, manifest: Manifest) -> dict[str, Any]:
        """``manifest`` with its provenance and a signature over all of it (SPEC 12)."""
        provenance = Provenance(
            firmware_version=self.firmware_version,
            config_sha256=self.config_sha256,
            key_id=self.key.key_id,
            test_key=self.key.test,
            previous=self.previous(storage, manifest.recording_id),
        )
        return sign_document(self.key, {**manifest.to_json(), **provenance.to_json()})

    def write(self, storage: Storage, directory: str, manifest: Manifest) -> dict[str, Any]:
        """Seal and write ``manifest`` atomically; returns what was written."""
        sealed = self.seal(storage, manifest)
        storage.write_atomic(f"{directory}/{MANIFEST}", dumps(sealed))
        return sealed
