"""The recorder with sound: where it starts, gaps, the manifest's audio, and recovery.

The recorder is driven directly on the virtual clock (no firmware): real
H.264 or MJPEG frames, and AAC packets from :class:`AACEncoder` fed by the
simulated microphone's scene, delivered one block late as a sound card
would. What the manifest says is checked against what PyAV reads back from
the segment files, packet by packet: each demuxed packet is found among the
ones the encoder made (by its bytes), so its sample numbers are known.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import io
import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from camera.audio_ring import AudioRing
from camera.encoders.aac import AACEncoder
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder
from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL, MANIFEST, Timing
from camera.evidence.verify import FORMAT_OF_SUFFIX, verify_recording
from camera.frames import EncodedAudio, EncodedFrame
from camera.recorder import Recorder, VideoFormat
from camera.recovery import recover_recording
from camera.ring import RingBuffer
from camera.segments import CONTAINERS, PTS_HZ, AudioFormat
from hal.storage.local import LocalStorage
from sim.audio import AudioScene
from sim.clock import VirtualClock
from sim.scene import SyntheticScene
from sim.storage import SimStorage
from sim.worker import VirtualWorker

W, H, FPS = 512, 288, 30
RATE, BLOCK = 48_000, 1024
#: The run: frames and sound from boot; a trigger whose first edge is at T,
#: recognised LATE seconds later; segments of 2 s.
T, LATE, SECONDS = 3.0, 0.4, 8.0
PRE_EVENT = 2.0


@functools.cache
def video(codec: str) -> tuple[EncodedFrame, ...]:
    """The run's frames, encoded once per codec (frame n at n / FPS)."""
    scene = SyntheticScene(W, H, 0)
    enc = (
        MJPEGEncoder(quality=60)
        if codec == "mjpeg"
        else H264Encoder(W, H, FPS, bitrate=600_000, gop=FPS)
    )
    frames: list[EncodedFrame] = []
    for n in range(round(SECONDS * FPS)):
        frames += enc.encode(scene.render(n, n / FPS), n, n / FPS)
    return tuple(frames + enc.flush())


