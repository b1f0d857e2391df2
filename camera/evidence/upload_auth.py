"""Who is asking: every request a camera makes to the evidence store is signed by its device key.

Why a signature per request and not a password or a token: the device key is
the one secret a camera already holds and the server already knows (its
public half is what the server enrolled), so nothing new has to be
provisioned, and a stolen request names exactly one method, path and body.

What is signed (issue 16's upload protocol)::

    b"bodycam-upload/1\\n" + METHOD + b"\\n" + PATH + b"\\n" + sha256_hex(body)

PATH is the URL path without the query; the body is b"" for HEAD and GET.
There is no timestamp: a camera's clock may be wrong, and every request is
idempotent (a PUT keyed by the body's sha256, a commit answered with the same
receipt), so a replayed request can only repeat what was already done.

Shared by both ends: the camera signs with :func:`sign_request`, the server
checks with :func:`check_request` (``server.protocol`` re-exports both).
"""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence.canonical import decode_signature
from camera.evidence.keys import DeviceKey, verify_signature

__all__ = [
    "DEVICE_HEADER",
    "KEY_HEADER",
    "PROTOCOL",
    "SIGNATURE_HEADER",
    "check_request",
    "sign_request",
    "signed_bytes",
]

PROTOCOL = b"bodycam-upload/1"
DEVICE_HEADER = "X-Bodycam-Device"
KEY_HEADER = "X-Bodycam-Key"
SIGNATURE_HEADER = "X-Bodycam-Signature"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_METHOD = re.compile(r"[A-Z]{1,16}")


def signed_bytes(method: str, path: str, body_sha256: str) -> bytes:
    """The bytes a request signature covers; ValueError for a malformed method, path or hash."""
    if not _METHOD.fullmatch(method):
        raise ValueError(f"expected an HTTP method in capitals, got {method!r}")
    if not path.startswith("/") or "?" in path or not path.isprintable():
        raise ValueError(f"expected a URL path without a query, got {path!r}")
    if not _HEX64.fullmatch(body_sha256):
        raise ValueError(f"expected the body's sha256 as 64 hex digits, got {body_sha256!r}")
    return b"\n".join((PROTOCOL, method.encode(), path.encode(), body_sha256.encode()))


def sign_request(
    key: DeviceKey,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    device: str | None = None,
    body_sha256: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request: key id and signature (and device, if given).

    ``body_sha256`` instead of ``body`` signs an upload without holding it in
    memory (the PUT path already names it). The device id is the caller's to
    add when ``device`` is not given: the key does not know it.
    """
    if body_sha256 is None:
        body_sha256 = hashlib.sha256(body).hexdigest()
    elif body:
        raise ValueError("pass the body or its sha256, not both")
    signature = key.sign(signed_bytes(method, path, body_sha256))
    headers = {
        KEY_HEADER: key.key_id,
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }
    if device is not None:
        headers[DEVICE_HEADER] = device
    return headers


def check_request(
    public_key: ec.EllipticCurvePublicKey,
    method: str,
    path: str,
    body_sha256: str,
    signature: str,
) -> str | None:
    """None if ``signature`` (the header's text) signs this request with ``public_key``, else why.

    Everything here comes from the network: any shape is answered, never raised on.
    """
    try:
        data = signed_bytes(method, path, body_sha256)
    except ValueError as exc:
        return str(exc)
    der = decode_signature(signature)
    if isinstance(der, str):
        return f"{SIGNATURE_HEADER}: {der}"
    if not verify_signature(public_key, data, der):
        return f"{SIGNATURE_HEADER} does not match this request and the enrolled key"
    return None
