"""Checking recordings: hashes, decodability, continuity, timing.

The tamper and damage check an investigator (or CI) runs on what the camera
wrote: every segment's sha256 and size against the manifest, every segment
decodes from a keyframe, the SPEC section 8 frame codes (when the stream
carries them) run without gaps or duplicates except where the manifest
declares a gap, and timestamps follow capture spacing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from camera.framecode import read_frame_code
from camera.manifest import FORMAT, MANIFEST

REQUIRED = (
    "format",
    "device_id",
    "recording_id",
    "codec",
    "width",
    "height",
    "fps",
    "trigger",
    "pre_event_seconds",
    "start_time",
    "end_time",
    "stop",
    "frames",
    "first_frame",
    "last_frame",
    "dropped_frames",
    "markers",
    "segments",
)
SEGMENT_KEYS = (
    "file",
    "sha256",
    "bytes",
    "frames",
    "first_frame",
    "last_frame",
    "start_time",
    "end_time",
)


@dataclass
class DecodedFrame:
    pts: int  # in the stream's time base
    time_base: float
    keyframe: bool
    code: int | None

    @property
    def seconds(self) -> float:
        return self.pts * self.time_base


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)
    frames: int = 0
    codes: list[int | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def decode_segment(path: Path) -> list[DecodedFrame]:
    """Decode every picture of a segment and read its frame code."""
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        for frame in container.decode(stream):
            gray = frame.to_ndarray(format="gray")
            out.append(DecodedFrame(frame.pts, tb, bool(frame.key_frame), read_frame_code(gray)))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text())


def verify_recording(directory: Path) -> Report:
    report = Report(directory)
    try:
        m = load_manifest(directory)
    except FileNotFoundError:
        report.problems.append(f"{MANIFEST} missing")
        return report
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.problems.append(f"{MANIFEST} unreadable: {exc}")
        return report
    missing = [k for k in REQUIRED if k not in m]
    if missing or m.get("format") != FORMAT:
        report.problems.append(
            f"{MANIFEST}: missing keys {missing}" if missing else f"format is {m.get('format')!r}"
        )
        return report
    fps = m["fps"]
    gaps = {(g["first_frame"], g["frames"]) for g in m.get("gaps", [])}
    expected_next: int | None = None
    prev_time: float | None = None
    for seg in m["segments"]:
        if any(k not in seg for k in SEGMENT_KEYS):
            report.problems.append(f"segment entry missing keys: {seg}")
            continue
        path = directory / seg["file"]
        name = seg["file"]
        if not path.is_file():
            report.problems.append(f"{name}: missing")
            continue
        if path.stat().st_size != seg["bytes"]:
            report.problems.append(
                f"{name}: {path.stat().st_size} bytes, manifest says {seg['bytes']}"
            )
        if sha256_file(path) != seg["sha256"]:
            report.problems.append(f"{name}: sha256 mismatch (altered or damaged)")
        try:
            frames = decode_segment(path)
        except (av.FFmpegError, OSError) as exc:
            report.problems.append(f"{name}: does not decode: {exc}")
            continue
        if len(frames) != seg["frames"]:
            report.problems.append(
                f"{name}: {len(frames)} frames decoded, manifest says {seg['frames']}"
            )
        if frames and not frames[0].keyframe:
            report.problems.append(f"{name}: does not start on a keyframe")
        report.frames += len(frames)
        for f in frames:
            report.codes.append(f.code)
            if f.code is not None:
                if expected_next is not None and f.code != expected_next:
                    lost = f.code - expected_next
                    if (expected_next, lost) not in gaps:
                        report.problems.append(
                            f"{name}: frame {f.code} follows {expected_next - 1} (undeclared gap)"
                        )
                expected_next = f.code + 1
            t = f.seconds
            if prev_time is not None:
                k = round((t - prev_time) * fps)
                # Exact in MPEG-TS (90 kHz); Matroska rounds to 1 ms.
                if k < 1 or abs(t - prev_time - k / fps) > 0.0011:
                    report.problems.append(f"{name}: timestamp {t:.4f} s breaks 1/{fps} s spacing")
            prev_time = t
        codes = [f.code for f in frames if f.code is not None]
        if codes and (codes[0] != seg["first_frame"] or codes[-1] != seg["last_frame"]):
            report.problems.append(
                f"{name}: frames {codes[0]}..{codes[-1]}, manifest says "
                f"{seg['first_frame']}..{seg['last_frame']}"
            )
    if sum(s.get("frames", 0) for s in m["segments"]) != m["frames"]:
        report.problems.append("frame count does not add up across segments")
    return report
