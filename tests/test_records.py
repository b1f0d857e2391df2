"""The on-disk records (camera/evidence/records.py) and the journal that writes and reads them.

What must not drift: the manifest's keys and their order (byte-identical
runs, and anything later signed over them), a record read back from the
journal writing the same JSON it was read from, and the journal refusing a
record it could not turn back into its type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.evidence.journal import Journal, read_journal_lines
from camera.evidence.manifest import dumps, write_manifest
from camera.evidence.records import (
    ABSENT,
    FORMAT,
    JOURNAL,
    MANIFEST,
    ORDER,
    AudioGap,
    AudioGapCause,
    AudioHead,
    AudioSpan,
    Gap,
    GapCause,
    Head,
    Manifest,
    Marker,
    PreEventDropped,
    RecoveryInfo,
    Segment,
    Stop,
    StopReason,
    Sync,
    Tail,
    Timing,
    Trigger,
    WallStep,
)
from hal.storage.local import LocalStorage
from sim.scenario import Expect

times = st.floats(0, 1e6, allow_nan=False) | st.integers(0, 10**6)
counts = st.integers(0, 2**32 - 1)
texts = st.text(min_size=1, max_size=20)
files = st.from_regex(r"segment-[0-9]{4}\.(ts|mkv)", fullmatch=True)
causes = st.sampled_from(GapCause)

triggers = st.builds(
    Trigger, source=texts, detail=st.none() | st.text(), time=times, wall_time=texts
)
#: Sample numbers and audio times may lie before boot (the encoder's priming packet).
samples = st.integers(-(2**40), 2**40)
audio_times = st.floats(-1.0, 1e6, allow_nan=False) | st.integers(-1, 10**6)
audio_spans = st.builds(
    AudioSpan,
    packets=st.integers(1, 2**32),
    first_sample=samples,
    end_sample=samples,
    start_time=audio_times,
    end_time=audio_times,
)
audio_heads = st.builds(
    AudioHead,
    codec=st.just("aac"),
    rate=st.sampled_from([16_000, 48_000]),
    channels=st.integers(1, 2),
    bitrate=st.integers(16_000, 320_000),
    source=st.none() | texts,
    pre_event=st.booleans(),
    start_time=times,
)
heads = st.builds(
    Head,
    format=st.just(FORMAT),
    device_id=texts,
    recording_id=texts,
    codec=st.sampled_from(["h264", "mjpeg"]),
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
    fps=st.integers(1, 120) | st.floats(0.5, 120),
    trigger=triggers,
    pre_event_requested=times,
    pre_event_dropped=st.none()
    | st.builds(
        PreEventDropped, start=times, end=times, first_frame=counts, frames=counts, cause=causes
    ),
    encoder=st.none() | texts,
    timing=st.none() | st.sampled_from(Timing),
    audio=st.just(ABSENT) | st.none() | audio_heads,
)
spans = {
    "file": files,
    "bytes": counts,
    "frames": counts,
    "first_frame": counts,
    "last_frame": counts,
    "start_time": times,
    "end_time": times,
}
journal_records = st.one_of(
    heads,
    st.builds(Sync, audio=st.none() | audio_spans, **spans),
    st.builds(
        Segment,
        sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
        audio=st.none() | audio_spans,
        frame_sha256=st.none() | st.lists(texts, max_size=3).map(tuple),
        **spans,
    ),
    st.builds(
        AudioGap,
        start=audio_times,
        end=audio_times,
        first_sample=samples,
        samples=counts,
        cause=st.sampled_from(AudioGapCause),
    ),
    st.builds(Marker, source=texts, detail=st.none() | st.text(), time=times),
    st.builds(Gap, start=times, end=times, first_frame=counts, frames=counts, cause=causes),
    st.builds(WallStep, time=times, seconds=st.floats(-1e9, 1e9) | st.integers(-10, 10)),
    st.builds(Stop, reason=st.sampled_from(StopReason), time=times),
)


def journal_file(tmp_path: Path) -> tuple[Journal, Path]:
    storage = LocalStorage(tmp_path)
    storage.makedirs("rec")
    return Journal(storage, "rec"), tmp_path / "rec" / JOURNAL


def test_manifest_keys_keep_their_order() -> None:
    """The file's key order (SPEC 7 and what recordings on cards already hold)."""
    assert ORDER == (
        "format",
        "device_id",
        "recording_id",
        "codec",
        "encoder",  # optional: which implementation ran (absent in older manifests)
        "width",
        "height",
        "fps",
        "timing",  # optional: exact (virtual clock) or sensor (capture times)
        "trigger",
        "pre_event_seconds",
        "pre_event_requested",
        "pre_event_dropped",
        "start_time",
        "end_time",
        "stop",
        "frames",
        "first_frame",
        "last_frame",
        "dropped_frames",
        "gaps",
        "markers",
        "wall_clock_steps",
        "track",  # [] when GPS is off; absent in manifests from before GPS
        "audio",  # null when audio is off; absent in manifests from before audio
        "segments",
        "recovery",
        # SPEC 12: who wrote it, with what, after which recording; then the signature.
        "firmware_version",
        "config_sha256",
        "key_id",
        "test_key",
        "previous",
        "signature",
    )