class Rig:
    """A recorder on the virtual clock, fed frames and microphone blocks as the firmware does."""

    def __init__(
        self,
        root: Path,
        *,
        codec: str = "h264",
        pre_event_audio: bool = False,
        mic: Callable[[int], bool] = lambda block: True,
        queue_bytes: int = 50_000_000,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.clock = VirtualClock()
        self.storage = SimStorage(root)
        self.worker = VirtualWorker(self.clock, self.storage)
        self.ring = RingBuffer(50_000_000, 10.0, 1000)
        self.audio_ring = AudioRing(2_000_000, 10.0)
        self.finished: list[dict[str, Any]] = []
        self.recorder = Recorder(
            self.clock,
            self.storage,
            self.worker,
            self.ring,
            VideoFormat(codec, W, H, FPS, timing=Timing.EXACT),
            device_id="T",
            pre_event=PRE_EVENT,
            segment_seconds=2.0,
            queue_bytes=queue_bytes,
            on_finished=self.finished.append,
            audio=AudioFormat(),
            audio_ring=self.audio_ring,
            audio_pre_event=pre_event_audio,
            audio_source="synthetic",
        )
        self.encoder = AACEncoder()
        self.scene = AudioScene(RATE, 1, BLOCK, seed=3)
        #: Every packet the encoder made, in order.
        self.made: list[EncodedAudio] = []
        for frame in video(codec):
            self.clock.call_at(frame.time, lambda f=frame: self._frame(f))
        for k in range(int(SECONDS * RATE / BLOCK)):
            if mic(k):  # block k is delivered when its last sample is in
                self.clock.call_at((k + 1) * BLOCK / RATE, lambda k=k: self._block(k))

    def _frame(self, frame: EncodedFrame) -> None:
        self.ring.append(frame)
        self.recorder.on_frame(frame)

    def _block(self, k: int) -> None:
        self._packets(self.encoder.encode(self.scene.render(k), k * BLOCK, k * BLOCK / RATE))

    def _packets(self, packets: list[EncodedAudio]) -> None:
        for p in packets:
            self.made.append(p)
            self.audio_ring.append(p)
            self.recorder.on_audio(p)

    def record(self, stop: float, trigger: float = T) -> None:
        """Trigger (first edge at ``trigger``, recognised LATE after it), run to ``stop``."""
        self.clock.call_at(trigger + LATE, lambda: self.recorder.start("console", trigger))
        self.clock.run(until=stop)

    def stop(self) -> dict[str, Any]:
        """End of run: the encoder's last packets first, as the firmware's shutdown does."""
        self._packets(self.encoder.flush())
        self.recorder.stop("end_of_run", self.clock.now())
        self.worker.drain()
        [m] = self.finished
        return m

    @property
    def directory(self) -> Path:
        [rec] = [p for p in Path(self.storage.root).iterdir() if p.is_dir()]
        return rec


@dataclass
class Heard:
    """One segment's packets as PyAV reads them back, in file order."""

    audio: list[tuple[float, EncodedAudio]]  # (container seconds, the packet it is)
    #: Container seconds of each video packet and of each audio packet, in file order.
    order: list[tuple[str, float]]


def read_back(path: Path, made: list[EncodedAudio], origin: float, end: int | None = None) -> Heard:
    """Demux ``path`` (its first ``end`` bytes); name each audio packet by its time and bytes.

    ``origin``: the recording's first frame, whose device time is timestamp 0.
    """
    fmt = FORMAT_OF_SUFFIX.get(path.suffix, "mpegts")
    data = path.read_bytes()[:end]
    times = [p.time for p in made]  # quiet stretches repeat bytes: find by time first
    heard: list[tuple[float, EncodedAudio]] = []
    order: list[tuple[str, float]] = []
    with av.open(io.BytesIO(data), format=fmt) as c:
        for p in c.demux():
            if not p.size or p.pts is None:
                continue
            seconds = float(p.pts * p.time_base)
            order.append((p.stream.type, seconds))
            if p.stream.type != "audio":
                continue
            t = origin + seconds
            i = bisect.bisect_left(times, t)
            packet = min(made[max(0, i - 1) : i + 1], key=lambda q: abs(q.time - t))
            body = bytes(p)[7:] if fmt == "mpegts" else bytes(p)  # MPEG-TS: its ADTS header
            assert body == packet.data
            heard.append((seconds, packet))
    return Heard(heard, order)


def tick(fmt: str) -> float:
    return 1 / PTS_HZ if fmt == "mpegts" else 1e-3  # Matroska keeps milliseconds


def assert_manifest_matches_files(
    rec: Path, m: dict[str, Any], made: list[EncodedAudio], ends: dict[str, int] | None = None
) -> list[EncodedAudio]:
    """Each segment's ``audio`` is exactly the packets PyAV finds in it, and the block their sum.

    Returns the packets found, in order, all segments together.
    """
    fmt = CONTAINERS[m["codec"]][0]
    origin = m["start_time"]
    found: list[EncodedAudio] = []
    for seg in m["segments"]:
        heard = read_back(rec / seg["file"], made, origin, (ends or {}).get(seg["file"]))
        span = seg.get("audio")
        if not heard.audio:
            assert span is None, seg["file"]
            continue
        assert span is not None, seg["file"]
        (t0, first), (t1, last) = heard.audio[0], heard.audio[-1]
        assert span["packets"] == len(heard.audio)
        assert (span["first_sample"], span["end_sample"]) == (first.first_sample, last.end_sample)
        assert span["start_time"] == pytest.approx(origin + t0, abs=tick(fmt))
        assert span["end_time"] == pytest.approx(origin + t1 + last.samples / RATE, abs=tick(fmt))
        found += [p for _, p in heard.audio]
    a = m["audio"]
    assert a["packets"] == len(found)
    assert a["samples"] == sum(p.samples for p in found)
    if found:
        assert a["first_time"] == pytest.approx(found[0].time, abs=1e-6)
        assert a["end_time"] == pytest.approx(found[-1].time + found[-1].samples / RATE, abs=1e-6)
    # Between consecutive packets, samples follow on except where a gap is declared.
    gaps = {(g["first_sample"], g["samples"]) for g in a["gaps"]}
    for before, after in itertools.pairwise(found):
        if after.first_sample != before.end_sample:
            assert (before.end_sample, after.first_sample - before.end_sample) in gaps
    return found


# -- where the sound starts ---------------------------------------------------------
@pytest.mark.parametrize("pre_event_audio", [False, True], ids=["from_trigger", "pre_event"])
def test_sound_starts_at_the_trigger_or_with_the_pre_event(
    tmp_path: Path, pre_event_audio: bool
) -> None:
    rig = Rig(tmp_path, pre_event_audio=pre_event_audio)
    rig.record(stop=7.0)
    m = rig.stop()
    rec = rig.directory
    assert m["first_frame"] == round((T - PRE_EVENT) * FPS)
    a = m["audio"]
    start = m["start_time"] if pre_event_audio else T
    assert {k: a[k] for k in ("codec", "rate", "channels", "bitrate", "source", "pre_event")} == {
        "codec": "aac",
        "rate": RATE,
        "channels": 1,
        "bitrate": 64_000,
        "source": "synthetic",
        "pre_event": pre_event_audio,
    }
    assert a["start_time"] == start
    # The first packet whose first sample is at or after the start: within one AAC frame of it.
    assert start <= a["first_time"] < start + BLOCK / RATE
    found = assert_manifest_matches_files(rec, m, rig.made)
    assert a["gaps"] == []
    # Everything the encoder made from the start until the stop is there, once, in order.
    assert found == [p for p in rig.made if p.time >= start]
    assert a["end_time"] == pytest.approx(7.0, abs=BLOCK / RATE)
    # The journal head carries the static part; every segment closed with its audio.
    [head] = read_journal_lines(rec / JOURNAL).of("head")
    assert head["audio"] == {k: a[k] for k in head["audio"]}
    closed = read_journal_lines(rec / JOURNAL).of("segment")
    assert [s.get("audio") for s in closed] == [s.get("audio") for s in m["segments"]]
    report = verify_recording(rec)
    assert report.ok, report.problems


def test_pre_event_sound_is_interleaved_with_its_pictures(tmp_path: Path) -> None:
    """Written in the same writes as the pre-event frames: in the file, no sound sits
    behind pictures taken long after it (separate writes would put seconds between)."""
    rig = Rig(tmp_path, pre_event_audio=True)
    rig.record(stop=5.0)
    m = rig.stop()
    first = m["segments"][0]
    heard = read_back(rig.directory / first["file"], rig.made, m["start_time"])
    assert len(heard.audio) > 80  # the 2 s of the first segment, all pre-event
    latest_video = -1.0
    for kind, seconds in heard.order:
        if kind == "video":
            latest_video = max(latest_video, seconds)
        else:
            assert latest_video - seconds < 0.1, (seconds, latest_video)


@pytest.mark.parametrize("short", [0, 1], ids=["fits", "one_byte_short"])
def test_pre_event_sound_counts_against_the_backlog_bound(tmp_path: Path, short: int) -> None:
    """The copy is frames and sound together: a bound one byte short of both gives up a GOP."""
    rig = Rig(tmp_path, pre_event_audio=True)
    rig.storage.stall(0.0, 1e6)  # nothing finishes: every byte queued stays counted
    rig.clock.run(until=T + LATE)
    frames = rig.ring.frames_from(T - PRE_EVENT)
    sound = rig.audio_ring.packets_from(frames[0].time)
    total = sum(f.size for f in frames) + sum(p.size for p in sound)
    rig.recorder.queue_bytes = total - short
    rec = rig.recorder.start("console", T)
    assert rec is not None
    if short:
        assert rec.pre_event_dropped is not None and rec.first.number == frames[FPS].number
        assert rig.worker.queued_bytes < total
    else:
        assert rec.pre_event_dropped is None and rec.first.number == frames[0].number
        assert rig.worker.queued_bytes == total


# -- gaps ---------------------------------------------------------------------------
def blocks(start: float, end: float) -> range:
    """The microphone blocks whose first sample lies in [start, end) seconds."""
    return range(round(start * RATE / BLOCK), round(end * RATE / BLOCK))


@pytest.mark.parametrize("lost_at", [2.0, 4.5], ids=["in_pre_event", "live"])
def test_a_jump_in_sample_numbers_is_a_declared_gap(tmp_path: Path, lost_at: float) -> None:
    lost = blocks(lost_at, lost_at + 0.3)
    rig = Rig(tmp_path, pre_event_audio=True, mic=lambda k: k not in lost)
    rig.record(stop=6.0)
    m = rig.stop()
    [gap] = m["audio"]["gaps"]
    # The encoder ends the run where its samples end and restarts at the first new
    # sample (its priming packet dropped: no invented sound inside the gap).
    ended = max(p.end_sample for p in rig.made if p.first_sample < lost.start * BLOCK)
    resumed = min(p.first_sample for p in rig.made if p.first_sample >= lost.start * BLOCK)
    assert gap == {
        "start": round(ended / RATE, 6),
        "end": round(resumed / RATE, 6),
        "first_sample": ended,
        "samples": resumed - ended,
        "cause": "microphone",
    }
    assert resumed - ended == len(lost) * BLOCK  # exactly the lost blocks
    assert_manifest_matches_files(rig.directory, m, rig.made)
    # Journaled, so recovery keeps it.
    assert read_journal_lines(rig.directory / JOURNAL).of("audio_gap") == [gap]
    report = verify_recording(rig.directory)
    assert report.ok, report.problems


def test_a_silent_microphone_is_one_gap_over_the_whole_recording(tmp_path: Path) -> None:
    rig = Rig(tmp_path, mic=lambda k: False)
    rig.record(stop=6.0)
    m = rig.stop()
    a = m["audio"]
    assert (a["packets"], a["samples"], a["first_time"], a["end_time"]) == (0, 0, None, None)
    assert a["gaps"] == [
        {
            "start": T,
            "end": 6.0,
            "first_sample": round(T * RATE),
            "samples": round((6.0 - T) * RATE),
            "cause": "microphone",
        }
    ]
    assert all("audio" not in s for s in m["segments"])
    with av.open(str(rig.directory / m["segments"][0]["file"])) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]  # the stream is there, empty
    assert read_journal_lines(rig.directory / JOURNAL).of("audio_gap") == a["gaps"]


