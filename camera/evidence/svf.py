"""In-stream H.264 signatures in the Axis Signed Video Framework format (SPEC 12), pure Python.

Why the pieces are shaped this way:

- The format is Axis's (MIT; the wire format of their library v2.3.8, which
  their validator accepts), so an independent party can verify a recording
  with Axis's open validator and no code of ours. Every
  GOP gets one "user data unregistered" SEI carrying a TLV document: general
  info (GOP counter, slice count, capture-time span, the hash of the previous
  GOP's IDR, a GOP hash), product info, the public key, the hash algorithm,
  the frame-level hash list and an ECDSA signature over the SHA-256 of the
  document. Slices are hashed as they sit in the stream (start code off,
  emulation prevention on, trailing zeros off); an IDR's primary slice hash
  ``h_I`` is the GOP's reference and every other slice hashes as
  ``SHA256(h_I || SHA256(slice))``, so a slice cannot move to another GOP.
- :class:`StreamSigner` runs on every frame as it leaves the encoder, before
  the ring buffer, so the pre-event is signed too. It hashes each slice once.
  The SEI for a GOP exists only when the next IDR arrives; it rides at the
  front of the access unit *after* that IDR ("lib placement"), never in the
  IDR's own unit: recordings are cut at IDRs, and a recording that starts
  with an SEI for a GOP it does not contain confuses the reference
  validator. Signatures are RFC 6979 deterministic, so reruns of a simulated
  run are byte-identical.
- A recording ends mid-GOP. :class:`FrameSeal` travels with each frame so the
  writer's :class:`GopCloser` can sign exactly the frames it wrote (an
  end-of-stream SEI) and re-insert an SEI whose carrier frame it dropped: no
  frame of a recording stays unsigned.
- :func:`validate` is our own reading of the same rules, GOP by GOP, for
  ``bodycam verify``: it names the frame and GOP that fail instead of a
  yes/no, never raises on garbage, and also reads the older Axis layout
  (reserved byte without the linked/GOP-hash bits, where an SEI precedes the
  next IDR and also lists that IDR) so Axis's sample files check out.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from camera.evidence import annexb

UUID = b"Signed Video...0"  # 5369676e-6564-2056-6964-656f2e2e2e30
RESERVED_BYTE = 0xB0  # |epb|golden|linked hash|gop hash|0000|: hashed with EPBs, v2.x layout
CODE_VERSION = bytes((2, 3, 8))  # the library version whose wire format this writes
GENERAL_VERSION = 4
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
MAX_HASH_LIST = 600  # the library's hash list holds 64 * 300 bytes; beyond it, GOP level
SHA256_OID = bytes.fromhex("0609608648016503040201")  # DER of 2.16.840.1.101.3.4.2.1
GOP_HASH_SALT = b"\x01"
STOP_BYTE = 0x80

TAG_GENERAL = 0x01
TAG_PUBLIC_KEY = 0x02
TAG_PRODUCT_INFO = 0x03
TAG_HASH_LIST = 0x04
TAG_SIGNATURE = 0x05
TAG_ARBITRARY_DATA = 0x06
TAG_CRYPTO_INFO = 0x07
TAG_VENDOR_AXIS = 0x81
_ONE_BYTE_LENGTH = frozenset({TAG_GENERAL, TAG_CRYPTO_INFO})
_KNOWN_TAGS = frozenset(
    {
        TAG_GENERAL,
        TAG_PUBLIC_KEY,
        TAG_PRODUCT_INFO,
        TAG_HASH_LIST,
        TAG_SIGNATURE,
        TAG_ARBITRARY_DATA,
        TAG_CRYPTO_INFO,
        TAG_VENDOR_AXIS,
    }
)
_PAYLOAD_TYPE_USER_DATA_UNREGISTERED = 5
_U32 = 1 << 32

OK = "OK"
MISSING = "MISSING"
NOT_OK = "NOT_OK"
UNSIGNED = "UNSIGNED"
NOT_SIGNED = "NOT_SIGNED"
UNVERIFIED = "UNVERIFIED"


# --------------------------------------------------------------------------- format


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """Who made the recording, as carried in every SEI (each field at most 255 UTF-8 bytes).

    Never "Axis Communications AB" as manufacturer: the reference validator
    then expects Axis key attestation.
    """

    hardware_id: str
    firmware_version: str
    serial_number: str
    manufacturer: str
    address: str = ""

    def encode(self) -> bytes:
        """The PRODUCT_INFO value (version 2): five length-prefixed strings, no NULs."""
        out = bytearray(b"\x02")
        for name in ("hardware_id", "firmware_version", "serial_number", "manufacturer", "address"):
            raw = getattr(self, name).encode()
            if len(raw) > 255:
                raise ValueError(f"product info {name} is longer than 255 bytes")
            out.append(len(raw))
            out += raw
        return bytes(out)


class SeiError(ValueError):
    """An SVF SEI that cannot be read; the message names the part that is wrong."""


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV: GENERAL and CRYPTO_INFO have a 1-byte length, every other tag 2 bytes."""
    if tag in _ONE_BYTE_LENGTH:
        if len(value) > 0xFF:
            raise ValueError(f"TLV 0x{tag:02x} value of {len(value)} bytes does not fit")
        return bytes((tag, len(value))) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"TLV 0x{tag:02x} value of {len(value)} bytes does not fit")
    return bytes((tag,)) + len(value).to_bytes(2, "big") + value


