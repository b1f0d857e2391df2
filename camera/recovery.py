"""Recovery of recordings interrupted by a power cut (or a storage failure).

A recording directory with a journal but no manifest was interrupted. The
journal says what was durable: the head, every closed segment (with its
sha256), markers, gaps, and the last fsync'ed size of the open segment. From
it recovery writes the manifest, with stop reason ``power_loss`` unless the
journal recorded a stop, and a ``recovery`` entry saying what it did.

The rules (SPEC section 7), because this runs on evidence:

- Nothing is deleted and no file is extended. Only the highest-numbered
  segment can have been open; it is cut back to its last synced size when it
  is at least that long, and the bytes past it are first written, durably,
  beside it as ``segment-NNNN.tail``. A segment the journal never synced is
  all tail. A power cut during recovery loses nothing and a rerun finishes
  the job: a tail already written is checked against the segment, not
  rewritten.
- A journal line that cannot be read is skipped and listed, never taken as
  the end of the journal.
- A segment shorter than the journal says (torn write, lost blocks) is kept
  as it is and described as it is: its hash, and the frames that decode
  whole. Its last frame is counted only when the file ends where the journal
  saw a frame end; otherwise that frame may be torn and the manifest says
  from which byte (``complete_bytes``), so verification decodes up to there.
- A closed segment whose ``segment`` record was lost is described from its
  bytes and decoded pictures, anchored on its own sync records.

The track (SPEC 14) is the journal's track points, in the order they were
journaled, from the first frame to the stop; a journal from before GPS
(its head's trigger has no ``position``) recovers into a manifest without
one, as it would have been written.

Sound is recovered as the pictures are: each sync record carries the audio
packets its bytes hold (exactly: :mod:`camera.mux_holds`), so a segment cut
back to a sync claims exactly the packets left in it, and the ones after
(sound that came after the last frame included) are in the tail. A
described segment counts the audio packets that demux from its whole-frame
bytes, numbered on from its latest sync that they reach, across the audio
gaps the journal declared.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import av

from camera.encoders.aac import FRAME_SAMPLES
from camera.errors import BodycamError
from camera.evidence.custody import Custody
from camera.evidence.journal import JournalContents, read_journal_lines
from camera.evidence.manifest import write_manifest
from camera.evidence.records import (
    ABSENT,
    CONTAINERS,
    JOURNAL,
    MANIFEST,
    SEGMENT_PREFIX,
    TAIL_SUFFIX,
    AudioGap,
    AudioSpan,
    Gap,
    Head,
    Manifest,
    Marker,
    RecoveryInfo,
    Segment,
    ShortSegment,
    Stop,
    StopReason,
    Sync,
    Tail,
    WallStep,
    r6,
)
from camera.evidence.verify.audio_decode import DecodedAudio
from camera.evidence.verify.decode import Decoded, Prefix, decode_file
from camera.evidence.verify.files import Unreadable, open_regular
from hal.storage import Storage

log = logging.getLogger(__name__)


class RecoveryError(BodycamError):
    """A recording cannot be rebuilt (no journal head); nothing was changed."""


def interrupted(storage: Storage) -> list[str]:
    """Recording directories under the storage root that have a journal but no manifest."""
    found = []
    for name in storage.listdir():
        path = storage.path(name)
        if path.is_dir() and (path / JOURNAL).is_file() and not (path / MANIFEST).exists():
            found.append(name)
    return found


def _number(name: str) -> int:
    """``segment-0003.ts`` (or ``.tail``) -> 3."""
    return int(name[len(SEGMENT_PREFIX) :].split(".")[0])


def tail_name(segment: str) -> str:
    """``segment-0003.ts`` -> ``segment-0003.tail``."""
    return segment.rsplit(".", 1)[0] + TAIL_SUFFIX


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Recovery:
    """One recording's recovery: the journal's facts against the files on disk."""

    def __init__(self, storage: Storage, directory: str, journal: JournalContents) -> None:
        self.storage = storage
        self.directory = directory
        self.head = journal.of_type(Head)[0]
        self.fps = float(self.head.fps)
        codec = self.head.codec
        if codec not in CONTAINERS:
            raise RecoveryError(
                f"{directory}: {JOURNAL}: codec {codec!r} is not one this firmware writes"
            )
        self.container, ext = CONTAINERS[codec]
        self.closed = {s.file: s for s in journal.of_type(Segment)}
        self.syncs: dict[str, list[Sync]] = {}
        for sync in journal.of_type(Sync):
            self.syncs.setdefault(sync.file, []).append(sync)
        for entries in self.syncs.values():
            entries.sort(key=lambda s: (s.bytes, s.frames))
        names = storage.listdir(directory)
        prefix = re.escape(SEGMENT_PREFIX)
        segment_re = re.compile(rf"{prefix}\d+\.{re.escape(ext)}")
        tail_re = re.compile(rf"{prefix}\d+{re.escape(TAIL_SUFFIX)}")
        self.ext = ext
        self.on_disk = {n for n in names if segment_re.fullmatch(n)}
        self.tails = {n for n in names if tail_re.fullmatch(n)}
        self.report = RecoveryInfo(skipped_journal_lines=list(journal.skipped))
        audio = self.head.audio
        self.rate = None if audio is None or audio is ABSENT else audio.rate
        self.audio_gaps = journal.of_type(AudioGap)

    def rel(self, name: str) -> str:
        return f"{self.directory}/{name}"

    def size(self, name: str) -> int:
        return self.storage.path(self.rel(name)).stat().st_size

    def segments(self) -> list[Segment]:
        """Every segment's manifest entry, after cutting the open one back."""
        numbers = {_number(n): n for n in self.on_disk}
        tail_numbers = {_number(t) for t in self.tails}
        # A tail alone (its segment was all tail) still marks which one was open.
        highest = max([*numbers, *tail_numbers], default=None)
        vouched = set(self.closed) | set(self.syncs)
        self.report.missing_segments = sorted(vouched - self.on_disk)
        entries = []
        for number in sorted(numbers):
            name = numbers[number]
            if name in self.closed or number != highest:
                entry = self.closed_segment(name)
            else:
                entry = self.open_segment(name)
            if entry is not None:
                entries.append(entry)
        for tail in sorted(self.tails):
            segment = tail[: -len(TAIL_SUFFIX)] + "." + self.ext
            if not any(t.file == tail for t in self.report.tails):
                offset = self.size(segment) if segment in self.on_disk else 0
                self.record_tail(tail, segment, offset)
        self.report.tails.sort(key=lambda t: t.file)
        return entries

    # -- the open segment ------------------------------------------------
    def open_segment(self, name: str) -> Segment | None:
        syncs = self.syncs.get(name, [])
        last = syncs[-1] if syncs else None
        synced = last.bytes if last else 0
        size = self.size(name)
        if size < synced:
            return self.described(name, None, syncs, synced, whole=False)
        if synced == 0:
            # Never synced: all of it becomes the tail (an empty one still
            # records that the segment was opened).
            needs_tail = tail_name(name) not in self.tails or size > 0
            if needs_tail and not self.cut(name, 0, size):
                return None  # left as it is; verification will name it
            self.storage.remove(self.rel(name))  # now empty: its bytes are in the tail
            self.on_disk.discard(name)
            return None
        if size > synced and not self.cut(name, synced, size):
            # The tail could not be written (card full): nothing is cut, and
            # the segment is described as it is, whole frames only.
            return self.described(name, None, syncs, synced, whole=False)
        assert last is not None
        return last.closed(_sha256(self.storage.path(self.rel(name))))

    def cut(self, name: str, offset: int, size: int) -> bool:
        """Move the bytes past ``offset`` to the segment's tail, tail first.

        A tail that exists already is from an interrupted recovery: it must
        hold exactly these bytes, or nothing is touched.
        """
        tail = tail_name(name)
        path = self.storage.path(self.rel(name))
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(size - offset)
        if tail in self.tails:
            if self.storage.read(self.rel(tail)) != data:
                raise RecoveryError(
                    f"{self.directory}: {tail} exists and differs from the {size - offset} "
                    f"bytes of {name} past its last sync; nothing changed"
                )
        else:
            try:
                self.storage.write_atomic(self.rel(tail), data)
            except OSError as exc:
                log.error("%s: cannot keep the tail of %s: %s", self.directory, name, exc)
                return False
            self.tails.add(tail)
        self.storage.truncate(self.rel(name), offset)  # offset < size: only ever shortens
        self.record_tail(tail, name, offset)
        log.warning(
            "%s/%s: %d bytes past the last sync kept in %s",
            self.directory,
            name,
            size - offset,
            tail,
        )
        return True

    def record_tail(self, tail: str, segment: str, offset: int) -> None:
        path = self.storage.path(self.rel(tail))
        self.report.tails.append(
            Tail(
                file=tail,
                segment=segment,
                offset=offset,
                bytes=path.stat().st_size,
                sha256=_sha256(path),
            )
        )

    # -- closed segments ---------------------------------------------------
    def closed_segment(self, name: str) -> Segment | None:
        record = self.closed.get(name)
        syncs = self.syncs.get(name, [])
        vouched = record.bytes if record else (syncs[-1].bytes if syncs else 0)
        if record is not None and self.size(name) >= record.bytes:
            # As the journal closed it; verification checks the bytes against its hash.
            return record
        if record is None:
            self.report.unclosed_segments.append(name)
        # A closed file at least as long as the journal knew shows no loss:
        # it ends where the writer closed it, on a whole frame.
        return self.described(name, record, syncs, vouched, whole=self.size(name) >= vouched)

    def described(
        self,
        name: str,
        record: Segment | None,
        syncs: list[Sync],
        vouched: int,
        whole: bool,
    ) -> Segment | None:
        """A segment's entry from what is on disk: its hash and its whole frames.

        ``whole``: the file is known to end on a frame boundary. Otherwise it
        does only where the journal saw a frame end; if not there, its last
        packet may be torn and is left out of the description.
        """
        path = self.storage.path(self.rel(name))
        size = path.stat().st_size
        marks: list[Sync | Segment] = [*syncs, *([record] if record else [])]
        anchor = record or (syncs[0] if syncs else None)
        short = size < vouched
        ends_on_a_frame = whole or any(m.bytes == size for m in marks)
        complete = size if ends_on_a_frame else self.last_packet_start(path)
        decoded = self.decode(path, complete)
        frames = decoded.frames
        if short:
            self.report.short_segments.append(
                ShortSegment(
                    file=name,
                    bytes=size,
                    journal_bytes=vouched,
                    journal_frames=max((m.frames for m in marks), default=0),
                    frames=len(frames),
                    complete_bytes=complete,
                )
            )
            log.warning(
                "%s/%s: %d bytes, the journal vouched for %d; kept as it is",
                self.directory,
                name,
                size,
                vouched,
            )
        if anchor is None or not frames:
            # Nothing to anchor frame numbers on, or no whole frame: keep
            # every byte as a tail, listed, rather than describe it wrongly.
            if self.cut(name, 0, size):
                self.storage.remove(self.rel(name))  # now empty: its bytes are in the tail
                self.on_disk.discard(name)
            return None
        n = len(frames)
        # The last journaled frame count the decoded pictures reach (else the
        # first frame): later frames are numbered and timed from it.
        base = max((m for m in marks if 1 <= m.frames <= n), key=lambda m: m.frames, default=None)
        base_frames, base_last, base_end = (
            (base.frames, base.last_frame, base.end_time)
            if base is not None
            else (1, anchor.first_frame, anchor.start_time)
        )
        t_last, t_base = frames[-1].seconds, frames[base_frames - 1].seconds
        delta = (
            t_last - t_base
            if t_last is not None and t_base is not None
            else (n - base_frames) / self.fps
        )
        first_seconds = frames[0].seconds
        origin = None if first_seconds is None else anchor.start_time - first_seconds
        return Segment(
            file=name,
            sha256=_sha256(path),
            bytes=size,
            frames=n,
            first_frame=anchor.first_frame,
            last_frame=base_last + round(delta * self.fps),
            start_time=r6(anchor.start_time),
            end_time=r6(base_end + delta),
            audio=self.described_audio(marks, decoded.audio, origin),
        )

    def described_audio(
        self, marks: list[Sync | Segment], heard: DecodedAudio | None, origin: float | None
    ) -> AudioSpan | None:
        """The audio a described segment holds: the packets that demux from its whole bytes.

        Numbered on from the latest mark whose packets they reach: each
        further packet follows the one before, across a gap the journal
        declared there, and is one AAC frame long unless a declared gap
        starts sooner (a run's last packet is short). Device times come from
        the packets' timestamps (``origin``: the recording's first frame).
        """
        if self.rate is None or heard is None or heard.packets == 0:
            return None
        n, rate = heard.packets, self.rate
        spans = [m.audio for m in marks if m.audio is not None]
        base = max((a for a in spans if a.packets <= n), key=lambda a: a.packets, default=None)
        if base is not None and base.packets == n:
            return base
        stamps = heard.times
        if spans:  # every mark of a segment counts from its first packet
            first_sample, start_time = spans[0].first_sample, spans[0].start_time
        elif origin is not None and stamps[0] is not None:
            start_time = r6(origin + stamps[0])
            first_sample = round(start_time * rate)  # sample n is nominally at n / rate
        else:
            return None  # nothing to number the packets from
        gaps = {g.first_sample: g for g in self.audio_gaps}
        end, done = (base.end_sample, base.packets) if base is not None else (first_sample, 0)
        start = end
        for i in range(done, n):
            start = end
            if i > 0 and (gap := gaps.get(start)) is not None:
                start += gap.samples
            cut = [g for g in gaps if start < g < start + FRAME_SAMPLES]
            end = min(cut, default=start + FRAME_SAMPLES)
        last = stamps[-1]
        if origin is not None and last is not None:
            end_time = r6(origin + last + (end - start) / rate)
        else:
            end_time = r6(start_time + (end - first_sample) / rate)
        return AudioSpan(
            packets=n,
            first_sample=first_sample,
            end_sample=end,
            start_time=start_time,
            end_time=end_time,
        )

    def decode(self, path: Path, end: int) -> Decoded:
        try:
            with open_regular(path) as f:
                return decode_file(Prefix(f, end), self.container)
        except (Unreadable, OSError):
            return Decoded()

    def last_packet_start(self, path: Path) -> int:
        """Where the file's last video packet begins: the bytes before it hold whole frames."""
        start = 0
        try:
            with av.open(str(path), format=self.container) as container:
                for packet in container.demux(video=0):
                    if packet.size and packet.pos is not None and packet.pos >= 0:
                        start = packet.pos
        except Exception:  # damaged input: whatever was found so far stands
            pass
        return start


