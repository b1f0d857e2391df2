"""Checking recordings: hashes, decodability, continuity, timing.

The tamper and damage check an investigator (or CI) runs on what the camera
wrote: every segment's sha256 and size against the manifest, every segment
decodes from a keyframe, the SPEC section 8 frame codes (when the stream
carries them) run without gaps or duplicates except where the manifest
declares a gap, timestamps follow capture spacing, the manifest's totals add
up, and no segment on disk is missing from the manifest.

Everything under test here may be damaged or hostile: a torn card, a flipped
bit, an edited manifest. So the verifier treats the manifest as evidence to
check, never as instructions: its fields are validated before use, segment
names that point outside the recording are refused, files are opened without
blocking and must be regular files, and decoding is bounded by what the
manifest and the file size allow. Every finding is one human line in
``Report.problems``; ``verify_recording`` does not raise.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np

from camera.framecode import CODE_BITS, CODE_HEIGHT, read_frame_code
from camera.journal import JOURNAL
from camera.manifest import FORMAT, MANIFEST, SEGMENT_PREFIX, STOP_REASONS
from camera.segments import CONTAINERS

#: A manifest larger than this is not one the camera wrote (hours of 10 s
#: segments are well under a megabyte); refuse it rather than parse it.
MAX_MANIFEST_BYTES = 16 << 20
#: Packets decoded beyond a segment's declared frame count before giving up:
#: room to report "more frames than the manifest says" without decoding an
#: arbitrarily long (or garbage) stream.
DECODE_MARGIN = 64
#: The same kind of finding (a gap, a timestamp) is listed this many times per
#: segment, then counted: a garbage stream must not print a line per frame.
MAX_REPEATS = 3
#: Timestamps are exact in MPEG-TS (90 kHz); Matroska rounds them to 1 ms.
TIME_TOLERANCE = 0.0011
#: Container format for each segment file extension the camera writes.
FORMAT_OF_SUFFIX = {f".{ext}": fmt for fmt, ext in CONTAINERS.values()}


@dataclass
class DecodedFrame:
    pts: int | None  # in the stream's time base; None if the container lost it
    time_base: Fraction | float
    keyframe: bool
    code: int | None

    @property
    def seconds(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    frames: int = 0
    codes: list[int | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Unreadable(Exception):
    """A file the verifier cannot read as what it should be; the message is one line."""


# -- showing untrusted values in one line ------------------------------------
def show(value: Any) -> str:
    """A manifest value as a short JSON-ish phrase, never more than one line."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)  # escapes newlines, NULs and terminal controls
    return text if len(text) <= 40 else text[:37] + "..."


def show_name(name: str) -> str:
    """A file name from the manifest or the disk, quoted if it could mislead a reader."""
    if name.isprintable() and len(name) <= 80 and name.strip() == name and name:
        return name
    return show(name)


# -- the manifest schema (SPEC section 7) ------------------------------------
def _is_int(v: Any) -> bool:
    return type(v) is int  # JSON true/false are bools, never counts


def _is_number(v: Any) -> bool:
    return _is_int(v) or (type(v) is float and math.isfinite(v))


@dataclass(frozen=True)
class Rule:
    ok: Callable[[Any], bool]
    wanted: str


TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
COUNT = Rule(lambda v: _is_int(v) and v >= 0, "a whole number >= 0")
POSITIVE = Rule(lambda v: _is_int(v) and v > 0, "a whole number > 0")
FRAME = Rule(lambda v: _is_int(v) and 0 <= v < 1 << CODE_BITS, "a frame number (0 to 2^32-1)")
SECONDS = Rule(lambda v: _is_number(v) and v >= 0, "device seconds (a number >= 0)")
RATE = Rule(lambda v: _is_number(v) and 0 < v <= 1000, "frames per second (0 < fps <= 1000)")
SHA256 = Rule(
    lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
    "64 lowercase hex digits",
)
CODEC = Rule(lambda v: isinstance(v, str) and v in CONTAINERS, " or ".join(map(repr, CONTAINERS)))
STOP_REASON = Rule(
    lambda v: isinstance(v, str) and v in STOP_REASONS, "one of " + ", ".join(STOP_REASONS)
)
OBJECT = Rule(lambda v: isinstance(v, dict), "an object")
LIST = Rule(lambda v: isinstance(v, list), "a list")
FRAME_OR_NULL = Rule(lambda v: v is None or FRAME.ok(v), "a frame number or null")

