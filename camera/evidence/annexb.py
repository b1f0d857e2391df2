"""H.264 Annex-B byte streams: NAL unit boundaries, types and emulation prevention.

Signed video hashes NAL units exactly as they sit in the stream (without the
start code, with emulation prevention bytes kept, without trailing zero
bytes), so splitting must never copy or normalise them: NAL units are handed
out as ``memoryview`` slices of the caller's buffer, and a compiled pattern does
the scanning in C, because the signer runs on every frame. Inside a NAL unit
``00 00 01`` cannot occur (emulation prevention forbids it), so the next
start code is the end of the unit; the zero that begins a 4-byte start code
belongs to no unit and is dropped with the trailing zeros.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

START_CODE = b"\x00\x00\x00\x01"
# A compiled literal pattern scans about twice as fast as bytes.find on slice data,
# which is full of zero bytes.
_PREFIX_RE = re.compile(b"\x00\x00\x01")
_ZERO_PAIR = b"\x00\x00"
_EPB_PATTERN = b"\x00\x00\x03"

NAL_SLICE = 1  # coded slice of a non-IDR picture
NAL_IDR = 5  # coded slice of an IDR picture
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8


def iter_nals(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(offset of the NAL header byte, NAL unit) for every unit in an Annex-B buffer.

    Units are zero-copy views without the start code and without trailing
    zero bytes; empty units (two start codes in a row) are skipped. Bytes
    before the first start code are not a NAL unit and are ignored.
    """
    raw = data if isinstance(data, bytes | bytearray) else bytes(data)
    view = memoryview(raw)
    starts = [m.end() for m in _PREFIX_RE.finditer(raw)]
    ends = [s - 3 for s in starts[1:]]
    if starts:
        ends.append(len(raw))
    for start, end in zip(starts, ends, strict=True):
        while end > start and raw[end - 1] == 0:
            end -= 1
        if end > start:
            yield start, view[start:end]


def split_nals(data: bytes | bytearray | memoryview) -> list[memoryview]:
    """The NAL units of an Annex-B buffer (see :func:`iter_nals`)."""
    return [nal for _, nal in iter_nals(data)]


def nal_type(nal: bytes | memoryview) -> int:
    """nal_unit_type (the low 5 bits of the header byte); -1 for an empty unit."""
    return nal[0] & 0x1F if len(nal) else -1


def is_slice(nal: bytes | memoryview) -> bool:
    """A coded slice that signed video hashes: IDR (5) or non-IDR (1)."""
    return nal_type(nal) in (NAL_SLICE, NAL_IDR)


def is_primary_slice(nal: bytes | memoryview) -> bool:
    """The first slice of a picture: first_mb_in_slice == 0, i.e. its ue(v) code is the bit 1.

    One primary slice per access unit, so counting them counts frames.
    """
    return len(nal) > 1 and is_slice(nal) and bool(nal[1] & 0x80)


def strip_trailing_zeros(nal: bytes | memoryview) -> bytes | memoryview:
    """The unit without trailing 0x00 bytes (a container may pad; the hash must not see it)."""
    end = len(nal)
    while end and nal[end - 1] == 0:
        end -= 1
    return nal[:end]


def escape(rbsp: bytes | bytearray | memoryview) -> bytes:
    """Insert emulation prevention bytes: after ``00 00``, a byte <= 0x03 gets ``03`` before it.

    The zero count restarts after each inserted byte, as in H.264 7.4.1.
    """
    data = bytes(rbsp)
    out = bytearray()
    start = 0
    n = len(data)
    i = data.find(_ZERO_PAIR)
    while i >= 0:
        j = i + 2
        if j >= n:
            break
        if data[j] <= 3:
            out += data[start:j]
            out.append(3)
            start = j
            i = data.find(_ZERO_PAIR, j)
        else:
            i = data.find(_ZERO_PAIR, j + 1)
    if not start:
        return data
    out += data[start:]
    return bytes(out)


def unescape(ebsp: bytes | bytearray | memoryview) -> bytes:
    """Remove emulation prevention bytes: every ``03`` that follows ``00 00``."""
    data = bytes(ebsp)
    i = data.find(_EPB_PATTERN)
    if i < 0:
        return data
    out = bytearray()
    start = 0
    while i >= 0:
        out += data[start : i + 2]
        start = i + 3
        i = data.find(_EPB_PATTERN, start)
    out += data[start:]
    return bytes(out)


def escaped_offset(ebsp: bytes | memoryview, unescaped_offset: int) -> int:
    """Where the byte at ``unescaped_offset`` of ``unescape(ebsp)`` sits in ``ebsp``."""
    data = bytes(ebsp)
    pos = unescaped_offset
    i = data.find(_EPB_PATTERN)
    while i >= 0 and i + 2 <= pos:
        pos += 1
        i = data.find(_EPB_PATTERN, i + 3)
    return pos
