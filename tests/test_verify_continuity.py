"""``verify``'s continuity checks, each made to fire on its own.

A forger who edits a recording also rewrites the manifest: every damage here
is followed by re-hashing the segments and fixing the totals, so the sha256
and size checks pass and only the continuity check under test can object.
Each case asserts its own message, and that no hash or size finding stood in
for it.

The recording is H.264 with a keyframe every 10 frames and 1 s segments (30
frames, three GOPs each), so frames can be removed a whole GOP at a time and
the rest still decodes cleanly. Packets are rewritten the way the recorder
writes them (camera/segments.py); the control test checks that this remux of
an untouched segment gives back the same packets (for MPEG-TS the same bytes)
and verifies clean. Timestamps are copied from the
demuxed packets, never computed from a base, so the cases hold whether the
stream counts from boot or from the recording's first frame.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import pytest

from camera.evidence.records import MANIFEST
from camera.evidence.verify import Report, verify_recording
from camera.ts_continuity import ContinuityCounters, ContinuityRewriter
from sim.runner import run_scenario
from sim.scenario import parse_scenario

FPS = 30
PTS_HZ = 90_000
CODECS = {"h264": ("mpegts", ".ts"), "mjpeg": ("matroska", ".mkv")}


@dataclass
class Packet:
    data: bytes
    pts: int  # 90 kHz, as the recorder writes it
    keyframe: bool


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """codec -> a 6-segment recording (frames 30..180), trigger at 2.0 s."""
    made = {}
    for codec in CODECS:
        scenario = parse_scenario(
            {
                "scenario": {"name": f"continuity-{codec}", "duration": 6.0},
                "config": {
                    "video": {
                        "width": 640,
                        "height": 360,
                        "fps": FPS,
                        "codec": codec,
                        "bitrate": 1_500_000,
                        "gop": 10,
                    },
                    "buffer": {"pre_event": 1.0},
                    "recording": {"segment_seconds": 1.0},
                    # These tests rewrite segments picture by picture; sound has its
                    # own suite (tests/test_verify_audio.py).
                    "audio": {"enabled": False},
                },
                "event": [{"at": 2.0, "input": "holster", "action": "activate"}],
            },
            source="<continuity>",
        )
        store = tmp_path_factory.mktemp(codec)
        run_scenario(scenario, store)
        [rec] = [p for p in store.iterdir() if (p / MANIFEST).is_file()]
        made[codec] = rec
    return made


@pytest.fixture
def copy(recordings: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def make(codec: str) -> Path:
        return Path(shutil.copytree(recordings[codec], tmp_path / codec))

    return make


def manifest(rec: Path) -> dict[str, Any]:
    return json.loads((rec / MANIFEST).read_text())


def read_packets(path: Path) -> list[Packet]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return [
            Packet(bytes(p), round(p.pts * p.time_base * PTS_HZ), p.is_keyframe)
            for p in c.demux(stream)
            if p.size
        ]


class Sink:
    """Write-only, like the recorder's HashingFile: Matroska then never seeks back; MPEG-TS
    continuity counters run on from the segment before, as the recorder writes them."""

    def __init__(self, f: BinaryIO, rewriter: ContinuityRewriter | None = None) -> None:
        self._f = f
        self._rewriter = rewriter

    def write(self, data: bytes) -> int:
        self._f.write(data if self._rewriter is None else self._rewriter.feed(data))
        return len(data)

    def flush(self) -> None:
        return None


MUX: dict[str, Any] = {"options": {"flush_packets": "1"}}


def write_packets(
    path: Path,
    packets: list[Packet],
    codec: str,
    width: int,
    height: int,
    counters: ContinuityCounters | None = None,
) -> None:
    """Mux ``packets`` as the recorder does (same options, 90 kHz timestamps)."""
    fmt, _ = CODECS[codec]
    rewriter = ContinuityRewriter(counters) if counters is not None else None
    with path.open("wb") as f, av.open(Sink(f, rewriter), "w", format=fmt, **MUX) as out:
        stream = out.add_mux_stream(codec, rate=FPS, width=width, height=height)
        stream.time_base = Fraction(1, PTS_HZ)
        for p in packets:
            packet = av.Packet(p.data)
            packet.pts = packet.dts = p.pts
            packet.time_base = Fraction(1, PTS_HZ)
            packet.duration = PTS_HZ // FPS
            packet.is_keyframe = p.keyframe
            packet.stream = stream
            out.mux(packet)


def rewrite_segment(rec: Path, m: dict[str, Any], index: int, packets: list[Packet]) -> None:
    """Replace segment ``index`` by ``packets`` and make its entry vouch for the new bytes."""
    seg = m["segments"][index]
    path = rec / seg["file"]
    counters = None
    if m["codec"] == "h264" and index > 0:
        counters = ContinuityCounters.after((rec / m["segments"][index - 1]["file"]).read_bytes())
    write_packets(path, packets, m["codec"], m["width"], m["height"], counters)
    body = path.read_bytes()
    seg.update(sha256=hashlib.sha256(body).hexdigest(), bytes=len(body), frames=len(packets))


def save(rec: Path, m: dict[str, Any]) -> Report:
    """Write the forged manifest with consistent totals; verify the recording."""
    m["frames"] = sum(s["frames"] for s in m["segments"])
    (rec / MANIFEST).write_text(json.dumps(m))
    report = verify_recording(rec)
    assert not any("sha256" in p or "bytes, manifest says" in p for p in report.problems), (
        "the forgery must pass the hash checks",
        report.problems,
    )
    return report


@pytest.mark.parametrize("codec", CODECS)
def test_remux_of_an_untouched_segment_is_byte_identical(
    copy: Callable[[str], Path], codec: str
) -> None:
    rec = copy(codec)
    m = manifest(rec)
    seg = rec / m["segments"][2]["file"]
    before, packets = seg.read_bytes(), read_packets(seg)
    rewrite_segment(rec, m, 2, packets)
    assert read_packets(seg) == packets
    if codec == "h264":  # Matroska's Info block (CRC, UID) differs from run to run
        assert seg.read_bytes() == before
    report = save(rec, m)
    assert report.ok, report.problems


@pytest.mark.parametrize("codec", CODECS)
def test_whole_segment_dropped_is_an_undeclared_gap(
    copy: Callable[[str], Path], codec: str
) -> None:
    rec = copy(codec)
    m = manifest(rec)
    gone = m["segments"].pop(2)
    (rec / gone["file"]).unlink()
    report = save(rec, m)
    after = m["segments"][2]
    assert (
        f"{after['file']}: frame {after['first_frame']} follows {gone['first_frame'] - 1} "
        "(undeclared gap)" in report.problems
    ), report.problems


@pytest.mark.parametrize("codec", CODECS)
def test_frames_cut_from_a_segment_are_an_undeclared_gap(
    copy: Callable[[str], Path], codec: str
) -> None:
    """The middle GOP of a segment removed: the rest decodes, the frame codes jump."""
    rec = copy(codec)
    m = manifest(rec)
    seg = m["segments"][2]
    packets = read_packets(rec / seg["file"])
    assert [p.keyframe for p in packets].count(True) >= 3
    rewrite_segment(rec, m, 2, packets[:10] + packets[20:])
    report = save(rec, m)
    first = seg["first_frame"]
    assert (
        f"{seg['file']}: frame {first + 20} follows {first + 9} (undeclared gap)" in report.problems
    ), report.problems


@pytest.mark.parametrize("codec", CODECS)
def test_one_timestamp_moved_breaks_capture_spacing(
    copy: Callable[[str], Path], codec: str
) -> None:
    """One middle frame 5 ms late: frame codes and segment start/end all still agree."""
    rec = copy(codec)
    m = manifest(rec)
    seg = m["segments"][2]
    packets = read_packets(rec / seg["file"])
    packets[15].pts += PTS_HZ * 5 // 1000
    rewrite_segment(rec, m, 2, packets)
    report = save(rec, m)
    t = packets[15].pts / PTS_HZ
    needle = f"{seg['file']}: timestamp {t:.4f} s breaks 1/{m['fps']} s spacing"
    assert needle in report.problems, report.problems
    assert not any("undeclared gap" in p for p in report.problems)


def test_segment_starting_on_a_p_frame(copy: Callable[[str], Path]) -> None:
    """The boundary moved 5 frames into a GOP: the next segment opens on P frames.

    A decoder silently skips P frames it has no reference for, so the first
    decoded picture is a keyframe again; the container's flag is what shows it.
    """
    rec = copy("h264")
    m = manifest(rec)
    a, b = m["segments"][2], m["segments"][3]
    pa, pb = read_packets(rec / a["file"]), read_packets(rec / b["file"])
    moved = pa[-5:]
    assert not any(p.keyframe for p in moved)
    rewrite_segment(rec, m, 2, pa[:-5])
    rewrite_segment(rec, m, 3, moved + pb)
    a.update(last_frame=a["last_frame"] - 5, end_time=round(a["end_time"] - 5 / FPS, 6))
    b.update(first_frame=b["first_frame"] - 5, start_time=round(b["start_time"] - 5 / FPS, 6))
    report = save(rec, m)
    assert f"{b['file']}: does not start on a keyframe" in report.problems, report.problems
    assert not any(p.startswith(a["file"]) for p in report.problems), report.problems