HEAD: dict[str, Rule] = {
    "format": Rule(lambda v: v == FORMAT, repr(FORMAT)),
    "device_id": TEXT,
    "recording_id": TEXT,
    "codec": CODEC,
    "width": POSITIVE,
    "height": POSITIVE,
    "fps": RATE,
    "trigger": OBJECT,
    # Negative when a trigger came before the first frame after boot: the
    # recording then starts at the first frame there is.
    "pre_event_seconds": Rule(_is_number, "seconds (a number)"),
    "start_time": SECONDS,
    "end_time": SECONDS,
    "stop": OBJECT,
    "frames": COUNT,
    "first_frame": FRAME_OR_NULL,
    "last_frame": FRAME_OR_NULL,
    "dropped_frames": COUNT,
    "markers": LIST,
    "segments": LIST,
}
TRIGGER = {"source": TEXT, "time": SECONDS, "wall_time": TEXT}
STOP = {"reason": STOP_REASON, "time": SECONDS}
MARKER = {"source": TEXT, "time": SECONDS}
GAP = {"first_frame": FRAME, "frames": COUNT}
SEGMENT = {
    "file": TEXT,
    "sha256": SHA256,
    "bytes": COUNT,
    "frames": COUNT,
    "first_frame": FRAME,
    "last_frame": FRAME,
    "start_time": SECONDS,
    "end_time": SECONDS,
}
REQUIRED = tuple(HEAD)


def check_fields(obj: Any, rules: dict[str, Rule], where: str, problems: list[str]) -> bool:
    """Append one line per missing or ill-typed field of ``obj``; True if all are good.

    ``where`` names the object for the reader ("", "trigger", "segments[2]").
    Extra fields are allowed: the manifest has "at least" these (SPEC 7).
    """
    prefix = f"{MANIFEST}: {where}" if where else MANIFEST
    if not isinstance(obj, dict):
        problems.append(f"{prefix} is {show(obj)}, expected an object")
        return False
    good = True
    missing = [key for key in rules if key not in obj]
    if missing:
        problems.append(f"{prefix}: missing {', '.join(missing)}")
        good = False
    for key, rule in rules.items():
        if key in obj and not rule.ok(obj[key]):
            dotted = f"{where}.{key}" if where else key
            problems.append(f"{MANIFEST}: {dotted} is {show(obj[key])}, expected {rule.wanted}")
            good = False
    return good


def valid(obj: dict[str, Any], key: str, rules: dict[str, Rule]) -> Any:
    """``obj[key]`` if present and valid by ``rules``, else None (already reported)."""
    value = obj.get(key)
    return value if key in obj and rules[key].ok(value) else None


def check_list(
    items: Any, rules: dict[str, Rule], where: str, problems: list[str]
) -> list[dict[str, Any]]:
    """The entries of a manifest list that pass ``rules``; the others are reported."""
    if not isinstance(items, list):
        return []
    return [
        item for i, item in enumerate(items) if check_fields(item, rules, f"{where}[{i}]", problems)
    ]


