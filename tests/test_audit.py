"""The audit log (SPEC 12): a hash chain with signed checkpoints, torn lines told from tampering."""

from __future__ import annotations

import base64
import errno
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camera.evidence.audit import (
    AUDIT,
    GENESIS,
    AuditLog,
    format_utc,
    line_hash,
    read_audit,
    verify_audit,
)
from camera.evidence.keys import test_key
from hal.storage import DurableFile, StorageGuard
from hal.storage.local import LocalStorage
from sim.storage import SimStorage

KEY = test_key("BWC-0001", 0)
OTHER = test_key("BWC-0001", 1)
T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def utc(t: float) -> str:
    return format_utc(T0 + timedelta(seconds=t))


def write_run(root: Path, key: Any = KEY, shutdown: bool = True) -> Path:
    """A boot, a recording and (unless ``shutdown`` is False) a clean shutdown."""
    with AuditLog(root, key) as log:
        log.append("boot", 0.0, utc(0), firmware_version="0.1.0")
        log.append("config_loaded", 0.001, utc(0.001), config_sha256="ab" * 32)
        log.append("trigger", 12.25, utc(12.25), source="holster")
        log.append("marker", 15.0, utc(15), source="button")
        log.append("stop", 30.5, utc(30.5), recording_id="BWC-0001_x_0001", reason="button_hold")
        log.checkpoint(30.5, utc(30.5), "recording_stop")
        log.append("trigger", 40.0, utc(40), source="button")
        log.append("stop", 50.0, utc(50), recording_id="BWC-0001_x_0002", reason="console")
        log.checkpoint(50.0, utc(50), "recording_stop")
        if shutdown:
            log.checkpoint(60.0, utc(60), "shutdown")
    return root / AUDIT


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def rechain(lines: list[bytes], start: int, stop: int | None = None) -> list[bytes]:
    """What a forger does after an edit: recompute every prev from index ``start`` on."""
    out = list(lines)
    for i in range(start, len(out) if stop is None else stop):
        entry = json.loads(out[i])
        entry["prev"] = line_hash(out[i - 1]) if i else GENESIS
        out[i] = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
    return out


def check(path: Path, *keys: Any) -> tuple[list[str], list[str]]:
    return verify_audit(path, list(keys) or KEY.public_key)


# -- writing ----------------------------------------------------------------------------
def test_a_good_chain_verifies(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    assert check(path) == ([], [])
    entries = read_audit(path)
    assert [e["seq"] for e in entries] == list(range(10))
    lines = lines_of(path)
    assert entries[0]["prev"] == GENESIS
    for before, line in itertools.pairwise(lines):
        assert json.loads(line)["prev"] == hashlib.sha256(before).hexdigest()
    first = json.loads(lines[0])
    assert list(first)[:5] == ["seq", "event", "time", "utc", "prev"]
    assert first["utc"] == "2026-01-01T08:00:00.000Z"
    cp = entries[5]
    assert cp["event"] == "checkpoint" and cp["key_id"] == KEY.key_id and cp["test_key"] is True


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_time_is_rounded_and_utc_formatted(tmp_path: Path) -> None:
    with AuditLog(tmp_path, KEY) as log:
        e = log.append("boot", 1 / 3, datetime(2026, 5, 1, 10, 0, 0, 123999, tzinfo=UTC))
        assert e["time"] == 0.333333 and e["utc"] == "2026-05-01T10:00:00.123Z"
        plus2 = timezone(timedelta(hours=2))
        e = log.append("error", None, datetime(2026, 5, 1, 12, 0, 0, tzinfo=plus2), what="x")
        assert e["time"] is None and e["utc"] == "2026-05-01T10:00:00.000Z"
    assert check(tmp_path / AUDIT)[0] == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda log: log.append("checkpoint", 0.0, utc(0)), "written by the audit log"),
        (lambda log: log.append("torn_entry", 0.0, utc(0)), "written by the audit log"),
        (lambda log: log.append("", 0.0, utc(0)), "expected an event name"),
        (lambda log: log.append("boot", 0.0, utc(0), seq=3), "reserved"),
        (lambda log: log.append("boot", 0.0, utc(0), signature="x"), "reserved"),
        (lambda log: log.append("boot", 0.0, "2026-01-01 08:00"), "YYYY-mm-ddTHH:MM:SS.fffZ"),
        (lambda log: log.append("boot", 0.0, datetime(2026, 1, 1)), "naive"),
        (lambda log: log.append("boot", float("nan"), utc(0)), "not JSON compliant"),
    ],
)
def test_bad_calls_are_refused_and_write_nothing(tmp_path: Path, call: Any, match: str) -> None:
    with AuditLog(tmp_path, KEY) as log:
        with pytest.raises(ValueError, match=match):
            call(log)
        log.append("boot", 0.0, utc(0))
    assert [e["seq"] for e in read_audit(tmp_path / AUDIT)] == [0]
    assert check(tmp_path / AUDIT)[0] == []