def recover_recording(
    storage: Storage,
    directory: str,
    stop: Stop | None = None,
    custody: Custody | None = None,
) -> dict[str, Any]:
    """Rebuild ``directory``'s manifest from its journal; returns the manifest's JSON.

    With the device's ``custody`` the rebuilt manifest is signed and chained
    like any other (its ``recovery`` entry says it was rebuilt); without it
    (``bodycam recover`` on a machine that is not the camera) it is written
    unsigned, and ``verify`` says so.
    """
    journal = read_journal_lines(storage.path(f"{directory}/{JOURNAL}"))
    for line in journal.skipped:
        log.warning("%s/%s line %d skipped: %s", directory, JOURNAL, line, journal.why[line])
    if not journal.of_type(Head):
        skipped = (
            f" (unreadable lines: {', '.join(map(str, journal.skipped))})"
            if journal.skipped
            else ""
        )
        raise RecoveryError(
            f"{directory}: {JOURNAL} has no readable head record{skipped}; "
            "cannot rebuild, nothing changed"
        )
    for name in storage.listdir(directory):
        if name.startswith(".") and name.endswith(".tmp"):
            storage.remove(f"{directory}/{name}")  # a half-written manifest or tail: not evidence
    work = _Recovery(storage, directory, journal)
    segments = work.segments()
    if stop is None:
        stops = journal.of_type(Stop)
        end = segments[-1].end_time if segments else work.head.trigger.time
        stop = stops[-1] if stops else Stop(reason=StopReason.POWER_LOSS, time=r6(end))
    manifest = Manifest.build(
        work.head,
        segments,
        stop,
        journal.of_type(Marker),
        journal.of_type(Gap),
        journal.of_type(WallStep),
        recovery=work.report,
        audio_gaps=work.audio_gaps,
        track=ABSENT if work.head.trigger.position is ABSENT else journal.track(),
    )
    if custody is not None:
        return custody.write(storage, directory, manifest)
    write_manifest(storage, directory, manifest)
    return manifest.to_json()


def recover_storage(storage: Storage, custody: Custody | None = None) -> list[dict[str, Any]]:
    """Recover every interrupted recording; one bad one does not stop the rest."""
    recovered = []
    for name in interrupted(storage):
        try:
            recovered.append(recover_recording(storage, name, custody=custody))
            log.warning("%s: recovered after interruption", name)
        except (RecoveryError, OSError, KeyError, TypeError, ValueError) as exc:
            log.error("%s: cannot recover: %s", name, exc)
    return recovered
