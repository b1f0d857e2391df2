"""Power loss: journal, recovery, and real SIGKILLs of a running firmware.

Recovery runs on evidence, so these tests hold it to SPEC section 7: no byte
is deleted or added, an unreadable journal line is skipped and reported, cut
bytes are kept beside their segment, a short segment is described by the
frames that decode whole, and what recovery did is in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from camera.cli import main
from camera.evidence.journal import read_journal_lines
from camera.evidence.records import JOURNAL
from camera.evidence.verify import Prefix, verify_recording
from camera.recovery import RecoveryError, interrupted, recover_recording, recover_storage
from hal.storage.local import LocalStorage
from sim.killtest import check_recovered, on_disk_codes, run_trials, vouched_frames
from tests.conftest import make_device

DATA = Path(__file__).resolve().parent / "data"
SMALL = {"buffer": {"pre_event": 2.0}, "recording": {"segment_seconds": 2.0}}


def crash_mid_recording(tmp_path: Path, until: float) -> Path:
    """Trigger at 3.0 (segments from 1.0, 3.0, 5.0, ...), run to ``until`` and abandon
    the device: no shutdown, as when power is cut. Returns the recording."""
    dev = make_device(tmp_path, SMALL)
    dev.set_input(3.0, "holster", True)
    dev.run(until=until)
    dev.hal.storage.unlock()  # the process is gone: the kernel drops its lock
    [rec] = [p for p in Path(dev.hal.storage.root).iterdir() if p.is_dir()]
    return rec


def segment_bytes(rec: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(rec.glob("segment-*"))}


def picture_hashes(path: Path, end: int | None = None) -> list[str]:
    """One hash per decoded picture (every pixel): a torn picture differs from the whole one."""
    with path.open("rb") as f, av.open(f if end is None else Prefix(f, end), format="mpegts") as c:
        return [
            hashlib.sha256(fr.to_ndarray(format="yuv420p").tobytes()).hexdigest()
            for fr in c.decode(video=0)
        ]


@pytest.fixture(scope="module")
def small_crash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interrupted recording: four 2 s segments, the last one open with unsynced bytes."""
    return crash_mid_recording(tmp_path_factory.mktemp("crash"), 8.3)


@pytest.fixture(scope="module")
def unsynced_crash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cut at 7.1, after segment-0003 opened at 7.0 and before its first sync at 7.5."""
    return crash_mid_recording(tmp_path_factory.mktemp("unsynced"), 7.1)


@pytest.fixture(scope="module")
def small_reference(small_crash: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The manifest recovery writes from the undamaged journal."""
    root = tmp_path_factory.mktemp("ref")
    shutil.copytree(small_crash, root / small_crash.name)
    return recover_recording(LocalStorage(root), small_crash.name)


@pytest.fixture
def copy_of(tmp_path: Path):
    def copy(rec: Path) -> Path:
        shutil.copytree(rec, tmp_path / "store" / rec.name)
        return tmp_path / "store" / rec.name

    return copy


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def same_segments(got: list[dict], want: list[dict]) -> bool:
    """Equal entries; times within a microsecond (a described segment's come from its PTS).

    A segment described from its file (its closing record lost) has no audio
    packet hashes, which were only in that record: recovery does not make them up.
    """
    times = ("start_time", "end_time")

    def plain(entry: dict) -> dict:
        out = {k: v for k, v in entry.items() if k not in times}
        if out.get("audio"):
            out["audio"] = {k: v for k, v in out["audio"].items() if k != "packet_sha256"}
        return out

    def hashes_kept_or_none(g: dict, w: dict) -> bool:
        listed = (g.get("audio") or {}).get("packet_sha256")
        return listed is None or listed == (w.get("audio") or {}).get("packet_sha256")

    return len(got) == len(want) and all(
        plain(g) == plain(w)
        and hashes_kept_or_none(g, w)
        and all(abs(g[k] - w[k]) < 1e-6 for k in times)
        for g, w in zip(got, want, strict=True)
    )


