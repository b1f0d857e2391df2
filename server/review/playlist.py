"""HLS playlists written from the manifest: the stored MPEG-TS segments, played as they are.

Each segment already starts on a keyframe and its timestamps count from the
recording's first frame, so a VOD playlist needs no transcode: one
``#EXTINF`` per segment, ``#EXT-X-PROGRAM-DATE-TIME`` (the device's wall
clock at the segment's first frame, steps included, from
:class:`camera.inspection.wallclock.WallClock`), ``#EXT-X-ENDLIST``.
``#EXTINF`` is the time from the segment's first frame to the next
segment's first frame (the last: to the end of its last frame), so playlist
time is device time minus the recording's start even across a gap between
segments; the hole the gap leaves in the timestamps is the player's to skip.

**Parts.** hls.js plays through Media Source Extensions, and makes its
SourceBuffers from the first fragment it parses: a recording whose
pre-event has pictures but no sound (the firmware's default:
``audio.pre_event`` false) starts with segments that hold no audio packet,
so hls.js makes a video buffer only, and the first segment with sound
fails to append (``bufferAppendError``: "the audio SourceBuffer does not
exist"). Nor can it start on a segment with sound and go back: the
pre-event then has no audio in a buffer that expects some, and playback
stalls there. So the page plays a recording as *parts*: runs of whole
segments that all have sound or all have none (a recording with sound
throughout, or none, is one part), each its own playlist, switched at the
boundary. Whether a segment has sound comes from the manifest's ``audio``
block (its first and last sample, less the declared gaps). The whole
recording's playlist (``index.m3u8``) is served too, for players that
handle sound that starts late (VLC, Safari, ffplay).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from camera.inspection.wallclock import WallClock, parse_utc

__all__ = ["Part", "Segment", "parts", "playlist", "segments_of"]

#: The codec whose segments are MPEG-TS, so HLS; MJPEG's are Matroska (no HLS).
HLS_CODEC = "h264"


@dataclass(frozen=True)
class Segment:
    index: int
    file: str
    #: Device seconds: first frame, and where the next segment starts (or the end).
    start: float
    until: float
    audio: bool

    @property
    def duration(self) -> float:
        return self.until - self.start


@dataclass(frozen=True)
class Part:
    """Whole segments played by one playlist: all with sound, or all without."""

    number: int
    segments: tuple[Segment, ...]

    @property
    def start(self) -> float:
        return self.segments[0].start

    @property
    def until(self) -> float:
        return self.segments[-1].until

    @property
    def audio(self) -> bool:
        return self.segments[0].audio


def _period(m: dict[str, Any]) -> float:
    fps = m.get("fps")
    return 1 / fps if isinstance(fps, int | float) and fps > 0 else 0.0


def _sound(m: dict[str, Any]) -> list[tuple[float, float]]:
    """Device-time spans with sound: the audio block's first to last sample, less its gaps."""
    audio = m.get("audio")
    if not isinstance(audio, dict):
        return []
    first = audio.get("first_time", audio.get("start_time"))
    last = audio.get("end_time")
    if not all(isinstance(t, int | float) for t in (first, last)):
        return []
    spans = [(float(first), float(last))]
    gaps = audio.get("gaps") if isinstance(audio.get("gaps"), list) else []
    for g in gaps:
        if not isinstance(g, dict) or not all(
            isinstance(g.get(k), int | float) for k in ("start", "end")
        ):
            continue
        cut: list[tuple[float, float]] = []
        for a, b in spans:
            if g["end"] <= a or g["start"] >= b:
                cut.append((a, b))
                continue
            if g["start"] > a:
                cut.append((a, g["start"]))
            if g["end"] < b:
                cut.append((g["end"], b))
        spans = cut
    return spans


def segments_of(m: dict[str, Any]) -> list[Segment]:
    """The manifest's segments with their playlist spans (``m`` passed inspect's checks)."""
    period = _period(m)
    listed = m["segments"]
    sound = _sound(m)
    out = []
    for i, s in enumerate(listed):
        start = float(s["start_time"])
        end = float(s["end_time"]) + period  # the end of its last frame
        until = float(listed[i + 1]["start_time"]) if i + 1 < len(listed) else end
        audio = any(a < end and b > start for a, b in sound)
        out.append(Segment(i, s["file"], start, max(until, start), audio))
    return out


def parts(segments: Sequence[Segment]) -> list[Part]:
    """Runs of segments alike in sound (see the module's docstring for why)."""
    runs: list[list[Segment]] = []
    for seg in segments:
        if runs and runs[-1][-1].audio == seg.audio:
            runs[-1].append(seg)
        else:
            runs.append([seg])
    return [Part(n, tuple(run)) for n, run in enumerate(runs)]


def playlist(segments: Sequence[Segment], m: dict[str, Any], url: str = "files/{file}") -> str:
    """The VOD playlist of ``segments`` (all of a recording's, or one part's)."""
    trigger = m["trigger"]
    steps = m.get("wall_clock_steps") or []
    clock = WallClock(
        trigger["time"],
        parse_utc(trigger["wall_time"]),
        tuple((s["time"], s["seconds"]) for s in steps),
    )
    target = max((math.ceil(s.duration) for s in segments), default=1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for seg in segments:
        wall = clock.at(seg.start)
        if wall is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{wall}")
        lines.append(f"#EXTINF:{seg.duration:.6f},")
        lines.append(url.format(file=seg.file))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
