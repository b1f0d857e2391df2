"""In-stream H.264 signatures in the Axis Signed Video Framework format (SPEC 12): the signer.

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
- This module writes; reading is apart, so the firmware carries no
  validator and the validator depends on the writer only for the format's
  constants: :mod:`camera.evidence.svf_parse` decodes one SEI,
  :mod:`camera.evidence.svf_check` checks a whole stream.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
#: The tags whose TLV length is one byte; every other tag has two.
ONE_BYTE_LENGTH_TAGS = frozenset({TAG_GENERAL, TAG_CRYPTO_INFO})
KNOWN_TAGS = frozenset(
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
PAYLOAD_TYPE_USER_DATA_UNREGISTERED = 5
GOP_COUNTER_MOD = 1 << 32  # the GOP counter is 32 bits and wraps


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


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV: GENERAL and CRYPTO_INFO have a 1-byte length, every other tag 2 bytes."""
    if tag in ONE_BYTE_LENGTH_TAGS:
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
        ">BIH3sB",
        GENERAL_VERSION,
        gop_counter % GOP_COUNTER_MOD,
        num_hashes & 0xFFFF,
        CODE_VERSION,
        flags,
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
        header = bytearray((annexb.NAL_SEI, PAYLOAD_TYPE_USER_DATA_UNREGISTERED))
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
                self._counter = (self._counter % GOP_COUNTER_MOD) + 1
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