def test_stop_reasons_are_the_specs_and_the_scenarios() -> None:
    spec = ["button_hold", "console", "end_of_run", "storage_full", "power_loss"]
    assert [r.value for r in StopReason] == spec
    list_type, _ = get_args(Expect.model_fields["stop_reasons"].annotation)
    (literal,) = get_args(list_type)
    assert list(get_args(literal)) == spec


def test_optional_fields_are_left_out_while_none() -> None:
    plain = Marker(source="button", time=1.5)
    assert list(plain.to_json()) == ["source", "time"]
    qualified = Trigger(source="console", detail="holster", time=2.0, wall_time="w")
    assert list(qualified.to_json()) == ["source", "detail", "time", "wall_time"]
    assert Stop(reason=StopReason.CONSOLE, time=3.0).to_json() == {"reason": "console", "time": 3.0}
    assert type(Stop(reason=StopReason.CONSOLE, time=3.0).to_json()["reason"]) is str


def build(
    segments: list[Segment],
    gaps: list[Gap],
    recovery: RecoveryInfo | None,
    audio: AudioHead | None = None,
    audio_gaps: tuple[AudioGap, ...] = (),
) -> Manifest:
    head = Head(
        format=FORMAT,
        device_id="D",
        recording_id="D_1",
        codec="h264",
        width=640,
        height=360,
        fps=30,
        trigger=Trigger(source="holster", time=12.0, wall_time="w"),
        pre_event_requested=10.0,
        encoder="libx264",
        timing=Timing.EXACT,
        audio=audio,
    )
    stop = Stop(reason=StopReason.END_OF_RUN, time=20.0)
    return Manifest.build(
        head, segments, stop, [], gaps, [], recovery, audio_gaps=audio_gaps, track=[]
    )


def test_build_adds_up_segments_and_counts_only_the_firmwares_drops() -> None:
    seg = Segment(
        file="segment-0000.ts",
        sha256="0" * 64,
        bytes=10,
        frames=5,
        first_frame=3,
        last_frame=9,
        start_time=2.0000004,
        end_time=2.2,
    )
    gaps = [
        Gap(start=1.0, end=1.0, first_frame=4, frames=1, cause=GapCause.CAMERA),
        Gap(start=1.1, end=1.1, first_frame=6, frames=2, cause=GapCause.WRITER_BACKLOG),
        Gap(start=1.2, end=1.2, first_frame=8, frames=1, cause=GapCause.ENCODER_BACKLOG),
    ]
    m = build([seg, seg], gaps, None).to_json()
    # Recovery only after an interruption; provenance and signature come from custody.
    assert list(m) == list(ORDER[: ORDER.index("recovery")])
    assert (m["frames"], m["first_frame"], m["last_frame"]) == (10, 3, 9)
    assert m["dropped_frames"] == 3
    assert (m["start_time"], m["pre_event_seconds"]) == (2.0, 10.0)
    assert m["segments"][0]["start_time"] == 2.0000004  # a segment's own times are kept as they are
    assert m["pre_event_dropped"] is None


def test_build_without_segments_and_with_recovery() -> None:
    m = build(
        [], [], RecoveryInfo(tails=[Tail(file="t", segment="s", offset=0, bytes=1, sha256="x")])
    )
    j = m.to_json()
    assert (j["frames"], j["first_frame"], j["last_frame"]) == (0, None, None)
    assert j["start_time"] == j["end_time"] == 12.0
    assert j["recovery"]["tails"] == [
        {"file": "t", "segment": "s", "offset": 0, "bytes": 1, "sha256": "x"}
    ]
    assert list(j["recovery"]) == [
        "skipped_journal_lines",
        "tails",
        "short_segments",
        "unclosed_segments",
        "missing_segments",
    ]


def test_written_manifest_is_its_canonical_bytes(tmp_path: Path) -> None:
    m = build([], [], None)
    write_manifest(LocalStorage(tmp_path), ".", m)
    data = (tmp_path / MANIFEST).read_bytes()
    assert data == dumps(m) == dumps(m.to_json())
    assert data.endswith(b"}\n") and json.loads(data) == m.to_json()