def flip(path: Path, line: int, at: int, xor: int) -> None:
    """XOR one byte of 1-based ``line`` (never creating or removing a newline)."""
    lines = path.read_bytes().split(b"\n")
    data = bytearray(lines[line - 1])
    data[at % len(data)] ^= xor
    assert b"\n" not in data
    lines[line - 1] = bytes(data)
    path.write_bytes(b"\n".join(lines))


# -- cutting the open segment -------------------------------------------------
def test_recovery_rebuilds_manifest_and_keeps_the_cut_tail(small_crash: Path, copy_of) -> None:
    rec = copy_of(small_crash)
    root, name = rec.parent, rec.name
    assert not (rec / "manifest.json").exists() and (rec / JOURNAL).exists()
    before, vouched = segment_bytes(rec), vouched_frames(rec)
    on_disk = on_disk_codes(rec)
    storage = LocalStorage(root)
    assert interrupted(storage) == [name]
    [m] = recover_storage(storage)
    assert m["stop"]["reason"] == "power_loss"
    assert m["first_frame"] == 30  # keyframe at 1.0 = 3.0 - 2.0
    assert m["trigger"] == {
        "source": "holster",
        "time": 3.0,
        "wall_time": "2026-01-01T08:00:03.000Z",
        "position": None,  # GPS off: no fix at the trigger
    }
    # Frames past the last sync are not described, but their bytes are kept.
    assert max(on_disk) > m["last_frame"]
    [tail] = m["recovery"]["tails"]
    assert tail["file"] == "segment-0003.tail" and tail["segment"] == "segment-0003.ts"
    cut = (rec / "segment-0003.tail").read_bytes()
    assert tail["bytes"] == len(cut) > 0 and tail["sha256"] == hashlib.sha256(cut).hexdigest()
    assert tail["offset"] == (rec / "segment-0003.ts").stat().st_size
    assert check_recovered(before, vouched, rec) == []  # bytes kept, vouched frames all there
    report = verify_recording(rec)
    assert report.ok, report.problems
    assert report.codes == list(range(30, m["last_frame"] + 1))
    assert interrupted(storage) == []  # idempotent: nothing left to do
    assert recover_storage(storage) == []


def test_torn_journal_line_is_skipped_and_reported(small_crash: Path, copy_of) -> None:
    rec = copy_of(small_crash)
    root, name = rec.parent, rec.name
    journal = root / name / JOURNAL
    lines = journal.read_bytes().count(b"\n")
    with journal.open("ab") as f:
        f.write(b'{"sync": {"file": "segment-00')  # power cut mid-line
    [m] = recover_storage(LocalStorage(root))
    assert verify_recording(root / name).ok
    assert m["recovery"]["skipped_journal_lines"] == [lines + 1]
    assert m["frames"] > 0


def test_next_boot_recovers_and_cli_recover_reports(
    small_crash: Path, copy_of, tmp_path: Path, capsys
) -> None:
    rec = copy_of(small_crash)
    root, name = rec.parent, rec.name
    assert main(["recover", str(root)]) == 0
    assert "FIXED" in capsys.readouterr().out
    manifest = json.loads((root / name / "manifest.json").read_text())
    assert manifest["stop"]["reason"] == "power_loss"
    # A second crash, then a boot on the same storage: recovered before buffering.
    (root / name / "manifest.json").unlink()
    dev = make_device(tmp_path)
    assert any(e["kind"] == "recovered" for e in dev.firmware.events)
    dev.shutdown()
    assert verify_recording(root / name).ok


def test_never_synced_segment_is_kept_whole_as_a_tail(unsynced_crash: Path, copy_of) -> None:
    rec = copy_of(unsynced_crash)
    before, vouched = segment_bytes(rec), vouched_frames(rec)
    assert len(before.get("segment-0003.ts", b"")) > 0
    assert "segment-0003.ts" not in json.dumps(read_journal_lines(rec / JOURNAL).of("sync"))
    [m] = recover_storage(LocalStorage(rec.parent))
    assert [s["file"] for s in m["segments"]] == [f"segment-000{i}.ts" for i in range(3)]
    [tail] = m["recovery"]["tails"]
    assert (tail["file"], tail["offset"]) == ("segment-0003.tail", 0)
    assert not (rec / "segment-0003.ts").exists()
    assert (rec / "segment-0003.tail").read_bytes() == before["segment-0003.ts"]
    assert check_recovered(before, vouched, rec) == []
    assert verify_recording(rec).ok


