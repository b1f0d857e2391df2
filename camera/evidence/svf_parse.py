"""Reading one Signed Video Framework SEI back into its fields (the inverse of svf.py's writer).

Apart from the validator because it is the one place that touches untrusted
bytes at the TLV level: every length is checked before it is used and every
failure is a :class:`SeiError` naming the tag, so the validator above it only
ever sees a whole :class:`SeiInfo` or a one-line reason. It reads every
version of each tag the reference library has written (GENERAL 1-4, PUBLIC_KEY
1-2, PRODUCT_INFO 1-2, SIGNATURE 1-2), not just the one we write, so Axis's own
files decode. The signature is not checked here: ``document_hash`` is what it
signs, computed the way the reserved byte says (with or without EPBs).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from camera.evidence import annexb
from camera.evidence.svf import (
    HASH_SIZE,
    KNOWN_TAGS,
    ONE_BYTE_LENGTH_TAGS,
    PAYLOAD_TYPE_USER_DATA_UNREGISTERED,
    SHA256_OID,
    STOP_BYTE,
    TAG_CRYPTO_INFO,
    TAG_GENERAL,
    TAG_HASH_LIST,
    TAG_PRODUCT_INFO,
    TAG_PUBLIC_KEY,
    TAG_SIGNATURE,
    UUID,
    ProductInfo,
)


class SeiError(ValueError):
    """An SVF SEI that cannot be read; the message names the part that is wrong."""


@dataclass(frozen=True, slots=True)
class SeiInfo:
    """A decoded SVF SEI. ``legacy`` marks the pre-2.x layout (no linked or GOP hash)."""

    reserved: int
    legacy: bool
    gop_counter: int
    num_hashes: int
    general_version: int
    code_version: tuple[int, int, int]
    flags: int
    timestamps: tuple[int, int] | None
    linked_hash: bytes | None
    gop_hash: bytes | None
    hash_list: tuple[bytes, ...] | None
    public_key_pem: bytes | None
    product: ProductInfo | None
    signature: bytes | None  # DER
    document_hash: bytes | None  # SHA-256 of the signed document; None if unsigned


def is_svf_sei(nal: bytes | memoryview) -> bool:
    """True for an SEI NAL whose first message is user data with the SVF UUID."""
    return _sei_payload(nal) is not None


def _read_sei_number(nal: bytes | memoryview, pos: int) -> tuple[int, int] | None:
    """An SEI payloadType/payloadSize: a run of 0xFF bytes plus a last byte."""
    value = 0
    while pos < len(nal):
        byte = nal[pos]
        pos += 1
        value += byte
        if byte != 0xFF:
            return value, pos
    return None


def _sei_payload(nal: bytes | memoryview) -> tuple[int, int] | None:
    """(payload offset, payloadSize) of an SVF SEI NAL, None if it is some other NAL."""
    if len(nal) < 2 or nal[0] & 0x1F != annexb.NAL_SEI:
        return None
    head = _read_sei_number(nal, 1)
    if head is None or head[0] != PAYLOAD_TYPE_USER_DATA_UNREGISTERED:
        return None
    head = _read_sei_number(nal, head[1])
    if head is None or bytes(nal[head[1] : head[1] + 16]) != UUID:
        return None
    return head[1], head[0]


def parse_sei(nal: bytes | memoryview) -> SeiInfo | None:
    """Decode an SVF SEI NAL (no start code); None if the NAL is not one. Raises SeiError."""
    head = _sei_payload(nal)
    if head is None:
        return None
    raw = bytes(nal)
    payload, size = head
    if size < 17:
        raise SeiError(f"payloadSize {size} is too small for UUID and reserved byte")
    reserved_at = payload + 16
    if reserved_at >= len(raw):
        raise SeiError("SEI ends before its reserved byte")
    reserved = raw[reserved_at]
    if reserved & 0x40:
        raise SeiError("golden SEIs are not supported")
    legacy = not reserved & 0x30
    end = len(raw) - 1 if raw[-1] == STOP_BYTE else len(raw)
    escaped = raw[reserved_at + 1 : end]
    body = annexb.unescape(escaped)
    want = size - 17
    if len(body) < want:
        raise SeiError(f"SEI payload is {len(body) + 17} bytes, payloadSize says {size}")
    body = body[:want]
    fields = _decode_tlvs(body)
    general = fields.general
    if general is None:
        raise SeiError("no GENERAL tag")
    if fields.crypto_oid is not None and fields.crypto_oid != SHA256_OID:
        raise SeiError(f"hash algorithm {fields.crypto_oid.hex()} is not SHA-256")
    document_hash = None
    if fields.signature is not None:
        if reserved & 0x80:  # the document is hashed as emitted, with its EPBs
            doc_end = reserved_at + 1 + annexb.escaped_offset(escaped, fields.signature_at)
            document = raw[:doc_end]
        else:
            document = annexb.unescape(raw[: reserved_at + 1]) + body[: fields.signature_at]
        document_hash = hashlib.sha256(document).digest()
    return SeiInfo(
        reserved=reserved,
        legacy=legacy,
        gop_counter=general.counter,
        num_hashes=general.num,
        general_version=general.version,
        code_version=general.code,
        flags=general.flags,
        timestamps=general.timestamps,
        linked_hash=general.linked,
        gop_hash=general.gop_hash,
        hash_list=fields.hash_list,
        public_key_pem=fields.public_key,
        product=fields.product,
        signature=fields.signature,
        document_hash=document_hash,
    )


@dataclass(frozen=True, slots=True)
class _General:
    version: int
    counter: int
    num: int
    code: tuple[int, int, int]
    flags: int
    timestamps: tuple[int, int] | None
    linked: bytes | None
    gop_hash: bytes | None


@dataclass(slots=True)
class _Fields:
    general: _General | None = None
    public_key: bytes | None = None
    product: ProductInfo | None = None
    hash_list: tuple[bytes, ...] | None = None
    crypto_oid: bytes | None = None
    signature: bytes | None = None
    signature_at: int = -1  # where the SIGNATURE tag starts in the unescaped TLVs
    seen: set[int] = field(default_factory=set)


def _decode_tlvs(body: bytes) -> _Fields:
    fields = _Fields()
    pos = 0
    while pos < len(body):
        tag = body[pos]
        if tag not in KNOWN_TAGS:
            raise SeiError(f"unknown TLV tag 0x{tag:02x} at TLV byte {pos}")
        width = 1 if tag in ONE_BYTE_LENGTH_TAGS else 2
        if pos + 1 + width > len(body):
            raise SeiError(f"TLV 0x{tag:02x} header is truncated")
        length = int.from_bytes(body[pos + 1 : pos + 1 + width], "big")
        start = pos + 1 + width
        value = body[start : start + length]
        if len(value) != length:
            raise SeiError(f"TLV 0x{tag:02x} says {length} bytes, {len(value)} left")
        if tag in fields.seen:
            raise SeiError(f"TLV 0x{tag:02x} appears twice")
        fields.seen.add(tag)
        if tag == TAG_GENERAL:
            fields.general = _decode_general(value)
        elif tag == TAG_PUBLIC_KEY:
            fields.public_key = _decode_public_key(value)
        elif tag == TAG_PRODUCT_INFO:
            fields.product = _decode_product_info(value)
        elif tag == TAG_HASH_LIST:
            fields.hash_list = _decode_hash_list(value)
        elif tag == TAG_CRYPTO_INFO:
            fields.crypto_oid = _decode_crypto_info(value)
        elif tag == TAG_SIGNATURE:
            fields.signature, fields.signature_at = _decode_signature(value), pos
        # ARBITRARY_DATA (deprecated) and VENDOR_AXIS (Axis attestation) are skipped.
        pos = start + length
    return fields


def _need(value: bytes, n: int, what: str) -> None:
    if len(value) < n:
        raise SeiError(f"{what} is truncated")


def _decode_general(value: bytes) -> _General:
    _need(value, 10, "GENERAL")
    version = value[0]
    if not 1 <= version <= 4:
        raise SeiError(f"GENERAL version {version} is not supported")
    counter, num = struct.unpack_from(">IH", value, 1)
    code = (value[7], value[8], value[9])
    pos = 10
    flags = 0
    timestamps = None
    if version >= 2:
        _need(value, pos + 1, "GENERAL flags")
        flags = value[pos]
        pos += 1
        if flags & 0x01:  # version 4 has [start, end]; 2 and 3 one timestamp
            n = 2 if version >= 4 else 1
            _need(value, pos + 8 * n, "GENERAL timestamps")
            stamps = struct.unpack_from(f">{n}q", value, pos)
            timestamps = (stamps[0], stamps[-1])
            pos += 8 * n
    linked = gop = None
    if version >= 3:
        rest = value[pos:]
        if len(rest) != 2 * HASH_SIZE:
            raise SeiError(f"GENERAL carries {len(rest)} bytes of hashes, expected 64")
        linked, gop = rest[:HASH_SIZE], rest[HASH_SIZE:]
    elif pos != len(value):
        raise SeiError(f"GENERAL version {version} has {len(value) - pos} extra bytes")
    return _General(version, counter, num, code, flags, timestamps, linked, gop)


def _decode_public_key(value: bytes) -> bytes:
    _need(value, 2, "PUBLIC_KEY")
    version = value[0]
    if not 1 <= version <= 2:
        raise SeiError(f"PUBLIC_KEY version {version} is not supported")
    pem = value[2:] if version < 2 else value[1:]  # version 1 also carried an algorithm byte
    if not pem:
        raise SeiError("PUBLIC_KEY is empty")
    return pem


def _decode_product_info(value: bytes) -> ProductInfo:
    _need(value, 1, "PRODUCT_INFO")
    if not 1 <= value[0] <= 2:
        raise SeiError(f"PRODUCT_INFO version {value[0]} is not supported")
    pos = 1
    texts = []
    for _ in range(5):
        _need(value, pos + 1, "PRODUCT_INFO")
        n = value[pos]
        raw = value[pos + 1 : pos + 1 + n]
        if len(raw) != n:
            raise SeiError("PRODUCT_INFO is truncated")
        texts.append(raw.rstrip(b"\x00").decode("utf-8", "replace"))  # version 1 wrote NULs
        pos += 1 + n
    if pos != len(value):
        raise SeiError(f"PRODUCT_INFO has {len(value) - pos} extra bytes")
    return ProductInfo(*texts)


def _decode_hash_list(value: bytes) -> tuple[bytes, ...]:
    _need(value, 1, "HASH_LIST")
    if value[0] != 1:
        raise SeiError(f"HASH_LIST version {value[0]} is not supported")
    body = value[1:]
    if len(body) % HASH_SIZE:
        raise SeiError(f"HASH_LIST of {len(body)} bytes is not a whole number of hashes")
    return tuple(body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE))


def _decode_signature(value: bytes) -> bytes:
    _need(value, 1, "SIGNATURE")
    version = value[0]
    if not 1 <= version <= 2:
        raise SeiError(f"SIGNATURE version {version} is not supported")
    pos = 2
    if version < 2:  # version 1 also said what was signed: 1 = the document
        _need(value, 3, "SIGNATURE")
        if value[2] != 1:
            raise SeiError("SIGNATURE signs a recursive GOP hash (legacy), not supported")
        pos = 3
    _need(value, pos + 2, "SIGNATURE")
    size = int.from_bytes(value[pos : pos + 2], "big")
    der = value[pos + 2 : pos + 2 + size]
    if len(der) != size or size == 0:
        raise SeiError(f"SIGNATURE says {size} bytes, {len(der)} present")
    return der


def _decode_crypto_info(value: bytes) -> bytes:
    _need(value, 2, "CRYPTO_INFO")
    if value[0] != 1:
        raise SeiError(f"CRYPTO_INFO version {value[0]} is not supported")
    oid = value[2 : 2 + value[1]]
    if len(oid) != value[1] or not oid or 2 + len(oid) != len(value):
        raise SeiError("CRYPTO_INFO is malformed")
    return oid
