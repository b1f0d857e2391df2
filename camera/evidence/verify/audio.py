"""A recording's sound (SPEC 15): its manifest entries, its packets, its sync with the pictures.

The manifest's ``audio`` block says what was recorded (codec, rate, the
packets and samples written, the gaps where the microphone was gone) and
each segment's ``audio`` entry what that file holds. Both are evidence to
check against the decoded packets, never instructions:

- the block's fields and totals (packets, samples, first and last time)
  against the segments' entries, and those against what each segment file
  actually holds (packet count, first and last packet time);
- continuity: packet after packet, across segments, the audio runs on one AAC
  frame at a time except where a declared gap says the microphone was gone;
  a jump nothing declares names the segment, the time and the samples;
- the sound lies within the pictures (one AAC frame of slack at each end);
- for the synthetic scene, whose microphone hears a click at the capture time
  of every frame whose number is a multiple of the frame rate, the A/V offset
  from the clicks (:mod:`.av_sync`), which fails beyond 10 ms.

A segment with an audio stream that the manifest does not declare, or no
stream where it declares one, is a finding too: sound must not come and go
unaccounted for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from camera.encoders.aac import FRAME_SAMPLES
from camera.evidence.records import MANIFEST, AudioGapCause
from camera.evidence.verify.audio_decode import AudioDecoder, DecodedAudio
from camera.evidence.verify.av_sync import SyncReport, find_clicks, measure_offsets
from camera.evidence.verify.continuity import TIME_TOLERANCE, listed_numbers
from camera.evidence.verify.decode import Decoded
from camera.evidence.verify.findings import Findings, Report, show, show_name
from camera.evidence.verify.rules import (
    BOOL,
    COUNT,
    LIST,
    POSITIVE,
    SECONDS,
    TEXT,
    Expect,
    Rule,
    check_fields,
    check_list,
)
from camera.segments import PTS_HZ

#: The source whose sound is the synthetic scene: only its clicks can be measured.
SYNTHETIC = "synthetic"
#: Why audio may be missing.
GAP_CAUSES = tuple(AudioGapCause)
#: How far a packet time in a container may lie from the device time it was
#: written for: MPEG-TS keeps 90 kHz ticks (one tick covers the rounding of
#: the timestamp and of the manifest's microseconds); Matroska keeps
#: milliseconds (as for frames).
CONTAINER_TOLERANCE = {"mpegts": 1 / PTS_HZ, "matroska": TIME_TOLERANCE}
#: A real microphone's packets are dated from its driver's block times, which
#: jitter by well under half a block (hal/audio/timing.py): a step within
#: this many AAC frames of one frame is no jump. The synthetic scene is exact.
JITTER_FRAMES = 0.5
#: Manifest times are rounded to microseconds; totals are copies of segment values.
ROUNDED = 1e-6

SECONDS_OR_NULL = Rule(lambda v: v is None or SECONDS.ok(v), "device seconds or null")
AUDIO: dict[str, Rule] = {
    "codec": TEXT,
    "rate": POSITIVE,
    "channels": POSITIVE,
    "bitrate": POSITIVE,
    "source": Rule(lambda v: v is None or TEXT.ok(v), "a non-empty string or null"),
    "pre_event": BOOL,
    "start_time": SECONDS,
    "first_time": SECONDS_OR_NULL,
    "end_time": SECONDS_OR_NULL,
    "packets": COUNT,
    "samples": COUNT,
    "gaps": LIST,
}
AUDIO_GAP: dict[str, Rule] = {
    "start": SECONDS,
    "end": SECONDS,
    "first_sample": COUNT,
    "samples": COUNT,
    "cause": Rule(lambda v: v in GAP_CAUSES, " or ".join(repr(c.value) for c in GAP_CAUSES)),
}
SEGMENT_AUDIO: dict[str, Rule] = {
    "packets": POSITIVE,
    "first_sample": COUNT,
    "end_sample": COUNT,
    "start_time": SECONDS,
    "end_time": SECONDS,
}
LAYOUT_NAMES = {1: "mono", 2: "stereo"}


@dataclass
class AudioSummary:
    """What a recording's sound is, for the report's one audio line and ``--json``."""

    codec: str
    rate: int
    channels: int
    source: str | None
    packets: int
    samples: int
    bytes: int
    gaps: int
    gap_seconds: float
    #: Set only where the offset was measured (the synthetic scene).
    sync: SyncReport | None = None

    def line(self) -> str:
        """E.g. ``audio: aac 48 kHz mono, 62.0 s, 0.5 MB, 62 clicks, A/V offset mean ...``."""
        layout = LAYOUT_NAMES.get(self.channels, f"{self.channels} channels")
        parts = [
            f"audio: {self.codec} {self.rate / 1000:g} kHz {layout}",
            f"{self.samples / self.rate:.1f} s",
            _size(self.bytes),
        ]
        if self.gaps:
            plural = "s" if self.gaps > 1 else ""
            parts.append(f"{self.gaps} gap{plural} ({self.gap_seconds:.2f} s)")
        sync = self.sync
        if sync is None:
            parts.append(f"A/V offset not measured (source {self.source or 'not named'})")
        elif sync.mean_offset is None or sync.max_abs_offset is None:
            parts.append(f"{len(sync.clicks)} clicks, A/V offset not measured (no click matched)")
        else:
            parts.append(
                f"{len(sync.matched)} clicks, A/V offset mean {sync.mean_offset * 1000:+.1f} ms, "
                f"max {sync.max_abs_offset * 1000:.1f} ms"
            )
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        sync = self.sync
        return {
            "codec": self.codec,
            "rate": self.rate,
            "channels": self.channels,
            "source": self.source,
            "packets": self.packets,
            "samples": self.samples,
            "seconds": round(self.samples / self.rate, 6),
            "bytes": self.bytes,
            "gaps": self.gaps,
            "gap_seconds": round(self.gap_seconds, 6),
            "sync_measured": sync is not None,
            "clicks": None if sync is None else len(sync.matched),
            "offset_mean_ms": _ms(None if sync is None else sync.mean_offset),
            "offset_max_ms": _ms(None if sync is None else sync.max_abs_offset),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


@dataclass(frozen=True)
class Heard:
    """A decoded packet's device time, and the segment holding it (to name where a jump is)."""

    file: str
    time: float