def test_sound_dropped_for_the_writer_backlog_is_declared(tmp_path: Path) -> None:
    """A stalled card: frames are dropped to the next keyframe, and sound with them."""
    rig = Rig(tmp_path, queue_bytes=100_000)
    rig.storage.stall(4.0, 6.0)
    rig.record(stop=7.5)
    m = rig.stop()
    assert [g["cause"] for g in m["gaps"]] == ["writer_backlog"]
    audio_gaps = m["audio"]["gaps"]
    assert [g["cause"] for g in audio_gaps] == ["writer_backlog"]
    [frames], [sound] = m["gaps"], audio_gaps
    # Sound is dropped while frames are: the packets that come in meanwhile, which
    # are the encoder's latency (two AAC frames) older than the pictures.
    lag = 2 * BLOCK / RATE
    assert sound["start"] == pytest.approx(frames["start"] - lag, abs=2 / FPS)
    assert sound["end"] == pytest.approx(frames["end"] - lag, abs=2 / FPS)
    assert_manifest_matches_files(rig.directory, m, rig.made)
    report = verify_recording(rig.directory)
    assert report.ok, report.problems


# -- recovery -----------------------------------------------------------------------
@pytest.mark.parametrize("codec", list(CONTAINERS))
@pytest.mark.parametrize("cut_at", [4.45, 5.8, 6.37])
def test_power_loss_recovers_sound_that_matches_the_cut_files(
    tmp_path: Path, codec: str, cut_at: float
) -> None:
    """Abandoned mid-recording with unsynced bytes: the open segment is cut back to its last
    sync, and its audio with it. Every packet it held is either counted or in its tail."""
    rig = Rig(tmp_path / "store", codec=codec, pre_event_audio=True)
    rig.record(stop=cut_at)
    rec = rig.directory
    before = {p.name: p.read_bytes() for p in rec.glob("segment-*")}
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert m["stop"]["reason"] == "power_loss"
    found = assert_manifest_matches_files(rec, m, rig.made)
    assert found == [p for p in rig.made if p.time >= m["audio"]["start_time"]][: len(found)]
    [tail] = m["recovery"]["tails"]
    name = tail["segment"]
    assert (rec / name).read_bytes() + (rec / tail["file"]).read_bytes() == before[name]
    # What the whole open segment held = what the manifest counts + what went to the tail.
    whole = (rec.parent / "whole").with_suffix(Path(name).suffix)
    whole.write_bytes(before[name])
    held = read_back(whole, rig.made, m["start_time"])
    counted = read_back(rec / name, rig.made, m["start_time"])
    assert held.audio[: len(counted.audio)] == counted.audio
    [entry] = [s for s in m["segments"] if s["file"] == name]
    assert entry["audio"]["packets"] == len(counted.audio)
    # The sound after the last picture the cut file keeps went to the tail with it.
    last_picture = max(s for kind, s in counted.order if kind == "video")
    after = [s for s, _ in held.audio[len(counted.audio) :]]
    assert after and min(after) > last_picture - 0.1
    report = verify_recording(rec)
    assert report.ok, report.problems


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_pulled_battery_leaves_exactly_the_counted_sound(tmp_path: Path, codec: str) -> None:
    """Every file back to its last fsync (no tail): the counts are those of the files."""
    rig = Rig(tmp_path / "store", codec=codec)
    rig.record(stop=5.8)
    rig.storage.power_cut()
    rec = rig.directory
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert m["recovery"]["tails"] == []
    found = assert_manifest_matches_files(rec, m, rig.made)
    assert found == [p for p in rig.made if p.time >= T][: len(found)]
    assert m["segments"][-1]["audio"]["packets"] > 0