@dataclass
class Expect:
    """What the manifest says about the pictures, where it says it validly."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    gaps: set[tuple[int, int]] = field(default_factory=set)


def check_manifest(m: Any, problems: list[str]) -> tuple[Expect, list[dict[str, Any]]] | None:
    """Validate the manifest; return what later checks may rely on, or None to stop.

    Only a wrong ``format`` (or no object at all) stops verification: for any
    other damage the segments are still hashed and decoded, since that is the
    evidence an investigator most needs.
    """
    if not isinstance(m, dict):
        problems.append(f"{MANIFEST} is {show(m)}, expected an object")
        return None
    if "format" in m and m["format"] != FORMAT:
        problems.append(f"{MANIFEST}: format is {show(m['format'])}, expected {FORMAT!r}")
        return None
    check_fields(m, HEAD, "", problems)
    if OBJECT.ok(m.get("trigger")):
        check_fields(m["trigger"], TRIGGER, "trigger", problems)
    if OBJECT.ok(m.get("stop")):
        check_fields(m["stop"], STOP, "stop", problems)
    check_list(m.get("markers"), MARKER, "markers", problems)
    gaps = None
    if "gaps" in m:  # optional: older manifests did not have it
        if LIST.ok(m["gaps"]):
            gaps = check_list(m["gaps"], GAP, "gaps", problems)
        else:
            problems.append(f"{MANIFEST}: gaps is {show(m['gaps'])}, expected a list")
    segments = check_list(m.get("segments"), SEGMENT, "segments", problems)
    if LIST.ok(m.get("segments")) and len(segments) == len(m["segments"]):
        check_totals(m, segments, problems)
        check_segment_order(segments, problems)
    if gaps is not None and len(gaps) == len(m["gaps"]):
        check_dropped(m, gaps, problems)
    check_pre_event(m, problems)
    expect = Expect(
        codec=valid(m, "codec", HEAD),
        width=valid(m, "width", HEAD),
        height=valid(m, "height", HEAD),
        fps=valid(m, "fps", HEAD),
        gaps={(g["first_frame"], g["frames"]) for g in gaps or []},
    )
    return expect, segments


def check_totals(m: dict[str, Any], segments: list[dict[str, Any]], problems: list[str]) -> None:
    """The recording's frames, first/last frame and times must be those of its segments.

    Otherwise a segment could be dropped from the list (and from the disk)
    with the totals left as they were.
    """
    frames = sum(s["frames"] for s in segments)
    if valid(m, "frames", HEAD) is not None and m["frames"] != frames:
        problems.append(
            f"{MANIFEST}: frames is {show(m['frames'])}, the segments hold {frames} "
            "(frame count does not add up across segments)"
        )
    first = segments[0] if segments else {}
    last = segments[-1] if segments else {}
    for key, seg in (("first_frame", first), ("last_frame", last)):
        if key in m and FRAME_OR_NULL.ok(m[key]) and m[key] != seg.get(key):
            problems.append(
                f"{MANIFEST}: {key} is {show(m[key])}, the segments say {show(seg.get(key))}"
            )
    for key, seg in (("start_time", first), ("end_time", last)):
        if seg and valid(m, key, HEAD) is not None and abs(m[key] - seg[key]) > 1e-6:
            problems.append(
                f"{MANIFEST}: {key} is {show(m[key])}, the segments say {show(seg[key])}"
            )


def check_segment_order(segments: list[dict[str, Any]], problems: list[str]) -> None:
    """Each segment's own numbers make sense, and segments follow one another.

    Catches reordered or duplicated entries before any file is read.
    """
    names: set[str] = set()
    prev: dict[str, Any] | None = None
    for s in segments:
        name = show_name(s["file"])
        if s["file"] in names:
            problems.append(f"{MANIFEST}: {name} is listed twice")
        names.add(s["file"])
        span = s["last_frame"] - s["first_frame"] + 1
        if span < 1 or s["frames"] > span:
            problems.append(
                f"{MANIFEST}: {name} claims {show(s['frames'])} frames in "
                f"{s['first_frame']}..{s['last_frame']}"
            )
        if s["end_time"] < s["start_time"]:
            problems.append(f"{MANIFEST}: {name} ends before it starts")
        if prev is not None and (
            s["first_frame"] <= prev["last_frame"] or s["start_time"] < prev["end_time"]
        ):
            problems.append(f"{MANIFEST}: {name} does not follow {show_name(prev['file'])}")
        prev = s


def check_pre_event(m: dict[str, Any], problems: list[str]) -> None:
    """``pre_event_seconds`` is the trigger time minus the first frame's time (SPEC 7)."""
    trigger = m.get("trigger")
    pre, start = valid(m, "pre_event_seconds", HEAD), valid(m, "start_time", HEAD)
    if pre is None or start is None or not isinstance(trigger, dict):
        return
    t = valid(trigger, "time", TRIGGER)
    if t is not None and abs(pre - (t - start)) > 1e-5:
        problems.append(
            f"{MANIFEST}: pre_event_seconds is {show(pre)}, "
            f"trigger.time - start_time is {show(t - start)}"
        )


