"""Signed video (SVF): what the signer writes, what the closer adds, what the validator says.

The clip is real libx264 output (320x240, 30 fps, GOP 30, 100 frames of a
moving pattern), signed once per module; every test damages or cuts its own
copy. Axis's sample files (tests/data/svf, MIT) pin the validator to the
reference validator's verdicts on streams we did not write. Interop with the
C validator itself is a development check: tools/svf_interop.py.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given
from hypothesis import strategies as st

from camera.encoders.h264 import H264Encoder
from camera.evidence import annexb, svf, svf_check, svf_parse

DATA = Path(__file__).parent / "data" / "svf"
KEY = ec.derive_private_key(0xB0D1CA, ec.SECP256R1())
OTHER_KEY = ec.derive_private_key(0x0BAD, ec.SECP256R1())
PRODUCT = svf.ProductInfo("bodycam-sim", "1.0.0", "SN-0001", "Example Police Gear", "")
EPOCH_US = 1_700_000_000_000_000
FRAMES = 100
GOP = 30


@dataclass(frozen=True)
class Clip:
    raw: list[bytes]  # encoder output, one access unit per frame
    aus: list[bytes]  # signed
    seals: list[svf.FrameSeal]


def wall_us(number: int) -> int:
    return EPOCH_US + number * 33_333


def sign(raw: list[bytes], key: ec.EllipticCurvePrivateKey = KEY) -> Clip:
    signer = svf.StreamSigner(key, PRODUCT)
    done = [signer.sign(au, wall_us(i)) for i, au in enumerate(raw)]
    return Clip(raw, [au for au, _ in done], [seal for _, seal in done])


@functools.cache
def make_clip() -> Clip:
    """Made once; hypothesis tests call this rather than take a fixture (it keeps
    their failure reports short)."""
    encoder = H264Encoder(320, 240, 30, bitrate=400_000, gop=GOP)
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    raw = []
    for i in range(FRAMES):
        picture = np.ascontiguousarray(texture[i : i + 240, 2 * i : 2 * i + 320])
        raw += [f.data for f in encoder.encode(picture, i, i / 30)]
    raw += [f.data for f in encoder.flush()]
    assert len(raw) == FRAMES
    return sign(raw)


@pytest.fixture
def clip() -> Clip:
    return make_clip()


def record(clip: Clip, first: int, end: int, key: ec.EllipticCurvePrivateKey = KEY) -> bytes:
    """What a recording writer produces for frames [first, end): frames, then the close."""
    closer = svf.GopCloser()
    out = bytearray()
    for i in range(first, end):
        out += closer.feed(clip.seals[i])
        out += clip.aus[i]
    return bytes(out + closer.close(key, PRODUCT))


def full(clip: Clip) -> bytes:
    return record(clip, 0, FRAMES)


def units(clip: Clip) -> list[bytes]:
    """The whole clip as written: one unit per frame, then the closing SEI."""
    return [*clip.aus, full(clip)[len(b"".join(clip.aus)) :]]


def slices(au: bytes) -> list[tuple[int, memoryview]]:
    return [(o, n) for o, n in annexb.iter_nals(au) if annexb.is_slice(n)]


def flip_slice(au: bytes, which: int = 0) -> bytes:
    offset, nal = slices(au)[which]
    damaged = bytearray(au)
    damaged[offset + len(nal) // 2] ^= 0x10
    return bytes(damaged)


def svf_seis(data: bytes) -> list[tuple[int, memoryview]]:
    return [(o, n) for o, n in annexb.iter_nals(data) if svf_parse.is_svf_sei(n)]


def without_seis(data: bytes) -> bytes:
    return b"".join(
        annexb.START_CODE + bytes(n)
        for _, n in annexb.iter_nals(data)
        if not svf_parse.is_svf_sei(n)
    )


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- signer


def test_signed_clip_with_close_validates_every_frame(clip: Clip) -> None:
    result = svf_check.validate(full(clip), KEY.public_key())
    assert result.ok, result.findings
    assert [g.status for g in result.gops] == ["OK"] * 4
    assert [g.gop_counter for g in result.gops] == [1, 2, 3, 4]
    assert [g.first_frame for g in result.gops] == [0, 30, 60, 90]
    assert result.frames == result.frames_validated == FRAMES
    assert result.unsigned_frames == ()
    assert result.key_source == "given"
    assert result.product == PRODUCT


def test_seis_ride_in_the_unit_after_each_idr(clip: Clip) -> None:
    carriers = [i for i, au in enumerate(clip.aus) if svf_seis(au)]
    assert carriers == [31, 61, 91]
    assert [s.carries_sei for s in clip.seals].count(True) == 3
    assert all(clip.aus[i].startswith(annexb.START_CODE + b"\x06\x05") for i in carriers)
    for i in (30, 60, 90):
        assert clip.seals[i].starts_gop and clip.seals[i].pending is not None
        assert clip.aus[i] == clip.raw[i]  # the IDR's own unit is never touched
        assert clip.aus[i + 1] == clip.seals[i].pending + clip.raw[i + 1]


def test_seal_carries_counter_link_and_slice_hashes(clip: Clip) -> None:
    first, second = clip.seals[0], clip.seals[30]
    idr = slices(clip.raw[0])[0][1]
    assert first.hashes[0] == hashlib.sha256(idr).digest()
    assert (first.gop_counter, first.linked_hash, first.pending) == (1, svf.ZERO_HASH, None)
    assert (second.gop_counter, second.linked_hash) == (2, first.hashes[0])
    p_slice = slices(clip.raw[1])[0][1]
    inner = hashlib.sha256(p_slice).digest()
    assert clip.seals[1].hashes[0] == hashlib.sha256(first.hashes[0] + inner).digest()
    assert len(clip.seals[1].hashes) == len(slices(clip.raw[1]))


def test_gop_timestamps_span_from_its_idr_to_the_next(clip: Clip) -> None:
    result = svf_check.validate(full(clip))
    assert [g.timestamps for g in result.gops] == [
        (wall_us(0), wall_us(30)),
        (wall_us(30), wall_us(60)),
        (wall_us(60), wall_us(90)),
        None,  # the closing SEI has no timestamps
    ]


def test_without_wall_time_there_are_no_timestamps(clip: Clip) -> None:
    signer = svf.StreamSigner(KEY, PRODUCT)
    data = b"".join(signer.sign(au, None)[0] for au in clip.raw)
    assert [g.timestamps for g in svf_check.validate(data).gops[:3]] == [None, None, None]


def test_signing_is_deterministic(clip: Clip) -> None:
    again = sign(clip.raw)
    assert again.aus == clip.aus
    assert again.seals == clip.seals
    assert record(again, 40, 75) == record(clip, 40, 75)


def test_signer_rejects_a_non_ec_key_and_overlong_product_info() -> None:
    with pytest.raises(TypeError):
        svf.StreamSigner(b"not a key", PRODUCT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hardware_id"):
        svf.StreamSigner(KEY, svf.ProductInfo("x" * 256, "1", "2", "3"))
    with pytest.raises(ValueError, match="Axis attestation"):
        svf.StreamSigner(KEY, svf.ProductInfo("1", "2", "3", "Axis Communications AB"))


def test_unsigned_before_the_first_idr_and_stream_without_close(clip: Clip) -> None:
    signer = svf.StreamSigner(KEY, PRODUCT)
    data = b"".join(signer.sign(au, None)[0] for au in clip.raw[5:])  # starts mid-GOP
    result = svf_check.validate(data)
    assert result.ok, result.findings
    assert result.gops[-1].status == "UNSIGNED"
    assert result.unsigned_frames == tuple(range(25)) + tuple(range(85, 95))


# --------------------------------------------------------------------------- tampering


def test_flipped_bit_in_a_p_slice_names_the_frame_and_gop(clip: Clip) -> None:
    damaged = units(clip)
    damaged[47] = flip_slice(damaged[47])
    result = svf_check.validate(b"".join(damaged))
    assert result.status == "NOT_OK"
    assert [g.status for g in result.gops] == ["OK", "NOT_OK", "OK", "OK"]
    assert result.gops[1].reason == "frame 47 of GOP 1: slice hash not in the signed list"
    assert result.findings == (result.gops[1].reason,)
    assert result.frames_validated == FRAMES - 30


def test_flipped_bit_in_a_second_slice_names_its_frame(clip: Clip) -> None:
    frame = next(i for i in range(31, 60) if len(slices(clip.aus[i])) > 1)
    damaged = units(clip)
    damaged[frame] = flip_slice(damaged[frame], 1)
    reason = svf_check.validate(b"".join(damaged)).gops[1].reason
    assert reason.startswith(f"frame {frame} of GOP 1")


def test_flipped_bit_in_an_idr_fails_its_gop_and_the_link(clip: Clip) -> None:
    damaged = units(clip)
    damaged[60] = flip_slice(damaged[60])
    result = svf_check.validate(b"".join(damaged))
    assert result.gops[2].status == "NOT_OK"
    assert result.gops[2].reason.startswith("frame 60 of GOP 2: IDR slice hash")
    assert "linked hash does not match the IDR of GOP 2" in result.gops[3].reason


def test_a_cut_out_gop_is_not_ok(clip: Clip) -> None:
    whole = units(clip)
    result = svf_check.validate(b"".join(whole[:30] + whole[60:]))
    assert result.status == "NOT_OK"
    assert any("signs frames that are not in this stream" in p for p in result.problems)
    assert result.gops[0].reason == "GOP 0: no signature (its SEI is missing)"
    assert "linked hash does not match the IDR of GOP 0" in result.gops[1].reason


def test_gops_in_the_wrong_order_are_not_ok(clip: Clip) -> None:
    whole = units(clip)
    result = svf_check.validate(b"".join(whole[:30] + whole[60:90] + whole[30:60] + whole[90:]))
    assert result.status == "NOT_OK"
    assert "gop_counter 3 does not follow 1 of GOP 0" in result.gops[1].reason
    assert "linked hash does not match the IDR of GOP 0" in result.gops[1].reason
    assert result.gops[2].reason == "GOP 2: no signature (its SEI is missing)"


def test_one_removed_frame_is_missing_not_altered(clip: Clip) -> None:
    data = b"".join(clip.aus[:40] + clip.aus[41:])
    result = svf_check.validate(data)
    assert result.status == "MISSING"
    assert result.gops[1].status == "MISSING"
    n = len(clip.seals[40].hashes)
    assert result.gops[1].reason == f"GOP 1: {n} signed slice(s) missing before frame 40"


def test_swapped_and_duplicated_frames_are_not_ok(clip: Clip) -> None:
    aus = list(clip.aus)
    aus[40], aus[41] = aus[41], aus[40]
    assert svf_check.validate(b"".join(aus)).gops[1].status == "NOT_OK"
    doubled = [*clip.aus[:50], clip.aus[49], *clip.aus[50:]]
    result = svf_check.validate(b"".join(doubled))
    assert result.gops[1].reason.startswith("frame 50 of GOP 1: slice hash not in the signed list")


def test_stripped_seis_mean_no_signature_at_all(clip: Clip) -> None:
    result = svf_check.validate(without_seis(full(clip)), KEY.public_key())
    assert result.status == "NOT_SIGNED"
    assert result.problems == ("no signature at all: the stream carries no signed-video SEI",)
    assert result.unsigned_frames == tuple(range(FRAMES))
    assert result.frames_validated == 0


def test_a_forged_signature_byte_is_not_ok(clip: Clip) -> None:
    data = bytearray(full(clip))
    offset, nal = svf_seis(bytes(data))[1]
    data[offset + len(nal) - 10] ^= 0x01  # inside the DER signature
    result = svf_check.validate(bytes(data))
    assert result.status == "NOT_OK"
    assert result.gops[1].reason == f"GOP 1: SEI at byte {offset}: its signature does not verify"
    assert [g.status for g in result.gops] == ["OK", "NOT_OK", "OK", "OK"]


def test_a_forged_document_byte_is_not_ok(clip: Clip) -> None:
    data = bytearray(full(clip))
    offset, nal = svf_seis(bytes(data))[0]
    position = bytes(nal).find(b"Example Police Gear")
    data[offset + position] ^= 0x20  # manufacturer text: signed, not hashed into the GOP
    assert "its signature does not verify" in svf_check.validate(bytes(data)).gops[0].reason


def test_a_different_key_is_not_ok(clip: Clip) -> None:
    result = svf_check.validate(full(clip), OTHER_KEY.public_key())
    assert result.status == "NOT_OK"
    assert all("different public key than the one given" in g.reason for g in result.gops)
    resigned = sign(clip.raw, OTHER_KEY)
    result = svf_check.validate(b"".join(resigned.aus), KEY.public_key())
    assert result.status == "NOT_OK"


def test_validate_refuses_a_key_that_is_not_ecdsa(clip: Clip) -> None:
    with pytest.raises(TypeError, match="ECDSA public key"):
        svf_check.validate(full(clip), b"PEM bytes")  # type: ignore[arg-type]


def test_without_a_given_key_the_streams_key_is_used_and_must_not_change(clip: Clip) -> None:
    assert svf_check.validate(full(clip)).key_source == "stream"
    other = sign(clip.raw, OTHER_KEY)
    spliced = b"".join(clip.aus[:60] + other.aus[60:])
    result = svf_check.validate(spliced)
    assert result.status == "NOT_OK"
    assert any("differs from the one earlier in the stream" in f for f in result.findings)


# --------------------------------------------------------------------------- recordings


def test_recording_cut_at_an_idr_and_closed_covers_every_frame(clip: Clip) -> None:
    result = svf_check.validate(record(clip, 30, 75), KEY.public_key())
    assert result.ok, result.findings
    assert result.frames == result.frames_validated == 45
    assert result.unsigned_frames == ()
    assert [g.gop_counter for g in result.gops] == [2, 3]
    assert len(result.notes) == 1 and "before this stream" in result.notes[0]


def test_recording_ending_right_on_an_idr_is_closed_with_two_seis(clip: Clip) -> None:
    closer = svf.GopCloser()
    for i in range(30, 61):
        assert closer.feed(clip.seals[i]) == b""
    tail = closer.close(KEY, PRODUCT)
    assert tail.startswith(clip.seals[60].pending)
    assert len(svf_seis(tail)) == 2
    data = b"".join(clip.aus[30:61]) + tail
    result = svf_check.validate(data, KEY.public_key())
    assert result.ok, result.findings
    assert [(g.first_frame, g.frames, g.status) for g in result.gops] == [
        (0, 30, "OK"),
        (30, 1, "OK"),
    ]
    assert result.unsigned_frames == ()


def test_a_recording_of_only_the_idr_after_the_carrier(clip: Clip) -> None:
    result = svf_check.validate(record(clip, 60, 61))
    assert result.ok and result.frames_validated == 1


def test_the_sei_of_a_dropped_carrier_is_written_before_the_next_frame(clip: Clip) -> None:
    closer = svf.GopCloser()
    out = bytearray()
    for i in [*range(0, 31), *range(60, FRAMES)]:  # 31..59 dropped up to the keyframe
        before = closer.feed(clip.seals[i])
        assert before == (clip.seals[30].pending if i == 60 else b"")
        out += before + clip.aus[i]
    out += closer.close(KEY, PRODUCT)
    result = svf_check.validate(bytes(out))
    assert [g.status for g in result.gops] == ["OK", "MISSING", "OK", "OK"]
    assert result.problems == ()
    assert result.unsigned_frames == ()


def test_pending_missing_is_a_pure_query(clip: Clip) -> None:
    closer = svf.GopCloser()
    closer.feed(clip.seals[30])
    assert closer.pending_missing(clip.seals[31]) is None  # it carries the SEI itself
    assert closer.pending_missing(clip.seals[60]) == clip.seals[30].pending
    assert closer.pending_missing(clip.seals[60]) == clip.seals[30].pending


def test_without_the_pending_sei_the_gop_before_is_not_signed(clip: Clip) -> None:
    data = b"".join(clip.aus[0:31] + clip.aus[60:])
    result = svf_check.validate(data)
    assert result.gops[0].reason == "GOP 0: no signature (its SEI is missing)"


def test_closing_an_empty_closer_writes_nothing_and_close_resets(clip: Clip) -> None:
    closer = svf.GopCloser()
    assert closer.close(KEY, PRODUCT) == b""
    closer.feed(clip.seals[0])
    assert closer.close(KEY, PRODUCT)
    assert closer.close(KEY, PRODUCT) == b""


def test_the_close_has_the_correct_gop_hash_not_the_librarys_stale_one(clip: Clip) -> None:
    tail = record(clip, 60, 75)[len(b"".join(clip.aus[60:75])) :]
    info = svf_parse.parse_sei(svf_seis(tail)[0][1])
    assert info is not None and info.timestamps is None
    hashes = [h for seal in clip.seals[60:75] for h in seal.hashes]
    assert info.hash_list == tuple(hashes)
    assert info.gop_hash == svf.gop_hash(hashes)
    assert (info.gop_counter, info.linked_hash) == (3, clip.seals[30].hashes[0])


def test_gop_level_signing_past_600_slices() -> None:
    """A GOP longer than the hash list holds is signed by its GOP hash alone."""
    idr = annexb.START_CODE + b"\x65\x88" + bytes(range(1, 40))
    frames = [idr] + [annexb.START_CODE + b"\x41\x9a" + b"%05d" % i for i in range(650)]
    frames.append(annexb.START_CODE + b"\x65\x88\x99")
    signed = sign(frames)
    sei = signed.seals[-1].pending
    assert sei is not None
    info = svf_parse.parse_sei(svf_seis(sei)[0][1])
    assert info is not None and info.hash_list is None and info.num_hashes == 651
    data = b"".join(signed.aus) + sei
    result = svf_check.validate(data)
    assert result.gops[0].status == "OK", result.findings
    assert result.frames_validated == 651
    damaged = bytearray(data)
    damaged[data.find(b"00300")] ^= 0x01
    result = svf_check.validate(bytes(damaged))
    assert result.gops[0].status == "NOT_OK"
    assert "GOP hash does not match" in result.gops[0].reason


def test_validate_accepts_nal_units_as_well_as_bytes(clip: Clip) -> None:
    data = full(clip)
    units = [bytes(n) for _, n in annexb.iter_nals(data)]
    assert svf_check.validate(units).ok
    assert svf_check.validate(units).frames_validated == FRAMES


# --------------------------------------------------------------------------- SEI layout


def reference_escape(data: bytes) -> bytes:
    """H.264 7.4.1 byte by byte: the slow, obvious version."""
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros == 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def test_sei_layout_matches_a_hand_built_expectation() -> None:
    """One GOP of one IDR slice and one P slice, no timestamps: every byte accounted for."""
    idr = annexb.START_CODE + b"\x65\x88\x84\x00\x21"
    p = annexb.START_CODE + b"\x41\x9a\x02\x00\x00\x05"
    signer = svf.StreamSigner(KEY, PRODUCT)
    _, first = signer.sign(idr)
    _, second = signer.sign(p)
    _, third = signer.sign(idr)
    sei = third.pending
    assert sei is not None

    h1 = hashlib.sha256(b"\x65\x88\x84\x00\x21").digest()
    h2 = hashlib.sha256(h1 + hashlib.sha256(b"\x41\x9a\x02\x00\x00\x05").digest()).digest()
    assert (first.hashes, second.hashes) == ((h1,), (h2,))
    pem = public_pem(KEY)
    assert len(pem) == 178
    product = b"\x02\x0bbodycam-sim\x051.0.0\x07SN-0001\x13Example Police Gear\x00"
    crypto = b"\x01\x0b\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01"
    general = (
        b"\x04\x00\x00\x00\x01\x00\x02\x02\x03\x08\x00"
        + bytes(32)
        + hashlib.sha256(b"\x01" + h1 + h2).digest()
    )
    assert len(general) == 75
    body = (
        b"\x02\x00\xb3\x02"
        + pem
        + b"\x03\x00"
        + bytes((len(product),))
        + product
        + b"\x07\x0d"
        + crypto
        + b"\x01\x4b"
        + general
        + b"\x04\x00\x41\x01"
        + h1
        + h2
    )
    payload_size = 16 + 1 + len(body) + 3 + 76
    header = (
        b"\x06\x05"
        + b"\xff" * (payload_size // 255)
        + bytes((payload_size % 255,))
        + bytes.fromhex("5369676e656420566964656f2e2e2e30")
        + b"\xb0"
    )
    document = header + reference_escape(body)
    assert reference_escape(body) != body  # the zero linked hash needs emulation prevention
    der = KEY.sign(
        hashlib.sha256(document).digest(),
        ec.ECDSA(Prehashed(hashes.SHA256()), deterministic_signing=True),
    )
    pad = b"\x01" * (72 - len(der))
    signature = b"\x05\x00\x4c\x02\x00" + struct.pack(">H", len(der)) + der + pad
    expected = b"\x00\x00\x00\x01" + header + reference_escape(body + signature) + b"\x80"
    assert expected.startswith(b"\x00\x00\x00\x01" + document)
    assert sei == expected
    KEY.public_key().verify(
        der, hashlib.sha256(document).digest(), ec.ECDSA(Prehashed(hashes.SHA256()))
    )


def test_parse_sei_reads_back_what_the_signer_wrote(clip: Clip) -> None:
    info = svf_parse.parse_sei(svf_seis(clip.aus[61])[0][1])
    assert info is not None
    assert (info.reserved, info.legacy, info.general_version) == (0xB0, False, 4)
    assert info.hash_list is not None
    assert (info.gop_counter, info.num_hashes) == (2, len(info.hash_list))
    assert info.code_version == (2, 3, 8)
    assert info.hash_list == tuple(h for seal in clip.seals[30:60] for h in seal.hashes)
    assert info.linked_hash == clip.seals[0].hashes[0]
    assert info.public_key_pem == public_pem(KEY)
    assert info.product == PRODUCT
    assert svf_parse.parse_sei(slices(clip.raw[0])[0][1]) is None  # not an SEI at all


# --------------------------------------------------------------------------- Axis samples


def test_axis_signed_sample_is_ok() -> None:
    result = svf_check.validate((DATA / "signed_test_h264.h264").read_bytes())
    assert result.ok, result.findings
    assert result.frames == result.frames_validated == 256
    assert [g.gop_counter for g in result.gops] == [1, 2, 3, 4, 5]


def test_axis_modified_sample_names_frame_137() -> None:
    """The legacy layout (reserved 0x80, GENERAL v1): the SEI precedes the next IDR."""
    result = svf_check.validate((DATA / "signed_test_h264_modified_frame_137.h264").read_bytes())
    assert result.status == "NOT_OK"
    assert [g.status for g in result.gops] == ["OK", "OK", "NOT_OK", "OK", "OK"]
    assert result.findings == ("frame 137 of GOP 2: slice hash not in the signed list",)


def test_axis_unsigned_sample_is_not_signed() -> None:
    result = svf_check.validate((DATA / "test_h264.h264").read_bytes())
    assert result.status == "NOT_SIGNED"
    assert len(result.unsigned_frames) == 256


# --------------------------------------------------------------------------- rejections


def make_sei(body: bytes, reserved: int = 0xB0, signed: bool = True) -> bytes:
    """An SEI NAL (no start code) around arbitrary TLVs, signed with KEY or not at all."""
    size = 17 + len(body) + (3 + 76 if signed else 0)
    header = b"\x06\x05" + b"\xff" * (size // 255) + bytes((size % 255,)) + svf.UUID
    document = header + bytes((reserved,)) + annexb.escape(body)
    if not signed:
        return document + b"\x80"
    der = KEY.sign(hashlib.sha256(document).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))
    value = b"\x02\x00" + struct.pack(">H", len(der)) + der + b"\x01" * (72 - len(der))
    return document + annexb.escape(svf.tlv(svf.TAG_SIGNATURE, value)) + b"\x80"


GENERAL = svf.tlv(
    svf.TAG_GENERAL, svf.general_value(1, 1, None, svf.ZERO_HASH, svf.gop_hash([b"x" * 32]))
)


@pytest.mark.parametrize(
    ("body", "reserved", "message"),
    [
        (b"\x09\x00", 0xB0, "unknown TLV tag 0x09"),
        (b"\x01", 0xB0, "TLV 0x01 header is truncated"),
        (b"\x01\x50" + bytes(10), 0xB0, "TLV 0x01 says 80 bytes"),
        (GENERAL + GENERAL, 0xB0, "TLV 0x01 appears twice"),
        (svf.tlv(7, b"\x01\x00"), 0xB0, "CRYPTO_INFO is malformed"),
        (b"", 0xB0, "no GENERAL tag"),
        (svf.tlv(1, b"\x05" + bytes(80)), 0xB0, "GENERAL version 5"),
        (svf.tlv(1, b"\x04" + bytes(5)), 0xB0, "GENERAL is truncated"),
        (svf.tlv(1, b"\x04" + bytes(10) + bytes(60)), 0xB0, "60 bytes of hashes"),
        (svf.tlv(1, b"\x01" + bytes(9) + b"\x00"), 0x80, "1 extra bytes"),
        (svf.tlv(1, b"\x04" + bytes(9) + b"\x01" + bytes(8)), 0xB0, "GENERAL timestamps"),
        (GENERAL + svf.tlv(4, b"\x01" + bytes(33)), 0xB0, "not a whole number of hashes"),
        (GENERAL + svf.tlv(4, b"\x02" + bytes(32)), 0xB0, "HASH_LIST version 2"),
        (GENERAL + svf.tlv(4, b""), 0xB0, "HASH_LIST is truncated"),
        (GENERAL + svf.tlv(2, b"\x03abc"), 0xB0, "PUBLIC_KEY version 3"),
        (GENERAL + svf.tlv(2, b"\x02"), 0xB0, "PUBLIC_KEY is truncated"),
        (GENERAL + svf.tlv(2, b"\x01\x01"), 0xB0, "PUBLIC_KEY is empty"),
        (GENERAL + svf.tlv(3, b"\x03"), 0xB0, "PRODUCT_INFO version 3"),
        (GENERAL + svf.tlv(3, b"\x02\x05ab"), 0xB0, "PRODUCT_INFO is truncated"),
        (GENERAL + svf.tlv(3, b"\x02" + b"\x00" * 6), 0xB0, "PRODUCT_INFO has 1 extra bytes"),
        (GENERAL + svf.tlv(3, b""), 0xB0, "PRODUCT_INFO is truncated"),
        (GENERAL + svf.tlv(7, b"\x02\x01\x05"), 0xB0, "CRYPTO_INFO version 2"),
        (GENERAL + svf.tlv(7, b"\x01\x02\x06\x01"), 0xB0, "is not SHA-256"),
        (GENERAL + svf.tlv(5, b"\x03\x00\x00\x01\x30"), 0xB0, "SIGNATURE version 3"),
        (GENERAL + svf.tlv(5, b"\x02\x00\x00\x09\x30"), 0xB0, "SIGNATURE says 9 bytes"),
        (GENERAL + svf.tlv(5, b"\x01\x00\x00\x00\x01\x30"), 0x80, "recursive GOP hash"),
        (GENERAL + svf.tlv(5, b""), 0xB0, "SIGNATURE is truncated"),
        (GENERAL, 0x40 | 0xB0, "golden SEIs are not supported"),
    ],
)
def test_malformed_seis_are_rejected_by_name(body: bytes, reserved: int, message: str) -> None:
    nal = make_sei(body, reserved, signed=False)
    with pytest.raises(svf_parse.SeiError, match=message.replace("(", r"\(")):
        svf_parse.parse_sei(nal)
    stream = annexb.START_CODE + nal + annexb.START_CODE + b"\x65\x88\x01"
    result = svf_check.validate(stream)
    assert result.status == "NOT_OK"
    assert result.problems[0].startswith("SEI at byte 4: cannot be read: ")


def test_short_or_truncated_sei_payloads_are_rejected() -> None:
    nal = bytearray(make_sei(GENERAL))
    nal[2] = 10  # payloadSize smaller than UUID + reserved byte
    with pytest.raises(svf_parse.SeiError, match="too small"):
        svf_parse.parse_sei(bytes(nal))
    full_nal = make_sei(GENERAL)
    with pytest.raises(svf_parse.SeiError, match="payloadSize says"):
        svf_parse.parse_sei(full_nal[:40])
    with pytest.raises(svf_parse.SeiError, match="before its reserved byte"):
        svf_parse.parse_sei(full_nal[: 3 + 16])


def test_an_unsigned_sei_signs_nothing(clip: Clip) -> None:
    body = svf.tlv(
        svf.TAG_GENERAL,
        svf.general_value(1, 1, None, svf.ZERO_HASH, svf.gop_hash(clip.seals[0].hashes)),
    ) + svf.tlv(svf.TAG_HASH_LIST, b"\x01" + b"".join(clip.seals[0].hashes))
    data = clip.raw[0] + annexb.START_CODE + make_sei(body, signed=False)
    result = svf_check.validate(data)
    assert result.status == "NOT_OK"
    assert result.gops[0].reason.endswith("it carries no signature")


def test_no_public_key_anywhere_is_not_ok(clip: Clip) -> None:
    body = svf.tlv(
        svf.TAG_GENERAL,
        svf.general_value(1, 1, None, svf.ZERO_HASH, svf.gop_hash(clip.seals[0].hashes)),
    ) + svf.tlv(svf.TAG_HASH_LIST, b"\x01" + b"".join(clip.seals[0].hashes))
    data = clip.raw[0] + annexb.START_CODE + make_sei(body)
    assert svf_check.validate(data).key_source == "none"
    assert "no public key to check it with" in svf_check.validate(data).gops[0].reason
    assert svf_check.validate(data, KEY.public_key()).ok


def test_an_unreadable_public_key_is_not_ok(clip: Clip) -> None:
    body = (
        svf.tlv(svf.TAG_PUBLIC_KEY, b"\x02-----BEGIN PUBLIC KEY-----\nnope\n")
        + svf.tlv(
            svf.TAG_GENERAL,
            svf.general_value(1, 1, None, svf.ZERO_HASH, svf.gop_hash(clip.seals[0].hashes)),
        )
        + svf.tlv(svf.TAG_HASH_LIST, b"\x01" + b"".join(clip.seals[0].hashes))
    )
    data = clip.raw[0] + annexb.START_CODE + make_sei(body)
    assert svf_check.validate(data).gops[0].reason.endswith("its public key cannot be read")


def test_a_leading_sei_with_a_bad_signature_is_a_problem(clip: Clip) -> None:
    data = bytearray(record(clip, 30, 60))
    offset, nal = svf_seis(bytes(data))[0]  # the SEI for GOP 0, before this stream
    data[offset + len(nal) - 10] ^= 0x01
    result = svf_check.validate(bytes(data))
    assert result.status == "NOT_OK"
    assert result.problems == (
        f"SEI at byte {offset} (gop_counter 1): its signature does not verify",
    )


def test_a_duplicated_sei_is_noted_not_failed(clip: Clip) -> None:
    extra = clip.seals[30].pending
    assert extra is not None
    result = svf_check.validate(b"".join(clip.aus[:32]) + extra + b"".join(clip.aus[32:]))
    assert result.ok, result.findings
    assert any("identical copy of the SEI of GOP 0" in n for n in result.notes)


# --------------------------------------------------------------------------- robustness

#: Bytes dense in the values emulation prevention is about (0x00-0x03), or anything.
ZERO_HEAVY = st.lists(st.sampled_from([0, 0, 0, 1, 2, 3, 4, 0x80, 0xFF]), max_size=200).map(
    bytes
) | st.binary(max_size=200)


def test_annexb_helpers_read_nal_headers() -> None:
    assert annexb.nal_type(b"\x65\x88") == 5 and annexb.nal_type(b"") == -1
    assert annexb.is_primary_slice(b"\x41\x9a") and not annexb.is_primary_slice(b"\x41\x1a")
    assert not annexb.is_primary_slice(b"\x06\x80") and not annexb.is_primary_slice(b"\x41")
    assert annexb.strip_trailing_zeros(b"\x41\x00\x01\x00\x00") == b"\x41\x00\x01"
    stream = b"junk" + annexb.START_CODE + b"\x67\x42\x00" + b"\x00\x00\x01" + b"\x00\x00\x01\x68"
    assert [bytes(n) for n in annexb.split_nals(stream)] == [b"\x67\x42", b"\x68"]
    assert annexb.split_nals(b"no start code") == []


@given(ZERO_HEAVY)
def test_escape_round_trips_and_matches_the_reference(data: bytes) -> None:
    escaped = annexb.escape(data)
    assert escaped == reference_escape(data)
    assert annexb.unescape(escaped) == data
    for i in range(len(escaped) - 2):
        assert not (escaped[i] == 0 and escaped[i + 1] == 0 and escaped[i + 2] <= 2)


@given(ZERO_HEAVY, st.integers(min_value=0, max_value=250))
def test_escaped_offset_finds_the_same_byte(data: bytes, index: int) -> None:
    escaped = annexb.escape(data)
    if index < len(data):
        assert escaped[annexb.escaped_offset(escaped, index)] == data[index]


@given(st.lists(ZERO_HEAVY, max_size=8))
def test_iter_nals_splits_what_start_codes_joined(units: list[bytes]) -> None:
    clean = [annexb.escape(u).rstrip(b"\x00") for u in units]
    clean = [u if u else b"\x01" for u in clean]
    joined = b"".join(annexb.START_CODE + u for u in clean)
    assert [bytes(n) for n in annexb.split_nals(joined)] == clean


@given(st.binary(max_size=400))
def test_parse_sei_never_raises_anything_but_sei_error(tail: bytes) -> None:
    nal = b"\x06\x05" + bytes((min(len(tail) + 17, 254),)) + svf.UUID + tail
    try:
        info = svf_parse.parse_sei(nal)
    except svf_parse.SeiError as exc:
        assert str(exc)
    else:
        assert isinstance(info, svf_parse.SeiInfo)


@given(st.binary(max_size=2000))
def test_validate_never_raises_on_garbage(data: bytes) -> None:
    result = svf_check.validate(data)
    assert result.status in {"OK", "MISSING", "NOT_OK", "NOT_SIGNED", "UNVERIFIED"}


@given(st.data())
def test_validate_never_raises_on_a_damaged_signed_stream(data: st.DataObject) -> None:
    stream = bytearray(record(make_clip(), 28, 34))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(stream) - 1))
        stream[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(stream)))
    result = svf_check.validate(bytes(stream[:cut]), KEY.public_key())
    assert result.status in {"OK", "MISSING", "NOT_OK", "NOT_SIGNED", "UNVERIFIED"}


@given(st.data())
def test_a_damaged_sei_parses_or_is_rejected_by_name(data: st.DataObject) -> None:
    clip = make_clip()
    nal = bytearray(svf_seis(clip.aus[31])[0][1])
    body = bytes(nal).find(svf.UUID) + 16
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(body, len(nal) - 1))
        nal[at] = data.draw(st.sampled_from([0, 1, 3, 0x80, 0xFF, nal[at] ^ 1]))
    try:
        info = svf_parse.parse_sei(bytes(nal))
    except svf_parse.SeiError as exc:
        assert str(exc)
    else:
        assert isinstance(info, svf_parse.SeiInfo)
    stream = b"".join(clip.aus[:31]) + annexb.START_CODE + bytes(nal) + b"".join(clip.aus[31:])
    assert svf_check.validate(stream).status in {"OK", "NOT_OK"}
