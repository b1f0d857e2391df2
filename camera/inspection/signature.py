"""The quick signature check: does the manifest's signature hold, with the key beside it?

It is ``bodycam verify``'s own check (:func:`check_manifest_signature`, one
implementation) on the manifest alone: instant, and enough to see an edited
manifest or a foreign key. It does not read the video; the segments' hashes
and the in-stream signatures are verify's. The key is the ``*.pub.pem`` found
beside the recordings, on the same card as the evidence, so it is never
called trusted here (``bodycam verify --key`` checks against one you trust).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camera.evidence.canonical import SIGNATURE
from camera.evidence.verify.findings import Report
from camera.evidence.verify.signatures import check_manifest_signature
from camera.evidence.verify.trust import KeySet
from camera.inspection.model import SignatureInfo, SignatureStatus


def _key_path(keys: KeySet, key_id: str | None) -> str | None:
    picked = keys.pick(key_id)
    return None if picked is None else str(keys.paths[picked[0]])


def check_signature(m: dict[str, Any], keys: KeySet, storage: Path) -> SignatureInfo:
    """The manifest ``m`` (a validated object) against ``keys`` found in ``storage``."""
    report = Report(path=storage)
    check_manifest_signature(m, keys, report)
    info = SignatureInfo(
        status=SignatureStatus.GOOD,
        detail="",
        key=_key_path(keys, report.key_id) if keys else None,
        key_id=report.key_id,
        test_key=report.test_key,
    )
    if SIGNATURE not in m:
        info.status = SignatureStatus.UNSIGNED
        info.detail = next(p for p in report.problems if "not signed" in p)
    elif not keys:
        info.status = SignatureStatus.NO_KEY
        unreadable = f" ({'; '.join(keys.unreadable)})" if keys.unreadable else ""
        info.detail = f"no public key (*.pub.pem) found in {storage}{unreadable}"
    elif report.problems:
        info.status = SignatureStatus.BAD
        more = len(report.problems) - 1
        info.detail = report.problems[0] + (f" (and {more} more)" if more else "")
    else:
        info.detail = "signature matches the manifest"
    return info