# -- damaged journal lines ------------------------------------------------------
def expected_after_losing(line: int, ref: dict, rec: Path) -> list[dict]:
    """The segments recovery must describe when journal ``line`` is unreadable.

    The same as from the whole journal, except when the lost line is the open
    segment's last sync: then it is cut back to the sync before (the rest is
    kept in its tail).
    """
    records = read_journal_lines(rec / JOURNAL).records
    open_file = ref["segments"][-1]["file"]
    syncs = [r for r in records if r.kind == "sync" and r.payload["file"] == open_file]
    if syncs[-1].line != line:
        return ref["segments"]
    previous = syncs[-2].payload
    return [*ref["segments"][:-1], {**previous, "sha256": "(of the shorter file)"}]


def test_every_damaged_journal_line_is_skipped_and_costs_no_evidence(
    small_crash: Path, small_reference: dict, scratch: Path
) -> None:
    journal = small_crash / JOURNAL
    lines = journal.read_bytes().count(b"\n")
    before = segment_bytes(small_crash)
    # The head, three closed segments and the open one, each with its syncs (the
    # pre-event's segment has one: it is flushed in one durable step).
    assert lines >= 13
    for line in range(1, lines + 1):
        rec = scratch / str(line) / small_crash.name
        shutil.copytree(small_crash, rec)
        flip(rec / JOURNAL, line, at=len(rec.name) + line, xor=0x01)
        storage = LocalStorage(rec.parent)
        if line == 1:  # the head: nothing to rebuild from, and nothing touched
            with pytest.raises(RecoveryError, match=r"unreadable lines: 1\)"):
                recover_recording(storage, rec.name)
            assert segment_bytes(rec) == before
            continue
        m = recover_recording(storage, rec.name)
        assert m["recovery"]["skipped_journal_lines"] == [line], line
        assert check_recovered(before, set(), rec) == [], line
        want = expected_after_losing(line, small_reference, small_crash)
        got = m["segments"]
        assert same_segments(got[:-1], want[:-1]), line
        assert same_segments([{**got[-1], "sha256": ""}], [{**want[-1], "sha256": ""}]), line


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.integers(2, 40), at=st.integers(0, 400), xor=st.integers(1, 255))
def test_damaged_journal_line_recovers_and_verifies(
    small_crash: Path, line: int, at: int, xor: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        rec = Path(scratch) / small_crash.name
        shutil.copytree(small_crash, rec)
        damaged_line_recovers_and_verifies(rec, line, at, xor)


def damaged_line_recovers_and_verifies(rec: Path, line: int, at: int, xor: int) -> None:
    lines = (rec / JOURNAL).read_bytes().split(b"\n")
    assume(line < len(lines) and (lines[line - 1][at % len(lines[line - 1])] ^ xor) != 0x0A)
    before = segment_bytes(rec)
    vouched = vouched_frames(rec, without_line=line)  # what the other lines vouch for
    flip(rec / JOURNAL, line, at, xor)
    try:  # a tab or CR for a space is still the same record
        intact = json.loads(lines[line - 1]) == json.loads(
            (rec / JOURNAL).read_bytes().split(b"\n")[line - 1]
        )
    except ValueError:
        intact = False
    assert main(["recover", str(rec)]) == 0
    m = json.loads((rec / "manifest.json").read_text())
    assert m["recovery"]["skipped_journal_lines"] == ([] if intact else [line])
    assert check_recovered(before, vouched, rec) == []
    # `bodycam recover` holds no device key: the content verifies, the signature is absent.
    assert verify_recording(rec).ok


def test_lost_closed_record_is_described_from_the_segment_itself(
    small_crash: Path, small_reference: dict, copy_of
) -> None:
    rec = copy_of(small_crash)
    records = read_journal_lines(rec / JOURNAL).records
    closed = [r for r in records if r.kind == "segment"]
    assert len(closed) >= 2
    for r in closed:  # every close record lost: each segment described from its bytes
        flip(rec / JOURNAL, r.line, at=20, xor=0x04)
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert same_segments(m["segments"], small_reference["segments"])
    assert m["recovery"]["unclosed_segments"] == [r.payload["file"] for r in closed]
    assert verify_recording(rec).ok


def test_journal_without_checksums_is_still_read(
    small_crash: Path, small_reference: dict, copy_of
) -> None:
    """Journals of older firmware have no crc32; the same facts rebuild the same manifest."""
    rec = copy_of(small_crash)
    old = [json.loads(x) for x in (rec / JOURNAL).read_text().splitlines()]
    for obj in old:
        del obj["crc32"]
    (rec / JOURNAL).write_text("".join(json.dumps(obj) + "\n" for obj in old))
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert m == small_reference


def test_line_without_checksum_in_a_checksummed_journal_is_skipped(
    small_crash: Path, copy_of
) -> None:
    rec = copy_of(small_crash)
    lines = (rec / JOURNAL).read_text().splitlines()
    forged = json.loads(lines[3])
    del forged["crc32"]
    forged[next(iter(forged))]["bytes"] = 1  # would make recovery cut a segment short
    lines[3] = json.dumps(forged)
    (rec / JOURNAL).write_text("\n".join(lines) + "\n")
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    assert m["recovery"]["skipped_journal_lines"] == [4]
    assert verify_recording(rec).ok


# -- short segments ----------------------------------------------------------------
@pytest.fixture(scope="module")
def open_segment(small_crash: Path) -> tuple[str, int, int, list[str]]:
    """The open segment's name, first synced size, last synced size, and its pictures."""
    records = read_journal_lines(small_crash / JOURNAL)
    name = sorted(p.name for p in small_crash.glob("segment-*"))[-1]
    syncs = [s for s in records.of("sync") if s["file"] == name]
    return name, syncs[0]["bytes"], syncs[-1]["bytes"], picture_hashes(small_crash / name)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fraction=st.floats(0.0, 1.0))
