"""The evidence store's metadata: schema, enrolment, and the hash-chained audit log.

Every test runs on both metadata databases: SQLite (the embedded default)
and PostgreSQL (a real server on loopback from tests/services.py, a fresh
database per test), so the same SQLAlchemy Core code is proven on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from camera.errors import InputError
from camera.evidence.keys import DeviceKeyError, test_key
from server import audit
from server.audit import entry_hash, verify_audit
from server.enroll import device_of_file, enroll
from server.meta import Meta, devices, recordings
from server.meta import audit as audit_table

#: Each database the metadata must work on: the embedded default and a department's.
BACKENDS = ["sqlite", "postgresql"]

UTC = "2026-01-01T08:00:00.000Z"


@pytest.fixture(params=BACKENDS)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty metadata database's URL (PostgreSQL: tests/services.py's, on loopback)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'evidence.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def meta(metadata_url: str) -> Iterator[Meta]:
    m = Meta(metadata_url)
    yield m
    m.close()


def pem_file(tmp_path: Path, device: str = "BWC-0001", seed: int = 0) -> Path:
    path = tmp_path / f"{device}.pub.pem"
    path.write_bytes(test_key(device, seed).public_pem)
    return path


def append(meta: Meta, n: int) -> None:
    with meta.write() as conn:
        for i in range(n):
            audit.append(
                conn, utc=UTC, actor="test", action="note", target=f"t{i}", detail={"i": i}
            )


# -- schema ------------------------------------------------------------------------------
def test_the_schema_is_created_once_and_opening_again_keeps_the_rows(metadata_url: str) -> None:
    first = Meta(metadata_url)
    append(first, 2)
    first.close()
    again = Meta(metadata_url)
    try:
        assert verify_audit(again).entries == 2
    finally:
        again.close()


def test_a_metadata_url_that_is_not_one_is_one_line_naming_it() -> None:
    with pytest.raises(InputError, match=r"metadata URL 'nonsense': expected sqlite:///PATH"):
        Meta("nonsense")


def test_a_recording_row_is_read_back_as_written(meta: Meta) -> None:
    files = {"manifest.json": "a" * 64, "segment-0000.ts": "b" * 64}
    row = {
        "id": "BWC-0001_20260101T080001Z_0001",
        "device": "BWC-0001",
        "status": "verified",
        "manifest_sha256": "a" * 64,
        "files": files,
        "receipt": {"audit_seq": 0, "type": "bodycam.receipt/1"},
        "chain": "ok",
        "frames": 150,
        "received_utc": UTC,
        "previous_recording": None,
        "previous_sha256": None,
    }
    with meta.write() as conn:
        meta.put_recording(conn, row)
    with meta.read() as conn:
        held = meta.recording(conn, row["id"])
    assert held is not None
    assert (held.files, held.receipt, held.frames, held.chain) == (
        files,
        row["receipt"],
        150,
        "ok",
    )
    with meta.write() as conn, pytest.raises(ValueError, match="never replaced"):
        meta.put_recording(conn, {**row, "status": "rejected"})


# -- the audit chain ----------------------------------------------------------------------
def test_the_audit_chain_links_every_entry_to_the_one_before(meta: Meta) -> None:
    append(meta, 3)
    with meta.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_table).order_by("seq"))]
    assert [r["seq"] for r in rows] == [0, 1, 2]
    assert rows[0]["prev_hash"] == "0" * 64
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert all(r["hash"] == entry_hash(r) for r in rows)
    report = verify_audit(meta)
    assert report.ok and report.entries == 3


def test_an_edited_audit_entry_is_named(meta: Meta) -> None:
    append(meta, 3)
    with meta.write() as conn:
        conn.execute(update(audit_table).where(audit_table.c.seq == 1).values(target="forged"))
    assert verify_audit(meta).problems == [
        "audit seq 1: hash does not match its fields (entry edited)"
    ]


def test_an_edited_and_rehashed_entry_breaks_the_next_link(meta: Meta) -> None:
    append(meta, 3)
    with meta.write() as conn:
        row = dict(conn.execute(select(audit_table).where(audit_table.c.seq == 1)).one()._mapping)
        row["detail"] = {"i": 99}
        conn.execute(
            update(audit_table)
            .where(audit_table.c.seq == 1)
            .values(detail=row["detail"], hash=entry_hash(row))
        )
    assert verify_audit(meta).problems == [
        "audit seq 2: prev_hash does not match the entry before it (entry edited or removed)"
    ]


def test_a_removed_audit_entry_is_named(meta: Meta) -> None:
    append(meta, 3)
    with meta.write() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq == 1))
    assert verify_audit(meta).problems == [
        "audit seq 2: expected seq 1 (entry removed)",
        "audit seq 2: prev_hash does not match the entry before it (entry edited or removed)",
    ]


def test_entries_removed_from_the_end_show_through_the_receipts(meta: Meta) -> None:
    append(meta, 2)
    rec = "BWC-0001_20260101T080001Z_0001"
    with meta.write() as conn:
        entry = audit.append(
            conn, utc=UTC, actor="device:BWC-0001", action="ingest", target=rec, detail={}
        )
        conn.execute(
            recordings.insert().values(
                id=rec,
                device="BWC-0001",
                status="verified",
                manifest_sha256="a" * 64,
                files={"manifest.json": "a" * 64},
                receipt={"audit_seq": entry["seq"]},
                received_utc=UTC,
            )
        )
    assert verify_audit(meta).ok
    with meta.write() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.seq == entry["seq"]))
    assert verify_audit(meta).problems == [
        f"recording {rec}: its receipt names audit seq 2, which is not in the audit log "
        "(entries removed)"
    ]


# -- enrolment -----------------------------------------------------------------------------
def test_enrol_then_the_same_key_again_changes_nothing(meta: Meta, tmp_path: Path) -> None:
    pem = pem_file(tmp_path)
    first = enroll(meta, pem)
    assert (first.device, first.outcome) == ("BWC-0001", "enrolled")
    assert first.key_id == test_key("BWC-0001", 0).key_id
    again = enroll(meta, pem)
    assert again.outcome == "unchanged"
    with meta.read() as conn:
        actions = [r.action for r in conn.execute(select(audit_table.c.action))]
        assert meta.device_keys(conn, "BWC-0001") == {
            first.key_id: test_key("BWC-0001", 0).public_pem.decode()
        }
    assert actions == ["device_enrolled"]  # the no-op is not an action


def test_another_key_for_an_enrolled_device_needs_replace_and_is_audited(
    meta: Meta, tmp_path: Path
) -> None:
    enroll(meta, pem_file(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    new_pem = pem_file(other, seed=7)
    with pytest.raises(InputError, match=r"device BWC-0001 is enrolled with key .* --replace"):
        enroll(meta, new_pem)
    done = enroll(meta, new_pem, replace=True)
    assert done.outcome == "replaced" and done.replaced == (test_key("BWC-0001", 0).key_id,)
    with meta.read() as conn:
        assert list(meta.device_keys(conn, "BWC-0001")) == [test_key("BWC-0001", 7).key_id]
        assert len(meta.device_keys(conn, "BWC-0001", active_only=False)) == 2  # the old one kept
        last = conn.execute(select(audit_table).order_by(audit_table.c.seq.desc())).first()
    assert last is not None and last.action == "device_key_replaced"
    assert last.detail["replaced_key_ids"] == [test_key("BWC-0001", 0).key_id]
    assert verify_audit(meta).ok


def test_one_key_cannot_speak_for_two_devices(meta: Meta, tmp_path: Path) -> None:
    pem = pem_file(tmp_path)
    enroll(meta, pem)
    with pytest.raises(InputError, match="is enrolled for device BWC-0001"):
        enroll(meta, pem, "BWC-0002")


def test_a_file_that_is_not_a_public_key_is_refused_in_one_line(meta: Meta, tmp_path: Path) -> None:
    bad = tmp_path / "BWC-0001.pub.pem"
    bad.write_text("not a key\n")
    with pytest.raises(DeviceKeyError, match="expected a PEM public key on curve P-256"):
        enroll(meta, bad)
    with meta.read() as conn:
        assert conn.execute(select(devices)).first() is None


def test_the_device_comes_from_the_file_name_or_must_be_given(tmp_path: Path) -> None:
    assert device_of_file(tmp_path / "BWC-0042.pub.pem") == "BWC-0042"
    with pytest.raises(InputError, match="pass --device ID"):
        device_of_file(tmp_path / "camera.pem")
