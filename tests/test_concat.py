"""Concatenating a recording's segments by hand (issue 12 item 4; README "What a recording holds").

``cat segment-*.ts > all.ts`` must give one clean MPEG-TS stream: the
continuity counters run on from segment to segment (camera/ts_continuity.py),
so FFmpeg finds no "Continuity check failed" and flags no packet corrupt at
the boundaries, and every frame the manifest lists decodes. The control test
makes the same recording with the rewrite switched off and sees FFmpeg object
at every boundary, so the check is known to fire. The rewriter itself is held
to its contract on synthetic packets: any split of the writes gives the same
bytes, only the counter nibble changes, and the first segment is untouched.

Matroska (MJPEG) segments carry no Duration (camera/segments.py says why);
the tests pin that, and the two ways the README gives instead: ``bodycam
export`` (its MP4 lasts frames / fps) and FFmpeg's concat demuxer (every
picture and sound packet, in order).
"""

from __future__ import annotations

import io
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import av.logging
import pytest
from hypothesis import given
from hypothesis import strategies as st

import camera.segments
from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL
from camera.evidence.verify import verify_recording
from camera.export import export_recording
from camera.recovery import recover_recording
from camera.ts_continuity import (
    NULL_PID,
    PACKET_SIZE,
    SYNC_BYTE,
    ContinuityCounters,
    ContinuityRewriter,
)
from hal.storage.local import LocalStorage
from tests.conftest import make_device

FPS = 30
#: Three 2 s segments and a short fourth; sound on (its own PID), pre-event 1 s.
CONFIG = {
    "buffer": {"pre_event": 1.0},
    "recording": {"segment_seconds": 2.0},
}
CONTINUITY_FAILED = "Continuity check failed"


def record(root: Path, codec: str) -> tuple[Path, dict]:
    dev = make_device(root, {**CONFIG, "video": {"codec": codec}})
    dev.set_input(1.0, "holster", True)
    dev.run(until=7.5)
    [m] = dev.shutdown()
    rec = root / "store" / m["recording_id"]
    assert len(m["segments"]) >= 3 and m["audio"]["packets"] > 0
    return rec, m


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return record(tmp_path_factory.mktemp("h264"), "h264")


@pytest.fixture(scope="module")
def mjpeg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return record(tmp_path_factory.mktemp("mjpeg"), "mjpeg")


# -- reading a concatenation as FFmpeg does -----------------------------------------------------


@dataclass
class Demuxed:
    frames: int
    audio_packets: int
    corrupt: int
    #: FFmpeg's log lines about continuity (at DEBUG) and corrupt packets (WARNING).
    complaints: list[str]
    #: Indexes of video packets the decoder refused, of how many packets.
    undecodable: list[int]
    video_packets: int


def demux_ts(data: bytes) -> Demuxed:
    """Demux and decode ``data`` as ``ffmpeg -i all.ts`` would, keeping what FFmpeg logs."""
    before = av.logging.get_level()
    av.logging.set_level(av.logging.DEBUG)
    try:
        with (
            av.logging.Capture() as logs,
            av.open(io.BytesIO(data), format="mpegts") as c,
        ):
            frames = audio = corrupt = index = 0
            undecodable: list[int] = []
            video = c.streams.video[0]
            for packet in c.demux():
                if packet.size == 0:
                    continue
                corrupt += packet.is_corrupt
                if packet.stream.type == "audio":
                    audio += 1
                    continue
                try:
                    frames += len(packet.decode())
                except av.error.InvalidDataError:
                    undecodable.append(index)
                index += 1
            frames += len(video.codec_context.decode(None))
    finally:
        av.logging.set_level(before)
    complaints = [m for _, _, m in logs if CONTINUITY_FAILED in m or "corrupt" in m.lower()]
    return Demuxed(frames, audio, corrupt, complaints, undecodable, index)


def cat(rec: Path, suffix: str = ".ts") -> bytes:
    """``cat segment-*.ts``: the segments in name order, nothing else."""
    return b"".join(p.read_bytes() for p in sorted(rec.glob(f"segment-*{suffix}")))


def assert_clean(got: Demuxed, m: dict) -> None:
    assert got.complaints == [] and got.corrupt == 0
    assert got.frames == m["frames"]
    assert got.audio_packets == m["audio"]["packets"]
    # Only the recording's last packet fails to decode: the picture-less access
    # unit that closes the in-stream signatures (README "What a recording holds").
    assert got.undecodable == [got.video_packets - 1]


# -- H.264 in MPEG-TS: cat works ------------------------------------------------------------