def check_dropped(m: dict[str, Any], gaps: list[dict[str, Any]], problems: list[str]) -> None:
    """``dropped_frames`` is the frames the firmware dropped, as listed in ``gaps``.

    Gaps with cause "camera" are frames the sensor never delivered: declared
    (so continuity accepts them) but not dropped.
    """
    dropped = sum(g["frames"] for g in gaps if g.get("cause") != "camera")
    if valid(m, "dropped_frames", HEAD) is not None and m["dropped_frames"] != dropped:
        problems.append(
            f"{MANIFEST}: dropped_frames is {show(m['dropped_frames'])}, "
            f"the gaps add up to {show(dropped)}"
        )


# -- files -------------------------------------------------------------------
def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file, else raise Unreadable.

    Non-blocking, so a FIFO planted as a segment cannot hang the verifier at
    open(); the type is checked on the opened descriptor, so what is checked
    is what is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise Unreadable("missing") from None
    except (OSError, ValueError) as exc:
        raise Unreadable(f"cannot be opened: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise Unreadable("is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise Unreadable("is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: Path) -> str:
    """The sha256 of a regular file."""
    with open_regular(path) as f:
        return hash_open(f)[0]


def hash_open(f: BinaryIO) -> tuple[str, int]:
    """The sha256 and length of an open file, from its start."""
    h = hashlib.sha256()
    size = 0
    f.seek(0)
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
        size += len(block)
    return h.hexdigest(), size


def load_manifest(directory: Path) -> Any:
    """The parsed manifest (any JSON value), or Unreadable with a one-line reason."""
    try:
        with open_regular(directory / MANIFEST) as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:  # an I/O error on a failing card
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise Unreadable(f"is larger than {MAX_MANIFEST_BYTES} bytes")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"is not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError too
        raise Unreadable(f"is not valid JSON: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise Unreadable("is not valid JSON: nested too deeply") from None


def segment_path(directory: Path, name: str) -> Path:
    """Where a manifest's segment lives, refusing anything outside the recording.

    The name must be a plain file name ("../x", "/dev/zero", NUL bytes are
    refused), and a symbolic link must not lead out of the directory either:
    the verifier must not be made to read, or vouch for, other files.
    """
    outside = Unreadable("refused: not a file inside the recording directory")
    if "\0" in name or name in (".", "..") or Path(name).name != name or "/" in name:
        raise outside
    try:
        root = directory.resolve()
        resolved = (directory / name).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise outside from None
    if root not in resolved.parents:
        raise outside
    return directory / name


def unlisted_segments(directory: Path, listed: set[str]) -> list[str]:
    """Segment files on disk that the manifest does not list: added, or left out of it.

    ``listed`` includes the tails (``segment-NNNN.tail``) that ``recovery``
    lists with their size and hash; any other tail is as unexplained as an
    extra segment.
    """
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError as exc:
        return [f"{show_name(directory.name)}: cannot list the directory: {exc.strerror}"]
    return [
        f"{show_name(n)}: on disk but not in the manifest"
        for n in names
        if n.startswith(SEGMENT_PREFIX) and n not in listed
    ]


# -- decoding ----------------------------------------------------------------
@dataclass
class Decoded:
    frames: list[DecodedFrame] = field(default_factory=list)
    codec: str | None = None
    #: Why decoding ended before the end of the file, if it did.
    stopped: str | None = None
    bad_packets: int = 0
    first_bad: str | None = None
    #: The container's keyframe flag on the first packet: a decoder silently
    #: skips leading P frames it has no reference for, so the first *picture*
    #: alone cannot show that a segment was cut mid-GOP.
    first_packet_key: bool | None = None


class Prefix:
    """The first ``end`` bytes of an open file, as a file (for decode_file).

    A segment recovery found short may end inside a frame; the manifest says
    where its whole frames end, and only those are decoded and counted.
    """

    def __init__(self, f: BinaryIO, end: int) -> None:
        self._f = f
        self._end = end

    def fileno(self) -> int:
        return self._f.fileno()

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._end - self._f.tell())
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            offset, whence = self._end + offset, os.SEEK_SET
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


class QuietReader:
    """A read-only file for PyAV whose failures are return codes, never exceptions.

    PyAV turns an exception raised inside a read or seek callback into a
    "stashed" error; a second one before it is collected is printed to stderr
    as a traceback ("PyAV library exception being dropped"), and a stashed
    error can surface later, in an unrelated call. FFmpeg's probes seek to
    negative offsets on short files, which a Python file refuses with EINVAL.
    So a failed seek returns a negative errno and a failed read is end of file.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except (OSError, ValueError):
            return b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._f.seek(offset, whence)
        except (OSError, ValueError, OverflowError):
            return -errno.EINVAL

    def tell(self) -> int:
        return self._f.tell()


def _av_message(exc: Exception) -> str:
    """One line from a PyAV failure (no file name: the caller names the file)."""
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _packets(container: Any, stream: Any, out: Decoded) -> Iterator[Any]:
    """The stream's packets until the demuxer fails (noted in ``out.stopped``).

    PyAV raises more than FFmpegError on damaged input: IndexError when a
    damaged MPEG-TS announces a new stream mid-file, for one. Whatever the
    library raises while reading hostile bytes is a finding about the file.
    """
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except Exception as exc:
            out.stopped = f"stops demuxing after {len(out.frames)} frames: {_av_message(exc)}"
            return
        yield packet


#: Pixel formats whose first plane is 8-bit luma: the code strip is read from
#: it directly, five times faster than converting the whole picture to gray.
LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"}
)


def code_strip(picture: Any) -> np.ndarray:
    """The top rows of a picture's luma, where SPEC section 8 puts the frame code.

    read_frame_code compares each block with its inverse, so limited or full
    range luma read straight from the plane gives the same number.
    """
    rows = min(CODE_HEIGHT, picture.height)
    if picture.format.name not in LUMA_FIRST:
        return picture.to_ndarray(format="gray")[:rows]
    plane = picture.planes[0]
    luma = np.frombuffer(plane, np.uint8, count=rows * plane.line_size)
    return luma.reshape(rows, plane.line_size)[:, : picture.width]


def decode_file(
    f: BinaryIO,
    container_format: str,
    declared_frames: int | None = None,
    dims: tuple[int, int] | None = None,
) -> Decoded:
    """Decode every picture of an open segment file, reading its frame code.

    Never raises for damaged input. A packet that does not decode is counted
    and skipped (the frames after it are still evidence). Decoding stops at a
    demuxer failure; when a picture is not ``dims`` (width, height) or,
    without them, differs from the first, since damaged headers can claim huge pictures; and after
    ``declared_frames`` (or one per byte of the file) plus DECODE_MARGIN
    packets, so the work is bounded whatever the bytes say. The container
    format is given, never probed: probing would let a file pose as a
    playlist or another format that opens further files.
    """
    out = Decoded()
    file_bytes = os.fstat(f.fileno()).st_size
    limit = min(file_bytes, declared_frames if declared_frames is not None else file_bytes)
    limit += DECODE_MARGIN
    try:
        container = av.open(QuietReader(f), format=container_format, metadata_errors="replace")
    except Exception as exc:
        out.stopped = f"does not open as {container_format}: {_av_message(exc)}"
        return out
    with container:
        if not container.streams.video:
            out.stopped = "has no video stream"
            return out
        stream = container.streams.video[0]
        with contextlib.suppress(Exception):
            out.codec = stream.codec_context.name
        time_base = stream.time_base or Fraction(0)
        for n, packet in enumerate(_packets(container, stream, out), start=1):
            if out.first_packet_key is None and packet.size:
                out.first_packet_key = bool(packet.is_keyframe)
            if n > limit:
                frames = "" if declared_frames is None else f" for {declared_frames} frames"
                out.stopped = f"more than {limit} packets{frames}; stopped decoding"
                break
            try:
                pictures = packet.decode()
            except Exception as exc:
                out.bad_packets += 1
                out.first_bad = out.first_bad or f"packet {n}: {_av_message(exc)}"
                continue
            for picture in pictures:
                shape = (picture.width, picture.height)
                dims = dims or shape
                if shape != dims:
                    out.stopped = (
                        f"frame {len(out.frames)} is {shape[0]}x{shape[1]}, "
                        f"expected {dims[0]}x{dims[1]}"
                    )
                    return out
                try:
                    gray = code_strip(picture)
                except Exception as exc:
                    out.bad_packets += 1
                    out.first_bad = out.first_bad or f"packet {n}: {_av_message(exc)}"
                    continue
                out.frames.append(
                    DecodedFrame(
                        picture.pts, time_base, bool(picture.key_frame), read_frame_code(gray)
                    )
                )
    return out


def decode_segment(path: Path) -> list[DecodedFrame]:
    """Every picture of an undamaged segment; raises Unreadable if it is damaged."""
    container_format = FORMAT_OF_SUFFIX.get(path.suffix)
    if container_format is None:
        raise Unreadable(f"{path.name}: not a segment file ({', '.join(FORMAT_OF_SUFFIX)})")
    with open_regular(path) as f:
        decoded = decode_file(f, container_format)
    trouble = decoded.stopped or decoded.first_bad
    if trouble:
        raise Unreadable(f"{path.name}: {trouble}")
    return decoded.frames


# -- the checks --------------------------------------------------------------
class Findings:
    """One segment's problem lines, at most MAX_REPEATS of each kind, then a count."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, text: str, kind: str | None = None) -> None:
        kind = kind or text
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= MAX_REPEATS:
            self.lines.append(f"{self.name}: {text}")

    def close(self) -> list[str]:
        more = [
            f"{self.name}: {n - MAX_REPEATS} more {kind}"
            for kind, n in self.counts.items()
            if n > MAX_REPEATS
        ]
        return self.lines + more


@dataclass
class Continuity:
    """Where the previous frame left off, across segments.

    ``start_time`` is the recording's (its first segment's); ``origin`` is the
    device time of timestamp 0, decided from the first picture with a
    timestamp (see :func:`timestamp_origin`) and kept for the whole recording.
    """

    next_code: int | None = None
    prev_time: float | None = None
    start_time: float | None = None
    origin: float | None = None

    def reset(self) -> None:
        """After a segment that could not be (fully) read: its loss is already reported."""
        self.next_code = self.prev_time = None


def timestamp_origin(first: float, seg_start: float, start_time: float | None) -> float:
    """The device time of timestamp 0: the recording's ``start_time`` (SPEC 6).

    Timestamps count from the recording's first frame, so device time is
    ``start_time`` plus the timestamp and they never wrap. Recordings made
    before that counted from boot (origin 0); they still verify: the first
    picture tells which convention a recording uses, and only these two are
    accepted (any other offset shows up as a start_time mismatch).
    """
    if start_time is None:
        return 0.0
    if abs(first + start_time - seg_start) > TIME_TOLERANCE >= abs(first - seg_start):
        return 0.0
    return start_time


def declared_run(start: int, lost: int, gaps: set[tuple[int, int]]) -> bool:
    """True if frames ``start .. start + lost - 1`` are all declared, by one or adjacent gaps.

    Adjacent gaps happen when causes meet (an encoder skip right before a
    camera dropout, a camera dropout in the middle of a backlog drop).
    """
    end = start + lost
    pos = start
    while pos < end:
        reach = [pos + n for first, n in gaps if first == pos and 0 < n <= end - pos]
        if not reach:
            return False
        pos = max(reach)
    return True


def check_frames(
    frames: list[DecodedFrame], expect: Expect, run: Continuity, found: Findings
) -> None:
    """Frame codes run on (or skip a declared gap); timestamps keep capture spacing."""
    for f in frames:
        if f.code is not None:
            if run.next_code is not None and f.code != run.next_code:
                lost = f.code - run.next_code
                if lost < 1 or not declared_run(run.next_code, lost, expect.gaps):
                    found.add(
                        f"frame {f.code} follows {run.next_code - 1} (undeclared gap)",
                        "frame-order problems",
                    )
            run.next_code = f.code + 1
        t = f.seconds
        if t is None:
            found.add("a frame has no timestamp", "frames without timestamps")
            continue
        if run.prev_time is not None and expect.fps is not None:
            fps = expect.fps
            k = round((t - run.prev_time) * fps)
            if k < 1 or abs(t - run.prev_time - k / fps) > TIME_TOLERANCE:
                found.add(f"timestamp {t:.4f} s breaks 1/{fps} s spacing", "timestamp problems")
        run.prev_time = t


def check_decoded(
    seg: dict[str, Any], decoded: Decoded, expect: Expect, run: Continuity, found: Findings
) -> None:
    """What the pictures say against the segment's manifest entry."""
    if decoded.stopped:
        found.add(f"does not decode: {decoded.stopped}")
    if decoded.bad_packets:
        found.add(f"{decoded.bad_packets} packets do not decode (first: {decoded.first_bad})")
    if expect.codec and decoded.codec and decoded.codec != expect.codec:
        found.add(f"holds {show(decoded.codec)} video, manifest says {expect.codec}")
    frames = decoded.frames
    if (frames and not frames[0].keyframe) or decoded.first_packet_key is False:
        found.add("does not start on a keyframe")
    check_frames(frames, expect, run, found)
    if decoded.stopped:
        run.reset()
        return  # the counts below would only restate the stop
    if len(frames) != seg["frames"]:
        found.add(f"{len(frames)} frames decoded, manifest says {show(seg['frames'])}")
    codes = [f.code for f in frames if f.code is not None]
    if codes and (codes[0] != seg["first_frame"] or codes[-1] != seg["last_frame"]):
        found.add(
            f"frames {codes[0]}..{codes[-1]}, manifest says "
            f"{seg['first_frame']}..{seg['last_frame']}"
        )
    check_segment_times(seg, frames, expect.fps, found, run)


def check_segment_times(
    seg: dict[str, Any],
    frames: list[DecodedFrame],
    fps: float | None,
    found: Findings,
    run: Continuity | None = None,
) -> None:
    """The segment's pictures start and end at the manifest's times, at its frame rate.

    A picture's device time is the recording's timestamp origin (``run``)
    plus its timestamp. Frame to frame, a wrong rate can hide inside the
    tolerance Matroska's 1 ms timestamps need (1/30 and 1/31 s differ by
    1.07 ms); across a segment it cannot. Frame numbers count captures
    (SPEC 7), so a declared gap keeps the spacing.
    """
    times = [(f.code, f.seconds) for f in frames if f.seconds is not None]
    if not times:
        return
    run = run or Continuity()
    if run.origin is None:
        run.origin = timestamp_origin(times[0][1], seg["start_time"], run.start_time)
    times = [(code, run.origin + t) for code, t in times]
    for which, key, (_, t) in (("first", "start_time", times[0]), ("last", "end_time", times[-1])):
        if abs(t - seg[key]) > TIME_TOLERANCE:
            found.add(f"{which} picture at {t:.4f} s, manifest {key} says {show(seg[key])}")
    coded = [(code, t) for code, t in times if code is not None]
    if fps is None or len(coded) < 2:
        return
    (code0, t0), (code1, t1) = coded[0], coded[-1]
    expected = (code1 - code0) / fps
    if abs(t1 - t0 - expected) > TIME_TOLERANCE:
        found.add(f"frames {code0}..{code1} span {t1 - t0:.4f} s, {expected:.4f} s at {fps:g} fps")


def check_segment(
    directory: Path,
    seg: dict[str, Any],
    expect: Expect,
    run: Continuity,
    report: Report,
    complete_bytes: int | None = None,
) -> None:
    """One listed segment: where it is, its bytes, its pictures.

    ``complete_bytes``: recovery found the segment short and says its whole
    frames end there; all bytes are hashed, only those are decoded.
    """
    found = Findings(show_name(seg["file"]))
    try:
        path = segment_path(directory, seg["file"])
        container_format = FORMAT_OF_SUFFIX.get(path.suffix)
        if container_format is None:
            raise Unreadable(f"not a segment file (expected {' or '.join(FORMAT_OF_SUFFIX)})")
        with open_regular(path) as f:
            digest, size = hash_open(f)
            if size != seg["bytes"]:
                found.add(f"{size} bytes, manifest says {show(seg['bytes'])}")
            if digest != seg["sha256"]:
                found.add("sha256 mismatch (altered or damaged)")
            f.seek(0)
            dims = (expect.width, expect.height) if expect.width and expect.height else None
            whole = f if complete_bytes is None else Prefix(f, complete_bytes)
            decoded = decode_file(whole, container_format, seg["frames"], dims)
    except (Unreadable, OSError) as exc:
        detail = str(exc) if isinstance(exc, Unreadable) else f"cannot be read: {exc.strerror}"
        found.add(detail)
        run.reset()
    else:
        report.frames += len(decoded.frames)
        report.codes += [f.code for f in decoded.frames]
        check_decoded(seg, decoded, expect, run, found)
    report.problems += found.close()


# -- what recovery did --------------------------------------------------------
RECOVERY = {
    "skipped_journal_lines": LIST,
    "tails": LIST,
    "short_segments": LIST,
    "unclosed_segments": LIST,
    "missing_segments": LIST,
}
TAIL = {"file": TEXT, "segment": TEXT, "offset": COUNT, "bytes": COUNT, "sha256": SHA256}
SHORT = {
    "file": TEXT,
    "bytes": COUNT,
    "journal_bytes": COUNT,
    "journal_frames": COUNT,
    "frames": COUNT,
    "complete_bytes": COUNT,
}
TAIL_NAME = re.compile(r"segment-[0-9]+\.tail")


def check_recovery(
    directory: Path, m: dict[str, Any], problems: list[str]
) -> tuple[dict[str, int], set[str]]:
    """The ``recovery`` entry of a recovered manifest, and the tails it keeps.

    Returns where each short segment's whole frames end, and the tail files
    it lists (accepted on disk; each must match its listed size and sha256).
    """
    r = m.get("recovery")
    if r is None:
        return {}, set()
    if not check_fields(r, RECOVERY, "recovery", problems):
        return {}, set()
    tails: set[str] = set()
    for t in check_list(r["tails"], TAIL, "recovery.tails", problems):
        name = show_name(t["file"])
        if not TAIL_NAME.fullmatch(t["file"]):
            problems.append(f"{MANIFEST}: recovery lists {name}, expected segment-NNNN.tail")
            continue
        tails.add(t["file"])
        try:
            with open_regular(segment_path(directory, t["file"])) as f:
                digest, size = hash_open(f)
        except (Unreadable, OSError) as exc:
            detail = str(exc) if isinstance(exc, Unreadable) else f"cannot be read: {exc.strerror}"
            problems.append(f"{name}: {detail}")
            continue
        if size != t["bytes"]:
            problems.append(f"{name}: {size} bytes, manifest says {t['bytes']}")
        if digest != t["sha256"]:
            problems.append(f"{name}: sha256 mismatch (altered or damaged)")
    complete: dict[str, int] = {}
    for s in check_list(r["short_segments"], SHORT, "recovery.short_segments", problems):
        if s["complete_bytes"] > s["bytes"] or s["bytes"] >= s["journal_bytes"]:
            problems.append(
                f"{MANIFEST}: recovery.short_segments: {show_name(s['file'])} "
                f"is not short as described"
            )
            continue
        complete[s["file"]] = s["complete_bytes"]
    return complete, tails


def _verify(directory: Path, report: Report) -> None:
    if not os.path.lexists(directory / MANIFEST) and os.path.lexists(directory / JOURNAL):
        # Not damage: the manifest is written at the stop, and this recording
        # never reached one (power cut, kill). Say so, and how to finish it.
        report.problems.append(
            f"{MANIFEST} missing, {JOURNAL} present: interrupted before its manifest was "
            "written (power lost or the firmware killed while recording); "
            f"run `bodycam recover {directory}` to rebuild it from the journal"
        )
        return
    try:
        m = load_manifest(directory)
    except Unreadable as exc:
        report.problems.append(f"{MANIFEST} {exc}")
        return
    checked = check_manifest(m, report.problems)
    if checked is None:
        return
    expect, segments = checked
    run = Continuity(start_time=segments[0]["start_time"] if segments else None)
    complete, tails = check_recovery(directory, m, report.problems)
    for seg in segments:
        check_segment(directory, seg, expect, run, report, complete.get(seg["file"]))
    if LIST.ok(m.get("segments")):
        names = [s.get("file") for s in m["segments"] if isinstance(s, dict)]
        listed = {name for name in names if isinstance(name, str)}
        report.problems += unlisted_segments(directory, listed | tails)


def verify_recording(directory: Path | str) -> Report:
    """Check one recording directory; every finding is a line in ``report.problems``.

    Never raises (KeyboardInterrupt aside). The last-resort handler turns a
    verifier bug into an "internal error" finding instead of a traceback, so
    a damaged recording can never look like a crash of the tool; the fuzz
    tests assert it is never reached.
    """
    report = Report(Path(directory))
    try:
        _verify(report.path, report)
    except Exception as exc:
        report.problems.append(
            f"internal error while verifying: {type(exc).__name__}: {show(str(exc))}"
        )
    return report