def test_recovery_after_a_stop_keeps_the_same_audio_block(tmp_path: Path) -> None:
    """A manifest rebuilt from the journal of a stopped recording says the same about sound."""
    lost = blocks(4.5, 4.8)
    rig = Rig(tmp_path / "store", mic=lambda k: k not in lost)
    rig.record(stop=6.0)
    m = rig.stop()
    copy = tmp_path / "copy"
    shutil.copytree(rig.directory, copy / rig.directory.name)
    (copy / rig.directory.name / MANIFEST).unlink()
    again = recover_recording(LocalStorage(copy), rig.directory.name)
    assert again["audio"] == m["audio"]
    assert again["segments"] == m["segments"]


def test_a_lost_segment_record_is_described_with_its_audio(tmp_path: Path) -> None:
    """The closed record of a segment with a gap in it lost: its audio is counted from the
    file, numbered on from its last sync across the journaled gap."""
    lost = blocks(4.86, 4.92)  # in segment-0001 ([3.0, 5.0)), after its last sync (4.9)
    rig = Rig(tmp_path / "store", pre_event_audio=True, mic=lambda k: k not in lost)
    rig.record(stop=6.0)
    m = rig.stop()
    rec = rig.directory
    [gap] = m["audio"]["gaps"]
    syncs = [s for s in read_journal_lines(rec / JOURNAL).of("sync") if "0001" in s["file"]]
    assert syncs[-1]["audio"]["end_sample"] < gap["first_sample"]  # numbered across it
    lines = (rec / JOURNAL).read_text().splitlines()
    kept = [line for line in lines if '"segment": {"file": "segment-0001' not in line]
    assert len(kept) == len(lines) - 1
    (rec / JOURNAL).write_text("".join(line + "\n" for line in kept))
    (rec / MANIFEST).unlink()
    again = recover_recording(LocalStorage(rec.parent), rec.name)
    assert again["recovery"]["unclosed_segments"] == ["segment-0001.ts"]
    # Its packet hashes were in the lost record: recovery does not invent them.
    closed = dict(m["segments"][1]["audio"])
    assert len(closed.pop("packet_sha256")) == closed["packets"]
    assert again["segments"][1]["audio"] == closed
    assert again["audio"] == m["audio"]


# -- reproducibility ------------------------------------------------------------------
def test_simulated_runs_with_sound_are_byte_identical(tmp_path: Path) -> None:
    lost = blocks(4.5, 4.8)
    digests = []
    for run in ("a", "b"):
        rig = Rig(tmp_path / run, pre_event_audio=True, mic=lambda k: k not in lost)
        rig.record(stop=6.0)
        rig.stop()
        files = sorted(rig.directory.iterdir())
        assert any(f.suffix == ".ts" for f in files)
        digests.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files})
    assert digests[0] == digests[1]
    manifest = json.loads((tmp_path / "a" / rig.directory.name / MANIFEST).read_text())
    assert manifest["audio"]["packets"] > 0 and manifest["audio"]["gaps"]
