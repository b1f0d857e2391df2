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
    FORMAT,
    JOURNAL,
    MANIFEST,
    ORDER,
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
    st.builds(Sync, **spans),
    st.builds(Segment, sha256=st.text("0123456789abcdef", min_size=64, max_size=64), **spans),
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


def build(segments: list[Segment], gaps: list[Gap], recovery: RecoveryInfo | None) -> Manifest:
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
    )
    stop = Stop(reason=StopReason.END_OF_RUN, time=20.0)
    return Manifest.build(head, segments, stop, [], gaps, [], recovery)


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


def test_head_of_older_firmware_has_no_pre_event_dropped(tmp_path: Path) -> None:
    head = {
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
    path = tmp_path / JOURNAL
    path.write_text(json.dumps({"head": head}) + "\n")
    (read,) = read_journal_lines(path).of_type(Head)
    assert read.pre_event_dropped is None
    assert read.to_json() == {**head, "pre_event_dropped": None}


def test_older_heads_build_manifests_without_encoder_and_timing() -> None:
    """Journals of older firmware recover into manifests shaped as they were."""
    old = Head.from_json(
        {
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
    )
    stop = Stop(reason=StopReason.POWER_LOSS, time=2.0)
    m = Manifest.build(old, [], stop, [], []).to_json()
    assert "encoder" not in m and "timing" not in m
    new = build([], [], None).to_json()
    assert (new["encoder"], new["timing"]) == ("libx264", "exact")
    assert type(new["timing"]) is str


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
    head = {
        "format": FORMAT,
        "device_id": "D",
        "recording_id": "D_1",
        "codec": "h264",
        "width": 640,
        "height": 360,
        "fps": 30,
        "trigger": {"source": "holster", "time": 1.0, "wall_time": "w"},
        "pre_event_requested": 10.0,
        **change,
    }
    path = tmp_path / JOURNAL
    path.write_text(json.dumps({"head": head}) + "\n")
    contents = read_journal_lines(path)
    assert contents.skipped == [1] and contents.of_type(Head) == []