def test_a_log_continues_across_boots(tmp_path: Path) -> None:
    write_run(tmp_path)
    with AuditLog(tmp_path, KEY) as log:
        assert log.next_seq == 10 and not log.torn_pending
        log.append("boot", 0.0, utc(100))
        log.checkpoint(1.0, utc(101), "shutdown")
    assert check(tmp_path / AUDIT) == ([], [])
    assert [e["seq"] for e in read_audit(tmp_path / AUDIT)] == list(range(12))


def test_through_the_storage_interface(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    with AuditLog(storage, KEY) as log:
        log.append("boot", 0.0, utc(0))
        log.checkpoint(1.0, utc(1), "shutdown")
    assert check(storage.path(AUDIT)) == ([], [])


class _Full(StorageGuard):
    full = True

    def before_write(self, nbytes: int) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_leaves_the_chain_intact(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with AuditLog(storage, KEY) as log:
        log.append("boot", 0.0, utc(0))
        storage.guard = guard = _Full()
        log.close()  # the next write reopens through the (now full) storage
        with pytest.raises(OSError, match="No space"):
            log.append("storage_full", 1.0, utc(1))
        guard.full = False
        log.append("storage_full", 2.0, utc(2))
        log.checkpoint(3.0, utc(3), "shutdown")
    assert check(tmp_path / AUDIT) == ([], [])
    assert [e["seq"] for e in read_audit(tmp_path / AUDIT)] == [0, 1, 2]


class _HalfWrite(DurableFile):
    """An I/O error after half of the bytes reached the card."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        DurableFile.write(self, bytes(data)[: len(data) // 2])
        raise OSError(errno.EIO, "Input/output error")


class _FailingOnce(LocalStorage):
    fail = True

    def open_append(self, rel: str) -> DurableFile:
        if self.fail:
            self.fail = False
            return _HalfWrite(self.path(rel), append=True)
        return super().open_append(rel)


def test_a_half_written_entry_is_recorded_as_torn(tmp_path: Path) -> None:
    write_run(tmp_path)
    with AuditLog(_FailingOnce(tmp_path), KEY) as log:
        with pytest.raises(OSError, match="Input/output"):
            log.append("error", 1.0, utc(101), what="storage")
        assert log.torn_pending  # it read the end of the file again
        log.append("error", 2.0, utc(102), what="storage")
        log.checkpoint(3.0, utc(103), "shutdown")
    problems, notes = check(tmp_path / AUDIT)
    assert problems == [] and len(notes) == 1 and "torn entry" in notes[0]
    assert [e["event"] for e in read_audit(tmp_path / AUDIT)][-3:] == [
        "torn_entry",
        "error",
        "checkpoint",
    ]


def test_a_simulated_power_cut_keeps_earlier_boots_entries(tmp_path: Path) -> None:
    """SimStorage cuts files back to their last synced size: that size is the whole file."""
    write_run(tmp_path)
    before = (tmp_path / AUDIT).read_bytes()
    storage = SimStorage(tmp_path)
    log = AuditLog(storage, KEY)
    log.append("boot", 0.0, utc(100))
    storage.power_cut()
    after = (tmp_path / AUDIT).read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    log.close()


# -- tampering ---------------------------------------------------------------------------
def test_an_edited_field_is_named(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"holster"', b'"button"')
    put(path, lines)
    problems, _ = check(path)
    assert problems == [
        "audit.jsonl line 4 (seq 3): prev does not match line 3 (entry edited or removed)"
    ]


def test_an_edit_with_the_chain_recomputed_fails_the_next_checkpoint(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b'"holster"', b'"button"')
    put(path, rechain(lines, 3))
    problems, _ = check(path)
    mismatch = "signature does not match (entry edited or signed by another key)"
    assert problems == [f"audit.jsonl checkpoint at line {n}: {mismatch}" for n in (6, 9, 10)]


def test_editing_after_the_last_checkpoint_is_still_caught_by_the_chain(tmp_path: Path) -> None:
    path = write_run(tmp_path, shutdown=False)
    lines = lines_of(path)
    lines[6] = lines[6].replace(b"40.0", b"41.0")
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl line 8 (seq 7): prev does not match line 7 (entry edited or removed)"
    ]


def test_a_removed_entry_is_named(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    del lines[3]
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl line 4 (seq 4): prev does not match line 3 (entry edited or removed)",
        "audit.jsonl line 4: seq jumps from 2 to 4 (entry removed)",
    ]


def test_a_removed_entry_with_the_chain_recomputed(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    del lines[3]
    put(path, rechain(lines, 3))
    problems, _ = check(path)
    mismatch = "signature does not match (entry edited or signed by another key)"
    assert problems == [
        "audit.jsonl line 4: seq jumps from 2 to 4 (entry removed)",
        *(f"audit.jsonl checkpoint at line {n}: {mismatch}" for n in (5, 8, 9)),
    ]


def test_removing_the_first_entries(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    put(path, lines_of(path)[2:])
    assert check(path)[0] == [
        f"audit.jsonl line 1 (seq 2): prev of the first line is not {GENESIS[:8]}... "
        "(entries removed from the start)",
        "audit.jsonl line 1: first seq is 2, expected 0 (entries removed from the start)",
    ]


def test_reordered_entries(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines[2], lines[3] = lines[3], lines[2]
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl line 3 (seq 3): prev does not match line 2 (entry edited or removed)",
        "audit.jsonl line 3: seq jumps from 1 to 3 (entry removed)",
        "audit.jsonl line 4 (seq 2): prev does not match line 3 (entry edited or removed)",
        "audit.jsonl line 4: seq goes back from 3 to 2 (entries reordered or repeated)",
        "audit.jsonl line 5 (seq 4): prev does not match line 4 (entry edited or removed)",
    ]


def test_an_inserted_line_that_is_not_an_entry(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines.insert(3, b"hello")
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl line 4: not JSON, and no torn_entry record follows (entry edited or damaged)",
        "audit.jsonl line 5 (seq 3): prev does not match line 4 (entry edited or removed)",
    ]


def _resign(line: bytes, fake_signature: str) -> bytes:
    entry = json.loads(line)
    entry["signature"] = fake_signature
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (base64.b64encode(KEY.sign_digest(bytes(32))).decode(), "signature does not match"),
        ("not base64!", "signature is not base64"),
        ("QUJD", "signature does not match"),
        (None, "no signature"),
    ],
)
def test_a_forged_checkpoint_signature(tmp_path: Path, signature: Any, reason: str) -> None:
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines[-1] = _resign(lines[-1], signature)  # ours, but over other data; or garbage
    put(path, lines)
    problems, _ = check(path)
    assert len(problems) == 1 and problems[0].startswith(
        f"audit.jsonl checkpoint at line 10: {reason}"
    )


def test_a_non_canonical_base64_signature(tmp_path: Path) -> None:
    """Base64 whose unused low bits are set decodes to the same signature: other bytes, refused."""
    path = write_run(tmp_path)
    lines = lines_of(path)
    good = json.loads(lines[-1])["signature"]
    assert good.endswith("=")
    pad = good.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    loose = pad[:-1] + alphabet[alphabet.index(pad[-1]) ^ 1] + good[len(pad) :]
    assert base64.b64decode(loose) == base64.b64decode(good)
    lines[-1] = _resign(lines[-1], loose)
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl checkpoint at line 10: signature is not canonical base64"
    ]


def test_a_checkpoint_signed_by_another_key(tmp_path: Path) -> None:
    path = write_run(tmp_path, key=OTHER)
    problems, _ = check(path)
    other = f"signed by another key (key_id {OTHER.key_id[:16]}..., trusted: {KEY.key_id[:16]}...)"
    assert problems == [f"audit.jsonl checkpoint at line {n}: {other}" for n in (6, 9, 10)]
    assert check(path, KEY.public_key, OTHER.public_key) == ([], [])


def test_a_checkpoint_resigned_by_another_key_claiming_ours(tmp_path: Path) -> None:
    """A forger edits, recomputes the chain and re-signs with their key, keeping our key_id."""
    path = write_run(tmp_path)
    lines = lines_of(path)
    lines = rechain([*lines[:2], lines[2].replace(b"holster", b"button"), *lines[3:6]], 3)
    entry = json.loads(lines[5])
    del entry["signature"]
    body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["signature"] = base64.b64encode(
        OTHER.sign_digest(hashlib.sha256(body.encode()).digest())
    ).decode()
    lines[5] = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
    put(path, lines)
    assert check(path)[0] == [
        "audit.jsonl checkpoint at line 6: signature does not match "
        "(entry edited or signed by another key)"
    ]


# -- power cuts -----------------------------------------------------------------------------
def test_unsigned_tail_is_a_note(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
        log.append("trigger", 5.0, utc(105), source="button")
    problems, notes = check(path)
    assert problems == []
    assert notes == [
        "audit.jsonl: no checkpoint after line 10: lines 11-12 (2 entries) not signed "
        "(the tail of a run that did not shut down, e.g. a power cut)"
    ]


def test_no_checkpoint_at_all_is_a_note(tmp_path: Path) -> None:
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(0))
    assert check(tmp_path / AUDIT) == (
        [],
        [
            "audit.jsonl: no checkpoint at all: line 1 (1 entries) not signed "
            "(the tail of a run that did not shut down, e.g. a power cut)"
        ],
    )


def test_a_torn_line_then_the_next_boot(tmp_path: Path) -> None:
    path = write_run(tmp_path, shutdown=False)
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
    data = path.read_bytes()[:-40]
    path.write_bytes(data)  # the power went mid-append: no newline, half a line
    torn = len(data) - data.rindex(b"\n") - 1
    assert check(path) == (
        [],
        [
            f"audit.jsonl line 10: torn entry at the end ({torn} bytes): a power cut "
            "mid-append, not yet recorded by a torn_entry"
        ],
    )
    with AuditLog(tmp_path, KEY) as log:
        assert log.torn_pending and log.next_seq == 9
        log.append("boot", 0.0, utc(200))
        log.checkpoint(1.0, utc(201), "shutdown")
    assert path.read_bytes().startswith(data + b"\n")  # nothing deleted or rewritten
    entries = read_audit(path)
    assert [e["event"] for e in entries][-3:] == ["torn_entry", "boot", "checkpoint"]
    record = entries[-3]
    assert record["bytes"] == torn and record["seq"] == 9
    assert record["after"] == line_hash(lines_of(path)[8])
    assert record["prev"] == line_hash(lines_of(path)[9])
    assert check(path) == (
        [],
        [
            f"audit.jsonl line 10: torn entry ({torn} bytes, a power cut mid-append), "
            "recorded by the torn_entry at line 11"
        ],
    )


def test_a_torn_line_of_zeros(tmp_path: Path) -> None:
    """Some file systems leave the new size with zeros where the data never landed."""
    path = write_run(tmp_path)
    with path.open("ab") as f:
        f.write(b"\x00" * 64)
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
        log.checkpoint(1.0, utc(101), "shutdown")
    problems, notes = check(path)
    assert problems == [] and len(notes) == 1 and "torn entry (64 bytes" in notes[0]


def test_a_torn_repair_torn_again(tmp_path: Path) -> None:
    """A second power cut while the torn line was being recorded: both tears are accepted."""
    path = write_run(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"seq":10,"ev')
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
    whole = path.read_bytes()
    path.write_bytes(whole[: whole.index(b'{"seq":10,"ev') + 13 + 1 + 30])  # "\n" + 30 bytes
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(200))
        log.checkpoint(1.0, utc(201), "shutdown")
    problems, notes = check(path)
    assert problems == []
    assert [n.split(":")[0] for n in notes] == ["audit.jsonl line 11", "audit.jsonl line 12"]
    assert read_audit(path)[10]["seq"] == 10


def test_a_whole_last_line_missing_only_its_newline(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    path.write_bytes(path.read_bytes()[:-1])
    assert check(path) == ([], ["audit.jsonl line 10: no newline at the end (power cut?)"])
    with AuditLog(tmp_path, KEY) as log:
        assert not log.torn_pending
        log.append("boot", 0.0, utc(100))
        log.checkpoint(1.0, utc(101), "shutdown")
    assert check(path) == ([], [])


def test_a_forged_torn_entry(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"seq":10,"ev')
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
        log.checkpoint(1.0, utc(101), "shutdown")
    lines = lines_of(path)
    del lines[8]  # an entry removed before the tear: "after" no longer matches
    lines = rechain(lines, 8, 9)
    put(path, lines)
    problems, _ = check(path)
    assert "audit.jsonl line 11 (seq 10): torn_entry's after does not match line 9" in problems[-2]
    assert problems[-1].startswith("audit.jsonl line 10: not JSON, and no torn_entry")


def test_a_torn_entry_naming_the_wrong_length(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"seq":10,"ev')
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
    lines = lines_of(path)
    lines[10] = b'{"seq":10,"eve'  # one byte more than the torn_entry recorded
    put(path, lines)
    problems, _ = check(path)
    assert problems[0] == "audit.jsonl line 12 (seq 10): torn_entry names 13 bytes, line 11 has 14"


def test_a_torn_entry_without_a_torn_line(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    with path.open("ab") as f:
        f.write(b"garbage")
    with AuditLog(tmp_path, KEY) as log:
        log.append("boot", 0.0, utc(100))
    lines = lines_of(path)
    del lines[10]
    put(path, rechain(lines, 10))
    assert check(path)[0] == ["audit.jsonl line 11 (seq 10): torn_entry but no torn line before it"]


def test_missing_and_empty(tmp_path: Path) -> None:
    problems, _ = check(tmp_path / AUDIT)
    assert problems == ["audit.jsonl: cannot read: No such file or directory"]
    (tmp_path / AUDIT).write_bytes(b"")
    assert check(tmp_path / AUDIT) == ([], ["audit.jsonl: no entries"])


# -- properties -----------------------------------------------------------------------------
@given(st.binary(max_size=400))
def test_verify_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    _verify_bytes(data)


_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 20),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.sampled_from([GENESIS, "QUJD", "checkpoint", "torn_entry", KEY.key_id]),
    st.lists(st.integers(), max_size=2),
)
_entry = st.dictionaries(
    st.sampled_from(
        ["seq", "event", "prev", "time", "utc", "signature", "key_id", "bytes", "after", "x"]
    ),
    _value,
)


@given(st.lists(st.one_of(_entry.map(json.dumps), st.text(max_size=20)), max_size=8))
def test_verify_never_raises_on_entry_like_lines(lines: list[str]) -> None:
    _verify_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))


def _verify_bytes(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / AUDIT
        path.write_bytes(data)
        problems, notes = verify_audit(path, KEY.public_key)
        assert all(isinstance(p, str) and "\n" not in p for p in problems + notes)
        read_audit(path)
        with AuditLog(Path(d), KEY) as log:  # a boot continues any file without raising
            log.append("boot", 0.0, utc(0))


@pytest.fixture(scope="module")
def signed_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_run(tmp_path_factory.mktemp("signed")).read_bytes()


@given(st.data())
def test_any_change_before_the_last_two_lines_is_a_problem(signed_log: bytes, data: Any) -> None:
    protected = len(signed_log) - len(b"\n".join(signed_log.split(b"\n")[-3:]))
    pos = data.draw(st.integers(0, protected - 1))
    how = data.draw(st.sampled_from(["flip", "delete", "insert"]))
    if how == "flip":
        bit = data.draw(st.integers(0, 7))
        changed = signed_log[:pos] + bytes([signed_log[pos] ^ (1 << bit)]) + signed_log[pos + 1 :]
    elif how == "delete":
        n = data.draw(st.integers(1, 40))
        changed = signed_log[:pos] + signed_log[pos + n :]
    else:
        changed = signed_log[:pos] + data.draw(st.binary(min_size=1, max_size=8)) + signed_log[pos:]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / AUDIT
        path.write_bytes(changed)
        assert verify_audit(path, KEY.public_key).problems != []