@given(record=journal_records)
def test_a_journal_record_reads_back_as_itself(
    tmp_path_factory: pytest.TempPathFactory, record: Any
) -> None:
    journal, path = journal_file(tmp_path_factory.mktemp("j"))
    journal.append(record)
    journal.close()
    contents = read_journal_lines(path)
    assert contents.skipped == []
    (back,) = contents.of_type(type(record))
    assert back == record
    assert json.dumps(back.to_json()) == json.dumps(record.to_json())


#: A journal head as the first firmware wrote it: none of the fields added since.
OLDEST_HEAD = {
    "format": FORMAT,
    "device_id": "D",
    "recording_id": "D_1",
    "codec": "h264",
    "width": 640,
    "height": 360,
    "fps": 30,
    "trigger": {"source": "holster", "time": 1.0, "wall_time": "w"},
    "pre_event_requested": 10.0,
}


def test_head_of_older_firmware_has_no_pre_event_dropped(tmp_path: Path) -> None:
    head = OLDEST_HEAD
    path = tmp_path / JOURNAL
    path.write_text(json.dumps({"head": head}) + "\n")
    (read,) = read_journal_lines(path).of_type(Head)
    assert read.pre_event_dropped is None
    assert read.to_json() == {**head, "pre_event_dropped": None}


def test_older_heads_build_manifests_without_encoder_and_timing() -> None:
    """Journals of older firmware recover into manifests shaped as they were."""
    old = Head.from_json(OLDEST_HEAD)
    stop = Stop(reason=StopReason.POWER_LOSS, time=2.0)
    m = Manifest.build(old, [], stop, [], []).to_json()
    assert "encoder" not in m and "timing" not in m and "audio" not in m
    new = build([], [], None).to_json()
    assert (new["encoder"], new["timing"]) == ("libx264", "exact")
    assert type(new["timing"]) is str
    assert new["audio"] is None  # audio off: said, not left out


# -- audio ------------------------------------------------------------------------
HEARD = AudioHead(
    codec="aac",
    rate=48_000,
    channels=1,
    bitrate=64_000,
    source="synthetic",
    pre_event=False,
    start_time=12.0,
)


def with_audio(file: str, span: AudioSpan | None) -> Segment:
    return Segment(
        file=file,
        sha256="0" * 64,
        bytes=10,
        frames=5,
        first_frame=3,
        last_frame=7,
        start_time=12.0,
        end_time=12.1,
        audio=span,
    )


def test_audio_block_adds_up_the_segments_and_leaves_out_the_gaps() -> None:
    """Samples are those of the packets written: a gap inside a segment's span is not,
    nor is one between two segments, which lies outside both spans."""
    spans = [
        AudioSpan(packets=10, first_sample=0, end_sample=12_240, start_time=0.0, end_time=0.255),
        AudioSpan(
            packets=3, first_sample=13_000, end_sample=16_072, start_time=0.27, end_time=0.33
        ),
    ]
    gaps = (
        AudioGap(
            start=0.1, end=0.11, first_sample=5_120, samples=2_000, cause=AudioGapCause.MICROPHONE
        ),
        AudioGap(
            start=0.25, end=0.27, first_sample=12_240, samples=760, cause=AudioGapCause.MICROPHONE
        ),
    )
    segments = [with_audio("segment-0000.ts", spans[0]), with_audio("segment-0001.ts", None)]
    segments.append(with_audio("segment-0002.ts", spans[1]))
    m = build(segments, [], None, HEARD, gaps).to_json()
    assert m["audio"] == {
        "codec": "aac",
        "rate": 48_000,
        "channels": 1,
        "bitrate": 64_000,
        "source": "synthetic",
        "pre_event": False,
        "start_time": 12.0,
        "first_time": 0.0,
        "end_time": 0.33,
        "packets": 13,
        "samples": 12_240 - 2_000 + 3_072,
        "gaps": [g.to_json() for g in gaps],
    }
    assert "audio" not in m["segments"][1]  # video-only: left out
    assert m["segments"][0]["audio"] == spans[0].to_json()


def test_audio_block_without_packets_says_so() -> None:
    whole = AudioGap(
        start=12.0, end=20.0, first_sample=576_000, samples=384_000, cause=AudioGapCause.MICROPHONE
    )
    m = build([with_audio("segment-0000.ts", None)], [], None, HEARD, (whole,)).to_json()
    a = m["audio"]
    assert (a["packets"], a["samples"], a["first_time"], a["end_time"]) == (0, 0, None, None)
    assert a["gaps"] == [whole.to_json()]


