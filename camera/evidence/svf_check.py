"""Checking an H.264 stream's Signed Video Framework signatures GOP by GOP (SPEC 12).

:func:`validate` is our own reading of the rules svf.py writes by, for
``bodycam verify``: it names the frame and GOP that fail instead of a yes/no,
never raises on garbage, and also reads the older Axis layout (reserved byte
without the linked/GOP-hash bits, where an SEI precedes the next IDR and also
lists that IDR) so Axis's sample files check out.

SEIs are matched to GOPs by content (hash list, linked hash) before position,
because a damaged or cut stream moves SEIs around: a recording that starts
mid-chain, a dropped carrier frame, a spliced GOP must each get a precise
finding, not a cascade of false ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from camera.evidence import annexb
from camera.evidence.svf import GOP_COUNTER_MOD, ZERO_HASH, ProductInfo, gop_hash
from camera.evidence.svf_parse import SeiError, SeiInfo, is_svf_sei, parse_sei

OK = "OK"
MISSING = "MISSING"
NOT_OK = "NOT_OK"
UNSIGNED = "UNSIGNED"
NOT_SIGNED = "NOT_SIGNED"
UNVERIFIED = "UNVERIFIED"


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
    return ((a - b + (1 << 31)) % GOP_COUNTER_MOD) - (1 << 31)


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
