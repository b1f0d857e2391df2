"""The recorder and capture path: gaps by cause, what a sync vouches for, timestamps, memory.

Each test goes through the firmware (or the scenario runner) where it can and
decodes what was written, frame by frame, with camera/evidence/verify/.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.config import load_config
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder
from camera.evidence.journal import read_journal
from camera.evidence.keys import test_key
from camera.evidence.records import JOURNAL, MANIFEST
from camera.evidence.verify import FORMAT_OF_SUFFIX, decode_file, verify_recording
from camera.firmware import Firmware
from camera.frames import EncodedFrame
from camera.recorder import Recorder, VideoFormat
from camera.ring import RingBuffer
from camera.segments import CONTAINERS, HELD_BACK, PTS_HZ, SegmentFile
from hal.board import Hal
from hal.clock import Callback
from hal.sensor import FrameCallback, Sensor
from hal.storage import Storage
from hal.worker import Done, Task, Worker
from sim.clock import VirtualClock
from sim.device import SimDevice
from sim.gpio import MockGpio
from sim.runner import run_scenario
from sim.scenario import parse_scenario
from sim.scene import SyntheticScene
from sim.storage import SimStorage
from sim.worker import VirtualWorker
from tests.conftest import make_device

FPS = 30
SMALL = {"width": 640, "height": 360, "fps": FPS, "bitrate": 1_500_000, "gop": 30}


def scenario(name: str, config: dict[str, Any], events: list, faults: list, duration: float):
    return parse_scenario(
        {
            "scenario": {"name": name, "duration": duration},
            "config": config,
            "event": events,
            "fault": faults,
        },
        source=f"<{name}>",
    )


def assert_verifies(rec: Path, m: dict[str, Any]) -> None:
    """verify passes and decodes every frame the manifest claims, and no other."""
    report = verify_recording(rec)
    assert report.ok, report.problems
    lost = {g["first_frame"] + i for g in m["gaps"] for i in range(g["frames"])}
    assert report.codes == [
        n for n in range(m["first_frame"], m["last_frame"] + 1) if n not in lost
    ]


# -- 4: a camera gap inside the pre-event window --------------------------------
@pytest.mark.parametrize("cut", [False, True], ids=["stopped", "power_loss"])
def test_camera_gap_in_pre_event_is_declared_and_survives_recovery(
    tmp_path: Path, cut: bool
) -> None:
    faults: list[dict[str, Any]] = [{"at": 4.0, "kind": "camera_disconnect", "duration": 1.0}]
    if cut:
        faults.append({"at": 8.6, "kind": "power_loss"})
    scn = scenario(
        "pre-event-gap",
        {"video": SMALL, "buffer": {"pre_event": 5.0}},
        [{"at": 7.0, "input": "holster", "action": "activate"}],
        faults,
        duration=9.0,
    )
    [m] = run_scenario(scn, tmp_path).recordings
    assert m["stop"]["reason"] == ("power_loss" if cut else "end_of_run")
    assert m["first_frame"] == 60  # keyframe at 2.0 = 7.0 - 5.0
    assert m["gaps"] == [
        {"start": 4.0, "end": 4.966667, "first_frame": 120, "frames": 30, "cause": "camera"}
    ]
    assert m["dropped_frames"] == 0  # never captured: not dropped by the firmware
    rec = tmp_path / m["recording_id"]
    journaled = [p for kind, p in read_journal(rec / JOURNAL) if kind == "gap"]
    assert journaled == m["gaps"]
    assert_verifies(rec, m)


# -- 5: what a sync record vouches for -------------------------------------------
def encoded(codec: str, count: int, gop: int = 5) -> list[EncodedFrame]:
    scene = SyntheticScene(640, 360, 0)
    enc = (
        MJPEGEncoder(quality=70)
        if codec == "mjpeg"
        else H264Encoder(640, 360, FPS, bitrate=1_500_000, gop=gop)
    )
    frames: list[EncodedFrame] = []
    for n in range(count):
        frames += enc.encode(scene.render(n, n / FPS), n, n / FPS)
    return frames + enc.flush()


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_sync_progress_claims_only_frames_on_disk(tmp_path: Path, codec: str) -> None:
    """After every frame, a file cut to progress()'s bytes decodes to exactly its frames.

    Pins ``HELD_BACK`` to the FFmpeg in use: if a muxer starts holding more
    (or fewer) packets back, this fails before a recovery overclaims.
    """
    storage = SimStorage(tmp_path)
    storage.makedirs("rec")
    seg = SegmentFile(storage, "rec/segment-0000.x", codec, 640, 360, FPS, origin=0.0)
    fmt = CONTAINERS[codec][0]
    path = storage.path("rec/segment-0000.x")
    frames = encoded(codec, 8)
    claims = []
    for frame in frames:
        seg.add(frame)
        seg.sync()
        claims.append(seg.progress())
        progress = claims[-1]
        data = path.read_bytes()
        cut = tmp_path / "cut"
        cut.write_bytes(data[: progress.bytes] if progress else b"")
        with cut.open("rb") as f:
            decoded = decode_file(f, fmt)
        codes = [d.code for d in decoded.frames]
        if progress is None:
            assert codes == []
            continue
        assert codes == list(range(progress.first_frame, progress.last_frame + 1))
        assert progress.frames == len(codes)
        assert progress.end_time == frames[codes[-1]].time
    assert sum(c is None for c in claims) == HELD_BACK[fmt]
    seg.close()


def test_mjpeg_recording_cut_at_a_sync_decodes_exactly_what_it_claims(tmp_path: Path) -> None:
    scn = scenario(
        "mjpeg-cut",
        {
            "video": {"width": 640, "height": 360, "fps": FPS, "codec": "mjpeg", "quality": 70},
            "buffer": {"pre_event": 2.0},
            "recording": {"segment_seconds": 2.0},
        },
        [{"at": 4.0, "input": "holster", "action": "activate"}],
        [{"at": 7.3, "kind": "power_loss"}],
        duration=8.0,
    )
    [m] = run_scenario(scn, tmp_path).recordings
    assert m["stop"]["reason"] == "power_loss"
    assert m["segments"][-1]["file"].endswith(".mkv")
    assert m["first_frame"] == 60
    assert 7.3 - m["end_time"] <= 0.5 + 2 / FPS  # a sync every 0.5 s, one frame held back
    assert_verifies(tmp_path / m["recording_id"], m)


# -- 6: timestamps from the recording's first frame ------------------------------
MPEGTS_WRAP_SECONDS = (1 << 33) / PTS_HZ  # 95,443.7 s of uptime


def test_recording_across_the_mpegts_wrap_verifies(tmp_path: Path) -> None:
    """A camera up for 26.5 h: the clock is run forward before boot, no video rendered."""
    config = load_config(None, {"video": SMALL, "buffer": {"pre_event": 2.0}})
    dev = SimDevice(config, tmp_path / "store")
    boot = MPEGTS_WRAP_SECONDS - 4.0
    dev.clock.run(until=boot)
    dev.boot()
    dev.set_input(boot + 3.0, "holster", True)
    dev.run(until=boot + 6.0)
    [m] = dev.shutdown()
    assert m["start_time"] < MPEGTS_WRAP_SECONDS < m["end_time"]
    assert m["first_frame"] == round(m["start_time"] * FPS) > 2_800_000
    rec = dev.hal.storage.root / m["recording_id"]
    assert_verifies(rec, m)
    # Device time of a frame is start_time plus its timestamp, from 0.
    with av.open(str(rec / m["segments"][0]["file"])) as c:
        first = next(p for p in c.demux(c.streams.video[0]) if p.size)
        assert first.pts == 0


class Sink:
    """Write-only, like the recorder's HashingFile (Matroska then never seeks back)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def write(self, data: bytes) -> int:
        return self.f.write(data)

    def flush(self) -> None:
        return None