def test_short_open_segment_is_kept_as_it_is_and_described_by_whole_frames(
    small_crash: Path, open_segment: tuple[str, int, int, list[str]], fraction: float
) -> None:
    """Lost blocks: the open segment ends anywhere from its first sync to its end."""
    with tempfile.TemporaryDirectory() as scratch:
        rec = Path(scratch) / small_crash.name
        shutil.copytree(small_crash, rec)
        short_open_segment(rec, open_segment, fraction)


def short_open_segment(
    rec: Path, open_segment: tuple[str, int, int, list[str]], fraction: float
) -> None:
    name, first_sync, _, pictures = open_segment
    original = (rec / name).read_bytes()
    size = first_sync + round(fraction * (len(original) - 1 - first_sync))
    (rec / name).write_bytes(original[:size])
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    kept = (rec / name).read_bytes()
    assert original[: len(kept)] == kept  # never extended, never altered
    tail = rec / name.replace(".ts", ".tail")
    assert kept + (tail.read_bytes() if tail.exists() else b"") == original[:size]
    [entry] = [s for s in m["segments"] if s["file"] == name]
    assert entry["sha256"] == hashlib.sha256(kept).hexdigest() and entry["bytes"] == len(kept)
    shorts = {s["file"]: s for s in m["recovery"]["short_segments"]}
    end = shorts[name]["complete_bytes"] if name in shorts else None
    if name in shorts:
        assert shorts[name]["bytes"] == size < shorts[name]["journal_bytes"]
    # The frames described are whole: identical, picture by picture, to the originals.
    assert picture_hashes(rec / name, end) == pictures[: entry["frames"]]
    report = verify_recording(rec)
    assert report.ok, report.problems
    assert report.codes == list(range(m["first_frame"], m["last_frame"] + 1))