def test_cat_of_the_ts_segments_demuxes_without_a_continuity_error(h264: tuple[Path, dict]) -> None:
    rec, m = h264
    assert_clean(demux_ts(cat(rec)), m)
    assert verify_recording(rec).ok


def test_without_the_rewrite_every_boundary_is_reported_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: segments as the muxer writes them restart their counters, and the
    check above sees it (so it can fail)."""

    class Untouched(ContinuityRewriter):
        def feed(self, data: bytes | bytearray | memoryview) -> bytes:
            return bytes(data)

    monkeypatch.setattr(camera.segments, "ContinuityRewriter", Untouched)
    rec, m = record(tmp_path, "h264")
    got = demux_ts(cat(rec))
    boundaries = len(m["segments"]) - 1
    assert got.corrupt >= boundaries
    assert sum(CONTINUITY_FAILED in c for c in got.complaints) >= boundaries
    assert got.frames == m["frames"]  # the pictures are all there; FFmpeg just cannot tell


def test_the_rewritten_segments_are_the_same_bytes_run_after_run(
    h264: tuple[Path, dict], tmp_path: Path
) -> None:
    """The counters are state of the recording alone: scenario and seed still fix every byte."""
    rec, m = h264
    again, m2 = record(tmp_path, "h264")
    assert [s["sha256"] for s in m2["segments"]] == [s["sha256"] for s in m["segments"]]
    assert cat(again) == cat(rec)


def test_segments_hold_whole_packets_and_the_first_is_as_the_muxer_wrote_it(
    h264: tuple[Path, dict],
) -> None:
    rec, m = h264
    files = [rec / s["file"] for s in m["segments"]]
    assert all(f.stat().st_size % PACKET_SIZE == 0 for f in files)
    # Every sync record vouches for whole packets, so a recovery cut ends on one.
    synced = [r["bytes"] for r in read_journal_lines(rec / JOURNAL).of("sync")]
    assert synced and all(size % PACKET_SIZE == 0 for size in synced)
    # Counters of the first segment start where FFmpeg starts them (0 on every PID).
    first = files[0].read_bytes()
    starts: dict[int, int] = {}
    for at in range(0, len(first), PACKET_SIZE):
        starts.setdefault(pid_of(first, at), first[at + 3] & 0x0F)
    assert set(starts.values()) == {0}


def test_a_recovered_recording_still_concatenates(tmp_path: Path) -> None:
    """Power cut in the fourth segment: recovery cuts it back to its last sync; the
    segments before run on into it without a jump, and everything vouched for decodes."""
    dev = make_device(tmp_path, {**CONFIG, "video": {"codec": "h264"}})
    dev.set_input(1.0, "holster", True)
    dev.run(until=7.3)
    dev.hal.storage.unlock()  # the process is gone: the kernel drops its lock
    [rec] = [p for p in Path(dev.hal.storage.root).iterdir() if p.is_dir()]
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert len(m["segments"]) >= 4
    got = demux_ts(cat(rec))
    assert got.complaints == [] and got.corrupt == 0
    assert got.frames == m["frames"]


# -- the rewriter on synthetic packets ------------------------------------------------------


def pid_of(data: bytes, at: int) -> int:
    return ((data[at + 1] & 0x1F) << 8) | data[at + 2]


def ts_packet(pid: int, counter: int, payload: bool = True, fill: int = 0xAB) -> bytes:
    """One 188-byte packet: payload only, or adaptation field only (no counter step)."""
    control = 0x10 if payload else 0x20
    head = bytes([SYNC_BYTE, 0x40 | (pid >> 8), pid & 0xFF, control | counter])
    return head + bytes([fill]) * (PACKET_SIZE - 4)


def muxer_file(pids: list[tuple[int, bool]], start: int = 0) -> bytes:
    """Packets as a muxer writes one file: each PID counts from ``start``, a packet
    without payload repeats the counter of the one before."""
    counter: dict[int, int] = {}
    out = []
    for pid, payload in pids:
        if pid == NULL_PID:
            out.append(ts_packet(pid, 7))
            continue
        counter.setdefault(pid, (start - 1) % 16)
        if payload:
            counter[pid] = (counter[pid] + 1) % 16
        out.append(ts_packet(pid, counter[pid], payload))
    return b"".join(out)


def continuous(data: bytes) -> bool:
    """ISO/IEC 13818-1 2.4.3.3 as a demuxer checks it: +1 with payload, same without."""
    last: dict[int, int] = {}
    for at in range(0, len(data), PACKET_SIZE):
        pid, byte = pid_of(data, at), data[at + 3]
        if pid == NULL_PID:
            continue
        counter, step = byte & 0x0F, 1 if byte & 0x10 else 0
        if pid in last and counter != (last[pid] + step) % 16:
            return False
        last[pid] = counter
    return True


def rewrite(data: bytes, cuts: list[int], counters: ContinuityCounters) -> bytes:
    rewriter = ContinuityRewriter(counters)
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return b"".join(rewriter.feed(data[a:b]) for a, b in itertools.pairwise(edges))


PIDS = st.sampled_from([0x0000, 0x0011, 0x0100, 0x0101, 0x1000, NULL_PID])
FILES = st.lists(
    st.lists(st.tuples(PIDS, st.booleans()), min_size=1, max_size=40), min_size=1, max_size=5
)


@given(files=FILES, cuts=st.lists(st.lists(st.integers(0, 10_000), max_size=8), min_size=5))
def test_rewritten_files_run_on_whatever_the_write_sizes(
    files: list[list[tuple[int, bool]]], cuts: list[list[int]]
) -> None:
    counters = ContinuityCounters()
    written = [muxer_file(f) for f in files]
    out = [rewrite(data, cut, counters) for data, cut in zip(written, cuts, strict=False)]
    assert out[0] == written[0]  # nothing to continue from: the muxer's bytes
    assert continuous(b"".join(out))
    for before, after in zip(written, out, strict=True):
        assert len(after) == len(before)
        for at in range(0, len(before), PACKET_SIZE):  # only the counter nibble differs
            assert before[at : at + 3] == after[at : at + 3]
            assert before[at + 3] & 0xF0 == after[at + 3] & 0xF0
            assert before[at + 4 : at + PACKET_SIZE] == after[at + 4 : at + PACKET_SIZE]
            if pid_of(before, at) == NULL_PID:
                assert before[at + 3] == after[at + 3]
    # The counters left behind are those a reader finds at the end of the stream.
    assert counters.last == ContinuityCounters.after(b"".join(out)).last


def test_a_file_that_starts_mid_count_is_moved_not_renumbered() -> None:
    """The offset is per PID and constant: a file whose muxer counted from 9 continues too."""
    counters = ContinuityCounters()
    one = rewrite(muxer_file([(0x100, True)] * 20), [], counters)
    two = rewrite(muxer_file([(0x100, True), (0x100, False), (0x100, True)], start=9), [], counters)
    assert continuous(one + two)
    assert [b & 0x0F for b in two[3::PACKET_SIZE]] == [4, 4, 5]


def test_a_stream_out_of_sync_passes_through_untouched(caplog: pytest.LogCaptureFixture) -> None:
    counters = ContinuityCounters()
    rewrite(muxer_file([(0x100, True)] * 3), [], counters)
    garbage = b"\x00" + muxer_file([(0x100, True)] * 2)
    assert rewrite(garbage, [1, 100], counters) == garbage
    assert "sync byte" in caplog.text


# -- MJPEG in Matroska: no Duration; export and the concat demuxer ---------------------------


def test_matroska_segments_have_no_duration_and_the_export_has_it(
    mjpeg: tuple[Path, dict], tmp_path: Path
) -> None:
    """Pinned so the README stays true: FFmpeg writes Duration only by seeking back
    into the head of the file, which our append-only segments never do."""
    rec, m = mjpeg
    for seg in m["segments"]:
        with av.open(str(rec / seg["file"])) as c:
            assert c.duration is None
    out = tmp_path / "all.mp4"
    export_recording(rec, out)
    with av.open(str(out)) as c:
        assert c.duration is not None
        assert c.duration / av.time_base == pytest.approx(m["frames"] / FPS, abs=1e-3)
        assert c.streams.video[0].frames == m["frames"]


def test_the_concat_demuxer_reads_every_picture_and_sound_packet(
    mjpeg: tuple[Path, dict], tmp_path: Path
) -> None:
    """The README's ``ffmpeg -f concat -safe 0 -i list.txt -c copy all.mkv``, through PyAV."""
    rec, m = mjpeg
    work = Path(shutil.copytree(rec, tmp_path / "rec"))
    listing = work / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in sorted(work.glob("segment-*.mkv"))))
    with av.open(str(listing), format="concat", options={"safe": "0"}) as c:
        packets = [(p.stream.type, p.pts) for p in c.demux() if p.size]
    times = [pts for kind, pts in packets if kind == "video"]
    assert len(times) == m["frames"]
    assert sum(kind == "audio" for kind, _ in packets) == m["audio"]["packets"]
    assert times == sorted(set(times))
