"""An H.264 recording's in-stream signatures (SPEC 12), named by segment, GOP and frame.

The segments are joined in manifest order into one stream of NAL units (as
the camera signed them: the GOP chain runs across segment boundaries) and
checked by the Signed Video Framework validator with the trusted key. The
validator speaks in stream positions (the n-th GOP, the n-th frame, byte
offsets in the joined stream); this module says which segment file and
which frame number (SPEC 7, counted from boot) that is, so an investigator
can go straight to it.

Every frame must be covered by a signature. The one exception is a
recording recovered after a power cut: its last GOP was still open, so its
signature was never written; that is said as a note, not a failure.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from cryptography.hazmat.primitives.asymmetric import ec

from camera.evidence import annexb
from camera.evidence.svf_check import (
    MISSING,
    NOT_OK,
    NOT_SIGNED,
    UNSIGNED,
    UNVERIFIED,
    GopResult,
    Validation,
    validate,
)
from camera.evidence.verify.decode import Prefix, QuietReader
from camera.evidence.verify.files import FORMAT_OF_SUFFIX, Unreadable, open_regular, segment_path
from camera.evidence.verify.findings import MAX_REPEATS, Report, show_name

STRIPPED = "no in-stream signatures (SEIs stripped?)"


@dataclass
class Span:
    """Where one segment sits in the joined stream."""

    file: str
    first_frame: int  # the manifest's frame number of its first frame
    start: int  # stream index of its first frame
    offset: int  # byte offset of its first NAL unit in the joined stream
    frames: int = 0  # primary slices (frames) it holds


class Joined:
    """The recording's segments as one stream of NAL units, remembering where each begins.

    The units come lazily, one packet at a time, so a long recording is never
    held in memory; ``spans`` fills in as they are read. A segment that cannot
    be opened is left out (its loss is check_segment's finding): the stream's
    chain then breaks there, which the validator reports too.
    """

    def __init__(
        self, directory: Path, segments: list[dict[str, Any]], complete: dict[str, int]
    ) -> None:
        self.directory = directory
        self.segments = segments
        self.complete = complete
        self.spans: list[Span] = []

    def units(self) -> Iterator[memoryview]:
        frame = offset = 0
        for seg in self.segments:
            span = Span(seg["file"], seg["first_frame"], frame, offset)
            self.spans.append(span)
            for data in self._packets(seg):
                for nal in annexb.split_nals(data):
                    if annexb.is_primary_slice(nal):
                        span.frames += 1
                        frame += 1
                    offset += len(annexb.START_CODE)
                    yield nal
                    offset += len(nal)

    def _packets(self, seg: dict[str, Any]) -> Iterator[bytes]:
        """Each packet's bytes (Annex-B), until the file ends or stops demuxing."""
        try:
            path = segment_path(self.directory, seg["file"])
            container_format = FORMAT_OF_SUFFIX.get(path.suffix)
            f = open_regular(path)
        except (Unreadable, OSError):
            return
        with f:
            end = self.complete.get(seg["file"])
            source = f if end is None else Prefix(f, end)
            try:
                container = av.open(QuietReader(source), format=container_format or "mpegts")
            except Exception:
                return
            with container:
                if not container.streams.video:
                    return
                packets = container.demux(container.streams.video[0])
                while True:
                    try:
                        packet = next(packets)
                    except StopIteration:
                        return
                    except Exception:  # damaged input: decode already reports where
                        return
                    if packet.size:
                        yield bytes(packet)

    def span_of_frame(self, index: int) -> Span | None:
        starts = [s.start for s in self.spans if s.frames]
        spans = [s for s in self.spans if s.frames]
        i = bisect.bisect_right(starts, index) - 1
        return spans[i] if i >= 0 else None

    def span_of_offset(self, offset: int) -> Span | None:
        i = bisect.bisect_right([s.offset for s in self.spans], offset) - 1
        return self.spans[i] if i >= 0 else None


class Namer:
    """Stream positions in the recording's own terms: segment file and frame number."""

    def __init__(self, joined: Joined, codes: dict[str, list[int | None]]) -> None:
        self.joined = joined
        self.codes = codes

    def frame(self, index: int) -> str:
        """The frame number of stream frame ``index``: its decoded code, else counted."""
        span = self.joined.span_of_frame(index)
        if span is None:
            return f"#{index}"
        within = index - span.start
        codes = self.codes.get(span.file, [])
        if len(codes) == span.frames and codes[within] is not None:
            return str(codes[within])
        return str(span.first_frame + within)

    def file(self, index: int) -> str:
        span = self.joined.span_of_frame(index)
        return show_name(span.file) if span else "segments"

    def gop(self, g: GopResult) -> str:
        """``segment-0003.ts: GOP 57 (frames 1234-1263)``."""
        last = g.first_frame + max(g.frames, 1) - 1
        frames = self.frame(g.first_frame)
        if last != g.first_frame:
            frames = f"frames {frames}-{self.frame(last)}"
        else:
            frames = f"frame {frames}"
        return f"{self.file(g.first_frame)}: GOP {g.index} ({frames})"

    def sei(self, text: str) -> str:
        """A validator line about an SEI at a byte offset, as the segment that holds it."""
        m = _SEI_AT.match(text)
        if m is None:
            return text
        span = self.joined.span_of_offset(int(m.group(1)))
        where = show_name(span.file) if span else "segments"
        rest = text[m.end() :].replace("not in this stream", "not in this recording")
        return f"{where}: signature SEI{rest}"


_SEI_AT = re.compile(r"SEI at byte (\d+)")
_FRAME_OF_GOP = re.compile(r"frame (\d+) of GOP \d+: (.*)")
_GOP = re.compile(r"GOP \d+: (.*)")
_BEFORE_FRAME = re.compile(r"before frame (\d+)")
_MORE = re.compile(r" \(and (\d+) more slice\(s\)\)$")
_IDR = re.compile(r"IDR slice hash not in the signed list \((.*)\)$")


def restate(part: str, frame: Callable[[int], str]) -> str:
    """One validator finding about a GOP, without its stream positions.

    "frame 40 of GOP 3: slice hash not in the signed list" becomes "frame 1240
    altered (slice hash not in the signed list)"; anything not recognised is
    kept as the validator said it, so nothing is lost.
    """
    m = _FRAME_OF_GOP.fullmatch(part)
    if m is not None:
        number, rest = frame(int(m.group(1))), m.group(2)
        if idr := _IDR.fullmatch(rest):
            why = f"IDR slice hash not in the signed list; {idr.group(1)}"
            return f"frame {number} (its IDR) altered ({why})"
        if rest.startswith("slice hash not in the signed list"):
            more = _MORE.search(rest)
            tail = f", and {more.group(1)} more slice(s)" if more else ""
            return f"frame {number} altered (slice hash not in the signed list){tail}"
        return f"frame {number}: {rest}"
    m = _GOP.fullmatch(part)
    text = m.group(1) if m is not None else part
    text = _BEFORE_FRAME.sub(lambda b: f"before frame {frame(int(b.group(1)))}", text)
    return _SEI_AT.sub("its signature SEI", text)


def check_stream(
    directory: Path,
    segments: list[dict[str, Any]],
    complete: dict[str, int],
    key: ec.EllipticCurvePublicKey | None,
    recovered: bool,
    report: Report,
) -> Validation:
    """Validate the joined segments' in-stream signatures; findings go into ``report``."""
    joined = Joined(directory, segments, complete)
    result = validate(joined.units(), key)
    name = Namer(joined, report.segment_codes)
    lines: list[tuple[str, str]] = []  # (what, line): grouped by what when it repeats
    if result.status == NOT_SIGNED:
        report.problems.append(STRIPPED)
        return result
    for text in result.problems:
        lines.append((text, name.sei(text)))
    for g in result.gops:
        if g.status in (NOT_OK, MISSING):
            for part in g.reason.split("; "):
                what = restate(part, name.frame)
                lines.append((what, f"{name.gop(g)}: {what}"))
    _unsigned(result, name, recovered, report, lines)
    if result.status == UNVERIFIED and not lines:
        lines.append(("unverified", "no frame could be checked against an in-stream signature"))
    # Segment by segment, in the manifest's order (stable: GOP order within each).
    order = {show_name(seg["file"]): i for i, seg in enumerate(segments)}
    lines.sort(key=lambda item: order.get(item[1].split(": ", 1)[0], len(order)))
    report.problems += bounded(lines)
    return result


def _unsigned(
    result: Validation,
    name: Namer,
    recovered: bool,
    report: Report,
    lines: list[tuple[str, str]],
) -> None:
    """Frames no signature covers: before the first keyframe, or GOPs the stream ends before."""
    first_gop = result.gops[0].first_frame if result.gops else result.frames
    before = [f for f in result.unsigned_frames if f < first_gop]
    if before:
        where = f"frames {name.frame(before[0])}-{name.frame(before[-1])}"
        lines.append(
            ("before", f"{name.file(before[0])}: {where} come before the first keyframe, unsigned")
        )
    trailing = [g for g in result.gops if g.status == UNSIGNED]
    # A power cut leaves the open GOP unsigned, and the one before it too when
    # the cut fell right after its IDR (the next unit carries its SEI).
    cut = len(trailing) == 1 or (len(trailing) == 2 and trailing[-1].frames == 1)
    for g in trailing:
        if recovered and cut:
            report.notes.append(
                f"{name.gop(g)}: not signed: the power was cut before its signature was "
                "written (recovered recording)"
            )
        else:
            what = "not signed (the recording ends before its signature; a stop writes one)"
            lines.append((what, f"{name.gop(g)}: {what}"))


def bounded(lines: list[tuple[str, str]]) -> list[str]:
    """The lines, but a finding repeated in many GOPs is listed MAX_REPEATS times, then counted.

    Signed by another key, every GOP fails the same way: one line per GOP
    would bury everything else.
    """
    seen: dict[str, int] = {}
    out: list[str] = []
    for what, line in lines:
        seen[what] = seen.get(what, 0) + 1
        if seen[what] <= MAX_REPEATS:
            out.append(line)
    out += [f"{n - MAX_REPEATS} more GOPs: {what}" for what, n in seen.items() if n > MAX_REPEATS]
    return out