def gop_hash(hashes_: Iterable[bytes]) -> bytes:
    """SHA256(0x01 || h_1 || ... || h_n): the GOP hash the GENERAL tag carries."""
    h = hashlib.sha256(GOP_HASH_SALT)
    for item in hashes_:
        h.update(item)
    return h.digest()


def general_value(
    gop_counter: int,
    num_hashes: int,
    timestamps: tuple[int, int] | None,
    linked_hash: bytes,
    gop_hash_: bytes,
) -> bytes:
    """The GENERAL value (version 4). Timestamps are Unix microseconds [start, end]."""
    flags = 0x01 if timestamps is not None else 0x00
    out = struct.pack(
        ">BIH3sB", GENERAL_VERSION, gop_counter % _U32, num_hashes & 0xFFFF, CODE_VERSION, flags
    )
    if timestamps is not None:
        out += struct.pack(">qq", *timestamps)
    return out + linked_hash + gop_hash_


def _max_signature_size(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    """EVP_PKEY_size of an EC key: the longest DER ECDSA signature (72 for P-256)."""
    integer = 2 + (key.curve.key_size + 7) // 8 + 1
    body = 2 * integer
    return body + (2 if body < 0x80 else 3)


class _SeiWriter:
    """Builds signed SEIs for one key and product; the constant TLVs are encoded once."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, product: ProductInfo) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise TypeError("signed video needs an ECDSA private key")
        if product.manufacturer == "Axis Communications AB":
            raise ValueError("manufacturer 'Axis Communications AB' asks for Axis attestation")
        self._key = private_key
        self.public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.max_signature = _max_signature_size(private_key)
        self._optional = (
            tlv(TAG_PUBLIC_KEY, b"\x02" + self.public_pem)
            + tlv(TAG_PRODUCT_INFO, product.encode())
            + tlv(TAG_CRYPTO_INFO, b"\x01" + bytes((len(SHA256_OID),)) + SHA256_OID)
        )
        self._signature_tlv_size = 3 + 4 + self.max_signature

    def build(
        self,
        gop_counter: int,
        hashes_: Sequence[bytes],
        linked_hash: bytes,
        timestamps: tuple[int, int] | None,
    ) -> bytes:
        """One SEI NAL unit with a 4-byte start code, signing ``hashes_`` as one GOP."""
        body = self._optional + tlv(
            TAG_GENERAL,
            general_value(gop_counter, len(hashes_), timestamps, linked_hash, gop_hash(hashes_)),
        )
        if len(hashes_) <= MAX_HASH_LIST:
            body += tlv(TAG_HASH_LIST, b"\x01" + b"".join(hashes_))
        # payloadSize counts the unescaped bytes and the signature TLV at its maximum size.
        size = len(UUID) + 1 + len(body) + self._signature_tlv_size
        header = bytearray(b"\x06\x05")
        header += b"\xff" * (size // 255)
        header.append(size % 255)
        header += UUID
        header.append(RESERVED_BYTE)
        document = bytes(header) + annexb.escape(body)
        der = self._key.sign(
            hashlib.sha256(document).digest(),
            ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True),
        )
        signature = (
            b"\x02\x00"
            + len(der).to_bytes(2, "big")
            + der
            + b"\x01" * (self.max_signature - len(der))
        )
        # The signature TLV starts with tag 0x05 (> 3): escaping it on its own
        # continues the document's escaping exactly.
        return (
            annexb.START_CODE
            + document
            + annexb.escape(tlv(TAG_SIGNATURE, signature))
            + bytes((STOP_BYTE,))
        )


# --------------------------------------------------------------------------- signing


@dataclass(frozen=True, slots=True)
class FrameSeal:
    """What one signed access unit contributes to its GOP's signature.

    It travels with the frame through the ring buffer to the recording
    writer, whose :class:`GopCloser` needs it to close a recording.
    ``pending`` is set on an IDR frame: the previous GOP's SEI (Annex-B),
    which the signer puts at the front of the next access unit; that unit's
    seal has ``carries_sei``.
    """

    gop_counter: int  # 0 before the first IDR (those frames are not signed)
    linked_hash: bytes  # h_I of the IDR before this GOP's IDR; zeros for the first GOP
    hashes: tuple[bytes, ...]  # this unit's slice hashes, in stream order
    starts_gop: bool = False
    pending: bytes | None = None
    carries_sei: bool = False


class StreamSigner:
    """Signs one encoder's H.264 stream GOP by GOP (one per boot; all state is here)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, product: ProductInfo) -> None:
        self._writer = _SeiWriter(private_key, product)
        self._counter = 0
        self._ref = ZERO_HASH  # h_I of the current GOP
        self._linked = ZERO_HASH  # h_I of the GOP before it
        self._hashes: list[bytes] = []
        self._gop_start_us: int | None = None
        self._carry: bytes | None = None

    @property
    def public_pem(self) -> bytes:
        """The PEM carried in every SEI; give validators exactly these bytes."""
        return self._writer.public_pem

    def sign(self, au: bytes, wall_us: int | None = None) -> tuple[bytes, FrameSeal]:
        """Hash one access unit; at an IDR, sign the GOP that just ended.

        ``wall_us`` (Unix microseconds at capture) matters only on IDR frames:
        a GOP's SEI carries [ts(its IDR), ts(next IDR)] when both are known.
        Returns the unit to pass on (with the previous GOP's SEI in front when
        this unit follows an IDR) and its seal.
        """
        carry, self._carry = self._carry, None
        sha256 = hashlib.sha256
        unit_hashes: list[bytes] = []
        starts_gop = False
        pending: bytes | None = None
        for _, nal in annexb.iter_nals(au):
            kind = nal[0] & 0x1F
            if kind != annexb.NAL_IDR and kind != annexb.NAL_SLICE:
                continue
            if kind == annexb.NAL_IDR and len(nal) > 1 and nal[1] & 0x80:
                digest = sha256(nal).digest()
                pending = self._close_gop(wall_us)
                self._linked, self._ref = self._ref, digest
                self._counter = (self._counter % _U32) + 1
                self._hashes = []
                starts_gop = True
            else:
                digest = sha256(self._ref + sha256(nal).digest()).digest()
            unit_hashes.append(digest)
            if self._counter:
                self._hashes.append(digest)
        if pending is not None:
            self._carry = pending
        seal = FrameSeal(
            gop_counter=self._counter,
            linked_hash=self._linked,
            hashes=tuple(unit_hashes),
            starts_gop=starts_gop,
            pending=pending,
            carries_sei=carry is not None,
        )
        return (carry + bytes(au) if carry is not None else au), seal

    def _close_gop(self, wall_us: int | None) -> bytes | None:
        """The SEI for the GOP an IDR ends (None for the first IDR)."""
        start_us, self._gop_start_us = self._gop_start_us, wall_us
        if not self._counter or not self._hashes:
            return None
        span = (start_us, wall_us) if start_us is not None and wall_us is not None else None
        return self._writer.build(self._counter, self._hashes, self._linked, span)


class GopCloser:
    """The recording writer's side: signs the partial GOP a recording ends with.

    Feed it the seal of every frame written, in order. Frames are dropped
    from a recording only up to the next keyframe, so a recording's GOPs are
    prefixes of the signer's GOPs and the hashes fed are exactly what a
    closing SEI must list.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._counter: int | None = None
        self._linked = ZERO_HASH
        self._hashes: list[bytes] = []
        self._pending: bytes | None = None

    def pending_missing(self, seal: FrameSeal) -> bytes | None:
        """The SEI to write before this frame because the frame that carried it was dropped.

        After an IDR the next unit carries the previous GOP's SEI; if the
        next frame written is any other, that SEI must be written first.
        """
        if self._pending is not None and not seal.carries_sei:
            return self._pending
        return None

    def feed(self, seal: FrameSeal) -> bytes:
        """Record a frame about to be written; returns bytes to write before it (usually b"")."""
        before = self.pending_missing(seal) or b""
        self._pending = None
        # A GOP change without an IDR means the recording began mid-GOP (the
        # writer starts on keyframes, so not in practice): sign what it has.
        if seal.starts_gop or self._counter != seal.gop_counter:
            self._counter = seal.gop_counter
            self._linked = seal.linked_hash
            self._hashes = []
            self._pending = seal.pending if seal.starts_gop else None
        self._hashes.extend(seal.hashes)
        return before

    def close(self, private_key: ec.EllipticCurvePrivateKey, product: ProductInfo) -> bytes:
        """Annex-B bytes to append after the last frame so that every frame written is signed.

        The previous GOP's SEI if its carrier was not written, then an
        end-of-stream SEI for the current partial GOP (same GOP counter, no
        timestamps, the correct GOP hash). Empty when nothing was fed. The
        closer is empty afterwards.
        """
        out = self._pending or b""
        if self._counter and self._hashes:
            out += _SeiWriter(private_key, product).build(
                self._counter, self._hashes, self._linked, None
            )
        self._reset()
        return out


# --------------------------------------------------------------------------- reading SEIs


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
    if head is None or head[0] != _PAYLOAD_TYPE_USER_DATA_UNREGISTERED:
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
        if tag not in _KNOWN_TAGS:
            raise SeiError(f"unknown TLV tag 0x{tag:02x} at TLV byte {pos}")
        width = 1 if tag in _ONE_BYTE_LENGTH else 2
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


# --------------------------------------------------------------------------- validating


@dataclass(frozen=True, slots=True)
class GopResult:
    """One GOP of the stream (IDR to the next IDR), as its signature vouches for it.

    ``index`` counts GOPs in this stream from 0; ``first_frame`` counts access
    units (primary slices) in this stream from 0, so callers can map it to
    frame numbers. ``status``: OK, MISSING (signed slices absent), NOT_OK, or
    UNSIGNED (the stream ends before its SEI).
    """

    index: int
    gop_counter: int | None
    first_frame: int
    frames: int
    status: str
    reason: str = ""
    sei_offset: int | None = None
    timestamps: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one stream. ``status``: OK, MISSING, NOT_OK, NOT_SIGNED or UNVERIFIED.

    UNVERIFIED: signatures are present but no GOP of the stream could be
    checked (for example one GOP cut out of a longer stream, without the SEI
    that follows it). ``unsigned_frames`` lists frames no SEI covers; a
    complete recording has none.
    """

    status: str
    gops: tuple[GopResult, ...]
    frames: int
    frames_validated: int
    unsigned_frames: tuple[int, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()
    key_source: str = "none"  # "given", "stream" (the key in the SEIs, not trusted) or "none"
    product: ProductInfo | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def findings(self) -> tuple[str, ...]:
        """Everything that is wrong, stream-level first, then GOP by GOP."""
        bad = tuple(g.reason for g in self.gops if g.status in (NOT_OK, MISSING))
        return self.problems + bad

    def describe(self) -> str:
        """One line in the spirit of svf_validate's summary."""
        counts = {s: sum(g.status == s for g in self.gops) for s in (OK, MISSING, NOT_OK, UNSIGNED)}
        return (
            f"svf: {self.status} gops={len(self.gops)} ok={counts[OK]} "
            f"missing={counts[MISSING]} not_ok={counts[NOT_OK]} unsigned={counts[UNSIGNED]} "
            f"frames={self.frames} validated={self.frames_validated} "
            f"unsigned_frames={len(self.unsigned_frames)} key={self.key_source}"
        )


@dataclass(slots=True)
class _Gop:
    index: int
    start: int  # position of its IDR primary slice among the stream's NAL units
    first_frame: int
    ref: bytes  # h_I
    slices: list[tuple[int, bytes]] = field(default_factory=list)  # (frame, hash)
    last: int = 0  # position of its last slice

    @property
    def frames(self) -> list[int]:
        return sorted({frame for frame, _ in self.slices})


@dataclass(slots=True)
class _Sei:
    pos: int
    offset: int
    raw: bytes
    info: SeiInfo | None
    error: str | None = None
    signature_problem: str | None = None


def _units(
    stream: bytes | bytearray | memoryview | Iterable[bytes | memoryview],
) -> Iterable[tuple[int, memoryview]]:
    if isinstance(stream, bytes | bytearray | memoryview):
        yield from annexb.iter_nals(stream)
        return
    offset = 0
    for unit in stream:
        raw = bytes(unit)
        offset += len(annexb.START_CODE)
        view = memoryview(raw)[: len(raw.rstrip(b"\x00"))]
        if len(view):
            yield offset, view
        offset += len(raw)


def _signed_diff(a: int, b: int) -> int:
    """a - b for 32-bit GOP counters that may wrap."""
    return ((a - b + (1 << 31)) % _U32) - (1 << 31)


class _KeyRing:
    """Which key checks each SEI: the given one, or the first one the stream carries."""

    def __init__(self, given: ec.EllipticCurvePublicKey | None) -> None:
        self.given = given
        self._given_der = _der(given) if given is not None else None
        self.stream: ec.EllipticCurvePublicKey | None = None
        self._stream_der: bytes | None = None
        self._loaded: dict[bytes, ec.EllipticCurvePublicKey | str] = {}

    def _load(self, pem: bytes) -> ec.EllipticCurvePublicKey | str:
        if pem not in self._loaded:
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                self._loaded[pem] = "its public key cannot be read"
            else:
                self._loaded[pem] = (
                    key
                    if isinstance(key, ec.EllipticCurvePublicKey)
                    else "its public key is not an ECDSA key"
                )
        return self._loaded[pem]

    def check(self, info: SeiInfo) -> str | None:
        """None if the SEI's signature verifies; otherwise what is wrong."""
        if info.signature is None or info.document_hash is None:
            return "it carries no signature"
        carried = None
        if info.public_key_pem is not None:
            loaded = self._load(info.public_key_pem)
            if isinstance(loaded, str):
                return loaded
            carried = loaded
        if self.given is not None:
            if carried is not None and _der(carried) != self._given_der:
                return "it carries a different public key than the one given"
            key = self.given
        else:
            if self.stream is None and carried is not None:
                self.stream, self._stream_der = carried, _der(carried)
            elif carried is not None and _der(carried) != self._stream_der:
                return "its public key differs from the one earlier in the stream"
            key = self.stream
        if key is None:
            return "no public key to check it with (none given, none in the SEI)"
        try:
            key.verify(info.signature, info.document_hash, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError):
            return "its signature does not verify"
        return None


def _der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validate(
    stream: bytes | bytearray | memoryview | Iterable[bytes | memoryview],
    public_key: ec.EllipticCurvePublicKey | None = None,
) -> Validation:
    """Check an H.264 stream's SVF signatures GOP by GOP; never raises on bad input.

    ``stream`` is Annex-B bytes or NAL units without start codes (offsets in
    findings then count as if the units were joined with 4-byte start codes).
    Without ``public_key`` the key in the SEIs is used, which proves only
    that the stream is consistent, not who signed it.
    """
    if public_key is not None and not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise TypeError("signed video is checked with an ECDSA public key")
    gops, seis, frames, pre_frames = _scan(stream)
    keys = _KeyRing(public_key)
    for sei in seis:
        if sei.info is not None:
            sei.signature_problem = keys.check(sei.info)
    assigned = _associate(gops, seis)
    problems: list[str] = []
    notes: list[str] = []
    _classify_unassigned(gops, seis, assigned, problems, notes)
    results, validated = _check_gops(gops, seis, assigned)
    unsigned = set(pre_frames)
    for gop, result in zip(gops, results, strict=True):
        if result.gop_counter is None:
            unsigned.update(gop.frames)
    if not seis:
        status = NOT_SIGNED
        problems.append("no signature at all: the stream carries no signed-video SEI")
    elif problems or any(r.status == NOT_OK for r in results):
        status = NOT_OK
    elif any(r.status == MISSING for r in results):
        status = MISSING
    elif not any(r.status == OK for r in results):
        status = UNVERIFIED
    else:
        status = OK
    product = next(
        (s.info.product for s in seis if s.info and not s.signature_problem and s.info.product),
        None,
    )
    key_source = "given" if public_key is not None else ("stream" if keys.stream else "none")
    return Validation(
        status=status,
        gops=tuple(results),
        frames=frames,
        frames_validated=validated,
        unsigned_frames=tuple(sorted(unsigned)),
        problems=tuple(problems),
        notes=tuple(notes),
        key_source=key_source,
        product=product,
    )


def _scan(
    stream: bytes | bytearray | memoryview | Iterable[bytes | memoryview],
) -> tuple[list[_Gop], list[_Sei], int, set[int]]:
    """Hash every slice against its GOP's IDR and decode every SVF SEI, in one pass."""
    sha256 = hashlib.sha256
    gops: list[_Gop] = []
    seis: list[_Sei] = []
    pre_frames: set[int] = set()
    frame = -1
    current: _Gop | None = None
    for pos, (offset, nal) in enumerate(_units(stream)):
        kind = nal[0] & 0x1F
        if kind == annexb.NAL_IDR or kind == annexb.NAL_SLICE:
            primary = len(nal) > 1 and bool(nal[1] & 0x80)
            frame += primary
            at = max(frame, 0)
            if kind == annexb.NAL_IDR and primary:
                digest = sha256(nal).digest()
                current = _Gop(len(gops), pos, at, digest)
                gops.append(current)
            elif current is None:
                pre_frames.add(at)
                continue
            else:
                digest = sha256(current.ref + sha256(nal).digest()).digest()
            current.slices.append((at, digest))
            current.last = pos
        elif kind == annexb.NAL_SEI and is_svf_sei(nal):
            raw = bytes(nal)
            try:
                seis.append(_Sei(pos, offset, raw, parse_sei(raw)))
            except SeiError as exc:
                seis.append(_Sei(pos, offset, raw, None, str(exc)))
    return gops, seis, frame + 1, pre_frames


def _associate(gops: list[_Gop], seis: list[_Sei]) -> dict[int, int]:
    """GOP index -> SEI index: which SEI signs which GOP of this stream.

    By content first: a hash list starts with its GOP's h_I, and a linked
    hash is the h_I of the GOP before. SEIs left over (GOP level, an altered
    IDR) are placed by GOP counter relative to those anchors, unless their
    linked hash points elsewhere; only when nothing anchors the counters, by
    position (an SEI signs the oldest unsigned GOP wholly before it). An SEI
    placed nowhere signs a GOP that is not in this stream.
    """
    assigned: dict[int, int] = {}
    taken: set[int] = set()
    by_ref: dict[bytes, list[_Gop]] = {}
    for gop in gops:
        by_ref.setdefault(gop.ref, []).append(gop)
    usable = [i for i, s in enumerate(seis) if s.info is not None]

    def place(i: int, candidates: list[_Gop]) -> None:
        pos = seis[i].pos
        fitting = [g for g in candidates if g.index not in assigned and g.start < pos]
        before = [g for g in fitting if g.last < pos] or fitting
        if before:
            assigned[before[-1].index] = i
            taken.add(i)

    for i in usable:
        info = seis[i].info
        assert info is not None
        if info.hash_list:
            place(i, by_ref.get(info.hash_list[0], []))
    for i in usable:
        info = seis[i].info
        assert info is not None
        if i not in taken and info.linked_hash and info.linked_hash != ZERO_HASH:
            previous = by_ref.get(info.linked_hash, [])
            place(i, [gops[g.index + 1] for g in previous if g.index + 1 < len(gops)])
    if not assigned:
        floor = 0
        for i in usable:
            for gop in gops[floor:]:
                if gop.last < seis[i].pos:
                    assigned[gop.index] = i
                    taken.add(i)
                    floor = gop.index + 1
                break
    for i in usable:
        if i in taken or not assigned:
            continue
        target = _counter_target(gops, seis, assigned, i)
        if (
            target is not None
            and 0 <= target < len(gops)
            and target not in assigned
            and gops[target].start < seis[i].pos
            and _links_to(gops, seis[i], target)
        ):
            assigned[target] = i
            taken.add(i)
    return assigned


def _links_to(gops: list[_Gop], sei: _Sei, target: int) -> bool:
    """False if the SEI's linked hash names a GOP of this stream other than target's predecessor."""
    linked = sei.info.linked_hash if sei.info else None
    if not linked or linked == ZERO_HASH:
        return True
    named = [g.index for g in gops if g.ref == linked]
    return not named or target - 1 in named


def _counter_target(
    gops: list[_Gop], seis: list[_Sei], assigned: dict[int, int], i: int
) -> int | None:
    """The stream GOP index whose counter the SEI's counter names.

    Counted from the nearest SEI already placed before it in the stream (the
    chain as verified so far), else from the nearest one after it.
    """
    info = seis[i].info
    if info is None or not assigned:
        return None
    pos = seis[i].pos
    anchors = sorted(assigned.items(), key=lambda item: seis[item[1]].pos)
    before = [(g, s) for g, s in anchors if seis[s].pos < pos]
    g, s = before[-1] if before else anchors[0]
    anchor = seis[s].info
    assert anchor is not None
    return g + _signed_diff(info.gop_counter, anchor.gop_counter)


def _classify_unassigned(
    gops: list[_Gop],
    seis: list[_Sei],
    assigned: dict[int, int],
    problems: list[str],
    notes: list[str],
) -> None:
    """Findings for SEIs that sign no GOP of this stream (unreadable, leading, orphaned)."""
    taken = set(assigned.values())
    first_signed = min((seis[i].pos for i in taken), default=None)
    for i, sei in enumerate(seis):
        if sei.info is None:
            problems.append(f"SEI at byte {sei.offset}: cannot be read: {sei.error}")
            continue
        if i in taken:
            continue
        info = sei.info
        where = f"SEI at byte {sei.offset} (gop_counter {info.gop_counter})"
        target = _counter_target(gops, seis, assigned, i)
        leading = (target is not None and target < 0) or (
            target is None and (first_signed is None or sei.pos < first_signed)
        )
        if sei.signature_problem:
            problems.append(f"{where}: {sei.signature_problem}")
        elif leading:
            notes.append(f"{where} signs a GOP before this stream; only its signature was checked")
        elif (
            target is not None
            and target in assigned
            and (twin := seis[assigned[target]]).info is not None
            and twin.info.gop_counter == info.gop_counter
        ):
            same = "an identical copy of" if twin.raw == sei.raw else "a second signature for"
            notes.append(f"{where} is {same} the SEI of GOP {target}; its signature verifies")
        else:
            problems.append(f"{where} signs frames that are not in this stream")


def _check_gops(
    gops: list[_Gop], seis: list[_Sei], assigned: dict[int, int]
) -> tuple[list[GopResult], int]:
    results: list[GopResult] = []
    validated = 0
    last_signed = max(assigned, default=-1)
    for gop in gops:
        frames = gop.frames
        i = assigned.get(gop.index)
        if i is None:
            if gop.index < last_signed:
                status, reason = NOT_OK, f"GOP {gop.index}: no signature (its SEI is missing)"
            else:
                status, reason = UNSIGNED, f"GOP {gop.index}: the stream ends before its SEI"
            results.append(GopResult(gop.index, None, gop.first_frame, len(frames), status, reason))
            continue
        sei = seis[i]
        info = sei.info
        assert info is not None
        reasons: list[str] = []
        missing = ""
        good_frames: set[int] = set()
        if sei.signature_problem:
            reasons.append(f"GOP {gop.index}: SEI at byte {sei.offset}: {sei.signature_problem}")
        else:
            missing, good_frames = _check_hashes(gops, gop, info, reasons)
            reasons += _check_chain(gops, seis, assigned, gop, info)
        if info.flags & 0x02:
            reasons.append(f"GOP {gop.index}: partial-GOP signing is not supported")
        if reasons:
            status, reason = NOT_OK, "; ".join(reasons)
        elif missing:
            status, reason = MISSING, missing
        else:
            status, reason = OK, ""
        if status != NOT_OK:
            validated += len(good_frames)
        results.append(
            GopResult(
                gop.index,
                info.gop_counter,
                gop.first_frame,
                len(frames),
                status,
                reason,
                sei.offset,
                info.timestamps,
            )
        )
    return results, validated


def _check_hashes(
    gops: list[_Gop], gop: _Gop, info: SeiInfo, reasons: list[str]
) -> tuple[str, set[int]]:
    """Slice hashes against the signed list (or the GOP hash); returns (missing, good frames)."""
    computed = list(gop.slices)
    if info.legacy and gop.index + 1 < len(gops):
        # The old layout also lists the next IDR, hashed with this GOP's reference.
        following = gops[gop.index + 1]
        link = hashlib.sha256(gop.ref + following.ref).digest()
        computed.append((following.first_frame, link))
    if info.hash_list is None:
        if info.gop_hash != gop_hash(h for _, h in computed):
            reasons.append(
                f"GOP {gop.index}: GOP hash does not match the signed one "
                "(frames altered, added or removed; the GOP-level signature cannot say which)"
            )
            return "", set()
        return "", {frame for frame, _ in gop.slices}
    positions: dict[bytes, list[int]] = {}
    for j, h in enumerate(info.hash_list):
        positions.setdefault(h, []).append(j)
    latest = -1
    bad: list[int] = []
    matched: list[int] = []
    gap_frame: int | None = None
    for frame, h in computed:
        found = next((j for j in positions.get(h, ()) if j > latest), None)
        if found is None:
            bad.append(frame)
            continue
        if found > latest + 1 and gap_frame is None:
            gap_frame = frame
        latest = found
        matched.append(frame)
    if bad and computed[0][1] not in positions:
        reasons.append(
            f"frame {gop.first_frame} of GOP {gop.index}: IDR slice hash not in the signed "
            f"list (every slice of the GOP is hashed with it: {len(bad)} slice(s) differ)"
        )
    elif bad:
        more = f" (and {len(bad) - 1} more slice(s))" if len(bad) > 1 else ""
        reasons.append(
            f"frame {bad[0]} of GOP {gop.index}: slice hash not in the signed list{more}"
        )
    good = {frame for frame, _ in gop.slices} - set(bad)
    lost = len(info.hash_list) - len(matched) - len(bad)
    if lost <= 0 or bad:
        return "", good
    where = f"before frame {gap_frame}" if gap_frame is not None else "at its end"
    return f"GOP {gop.index}: {lost} signed slice(s) missing {where}", good


def _check_chain(
    gops: list[_Gop], seis: list[_Sei], assigned: dict[int, int], gop: _Gop, info: SeiInfo
) -> list[str]:
    """Linked hash and GOP counter against the previous GOP: nothing cut, moved or spliced."""
    reasons: list[str] = []
    prev = gop.index - 1
    if info.linked_hash is not None and prev >= 0 and info.linked_hash != gops[prev].ref:
        reasons.append(
            f"GOP {gop.index}: linked hash does not match the IDR of GOP {prev} "
            "(GOPs removed, reordered or spliced, or that IDR altered)"
        )
    elif info.linked_hash is not None and prev < 0:
        expected = _leading_reference(seis, info.gop_counter)
        if expected is not None and info.linked_hash != expected:
            reasons.append(
                f"GOP {gop.index}: linked hash does not match the GOP signed before this stream"
            )
    if prev >= 0 and prev in assigned:
        before = seis[assigned[prev]].info
        assert before is not None
        if _signed_diff(info.gop_counter, before.gop_counter) != 1:
            reasons.append(
                f"GOP {gop.index}: gop_counter {info.gop_counter} does not follow "
                f"{before.gop_counter} of GOP {prev}"
            )
    return reasons


def _leading_reference(seis: list[_Sei], counter: int) -> bytes | None:
    """h_I of the GOP before the stream, from a verified leading SEI, if there is one."""
    for sei in seis:
        info = sei.info
        if (
            info is not None
            and not sei.signature_problem
            and info.hash_list
            and _signed_diff(counter, info.gop_counter) == 1
        ):
            return info.hash_list[0]
    return None