def rewrite_pts(rec: Path, shift: Callable[[int], int]) -> None:
    """Remux every segment with its timestamps shifted, and re-vouch for the bytes."""
    m = json.loads((rec / MANIFEST).read_text())
    for seg in m["segments"]:
        path = rec / seg["file"]
        fmt = FORMAT_OF_SUFFIX[path.suffix]
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            packets = [
                (bytes(p), round(p.pts * p.time_base * PTS_HZ), p.is_keyframe)
                for p in c.demux(s)
                if p.size
            ]
        mux = {"format": fmt, "options": {"flush_packets": "1"}}
        with path.open("wb") as f, av.open(Sink(f), "w", **mux) as out:
            stream = out.add_mux_stream(m["codec"], rate=FPS, width=m["width"], height=m["height"])
            stream.time_base = Fraction(1, PTS_HZ)
            for data, pts, key in packets:
                packet = av.Packet(data)
                packet.pts = packet.dts = shift(pts)
                packet.time_base = Fraction(1, PTS_HZ)
                packet.duration = PTS_HZ // FPS
                packet.is_keyframe = key
                packet.stream = stream
                out.mux(packet)
        body = path.read_bytes()
        seg.update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    (rec / MANIFEST).write_text(json.dumps(m, indent=2) + "\n")