HEAD_FIELDS = (
    "format",
    "device_id",
    "recording_id",
    "codec",
    "width",
    "height",
    "fps",
    "trigger",
    "pre_event_requested",
    "pre_event_dropped",
    "encoder",
    "timing",
)


def test_old_and_new_heads_read_back_as_written(tmp_path: Path) -> None:
    """Absent (older firmware), null (audio off) and an audio head stay what they were."""
    journal, path = journal_file(tmp_path)
    base = build([], [], None)
    heads = [
        Head(**{f: getattr(base, f) for f in HEAD_FIELDS}, audio=audio)
        for audio in (ABSENT, None, HEARD)
    ]
    for head in heads:
        journal.append(head)
    journal.close()
    raw = [json.loads(line)["head"] for line in path.read_text().splitlines()]
    assert "audio" not in raw[0] and raw[1]["audio"] is None and raw[2]["audio"]["rate"] == 48_000
    assert read_journal_lines(path).of_type(Head) == heads


SYNC = {
    "file": "segment-0000.ts",
    "bytes": 1,
    "frames": 1,
    "first_frame": 0,
    "last_frame": 0,
    "start_time": 0.0,
    "end_time": 0.0,
}
GOOD_AUDIO = {
    "sync": SYNC,
    "segment": {**SYNC, "sha256": "0" * 64},
    "head": {f: v for f, v in build([], [], None).to_json().items() if f in HEAD_FIELDS},
    "audio_gap": {"start": 1.0, "end": 2.0, "first_sample": -3, "samples": 4},
}


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("audio_gap", {"cause": "x"}),
        ("audio_gap", {"cause": "microphone", "first_sample": 3.5}),
        ("sync", {"audio": {"packets": 0}}),
        ("sync", {"audio": {"packets": 2, "first_sample": 0, "end_sample": 2048}}),
        ("segment", {"audio": "loud"}),
        ("segment", {"frame_sha256": "0" * 64}),
        ("head", {"audio": {**HEARD.to_json(), "pre_event": "no"}}),
        ("head", {"audio": {**HEARD.to_json(), "rate": 0}}),
    ],
)
def test_an_audio_field_that_cannot_be_typed_is_skipped(
    tmp_path: Path, kind: str, change: dict[str, Any]
) -> None:
    path = tmp_path / JOURNAL
    good = GOOD_AUDIO[kind] | ({"cause": "microphone"} if kind == "audio_gap" else {})
    lines = [{kind: good}, {kind: {**good, **change}}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    contents = read_journal_lines(path)
    assert contents.skipped == [2], contents.why


GOOD = {
    "marker": {"source": "button", "time": 1.0},
    "gap": {"start": 1.0, "end": 1.0, "first_frame": 3, "frames": 1, "cause": "camera"},
    "wall_step": {"time": 1.0, "seconds": -3.5},
    "stop": {"reason": "console", "time": 1.0},
}


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("stop", {"reason": "battery"}),
        ("stop", {"reason": ""}),
        ("gap", {"cause": "cosmic"}),
        ("gap", {"start": None}),
        ("wall_step", {"seconds": "3"}),
        ("marker", {"detail": 7}),
    ],
)
def test_a_record_that_cannot_be_typed_is_skipped(
    tmp_path: Path, kind: str, change: dict[str, Any]
) -> None:
    """Each such line is reported like a torn one; the lines around it still count."""
    path = tmp_path / JOURNAL
    bad = {**GOOD[kind], **change}
    lines = [{kind: GOOD[kind]}, {kind: bad}, {kind: GOOD[kind]}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    contents = read_journal_lines(path)
    assert contents.skipped == [2]
    assert contents.why[2] == f"{kind} record lacks the fields it needs"
    assert len(contents.of(kind)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"trigger": {"source": "holster", "time": 1.0}},  # no wall_time
        {"trigger": {"source": "holster", "time": 1.0, "wall_time": "w", "detail": 3}},
        {"pre_event_dropped": {"start": 1.0}},
        {"pre_event_dropped": "all of it"},
        {"timing": "wobbly"},
        {"encoder": 7},
    ],
)
def test_a_head_that_cannot_be_typed_is_skipped(tmp_path: Path, change: dict[str, Any]) -> None:
    head = {**OLDEST_HEAD, **change}
    path = tmp_path / JOURNAL
    path.write_text(json.dumps({"head": head}) + "\n")
    contents = read_journal_lines(path)
    assert contents.skipped == [1] and contents.of_type(Head) == []
