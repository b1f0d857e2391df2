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

An offload deletes recordings from the card (issue 16), so the card alone no
longer knows the last one: what the offload keeps of each, its receipt
(``receipts/<id>.json``, written before anything is deleted and never deleted
itself), stands in for it. The receipt names the recording and the sha256 of
its manifest, which is exactly what a link needs; so numbering and the chain
go on across shifts, and the next recording never reuses an id the server
already holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from camera.evidence.canonical import canonical, sign_document
from camera.evidence.keys import DeviceKey
from camera.evidence.manifest import dumps
from camera.evidence.receipts import RECEIPTS
from camera.evidence.records import MANIFEST, Manifest, Previous, Provenance
from hal.storage import Storage

_HEX64 = re.compile(r"[0-9a-f]{64}")


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


def _offloaded(storage: Storage, pattern: re.Pattern[str]) -> dict[str, int]:
    """Recordings of the device with a kept receipt: id -> counter (older kept copies aside)."""
    out: dict[str, int] = {}
    for name in storage.listdir(RECEIPTS):
        rec = name.removesuffix(".json")
        if name.startswith(".") or not name.endswith(".json"):
            continue  # a receipt being written
        if m := pattern.match(rec):
            out[rec] = int(m.group(1))
    return out


def receipted_manifest(storage: Storage, recording_id: str) -> str | None:
    """The manifest sha256 the kept receipt of ``recording_id`` names, or None.

    Only a receipt the camera kept after checking it (camera.offload writes
    nothing else there) and that names this recording and a sha256.
    """
    try:
        receipt = json.loads(storage.read(f"{RECEIPTS}/{recording_id}.json"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(receipt, dict) or receipt.get("recording") != recording_id:
        return None
    digest = receipt.get("manifest_sha256")
    return digest if isinstance(digest, str) and _HEX64.fullmatch(digest) else None


def last_counter(storage: Storage, device_id: str) -> int:
    """The highest counter the device has used: on the card, or offloaded (its receipt kept)."""
    pattern = recording_pattern(device_id)
    found = [int(m.group(1)) for n in storage.listdir() if (m := pattern.match(n))]
    found += _offloaded(storage, pattern).values()
    return max(found, default=0)


@dataclass(frozen=True)
class Custody:
    key: DeviceKey
    device_id: str
    firmware_version: str
    config_sha256: str

    def previous(self, storage: Storage, recording_id: str) -> Previous | None:
        """The device's last manifest before ``recording_id``: id and sha256 of its bytes.

        On the card, or offloaded: then its kept receipt names the manifest.
        The manifest is read first and the receipt only if that fails, so a
        recording an offload deletes meanwhile (receipt first, then the
        files) is still found, by one or the other.
        """
        pattern = recording_pattern(self.device_id)
        mine = pattern.match(recording_id)
        limit = int(mine.group(1)) if mine else None
        found: set[tuple[int, str]] = set()
        for name in storage.listdir():
            m = pattern.match(name)
            if m:
                found.add((int(m.group(1)), name))
        found.update((n, name) for name, n in _offloaded(storage, pattern).items())
        for counter, name in sorted(found, reverse=True):
            if limit is not None and counter >= limit:
                continue
            try:
                digest: str | None = manifest_sha256(storage, name)
            except OSError:
                digest = receipted_manifest(storage, name)
            if digest is None:
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