@dataclass
class AudioCheck:
    """The audio checks of one recording: the manifest first, then segment by segment, then totals.

    ``declared``: the manifest's valid audio block; None for no audio (null,
    or absent in an older manifest). ``unknown``: the block is there but not
    valid (reported), so what the segments hold cannot be judged by it.
    """

    declared: dict[str, Any] | None
    unknown: bool
    problems: list[str]
    expect: Expect
    #: Declared gaps as (device start, device end); and which the audio showed.
    gaps: list[tuple[float, float]] = field(default_factory=list)
    gaps_seen: set[int] = field(default_factory=set)
    decoder: AudioDecoder = field(default_factory=AudioDecoder)
    #: The recording's timestamp origin (from the pictures, by continuity).
    origin: float | None = None
    #: Frame number -> device time, for the sync check.
    frame_times: dict[int, float] = field(default_factory=dict)
    previous: Heard | None = None
    first: Heard | None = None
    last_end: float | None = None
    packets: int = 0
    bytes: int = 0
    #: Whether every segment's audio could be heard (else a declared gap may lie in
    #: what was not).
    complete: bool = True

    @classmethod
    def begin(cls, m: dict[str, Any], expect: Expect, problems: list[str]) -> AudioCheck:
        """Validate the manifest's audio block and segment entries; ready for the segments."""
        block = m.get("audio")
        declared: dict[str, Any] | None = None
        unknown = False
        if block is not None:
            unknown = True
            if not isinstance(block, dict):
                problems.append(f"{MANIFEST}: audio is {show(block)}, expected an object or null")
            elif check_fields(block, AUDIO, "audio", problems):
                gaps = check_list(block["gaps"], AUDIO_GAP, "audio.gaps", problems)
                if len(gaps) == len(block["gaps"]):
                    declared, unknown = block, False
        check = cls(declared, unknown, problems, expect)
        entries = _segment_entries(m, problems)
        if declared is not None:
            check.gaps = [(g["start"], g["end"]) for g in declared["gaps"]]
            check.decoder = AudioDecoder(keep_pcm=declared["source"] == SYNTHETIC)
            check._check_block(entries)
        elif not unknown and entries:
            problems.append(
                f"{MANIFEST}: segments list audio ({len(entries)} of them), "
                "but the recording declares none (audio is null or absent)"
            )
        return check

    # -- the manifest alone ------------------------------------------------------------
    def _check_block(self, entries: list[tuple[int, dict[str, Any] | None]]) -> None:
        """The block's totals are its segments', and segments follow on except at declared gaps."""
        block = self.declared
        assert block is not None
        out = self.problems
        for key in ("first_time", "end_time"):
            if block[key] is None and block["packets"]:
                out.append(
                    f"{MANIFEST}: audio.{key} is null, but audio.packets is {block['packets']}"
                )
        for i, g in enumerate(block["gaps"]):
            if g["end"] < g["start"]:
                out.append(f"{MANIFEST}: audio.gaps[{i}] ends before it starts")
        valid = [(i, e) for i, e in entries if e is not None]
        if len(valid) != len(entries):
            return  # an entry is not valid (reported): totals cannot be judged
        self._check_totals(valid)

    def _check_totals(self, entries: list[tuple[int, dict[str, Any]]]) -> None:
        """Packets, samples and times of the block are those of its segments' entries."""
        block = self.declared
        assert block is not None
        out = self.problems
        packets = sum(e["packets"] for _, e in entries)
        if block["packets"] != packets:
            out.append(
                f"{MANIFEST}: audio.packets is {block['packets']}, the segments hold {packets} "
                "(audio packet count does not add up across segments)"
            )
        first = entries[0][1]["start_time"] if entries else None
        end = entries[-1][1]["end_time"] if entries else None
        for key, value in (("first_time", first), ("end_time", end)):
            have = block[key]
            if (have is None) != (value is None) or (
                have is not None and value is not None and abs(have - value) > ROUNDED
            ):
                out.append(
                    f"{MANIFEST}: audio.{key} is {show(have)}, the segments say {show(value)}"
                )
        gaps = block["gaps"]
        inside = 0
        for _, e in entries:
            inside += sum(
                g["samples"]
                for g in gaps
                if e["first_sample"] <= g["first_sample"] < e["end_sample"]
            )
        samples = sum(e["end_sample"] - e["first_sample"] for _, e in entries) - inside
        if block["samples"] != samples:
            out.append(
                f"{MANIFEST}: audio.samples is {block['samples']}, the segments cover {samples} "
                "(their sample ranges less the gaps inside them)"
            )
        for (_, before), (i, after) in itertools.pairwise(entries):
            jump = after["first_sample"] - before["end_sample"]
            if jump and not any(
                g["first_sample"] == before["end_sample"] and g["samples"] == jump for g in gaps
            ):
                out.append(
                    f"{MANIFEST}: segments[{i}].audio.first_sample is {after['first_sample']}, "
                    f"the audio before it ends at sample {before['end_sample']} "
                    f"({jump:+d} samples, no audio gap declared there)"
                )

    # -- each segment ------------------------------------------------------------------
    def segment(
        self, seg: dict[str, Any], decoded: Decoded, origin: float | None, fmt: str, found: Findings
    ) -> None:
        """One decoded segment's audio against its entry and the audio before it."""
        heard = decoded.audio
        if self.origin is None and origin is not None:
            self.origin = origin
        self._collect_frames(seg, decoded)
        if self.declared is None:
            if heard is not None and not self.unknown:
                found.add(
                    f"has an audio stream ({show(heard.codec)}, {heard.packets} packets), "
                    "but the manifest declares no audio"
                )
            return
        if heard is None:
            codec = self.declared["codec"]
            found.add(f"has no audio stream, but the manifest declares {codec} audio")
            self.lost()
            return
        if heard.first_bad and not heard.packets and not heard.bad_packets:
            found.add(f"audio does not decode: {heard.first_bad}")
            self.lost()
            return
        if heard.packets:  # an empty MPEG-TS stream has no rate or layout to compare
            self._check_format(heard, found)
        if heard.bad_packets:
            found.add(f"{heard.bad_packets} audio packets do not decode (first: {heard.first_bad})")
        self.packets += heard.packets
        self.bytes += heard.bytes
        base = self.origin if self.origin is not None else seg["start_time"]
        tolerance = CONTAINER_TOLERANCE.get(fmt, TIME_TOLERANCE)
        self._check_entry(seg, heard, base, tolerance, found)
        self._walk(show_name(seg["file"]), heard, base, tolerance, found)

    def lost(self) -> None:
        """A segment that could not be read (already reported): the audio's thread is broken."""
        self.previous = None
        self.complete = False

    def _collect_frames(self, seg: dict[str, Any], decoded: Decoded) -> None:
        """Frame number -> device time, by the pictures' codes or the manifest's numbering."""
        if self.origin is None or self.declared is None or self.declared["source"] != SYNTHETIC:
            return
        frames = decoded.frames
        numbers: list[int | None] = [f.code for f in frames]
        if any(n is None for n in numbers) and len(frames) == seg["frames"] and not decoded.stopped:
            numbers = list(listed_numbers(seg, len(frames), self.expect.gaps))
        for n, f in zip(numbers, frames, strict=True):
            if n is not None and f.seconds is not None:
                self.frame_times[n] = self.origin + f.seconds

    def _check_format(self, heard: DecodedAudio, found: Findings) -> None:
        block = self.declared
        assert block is not None
        have = (heard.codec, heard.rate, heard.channels)
        want = (block["codec"], block["rate"], block["channels"])
        if have != want:
            found.add(
                f"audio is {show(heard.codec)} {heard.rate} Hz {heard.channels} ch, "
                f"the manifest says {block['codec']} {block['rate']} Hz {block['channels']} ch"
            )

    def _check_entry(
        self,
        seg: dict[str, Any],
        heard: DecodedAudio,
        base: float,
        tolerance: float,
        found: Findings,
    ) -> None:
        """The segment's ``audio`` entry: its packet count and first/end time, as decoded."""
        entry = seg.get("audio")
        if entry is None:
            if heard.packets:
                found.add(f"holds {heard.packets} audio packets, the manifest lists none for it")
            return
        valid = isinstance(entry, dict) and all(
            r.ok(entry.get(k)) for k, r in SEGMENT_AUDIO.items()
        )
        if not valid:
            return  # reported with the manifest's fields
        if heard.packets != entry["packets"]:
            found.add(f"{heard.packets} audio packets decoded, manifest says {entry['packets']}")
        listed = entry.get("packet_sha256")
        if listed is not None:
            self._check_hashes(listed, heard, base, found)
        if heard.first_pts is not None:
            first = base + heard.first_pts
            if abs(first - entry["start_time"]) > tolerance:
                found.add(
                    f"first audio packet at {first:.6f} s, manifest audio.start_time says "
                    f"{show(entry['start_time'])}"
                )
        if heard.last_pts is not None and self.declared is not None:
            last = base + heard.last_pts
            frame = FRAME_SAMPLES / self.declared["rate"]
            if not -tolerance < entry["end_time"] - last <= frame + tolerance:
                found.add(
                    f"last audio packet at {last:.6f} s, manifest audio.end_time says "
                    f"{show(entry['end_time'])} (expected within one AAC frame after it)"
                )

    @staticmethod
    def _check_hashes(listed: Any, heard: DecodedAudio, base: float, found: Findings) -> None:
        """Each audio packet's sha256 against the manifest's list (the segment's own
        sha256 already covers its bytes; this names the packet that changed)."""
        if not isinstance(listed, list) or not all(isinstance(h, str) for h in listed):
            found.add("audio.packet_sha256: expected a list of sha256 hex strings")
            return
        if len(listed) != len(heard.sha256):
            found.add(
                f"audio.packet_sha256 lists {len(listed)} packets, the file holds "
                f"{len(heard.sha256)}"
            )
        for i, (want, got) in enumerate(zip(listed, heard.sha256, strict=False)):
            if want != got:
                t = heard.times[i] if i < len(heard.times) else None
                at = "" if t is None else f" at {base + t:.4f} s"
                found.add(f"audio packet {i}{at}: sha256 does not match the manifest's")
                return  # the first is named; the segment's sha256 reports the rest

    def _walk(
        self, name: str, heard: DecodedAudio, base: float, tolerance: float, found: Findings
    ) -> None:
        """Packet after packet: one AAC frame apart, except across a declared gap."""
        block = self.declared
        assert block is not None
        rate = block["rate"]
        frame = FRAME_SAMPLES / rate
        slack = tolerance if block["source"] == SYNTHETIC else max(tolerance, JITTER_FRAMES * frame)
        for pts in heard.times:
            if pts is None:
                found.add("an audio packet has no timestamp", "audio packets without timestamps")
                continue
            now = Heard(name, base + pts)
            self.first = self.first or now
            before, self.previous = self.previous, now
            self.last_end = now.time + frame
            if before is None:
                continue
            step = now.time - before.time
            if abs(step - frame) <= slack:
                continue
            if self._declared(before.time, now.time, frame, tolerance):
                continue
            where = "" if before.file == name else f" in {before.file}"
            if step <= 0:
                found.add(
                    f"audio packet at {now.time:.4f} s is not after the one at "
                    f"{before.time:.4f} s{where}",
                    "audio timestamp problems",
                )
            elif step < frame:
                found.add(
                    f"audio packet at {now.time:.4f} s overlaps the one at {before.time:.4f} s"
                    f"{where} by {round((frame - step) * rate)} samples",
                    "audio timestamp problems",
                )
            else:
                lost = round((step - frame) * rate)
                found.add(
                    f"audio jumps {lost} samples ({(step - frame) * 1000:.1f} ms) at "
                    f"{now.time:.4f} s after the packet at {before.time:.4f} s{where}, "
                    "and no audio gap is declared there",
                    "undeclared audio jumps",
                )

    def _declared(self, before: float, now: float, frame: float, tolerance: float) -> bool:
        """Whether a declared gap starts within the packet at ``before`` and ends at ``now``.

        The packet before a gap may be short (the run's last samples), so the
        gap starts anywhere within one AAC frame after it; it ends exactly
        where the next packet starts.
        """
        for i, (start, end) in enumerate(self.gaps):
            starts = before - tolerance < start <= before + frame + tolerance
            if starts and abs(end - now) <= tolerance:
                self.gaps_seen.add(i)
                return True
        return False

    # -- the recording -----------------------------------------------------------------
    def finish(self, report: Report, start_time: float | None, end_time: float | None) -> None:
        """Gaps the audio never showed, the sound against the pictures' span, the sync."""
        block = self.declared
        if block is None:
            return
        rate = block["rate"]
        frame = FRAME_SAMPLES / rate
        if self.complete and self.first is not None and self.last_end is not None:
            for i, (start, end) in enumerate(self.gaps):
                inside = self.first.time < start and end < self.last_end - frame
                if inside and i not in self.gaps_seen:
                    report.problems.append(
                        f"audio: gap declared from {start:.4f} s to {end:.4f} s, "
                        "but the audio runs on through it"
                    )
        self._check_span(block, start_time, end_time, report.problems)
        if not block["packets"] and not block["gaps"] and start_time != end_time:
            # The firmware declares a microphone that gave nothing as one gap
            # over the whole recording; its absence is worth saying, though
            # it hides nothing (there is no sound to hide).
            report.notes.append("audio: declared, but no sound was recorded and no gap says why")
        summary = AudioSummary(
            codec=block["codec"],
            rate=rate,
            channels=block["channels"],
            source=block["source"],
            packets=self.packets,
            samples=block["samples"],
            bytes=self.bytes,
            gaps=len(block["gaps"]),
            gap_seconds=sum(g["samples"] for g in block["gaps"]) / rate,
        )
        if block["source"] == SYNTHETIC:
            summary.sync = self._sync(report)
        report.audio = summary

    def _check_span(
        self,
        block: dict[str, Any],
        start_time: float | None,
        end_time: float | None,
        problems: list[str],
    ) -> None:
        """The sound lies within the pictures, one AAC frame of slack at each end."""
        first, end = block["first_time"], block["end_time"]
        frame = FRAME_SAMPLES / block["rate"]
        if first is not None and start_time is not None and first < start_time - frame - ROUNDED:
            problems.append(
                f"audio: starts at {first:.4f} s, {(start_time - first) * 1000:.1f} ms before "
                f"the first frame ({start_time:.4f} s); at most one AAC frame is allowed"
            )
        fps = self.expect.fps
        if end is not None and end_time is not None and fps:
            video_end = end_time + 1 / fps
            if end > video_end + frame + ROUNDED:
                problems.append(
                    f"audio: ends at {end:.4f} s, {(end - video_end) * 1000:.1f} ms "
                    f"after the last frame ends ({video_end:.4f} s); "
                    "at most one AAC frame is allowed"
                )

    def _sync(self, report: Report) -> SyncReport | None:
        """The A/V offset from the synthetic scene's clicks (SPEC 15: within 10 ms)."""
        fps = self.expect.fps
        if fps is None or self.origin is None:
            return None
        runs = self.decoder.pcm()
        if not runs:
            return None
        origin = self.origin
        clicks: list[float] = []
        for run in runs:
            try:
                clicks += find_clicks(run.samples, run.rate, origin + run.start)
            except ValueError as exc:
                report.problems.append(f"audio: sync clicks cannot be measured: {exc}")
                return None
        # Holes between runs are audio that is not there: declared gaps, or
        # jumps already reported; a click frame there has no click to find.
        holes = [(origin + a.end, origin + b.start) for a, b in itertools.pairwise(runs)]
        span = (origin + runs[0].start, origin + runs[-1].end)
        sync = measure_offsets(clicks, self.frame_times, fps, span, [*self.gaps, *holes])
        report.problems += [f"audio: {line}" for line in sync.problems()]
        report.notes += [f"audio: {line}" for line in sync.notes()[1:]]
        return sync


def _segment_entries(
    m: dict[str, Any], problems: list[str]
) -> list[tuple[int, dict[str, Any] | None]]:
    """Each segment's audio entry that is present (index, entry); None for an invalid one."""
    out: list[tuple[int, dict[str, Any] | None]] = []
    segments = m.get("segments")
    if not LIST.ok(segments):
        return out
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or seg.get("audio") is None:
            continue
        entry = seg["audio"]
        good = check_fields(entry, SEGMENT_AUDIO, f"segments[{i}].audio", problems)
        if good and entry["end_sample"] < entry["first_sample"]:
            problems.append(f"{MANIFEST}: segments[{i}].audio ends before it starts")
            good = False
        out.append((i, entry if good else None))
    return out