@pytest.mark.parametrize("codec", list(CONTAINERS))
def test_verify_accepts_timestamps_from_boot_and_nothing_else(tmp_path: Path, codec: str) -> None:
    """Older recordings counted timestamps from boot: they still verify; another offset does not."""
    # rewrite_pts remuxes the pictures only: a recording without sound.
    config = {"video": {"codec": codec}, "buffer": {"pre_event": 1.0}, "audio": {"enabled": False}}
    dev = make_device(tmp_path, config)
    dev.set_input(4.0, "holster", True)
    dev.run(until=6.0)
    [m] = dev.shutdown()
    rec = dev.hal.storage.root / m["recording_id"]
    assert_verifies(rec, m)
    start = round(m["start_time"] * PTS_HZ)
    old = tmp_path / "old"
    shutil.copytree(rec, old)
    rewrite_pts(old, lambda pts: pts + start)  # as the firmware wrote them before
    assert_verifies(old, m)
    off = tmp_path / "off"
    shutil.copytree(rec, off)
    rewrite_pts(off, lambda pts: pts + start + PTS_HZ // 2)  # half a second late
    problems = verify_recording(off).problems
    assert any("first picture at" in p and "start_time" in p for p in problems), problems


# -- 7: one bound on everything queued for storage -------------------------------
class QueueGauge:
    """Counts, independently of the code under test, the bytes queued on a worker."""

    def __init__(self, worker: Worker) -> None:
        self.queued = 0
        self.peak = 0
        real = worker.submit

        def submit(task: Task, nbytes: int = 0, on_done: Done | None = None) -> None:
            self.queued += nbytes
            self.peak = max(self.peak, self.queued)

            def counted() -> None:
                try:
                    task()
                finally:
                    self.queued -= nbytes

            real(counted, nbytes, on_done)

        worker.submit = submit  # type: ignore[method-assign]


def test_trigger_stop_storm_during_a_stall_stays_within_queue_mb(tmp_path: Path) -> None:
    queue_mb = 1.0
    dev = make_device(tmp_path, {"buffer": {"pre_event": 3.0, "queue_mb": queue_mb}})
    gauge = QueueGauge(dev.hal.worker)
    dev.storage.stall(5.0, 14.0)
    fw = dev.firmware
    for k in range(200):  # a console sending TRIGGER, STOP 100 times a second
        t = 6.0 + k * 0.01
        dev.clock.call_at(t, lambda t=t: fw.trigger("console", t))
        dev.clock.call_at(t + 0.005, lambda t=t: fw.stop_recording("console", t + 0.005))
    dev.run(until=16.0)
    recs = dev.shutdown()

    bound = int(queue_mb * 1_000_000)
    assert gauge.peak <= bound
    assert gauge.peak > bound // 2  # the stall really filled the backlog
    assert dev.hal.worker.peak_queued_bytes == gauge.peak
    refused = [e for e in fw.events if e["kind"] == "refused"]
    assert refused and all(e["reason"] == "writer backlog" for e in refused)
    assert len(recs) + len(refused) == 200
    first, *rest = recs
    assert first["pre_event_dropped"] is None and first["first_frame"] == 90  # 6.0 - 3.0
    cut = [m for m in rest if m["pre_event_dropped"] is not None]
    assert cut, "a later trigger gave up part of its pre-event"
    for m in cut:
        given_up = m["pre_event_dropped"]
        assert given_up["cause"] == "writer_backlog"
        # What the full pre-event would have started at: the keyframe at or before T - 3 s.
        assert given_up["first_frame"] == int((m["trigger"]["time"] - 3.0) * FPS) // 30 * 30
        assert given_up["first_frame"] + given_up["frames"] == m["first_frame"]
        assert m["pre_event_seconds"] < m["pre_event_requested"]
    for m in recs:
        rec = dev.hal.storage.root / m["recording_id"]
        assert_verifies(rec, m)


def test_defaults_give_a_normal_trigger_its_full_pre_event(tmp_path: Path) -> None:
    """Default buffer and bitrate: the pre-event copy fits queue_mb, with room for live.

    Frames are the size the default bitrate gives (a GOP's keyframe five
    times a P-frame) and nothing is written: only the recorder's decision is
    under test, and the storage never finishes a task.
    """
    config = load_config(None, {})
    dev = SimDevice(config, tmp_path / "store")
    fw = dev.firmware
    v, b = config.video, config.buffer
    per_gop = v.bitrate / 8 * v.gop / v.fps
    p_size = int(per_gop / (v.gop + 4))
    dev.storage.stall(0.0, 1e6)
    t_trigger = 40.0
    for n in range(int((t_trigger + 1.0) * v.fps)):  # the gesture is recognised a second late
        key = n % v.gop == 0
        frame = EncodedFrame(bytes(5 * p_size if key else p_size), n, n / v.fps, key)
        fw.ring.append(frame)
    rec = fw.recorder.start("holster", t_trigger)
    assert rec is not None and rec.pre_event_dropped is None
    assert rec.first.number == int((t_trigger - b.pre_event) * v.fps)
    queued = dev.hal.worker.queued_bytes
    assert queued >= (b.pre_event + 1.0) * v.bitrate / 8 * 0.99
    assert b.queue_mb * 1e6 - queued >= 10 * v.bitrate / 8  # 10 s of live stall on top


# -- 11: frames a busy encoder skipped -------------------------------------------
class StepClock(VirtualClock):
    """Virtual time the test steps, posing as a real clock (so capture offloads encoding).

    Every completion the encode thread posts is counted, so the test waits
    for exactly the ones it released: no sleeps, no race.
    """

    virtual = False

    def __init__(self) -> None:
        super().__init__()
        self.posts = threading.Semaphore(0)

    def call_soon_threadsafe(self, callback: Callback) -> None:
        super().call_soon_threadsafe(callback)
        self.posts.release()


class HandSensor(Sensor):
    """Delivers the frames the test asks for, when it asks."""

    def __init__(self, clock: StepClock, width: int, height: int, fps: int) -> None:
        super().__init__(clock, width, height, fps)
        self.scene = SyntheticScene(width, height, 0)
        self.on_frame: FrameCallback | None = None

    def start(self, on_frame: FrameCallback) -> None:
        self.on_frame = on_frame

    def stop(self) -> None:
        self.on_frame = None

    def deliver(self, n: int) -> None:
        t = n / self.fps
        self.clock.run(until=t)
        assert self.on_frame is not None
        self.on_frame(self.scene.render(n, t), n, t)


def test_frames_skipped_by_a_busy_encoder_are_encoder_backlog_drops(tmp_path: Path) -> None:
    clock = StepClock()
    storage: Storage = SimStorage(tmp_path / "store")
    sensor = HandSensor(clock, 640, 360, FPS)
    hal = Hal(clock, MockGpio(clock), sensor, storage, VirtualWorker(clock, storage))
    config = load_config(
        None, {"video": {**SMALL, "encoder": "libx264"}, "buffer": {"pre_event": 1.0}}
    )
    Path(storage.root).mkdir(parents=True)
    fw = Firmware(config, hal, test_key(config.device.id, 0))
    fw.capture.encode_depth = 2
    gate = threading.Semaphore(0)
    real = fw.encoder.encode

    def blocking_encode(*args: Any) -> list[EncodedFrame]:
        assert gate.acquire(timeout=30), "the test never released this picture"
        return real(*args)

    fw.encoder.encode = blocking_encode  # type: ignore[method-assign]
    fw.boot()

    def finish(count: int) -> None:
        for _ in range(count):
            gate.release()
        for _ in range(count):
            assert clock.posts.acquire(timeout=30)
        clock.run_posted()

    def busy_at(n: int) -> None:
        """Frames n, n+1 wait in the encoder (depth 2); n+2, n+3 are skipped."""
        for k in range(n, n + 4):
            sensor.deliver(k)
        finish(2)

    n = 0
    while n < 90:
        if n == 50:  # inside the pre-event window of the trigger below
            busy_at(n)
            n += 4
            continue
        if n == 70:  # while recording, and then the camera drops 74..76
            busy_at(n)
            n += 7
            continue
        sensor.deliver(n)
        finish(1)
        if n == 65:
            fw.trigger("console", n / FPS)
        n += 1
    fw.stop_recording("console", clock.now())
    fw.shutdown()
    [m] = fw.recordings

    assert fw.capture._thread is None  # joined
    encoder_gaps = [(g["first_frame"], g["frames"], g["cause"]) for g in m["gaps"]]
    assert encoder_gaps == [
        (52, 2, "encoder_backlog"),
        (72, 2, "encoder_backlog"),
        (74, 3, "camera"),  # adjacent gaps of two causes: verify accepts the pair
    ]
    assert m["dropped_frames"] == 4
    assert fw.recorder.dropped_frames == 4
    assert_verifies(Path(storage.root) / m["recording_id"], m)


def test_camera_dropout_inside_a_backlog_drop_is_its_own_gap(tmp_path: Path) -> None:
    """A drop run interrupted by frames the sensor never sent: each gap lists what it covers."""
    scn = scenario(
        "drop-then-dropout",
        {"video": SMALL, "buffer": {"pre_event": 2.0, "queue_mb": 0.3}},
        [{"at": 5.0, "input": "holster", "action": "activate"}],
        [
            {"at": 6.0, "kind": "storage_stall", "duration": 6.0},
            {"at": 9.1, "kind": "camera_disconnect", "duration": 0.5},
        ],
        duration=14.0,
    )
    [m] = run_scenario(scn, tmp_path).recordings
    causes = [g["cause"] for g in m["gaps"]]
    assert causes == ["writer_backlog", "camera", "writer_backlog"]
    backlog, camera, _ = m["gaps"]
    assert backlog["first_frame"] + backlog["frames"] == camera["first_frame"] == 273  # 9.1 s
    assert m["dropped_frames"] == sum(g["frames"] for g in m["gaps"] if g["cause"] != "camera")
    assert_verifies(tmp_path / m["recording_id"], m)


# -- gaps partition what never reached the recording, whatever the mix -----------
class NullWorker(Worker):
    """Accepts tasks and never runs them: only the recorder's bookkeeping is under test."""

    def submit(self, task: Task, nbytes: int = 0, on_done: Done | None = None) -> None:
        self._queued(nbytes)

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


@settings(max_examples=60, deadline=None)
@given(
    fates=st.lists(st.sampled_from(["ok", "ok", "ok", "camera", "skip"]), min_size=5, max_size=80),
    trigger_at=st.integers(min_value=0, max_value=79),
    gop=st.integers(min_value=1, max_value=10),
)
def test_gaps_partition_missing_frames_by_cause(
    tmp_path_factory: pytest.TempPathFactory, fates: list[str], trigger_at: int, gop: int
) -> None:
    """Random mixes of delivered, never-delivered and skipped frames, before and after a trigger."""
    clock = VirtualClock()
    storage = SimStorage(tmp_path_factory.mktemp("s"))
    ring = RingBuffer(10_000_000, 1e6, 1000)
    rec = Recorder(
        clock,
        storage,
        NullWorker(clock, storage),
        ring,
        VideoFormat("h264", 640, 360, FPS),
        device_id="T",
        pre_event=1e6,
        segment_seconds=10.0,
        queue_bytes=10_000_000,
    )
    fates = ["ok", *fates]  # frame 0 is a keyframe and starts everything
    for n, fate in enumerate(fates):
        if n == min(trigger_at, len(fates) - 1):
            assert rec.start("console", n / FPS) is not None
        if fate == "skip":
            rec.on_skipped(n, n / FPS)
        elif fate == "ok":
            frame = EncodedFrame(b"x", n, n / FPS, n % gop == 0)
            ring.append(frame)
            rec.on_frame(frame)
    recording = rec.recording
    assert recording is not None and recording.seen is not None
    last = recording.seen.number
    declared: dict[int, str] = {}
    for g in recording.all_gaps:
        for k in range(g.first_frame, g.first_frame + g.frames):
            assert k not in declared
            declared[k] = g.cause
    expected = {
        n: {"camera": "camera", "skip": "encoder_backlog"}[fate]
        for n, fate in enumerate(fates)
        if fate != "ok" and n < last
    }
    assert declared == expected
    assert rec.dropped_frames == sum(c == "encoder_backlog" for c in expected.values())
