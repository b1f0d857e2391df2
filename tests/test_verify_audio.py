"""``verify`` hears the sound: its manifest entries, its continuity, its sync with the pictures.

Recordings are made here from real parts: H.264 or MJPEG frames of the
synthetic scene (frame codes in their top rows), the simulated microphone's
scene (sim.audio.AudioScene, a click at every whole second of device time)
through the AAC encoder, both muxed by camera/segments.py's RecordingWriter
into 1 s segments; the manifest is written as audio_manifest's spec has it
(the same facts the recorder writes: the writer's audio spans, the jumps in
sample numbers as gaps). Each damage is made on its own, the manifest kept
consistent around it where a forger would, and the finding asserted by what
it says.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera.cli import main
from camera.encoders.aac import AACEncoder
from camera.encoders.h264 import H264Encoder
from camera.encoders.mjpeg import MJPEGEncoder
from camera.evidence.clicks import SAMPLE_RATE
from camera.evidence.journal import Journal
from camera.evidence.records import (
    FORMAT,
    MANIFEST,
    Head,
    Manifest,
    Stop,
    StopReason,
    Trigger,
    r6,
)
from camera.evidence.verify import Report, verify_recording
from camera.evidence.verify.audio import AUDIO, SEGMENT_AUDIO, AudioCheck
from camera.evidence.verify.audio_decode import raw_aac
from camera.evidence.verify.rules import Expect
from camera.evidence.verify.trust import keys_beside
from camera.frames import EncodedAudio, EncodedFrame
from camera.segments import AudioFormat, RecordingWriter
from sim.audio import AudioScene
from sim.scene import SyntheticScene
from sim.storage import SimStorage

RATE = SAMPLE_RATE
FPS = 30
W, H = 640, 360
BLOCK = 1024
#: The recording's first frame: device time 10 s (frame 300); the microphone
#: runs from half a second before it, so the first packet written is mid-stream.
T0 = 10.0
SECONDS = 3.5
#: Blocks the microphone loses in the gap cases: inside segment 0 (10.67 s), and
#: across the rotation at 11.0 s.
GAP_INSIDE = range(500, 505)
GAP_ACROSS = range(512, 518)


@functools.cache
def video(codec: str, seconds: float = SECONDS) -> tuple[EncodedFrame, ...]:
    scene = SyntheticScene(W, H, 0)
    enc = (
        MJPEGEncoder(quality=60)
        if codec == "mjpeg"
        else H264Encoder(W, H, FPS, bitrate=1_000_000, gop=FPS)
    )
    frames: list[EncodedFrame] = []
    base = round(T0 * FPS)
    for n in range(base, base + round(seconds * FPS)):
        frames += enc.encode(scene.render(n, n / FPS), n, n / FPS)
    return tuple(frames + enc.flush())


@functools.cache
def sound(
    seconds: float = SECONDS, lost: range = range(0), silenced: tuple[int, ...] = ()
) -> tuple[EncodedAudio, ...]:
    """The scene's packets from T0 - 0.5 s; blocks in ``lost`` never arrive, and the
    clicks at the whole seconds in ``silenced`` are cut out of the sound."""
    scene = AudioScene(RATE, 1, BLOCK, seed=0)
    enc = AACEncoder()
    out: list[EncodedAudio] = []
    for n in range(math.floor((T0 - 0.5) * RATE / BLOCK), math.ceil((T0 + seconds) * RATE / BLOCK)):
        if n in lost:
            continue
        block = scene.render(n)
        for k in silenced:
            at = k * RATE - n * BLOCK
            block[max(0, at - 480) : max(0, at + 480)] = 0
        out += enc.encode(block, n * BLOCK, n * BLOCK / RATE)
    return tuple(out + enc.flush())


def gaps_of(packets: list[EncodedAudio]) -> list[dict[str, Any]]:
    """Each jump in sample numbers between consecutive packets, as the recorder declares it."""
    return [
        {
            "start": r6(a.time + a.samples / a.rate),
            "end": r6(b.time),
            "first_sample": a.end_sample,
            "samples": b.first_sample - a.end_sample,
            "cause": "microphone",
        }
        for a, b in itertools.pairwise(packets)
        if b.first_sample != a.end_sample
    ]


def record(
    root: Path,
    codec: str = "h264",
    *,
    shift: float = 0.0,
    lost: range = range(0),
    silenced: tuple[int, ...] = (),
    beyond: float = 0.0,
    audio: bool = True,
    source: str = "synthetic",
) -> Path:
    """A recording of SECONDS in 1 s segments with the sound of the same span, and its manifest.

    ``shift``: every audio packet is written that much later than it was
    captured (its manifest times follow the container, so only the sync can
    object). ``beyond``: packets up to that long after the last frame are
    written too. ``audio=False``: video-only segments, with the audio
    entries the same recording with sound would have in its manifest.
    """
    storage = SimStorage(root)
    storage.makedirs("rec")
    writer = RecordingWriter(
        storage,
        "rec",
        codec,
        W,
        H,
        FPS,
        1.0,
        Journal(storage, "rec"),
        audio=AudioFormat() if audio else None,
    )
    frames = video(codec)
    end = frames[-1].time
    packets = [
        EncodedAudio(p.data, p.first_sample, p.samples, p.time + shift, p.rate)
        for p in sound(SECONDS + beyond, lost, silenced)
    ]
    packets = [p for p in packets if T0 <= p.time <= end + beyond]
    writer.write(frames, packets)
    writer.close()
    head = Head(
        format=FORMAT,
        device_id="cam",
        recording_id="rec",
        codec=codec,
        width=W,
        height=H,
        fps=FPS,
        trigger=Trigger(source="holster", time=T0 + 0.5, wall_time="2026-01-01T08:00:10Z"),
        pre_event_requested=0.5,
    )
    stop = Stop(reason=StopReason.END_OF_RUN, time=end)
    m = Manifest.build(head, writer.segments, stop, [], []).to_json()
    spans = writer.audio_spans if audio else audio_spans(root, codec, shift, lost, beyond)
    for seg in m["segments"]:
        span = spans.get(seg["file"])
        seg["audio"] = span and {
            "packets": span.packets,
            "first_sample": span.first_sample,
            "end_sample": span.end_sample,
            "start_time": r6(span.start_time),
            "end_time": r6(span.end_time),
        }
        hashes = getattr(span, "packet_sha256", None)
        if seg["audio"] and hashes is not None:
            seg["audio"]["packet_sha256"] = list(hashes)
    last = packets[-1]
    m["audio"] = {
        "codec": "aac",
        "rate": RATE,
        "channels": 1,
        "bitrate": 64_000,
        "source": source,
        "pre_event": True,
        "start_time": m["start_time"],
        "first_time": r6(packets[0].time),
        "end_time": r6(last.time + last.samples / RATE),
        "packets": len(packets),
        "samples": sum(p.samples for p in packets),
        "gaps": gaps_of(packets),
    }
    save(root / "rec", m)
    return root / "rec"


def audio_spans(root: Path, codec: str, shift: float, lost: range, beyond: float) -> Any:
    """The audio spans the same recording with sound has (made beside it, then thrown away)."""
    twin = record(root / "twin", codec, shift=shift, lost=lost, beyond=beyond)
    return {s["file"]: Span(**s["audio"]) for s in load(twin)["segments"] if s["audio"]}


class Span:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def load(rec: Path) -> dict[str, Any]:
    return json.loads((rec / MANIFEST).read_text())


def save(rec: Path, m: dict[str, Any]) -> None:
    (rec / MANIFEST).write_text(json.dumps(m, indent=2))


def edit(rec: Path, change: Any) -> Report:
    m = load(rec)
    change(m)
    save(rec, m)
    return verify_recording(rec)


def only(report: Report, *needles: str) -> list[str]:
    """The problems that mention every needle; asserts there is at least one."""
    hits = [p for p in report.problems if all(n in p for n in needles)]
    assert hits, report.problems
    return hits


def no_internal_error(report: Report) -> None:
    assert not any("internal error" in p for p in report.problems), report.problems


# -- clean recordings ---------------------------------------------------------------
@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_a_clean_recording_verifies_in_sync(tmp_path: Path, codec: str) -> None:
    rec = record(tmp_path, codec)
    report = verify_recording(rec)
    assert report.ok, report.problems
    summary = report.audio
    assert summary is not None and summary.sync is not None
    m = load(rec)["audio"]
    assert (summary.packets, summary.samples) == (m["packets"], m["samples"])
    # Clicks at 11, 12 and 13 s: each within a millisecond of its frame (Matroska keeps ms).
    assert [c.frame for c in summary.sync.matched] == [330, 360, 390]
    assert summary.sync.max_abs_offset is not None and summary.sync.max_abs_offset < 1e-3
    assert summary.line().startswith("audio: aac 48 kHz mono, 3.5 s, ")
    assert "3 clicks, A/V offset mean " in summary.line()


def test_a_recording_without_audio_says_nothing_about_it(tmp_path: Path) -> None:
    rec = record(tmp_path, audio=False)
    report = edit(rec, lambda m: [m.update(audio=None), *(s.pop("audio") for s in m["segments"])])
    assert report.ok, report.problems
    assert report.audio is None


def test_a_source_without_clicks_is_not_measured(tmp_path: Path) -> None:
    rec = record(tmp_path, source="alsa")
    report = verify_recording(rec)
    assert report.ok, report.problems
    # Nor is its PCM kept (about 11 MB a minute): only the synthetic scene's is measured.
    for source, kept in (("alsa", False), ("synthetic", True)):
        m = load(rec)
        m["audio"]["source"] = source
        assert AudioCheck.begin(m, Expect(fps=FPS), []).decoder.keep_pcm is kept
    assert report.audio is not None and report.audio.sync is None
    assert report.audio.line().endswith("A/V offset not measured (source alsa)")


# -- out of sync ---------------------------------------------------------------------
def test_audio_15_ms_late_in_the_container_fails_naming_the_offset(tmp_path: Path) -> None:
    report = verify_recording(record(tmp_path, shift=0.015))
    [line] = only(report, "audio: A/V offset +15.0 ms at frame ", "exceeds +-10 ms")
    assert "3 of 3 clicks beyond it" in line
    assert len(report.problems) == 1  # the container's times are consistent: only sync objects


def test_audio_9_ms_early_is_within_the_limit(tmp_path: Path) -> None:
    report = verify_recording(record(tmp_path, shift=-0.009))
    assert report.ok, report.problems
    assert report.audio is not None and report.audio.sync is not None
    assert report.audio.sync.mean_offset == pytest.approx(-0.009, abs=2e-4)


def test_a_missing_click_fails(tmp_path: Path) -> None:
    report = verify_recording(record(tmp_path, silenced=(12,)))
    only(report, "no sync click within 0.5 s of frame 360 (12.0000 s)")


# -- continuity and gaps ---------------------------------------------------------------
@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
@pytest.mark.parametrize("lost", [GAP_INSIDE, GAP_ACROSS], ids=["inside", "across"])
def test_a_declared_gap_passes(tmp_path: Path, codec: str, lost: range) -> None:
    rec = record(tmp_path, codec, lost=lost)
    [gap] = load(rec)["audio"]["gaps"]
    assert gap["samples"] == len(lost) * BLOCK  # exactly what the microphone lost
    report = verify_recording(rec)
    assert report.ok, report.problems
    assert report.audio is not None and report.audio.gaps == 1
    assert f"1 gap ({len(lost) * BLOCK / RATE:.2f} s)" in report.audio.line()
    # The click at 11 s fell in the gap across the rotation: excused, not missing.
    sync = report.audio.sync
    assert sync is not None and not sync.frames_without_click
    assert [c.frame for c in sync.matched] == ([330] if lost == GAP_INSIDE else []) + [360, 390]


def undeclare(m: dict[str, Any]) -> None:
    """Drop the gap, and make the samples add up without it (as a forger would)."""
    [gap] = m["audio"].pop("gaps")
    m["audio"]["gaps"] = []
    inside = any(
        s["audio"]["first_sample"] <= gap["first_sample"] < s["audio"]["end_sample"]
        for s in m["segments"]
    )
    m["audio"]["samples"] += gap["samples"] if inside else 0


def test_an_undeclared_gap_inside_a_segment_fails_naming_it(tmp_path: Path) -> None:
    report = edit(record(tmp_path, lost=GAP_INSIDE), undeclare)
    resume = GAP_INSIDE.stop * BLOCK / RATE
    [line] = only(report, f"segment-0000.ts: audio jumps 5120 samples (106.7 ms) at {resume:.4f} s")
    assert line.endswith("and no audio gap is declared there")
    assert len(report.problems) == 1


def test_an_undeclared_gap_across_segments_fails_naming_both(tmp_path: Path) -> None:
    report = edit(record(tmp_path, lost=GAP_ACROSS), undeclare)
    [jump] = only(report, "segment-0001.ts: audio jumps 6144 samples")
    assert "in segment-0000.ts" in jump
    # The manifest's own sample numbers say so too.
    only(report, "manifest.json: segments[1].audio.first_sample", "+6144 samples")


def test_a_gap_the_audio_runs_through_fails(tmp_path: Path) -> None:
    def declare(m: dict[str, Any]) -> None:
        m["audio"]["gaps"] = [
            {
                "start": 12.5,
                "end": 12.6,
                "first_sample": 600_000,
                "samples": 0,
                "cause": "microphone",
            }
        ]

    report = edit(record(tmp_path), declare)
    only(
        report, "audio: gap declared from 12.5000 s to 12.6000 s, but the audio runs on through it"
    )


def test_audio_beyond_the_pictures_fails(tmp_path: Path) -> None:
    report = verify_recording(record(tmp_path, beyond=0.1))
    only(report, "audio: ends at", "after the last frame ends", "at most one AAC frame")


# -- audio streams the manifest does not account for ----------------------------------
def test_a_missing_audio_stream_fails_for_each_segment(tmp_path: Path) -> None:
    report = verify_recording(record(tmp_path, audio=False))
    for n in range(4):
        only(report, f"segment-000{n}.ts: has no audio stream, but the manifest declares aac audio")


@pytest.mark.parametrize("old", [False, True], ids=["null", "absent"])
def test_an_undeclared_audio_stream_fails(tmp_path: Path, old: bool) -> None:
    def drop(m: dict[str, Any]) -> None:
        if old:
            del m["audio"]
        else:
            m["audio"] = None
        for s in m["segments"]:
            del s["audio"]

    report = edit(record(tmp_path), drop)
    only(report, 'segment-0001.ts: has an audio stream ("aac", ', "manifest declares no audio")
    assert report.audio is None


def test_segment_audio_without_a_recording_audio_block_fails(tmp_path: Path) -> None:
    report = edit(record(tmp_path), lambda m: m.update(audio=None))
    only(report, "manifest.json: segments list audio (4 of them)")


# -- the manifest's numbers against the files -------------------------------------------
def test_a_segment_packet_count_edited_fails(tmp_path: Path) -> None:
    def more(m: dict[str, Any]) -> None:
        m["segments"][1]["audio"]["packets"] += 1
        m["audio"]["packets"] += 1

    report = edit(record(tmp_path), more)
    [line] = only(report, "segment-0001.ts: ", "audio packets decoded, manifest says")
    decoded, said = (int(w) for w in line.split() if w.isdigit())
    assert said == decoded + 1
    assert len(report.problems) == 1


def test_totals_that_do_not_add_up_fail(tmp_path: Path) -> None:
    def totals(m: dict[str, Any]) -> None:
        m["audio"]["packets"] -= 1
        m["audio"]["samples"] -= 1024
        m["audio"]["end_time"] += 0.5

    report = edit(record(tmp_path), totals)
    only(report, "manifest.json: audio.packets is", "audio packet count does not add up")
    only(report, "manifest.json: audio.samples is", "the segments cover")
    only(report, "manifest.json: audio.end_time is", "the segments say")


@pytest.mark.parametrize("codec, moved", [("h264", 2 / 90_000), ("mjpeg", 0.002)])
def test_segment_audio_times_are_held_to_the_container(
    tmp_path: Path, codec: str, moved: float
) -> None:
    """Two 90 kHz ticks in MPEG-TS, two milliseconds in Matroska: beyond what each keeps."""

    def move(m: dict[str, Any]) -> None:
        m["segments"][2]["audio"]["start_time"] = r6(
            m["segments"][2]["audio"]["start_time"] + moved
        )

    ext = "ts" if codec == "h264" else "mkv"
    report = edit(record(tmp_path, codec), move)
    only(report, f"segment-0002.{ext}: first audio packet at", "manifest audio.start_time says")

    def end(m: dict[str, Any]) -> None:
        m["segments"][2]["audio"]["end_time"] = r6(m["segments"][2]["audio"]["end_time"] + 0.03)

    report = edit(record(tmp_path / "again", codec), end)
    only(report, f"segment-0002.{ext}: last audio packet at", "within one AAC frame after it")


def test_a_flipped_byte_in_an_audio_packet_names_the_segment(tmp_path: Path) -> None:
    rec = record(tmp_path)
    path = rec / "segment-0001.ts"
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as c:
        packet = next(bytes(p) for p in c.demux(c.streams.audio[0]) if p.size > 60)
    # An ADTS header and the first bytes of the frame lie in one TS packet's payload.
    at = data.find(packet[:24])
    assert at > 0
    data[at + 12] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify_recording(rec)
    assert "segment-0001.ts: sha256 mismatch (altered or damaged)" in report.problems
    assert all("segment-0001.ts" in p or p.startswith("audio:") for p in report.problems)
    # The packet that changed is named by its own hash in the signed manifest.
    index = [
        i
        for i, h in enumerate(load(rec)["segments"][1]["audio"]["packet_sha256"])
        if h == hashlib.sha256(raw_aac(packet)).hexdigest()
    ]
    assert len(index) == 1
    assert any(
        p.startswith(f"segment-0001.ts: audio packet {index[0]} at ")
        and p.endswith(": sha256 does not match the manifest's")
        for p in report.problems
    ), report.problems
    no_internal_error(report)


def test_every_closed_segment_lists_its_audio_packets_hashes(tmp_path: Path) -> None:
    """One sha256 per raw AAC frame, in order, equal to what the file holds (TS: ADTS removed)."""
    rec = record(tmp_path)
    for seg in load(rec)["segments"]:
        with av.open(str(rec / seg["file"])) as c:
            held = [
                hashlib.sha256(raw_aac(bytes(p))).hexdigest()
                for p in c.demux(c.streams.audio[0])
                if p.size
            ]
        assert seg["audio"]["packet_sha256"] == held
        assert len(held) == seg["audio"]["packets"]


# -- the command ------------------------------------------------------------------------
def test_the_report_has_one_audio_line_and_json_an_audio_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Made here, the recording is not signed: the command says so, and still hears it."""
    rec = record(tmp_path)
    assert main(["verify", str(rec)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"FAIL  {rec}"
    assert lines[1].startswith("      audio: aac 48 kHz mono, 3.5 s, ")
    assert ", 3 clicks, A/V offset mean " in lines[1]
    assert sum("audio:" in line for line in lines) == 1  # no finding about the sound
    assert "      - manifest.json: not signed" in lines
    assert main(["verify", "--json", str(rec)]) == 1
    [out] = json.loads(capsys.readouterr().out)["recordings"]
    audio = out["audio"]
    assert (audio["codec"], audio["rate"], audio["channels"], audio["source"]) == (
        "aac",
        RATE,
        1,
        "synthetic",
    )
    assert audio["clicks"] == 3 and abs(audio["offset_max_ms"]) < 1.0
    assert audio["packets"] == load(rec)["audio"]["packets"] and audio["gaps"] == 0


def test_a_failed_sync_shows_in_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = record(tmp_path, shift=0.015)
    assert main(["verify", str(rec)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {rec}" in out
    assert "      audio: aac 48 kHz mono" in out and "A/V offset mean +15.0 ms, max 15.0 ms" in out
    assert "      - audio: A/V offset +15.0 ms at frame " in out


# -- hostile manifests ------------------------------------------------------------------
GOOD_BLOCK: dict[str, Any] = {
    "codec": "aac",
    "rate": RATE,
    "channels": 1,
    "bitrate": 64_000,
    "source": "synthetic",
    "pre_event": False,
    "start_time": 1.0,
    "first_time": 1.0,
    "end_time": 2.0,
    "packets": 1,
    "samples": 48_000,
    "gaps": [],
}
GOOD_ENTRY: dict[str, Any] = {
    "packets": 1,
    "first_sample": 48_000,
    "end_sample": 96_000,
    "start_time": 1.0,
    "end_time": 2.0,
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def begin(block: Any, entry: Any) -> list[str]:
    problems: list[str] = []
    AudioCheck.begin({"audio": block, "segments": [{"audio": entry}]}, Expect(fps=30), problems)
    return problems


def test_a_good_block_has_nothing_to_say() -> None:
    assert begin(GOOD_BLOCK, GOOD_ENTRY) == []


@settings(max_examples=200)
@given(
    where=st.sampled_from([("audio", k) for k in AUDIO] + [("entry", k) for k in SEGMENT_AUDIO]),
    value=JSON,
)
def test_any_value_in_any_field_is_judged_never_raised(where: tuple[str, str], value: Any) -> None:
    which, key = where
    block, entry = dict(GOOD_BLOCK), dict(GOOD_ENTRY)
    (block if which == "audio" else entry)[key] = value
    problems = begin(block, entry)
    rules = AUDIO if which == "audio" else SEGMENT_AUDIO
    name = f"audio.{key}" if which == "audio" else f"segments[0].audio.{key}"
    if not rules[key].ok(value):
        assert any(name in p for p in problems), problems


@settings(max_examples=100)
@given(block=JSON, entry=JSON)
def test_any_audio_block_is_judged_never_raised(block: Any, entry: Any) -> None:
    problems = begin(block, entry)
    if block is not None and not isinstance(block, dict):
        assert "manifest.json: audio is" in problems[0]


def test_an_edited_block_in_a_real_recording_is_named(tmp_path: Path) -> None:
    report = edit(record(tmp_path), lambda m: m["audio"].update(rate="48k", gaps={}))
    only(report, 'manifest.json: audio.rate is "48k", expected a whole number > 0')
    only(report, "manifest.json: audio.gaps is an object, expected a list")
    no_internal_error(report)


# -- end to end: the firmware's own recordings (sim.device.SimDevice via the CI scenarios) ----
def one_recording(storage: Path) -> Path:
    [rec] = [p for p in storage.iterdir() if (p / MANIFEST).is_file()]
    return rec


@pytest.mark.xdist_group("ci_scenarios")
@pytest.mark.parametrize("name", ["audio_trigger", "audio_pre_event", "microphone_disconnect"])
def test_the_firmwares_recordings_verify_in_sync(ci_run: Any, name: str) -> None:
    storage = ci_run(name).storage
    rec = one_recording(storage)
    report = verify_recording(rec, keys_beside(storage))
    assert report.ok, report.problems
    audio, m = report.audio, load(rec)
    assert audio is not None and audio.sync is not None
    assert audio.source == "synthetic" and audio.packets == m["audio"]["packets"] > 0
    # A click at every whole second the sound covers (none missing), each within 1 ms.
    assert not audio.sync.frames_without_click
    assert len(audio.sync.matched) >= 7
    assert audio.sync.max_abs_offset is not None and audio.sync.max_abs_offset < 1e-3
    assert audio.gaps == (1 if name == "microphone_disconnect" else 0)
    # Sound from the trigger's first edge, or from the first pre-event frame.
    start = m["start_time"] if m["audio"]["pre_event"] else m["trigger"]["time"]
    assert m["audio"]["start_time"] == pytest.approx(start, abs=1e-6)


@pytest.mark.xdist_group("ci_scenarios")
def test_the_firmwares_gap_undeclared_fails(ci_run: Any, tmp_path: Path) -> None:
    storage = ci_run("microphone_disconnect").storage
    rec = Path(shutil.copytree(one_recording(storage), tmp_path / "rec"))
    [gap] = load(rec)["audio"]["gaps"]
    report = edit(rec, undeclare)
    [line] = only(report, "audio jumps", "and no audio gap is declared there")
    samples = gap["samples"]
    assert f"jumps {samples} samples ({samples / RATE * 1000:.1f} ms) at {gap['end']:.4f} s" in line
    assert line.startswith("segment-000")
