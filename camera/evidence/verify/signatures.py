"""The manifest's signature and provenance (SPEC 12): who signed it, and that nothing changed.

The signature covers the canonical JSON of every other field, so any edit
(a trigger time, a stop reason, a marker removed, a segment's hash) breaks
it; the key is chosen by the ``key_id`` the manifest names, and a key the
verifier does not trust is named as such rather than tried and failed. The
key chosen here is also the one the in-stream signatures must verify with.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.canonical import MISMATCH, SIGNATURE, check_document
from camera.evidence.records import MANIFEST
from camera.evidence.verify.findings import Report
from camera.evidence.verify.rules import SHA256, check_provenance
from camera.evidence.verify.trust import KeySet

NO_KEY = "no public key to check signatures (pass --key)"
EDITED = (
    f"{MANIFEST}: signature does not match (a field was edited, or it was signed by another key)"
)


def check_manifest_signature(
    m: dict[str, Any], keys: KeySet, report: Report
) -> ec.EllipticCurvePublicKey | None:
    """Report what is wrong with the manifest's signature; returns the key for the stream.

    The key returned is the trusted key the manifest names (or the only one
    there is), so the in-stream check runs even when the manifest fails:
    an edited manifest and an altered frame are separate findings.
    """
    problems = report.problems
    if not keys:
        problems.append(NO_KEY)
    key_id = m.get("key_id") if SHA256.ok(m.get("key_id")) else None
    report.key_id = key_id
    report.test_key = m.get("test_key") is True
    picked = keys.pick(key_id)
    key = picked[1] if picked else None
    if SIGNATURE not in m:
        how = " (recovered without the device key)" if "recovery" in m else ""
        problems.append(f"{MANIFEST}: not signed{how}")
        return key
    check_provenance(m, problems)
    if not keys:
        return None
    if key_id is not None and key_id not in keys.keys:
        problems.append(
            f"{MANIFEST}: signed by key {key_id[:16]}..., not by the trusted key {keys.shown()}"
        )
        return key
    if key is None:  # no usable key_id, and several keys to choose from
        problems.append(f"{MANIFEST}: names no key_id to check its signature with")
        return None
    why = check_document(key, m)
    if why == MISMATCH:
        problems.append(EDITED)
    elif why is not None:
        problems.append(f"{MANIFEST}: {why}")
    return key
