"""Signed JSON documents: a signature over the canonical JSON of everything else.

Why canonical JSON and not the file's bytes: a manifest is written pretty for
people, and the signature must survive re-indentation but not any change of
meaning. Canonical here is Python's ``json.dumps`` with sorted keys, no
whitespace, UTF-8 text (not ``\\u`` escapes) and no NaN or infinity; the
writer and verify both use :func:`canonical`, so they agree by construction.
(It is not RFC 8785: floats are Python's shortest round-trip repr, which the
firmware and verify share.)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.keys import DeviceKey, verify_signature

__all__ = ["SIGNATURE", "canonical", "check_document", "decode_signature", "sign_document"]

SIGNATURE = "signature"

MISMATCH = "signature does not match (field edited or signed by another key)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:80]


def canonical(obj: Any) -> bytes:
    """The bytes a signature covers; ValueError for NaN, infinity or a non-JSON value."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sign_document(key: DeviceKey, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` plus ``signature``: base64 DER ECDSA over the canonical JSON of the rest."""
    body = {k: v for k, v in obj.items() if k != SIGNATURE}
    signature = base64.b64encode(key.sign(canonical(body))).decode("ascii")
    return {**body, SIGNATURE: signature}


def decode_signature(encoded: Any) -> bytes | str:
    """The DER bytes of a base64 signature field, or why it is not one.

    Canonical base64 only: Python's decoder ignores the unused low bits, so
    other text could decode to the same signature.
    """
    if not isinstance(encoded, str):
        return "signature is not base64"
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "signature is not base64"
    if base64.b64encode(signature).decode("ascii") != encoded:
        return "signature is not canonical base64"
    return signature


def check_document(public_key: ec.EllipticCurvePublicKey, obj: Any) -> str | None:
    """None if ``obj`` carries a good signature by ``public_key``, else why not.

    ``obj`` is untrusted parsed JSON: any shape is answered, never raised on.
    """
    if not isinstance(obj, Mapping):
        return "not a JSON object"
    if SIGNATURE not in obj:
        return "no signature"
    signature = decode_signature(obj[SIGNATURE])
    if isinstance(signature, str):
        return signature
    try:
        body = canonical({k: v for k, v in obj.items() if k != SIGNATURE})
    except (ValueError, TypeError, RecursionError) as exc:
        return f"cannot be put in canonical form ({_first_line(exc)})"
    return None if verify_signature(public_key, body, signature) else MISMATCH