def test_short_closed_segment_is_described_and_its_loss_named(small_crash: Path, copy_of) -> None:
    rec = copy_of(small_crash)
    closed = read_journal_lines(rec / JOURNAL).of("segment")[0]
    data = (rec / closed["file"]).read_bytes()
    (rec / closed["file"]).write_bytes(data[: len(data) * 2 // 3])  # lost blocks
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    [short] = m["recovery"]["short_segments"]
    assert short["file"] == closed["file"] and short["journal_bytes"] == len(data)
    assert 0 < short["frames"] < closed["frames"]
    assert (rec / closed["file"]).stat().st_size == len(data) * 2 // 3
    report = verify_recording(rec)
    # Described as it is, so its own checks pass; the frames it lost are named.
    assert not [p for p in report.problems if p.startswith(closed["file"] + ": sha256")]
    assert any("undeclared gap" in p for p in report.problems), report.problems


# -- tails and verification ----------------------------------------------------------
def test_verify_checks_tails_against_the_manifest(small_crash: Path, copy_of) -> None:
    rec = copy_of(small_crash)
    m = recover_recording(LocalStorage(rec.parent), rec.name)
    [tail] = m["recovery"]["tails"]
    assert verify_recording(rec).ok
    path = rec / tail["file"]
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    assert any(f"{tail['file']}: sha256 mismatch" in p for p in verify_recording(rec).problems)
    data[0] ^= 1
    path.write_bytes(bytes(data))
    (rec / "segment-0042.tail").write_bytes(b"planted")
    assert verify_recording(rec).problems == ["segment-0042.tail: on disk but not in the manifest"]


class PowerCut(Exception):
    """The battery went during recovery."""


class CuttingStorage(LocalStorage):
    """Loses power at its ``at``-th change to the card (a temp file half written)."""

    def __init__(self, root: Path, at: int) -> None:
        super().__init__(root)
        self.at = at
        self.changes = 0

    def _change(self) -> None:
        self.changes += 1
        if self.changes == self.at:
            raise PowerCut

    def write_atomic(self, rel: str, data: bytes) -> None:
        if self.changes + 1 == self.at:
            path = self.path(rel)
            path.with_name(f".{path.name}.tmp").write_bytes(data[: len(data) // 2])
        self._change()
        super().write_atomic(rel, data)

    def truncate(self, rel: str, size: int) -> None:
        self._change()
        super().truncate(rel, size)

    def remove(self, rel: str) -> None:
        self._change()
        super().remove(rel)


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_power_cut_during_recovery_loses_nothing_and_a_rerun_finishes(
    unsynced_crash: Path, copy_of, tmp_path: Path, at: int
) -> None:
    """Cut at each change recovery makes: tail write, truncate, remove, manifest write."""
    rec = copy_of(unsynced_crash)
    root, name = rec.parent, rec.name
    before, vouched = segment_bytes(rec), vouched_frames(rec)
    reference = tmp_path / "reference"
    shutil.copytree(rec, reference / name)
    want = recover_recording(LocalStorage(reference), name)
    with pytest.raises(PowerCut):
        recover_recording(CuttingStorage(root, at), name)
    assert interrupted(LocalStorage(root)) == [name]
    [m] = recover_storage(LocalStorage(root))
    assert m == want
    assert segment_bytes(rec) == segment_bytes(reference / name)
    assert sorted(p.name for p in rec.iterdir()) == sorted(
        p.name for p in (reference / name).iterdir()
    )
    assert check_recovered(before, vouched, rec) == []


# -- real kills ------------------------------------------------------------------
@pytest.mark.kill
def test_sigkill_mid_recording_loses_nothing_durable(tmp_path: Path) -> None:
    kills = 3
    report = run_trials(DATA / "kill.toml", tmp_path, kills=kills, seed=1)
    assert report.failures == []
    assert report.kills == kills
    # Kills wait for journal progress, so (host speed aside) they land mid-recording.
    assert report.kill_points >= kills // 2
    assert report.interrupted >= report.kill_points
