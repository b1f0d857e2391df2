"""Retention, legal holds and the deletion queue on the evidence store (issue 16, item 4).

Real recordings (three chained ones from a simulated device, made once for
the module) are ingested through the server's own commit code with a clock
the test moves (server.ingest.Ingest, ``now`` passed in), so a month of
retention passes in microseconds. Each test runs on both stacks: the
embedded one (SQLite and the file store, whose locks are the application's
record) and a department's (PostgreSQL and S3 Object Lock on SeaweedFS, real
servers on loopback, whose locks the storage itself enforces). The clock
starts at the real time, so the dates the store is told are real future
dates, and S3's own refusals are tested, not assumed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import delete, select, update

from camera.errors import InputError
from server import lifecycle
from server.audit import entry_hash, verify_audit
from server.config import ServerConfig, load_server_config
from server.datadir import Server, open_server
from server.enroll import enroll
from server.ingest import Ingest
from server.listing import list_recordings
from server.meta import Recording, audit, recording_objects, recordings
from server.objects import Locked, ObjectStore
from server.objects.cas import CasStore
from server.retention import Policy, parse_utc
from server.sweep import sweep
from tests.server_support import (
    DEVICE,
    Camera,
    device_key,
    files_of,
    live_server,
    record_three,
    recordings_of,
)

ACTOR = "cli:sergeant"
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_three(tmp_path_factory.mktemp("camera"))


@pytest.fixture
def recs(storage: Path) -> list[Path]:
    return recordings_of(storage)


@pytest.fixture(params=["embedded", "postgresql+s3"])
def stack(request: pytest.FixtureRequest) -> str:
    """The data directory's server.toml text: empty for the embedded SQLite and files."""
    if request.param == "embedded":
        return ""
    metadata = request.getfixturevalue("fresh_postgres_url")
    objects = request.getfixturevalue("fresh_seaweedfs_url")
    return f'[store]\nmetadata = "{metadata}"\nobjects = "{objects}"\n'


class Clock:
    """The time the server believes it is; starts at the real time (whole milliseconds)."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self.start = self.now

    def __call__(self) -> datetime:
        return self.now

    def to(self, offset: timedelta) -> datetime:
        self.now = self.start + offset
        return self.now


@dataclass
class Rig:
    server: Server
    ingest: Ingest
    clock: Clock

    @property
    def store(self) -> ObjectStore:
        assert self.server.store is not None
        return self.server.store

    def upload(self, rec: Path) -> dict[str, Any]:
        files = files_of(rec)
        for name, sha in files.items():
            data = (rec / name).read_bytes()
            self.store.put(sha, io.BytesIO(data), len(data))
        answer = self.ingest.commit(DEVICE, rec.name, files)
        assert answer.status == 200, answer.body
        return dict(answer.body["receipt"])

    def row(self, recording: str) -> dict[str, Any]:
        [row] = [r for r in list_recordings(self.server) if r["recording"] == recording]
        return row

    def actions(self) -> list[tuple[str, str]]:
        with self.server.meta.read() as conn:
            rows = conn.execute(select(audit.c.action, audit.c.target).order_by(audit.c.seq))
            return [(r.action, r.target) for r in rows]


def start(data: Path, stack: str, storage: Path, config: str = "") -> Server:
    data.mkdir(exist_ok=True)
    if stack or config:
        (data / "server.toml").write_text(stack + config)
    server = open_server(data, serve=True)
    enroll(server.meta, storage / f"{DEVICE}.pub.pem")
    return server


@pytest.fixture
def rig(tmp_path: Path, stack: str, storage: Path) -> Iterator[Rig]:
    server = start(tmp_path / "data", stack, storage)
    clock = Clock()
    policy = Policy.from_config(server.config.retention)
    assert server.store is not None
    ingest = Ingest(
        server.meta,
        server.store,
        server.key,
        server.data.work,
        server.data.rejected,
        now=clock,
        policy=policy,
    )
    try:
        yield Rig(server, ingest, clock)
    finally:
        server.close()


def store_lock(store: ObjectStore, sha: str) -> tuple[str | None, datetime | None, bool]:
    """(mode, retain until, legal hold) as the store itself holds them."""
    if isinstance(store, CasStore):
        until, mode, hold = store._row(sha)
        return mode, parse_utc(until) if until else None, bool(hold)
    versions = store._versions_or_raise(sha)  # type: ignore[attr-defined]
    lock = store._lock_of(sha, versions[0])  # type: ignore[attr-defined]
    return lock.mode, lock.until, lock.hold


def raw_s3_delete(store: ObjectStore, sha: str) -> str:
    """Ask S3 directly, past every check of ours, to delete each version; its error code."""
    versions = store._versions_or_raise(sha)  # type: ignore[attr-defined]
    try:
        for version in versions:
            store._s3.delete_object(  # type: ignore[attr-defined]
                **store._version_args(sha, version),  # type: ignore[attr-defined]
                BypassGovernanceRetention=True,
            )
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "deleted"


# -- a new recording -------------------------------------------------------------------------
def test_a_new_recording_is_uncategorized_and_locked_until_its_date(
    rig: Rig, recs: list[Path]
) -> None:
    rig.upload(recs[0])
    row = rig.row(recs[0].name)
    until = rig.clock.start + 31 * DAY
    assert (row["status"], row["category"], row["holds"]) == ("kept", "uncategorized", [])
    assert parse_utc(row["retained_until"]) == until
    assert row["lock"] == {
        "mode": "governance",
        "until": row["retained_until"],
        "legal_hold": False,
    }
    for sha in files_of(recs[0]).values():
        mode, held_until, hold = store_lock(rig.store, sha)
        assert (mode, hold) == ("governance", False)
        assert held_until is not None and abs(held_until - until) < timedelta(seconds=1)
        with pytest.raises(Locked, match="governance"):
            rig.store.delete(sha)  # nobody but the purge (with the bypass) deletes it early


# -- the deletion queue ----------------------------------------------------------------------
def test_expiry_queues_and_a_restore_within_7_days_deletes_nothing(
    rig: Rig, recs: list[Path]
) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    assert sweep(rig.server, rig.clock.to(31 * DAY - timedelta(seconds=1))).queued == []
    report = sweep(rig.server, rig.clock.to(31 * DAY))
    assert report.queued == [rec] and report.purged == []
    row = rig.row(rec)
    assert row["status"] == "queued"
    assert parse_utc(row["restorable_until"]) == rig.clock.start + 38 * DAY
    done = lifecycle.restore(
        rig.server, rec, reason="still under review", actor=ACTOR, now=rig.clock.to(36 * DAY)
    )
    assert done.line.startswith(f"recording {rec}: restored (retained 31 days, to ")
    # Its days count again from the restore: nothing goes 7 days on, nor 30.
    for day in (38, 45, 66):
        report = sweep(rig.server, rig.clock.to(day * DAY))
        assert (report.queued, report.purged) == ([], []), day
    assert rig.row(rec)["status"] == "kept"
    assert all(rig.store.has(sha) for sha in files_of(recs[0]).values())
    actions = [a for a, target in rig.actions() if target == rec]
    assert actions == ["ingest", "queued", "restored"]
    assert verify_audit(rig.server.meta).ok


def test_expiry_then_7_days_purges_the_objects_and_keeps_a_tombstone(
    rig: Rig, recs: list[Path]
) -> None:
    first, second = recs[0], recs[1]
    receipt = rig.upload(first)
    rig.upload(second)
    files = files_of(first)
    lifecycle.set_category(
        rig.server, second.name, "evidential", reason="assault case", actor=ACTOR, now=rig.clock()
    )
    assert sweep(rig.server, rig.clock.to(32 * DAY)).queued == [first.name]
    report = sweep(rig.server, rig.clock.to(39 * DAY - timedelta(seconds=1)))
    assert report.purged == [] and rig.row(first.name)["status"] == "queued"
    report = sweep(rig.server, rig.clock.to(39 * DAY))
    assert report.purged == [first.name] and report.refused == []
    assert not any(rig.store.has(sha) for sha in files.values())
    assert all(rig.store.has(sha) for sha in files_of(second).values())  # evidential stays
    row = rig.row(first.name)
    assert row["status"] == "purged"
    assert row["purge_reason"].startswith(
        "retention expired: category uncategorized keeps 31 days from "
    )
    with rig.server.meta.read() as conn:
        tomb = rig.server.meta.recording(conn, first.name)
    assert tomb is not None
    assert (tomb.files, tomb.receipt, tomb.manifest_sha256) == (
        files,
        receipt,
        files["manifest.json"],
    )
    actions = [a for a, target in rig.actions() if target == first.name]
    assert actions == ["ingest", "queued", "purging", "purged"]
    assert verify_audit(rig.server.meta).ok  # the tombstone's receipt still names its ingest
    # It cannot be restored, held, or uploaded again.
    with pytest.raises(InputError, match=r"purged .*only its record remains"):
        lifecycle.restore(rig.server, first.name, reason="too late", actor=ACTOR, now=rig.clock())
    for name, sha in files.items():  # the camera's copy, sent again
        body = (first / name).read_bytes()
        rig.store.put(sha, io.BytesIO(body), len(body))
    again = rig.ingest.commit(DEVICE, first.name, files)
    assert again.status == 409
    assert "was purged here" in again.body["error"]
    assert rig.row(first.name)["status"] == "purged"


def test_an_early_purge_is_queued_with_its_reason_and_restorable(
    rig: Rig, recs: list[Path]
) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    lifecycle.set_category(
        rig.server, rec, "non-evidential", reason="nothing happened", actor=ACTOR, now=rig.clock()
    )
    done = lifecycle.queue_early(
        rig.server, rec, reason="recorded in a changing room", actor=ACTOR, now=rig.clock.to(DAY)
    )
    assert "queued for deletion; restorable until" in done.line
    assert rig.row(rec)["status"] == "queued"
    assert sweep(rig.server, rig.clock.to(8 * DAY - timedelta(seconds=1))).purged == []
    assert sweep(rig.server, rig.clock.to(8 * DAY)).purged == [rec]
    assert rig.row(rec)["purge_reason"] == "recorded in a changing room"


# -- legal holds -----------------------------------------------------------------------------
def test_a_held_recording_is_never_queued_nor_purged(rig: Rig, recs: list[Path]) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    files = files_of(recs[0])
    sweep(rig.server, rig.clock.to(31 * DAY))
    assert rig.row(rec)["status"] == "queued"
    done = lifecycle.place_hold(
        rig.server, rec, "CASE-77", reason="defence request", actor=ACTOR, now=rig.clock()
    )
    assert done.line == f"recording {rec}: held for case CASE-77; taken off the deletion queue"
    assert all(store_lock(rig.store, sha)[2] for sha in files.values())
    for day in (40, 400):
        report = sweep(rig.server, rig.clock.to(day * DAY))
        assert (report.queued, report.purged) == ([], [])
    assert rig.row(rec)["status"] == "kept" and rig.row(rec)["holds"] == ["CASE-77"]
    with pytest.raises(InputError, match="held for case CASE-77; a held recording is never"):
        lifecycle.queue_early(rig.server, rec, reason="x", actor=ACTOR, now=rig.clock())
    sha = files["segment-0000.ts"]
    with pytest.raises(Locked, match="legal hold"):
        rig.store.delete(sha, bypass_governance=True)
    if not isinstance(rig.store, CasStore):
        assert raw_s3_delete(rig.store, sha) == "AccessDenied"  # S3 refuses too
    # Two cases: releasing one leaves the other's hold.
    lifecycle.place_hold(rig.server, rec, "CASE-78", reason="civil", actor=ACTOR, now=rig.clock())
    done = lifecycle.release_hold(
        rig.server, rec, "CASE-77", reason="case closed", actor=ACTOR, now=rig.clock()
    )
    assert done.line.endswith("released; still held for CASE-78")
    assert store_lock(rig.store, sha)[2] is True
    assert sweep(rig.server, rig.clock.to(401 * DAY)).queued == []
    lifecycle.release_hold(
        rig.server, rec, "CASE-78", reason="settled", actor=ACTOR, now=rig.clock()
    )
    assert store_lock(rig.store, sha)[2] is False
    assert sweep(rig.server, rig.clock.to(402 * DAY)).queued == [rec]
    with pytest.raises(InputError, match=r"no hold for case CASE-78 \(held for: none\)"):
        lifecycle.release_hold(rig.server, rec, "CASE-78", reason="x", actor=ACTOR, now=rig.clock())
    actions = [a for a, target in rig.actions() if target == rec]
    assert actions == ["ingest", "queued", "hold", "hold", "release", "release", "queued"]


# -- evidential: COMPLIANCE ------------------------------------------------------------------
def test_evidential_objects_cannot_be_deleted_by_the_app_nor_by_the_store(
    rig: Rig, recs: list[Path]
) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    done = lifecycle.set_category(
        rig.server, rec, "evidential", reason="charged", actor=ACTOR, now=rig.clock()
    )
    assert done.line == (
        f"recording {rec}: category uncategorized -> evidential (kept until released)"
    )
    sha = files_of(recs[0])["segment-0001.ts"]
    mode, until, _ = store_lock(rig.store, sha)
    assert mode == "compliance" and until is not None
    assert abs(until - (rig.clock.start + 365 * DAY)) < timedelta(seconds=1)
    # The application refuses first...
    with pytest.raises(InputError, match="kept until released; change its category first"):
        lifecycle.queue_early(rig.server, rec, reason="mistake", actor=ACTOR, now=rig.clock())
    assert sweep(rig.server, rig.clock.to(5000 * DAY)).queued == []
    # ...and the store refuses on its own, even with the governance bypass.
    with pytest.raises(Locked, match="compliance"):
        rig.store.delete(sha, bypass_governance=True)
    if not isinstance(rig.store, CasStore):
        assert raw_s3_delete(rig.store, sha) == "AccessDenied"
    assert rig.store.has(sha)


def test_compliance_is_renewed_by_the_sweep_and_never_shortened(rig: Rig, recs: list[Path]) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    sha = files_of(recs[0])["manifest.json"]
    lifecycle.set_category(rig.server, rec, "evidential", reason="x", actor=ACTOR, now=rig.clock())
    sweep(rig.server, rig.clock.to(100 * DAY))  # more than half the window left: as it is
    assert abs(store_lock(rig.store, sha)[1] - (rig.clock.start + 365 * DAY)) < timedelta(seconds=1)  # type: ignore[operator]
    sweep(rig.server, rig.clock.to(200 * DAY))  # less than half: renewed from now
    assert abs(store_lock(rig.store, sha)[1] - (rig.clock.start + 565 * DAY)) < timedelta(seconds=1)  # type: ignore[operator]
    # Back to non-evidential: the COMPLIANCE lock cannot be shortened, and the app says so.
    done = lifecycle.set_category(
        rig.server, rec, "non-evidential", reason="no further action", actor=ACTOR, now=rig.clock()
    )
    assert "its objects stay under COMPLIANCE until " in done.line
    assert store_lock(rig.store, sha)[0] == "compliance"
    assert parse_utc(rig.row(rec)["deletable_utc"]) == parse_utc(rig.row(rec)["lock"]["until"])
    assert sweep(rig.server, rig.clock.to(300 * DAY)).queued == []  # 31 days passed, the lock not
    with pytest.raises(InputError, match="under COMPLIANCE until"):
        lifecycle.queue_early(rig.server, rec, reason="x", actor=ACTOR, now=rig.clock())


def test_when_the_store_refuses_a_purge_nothing_is_forced_and_it_is_audited(
    rig: Rig, recs: list[Path]
) -> None:
    """The application's clock says the lock ran out; the store's own clock does not agree."""
    rec = recs[0].name
    rig.upload(recs[0])
    lifecycle.set_category(rig.server, rec, "evidential", reason="x", actor=ACTOR, now=rig.clock())
    lifecycle.set_category(
        rig.server, rec, "non-evidential", reason="y", actor=ACTOR, now=rig.clock()
    )
    assert sweep(rig.server, rig.clock.to(366 * DAY)).queued == [rec]
    report = sweep(rig.server, rig.clock.to(373 * DAY))
    [(who, why)] = report.refused
    assert who == rec and "compliance" in why
    assert rig.row(rec)["status"] == "queued"  # nothing deleted: it can still be restored
    assert all(rig.store.has(sha) for sha in files_of(recs[0]).values())
    assert [a for a, t in rig.actions() if t == rec][-2:] == ["purging", "purge_refused"]
    lifecycle.restore(rig.server, rec, reason="keep it", actor=ACTOR, now=rig.clock())


# -- objects shared between recordings -------------------------------------------------------
def test_an_object_another_held_recording_names_is_not_deleted(rig: Rig, recs: list[Path]) -> None:
    """Recordings never share a segment, but identical small files (an empty one) could."""
    rig.upload(recs[0])
    rig.upload(recs[1])
    files = files_of(recs[0])
    shared = files["segment-0000.ts"]
    meta = rig.server.meta
    with meta.write() as conn:  # recording 2 names one object of recording 1 as well
        rec2 = meta.recording(conn, recs[1].name)
        assert rec2 is not None
        conn.execute(delete(recordings).where(recordings.c.id == rec2.id))
        conn.execute(delete(recording_objects).where(recording_objects.c.recording == rec2.id))
        row = {
            "id": rec2.id,
            "device": rec2.device,
            "status": "verified",
            "manifest_sha256": rec2.manifest_sha256,
            "files": {**rec2.files, "shared.bin": shared},
            "receipt": rec2.receipt,
            "received_utc": rec2.received_utc,
            "category": "evidential",
            "retention_from_utc": rec2.received_utc,
        }
        meta.put_recording(conn, row)
    sweep(rig.server, rig.clock.to(31 * DAY))
    report = sweep(rig.server, rig.clock.to(38 * DAY))
    assert report.purged == [recs[0].name]
    assert rig.store.has(shared)
    assert not any(rig.store.has(s) for n, s in files.items() if s != shared)
    with meta.read() as conn:
        [detail] = [
            r.detail for r in conn.execute(select(audit.c.detail).where(audit.c.action == "purged"))
        ]
    assert detail["objects_kept_shared"] == {shared: [recs[1].name]}
    assert detail["objects_deleted"] == len(set(files.values())) - 1


# -- the audit log -------------------------------------------------------------------------
def test_every_action_is_in_the_signed_chain_and_a_rewrite_shows(
    rig: Rig, recs: list[Path]
) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    lifecycle.set_category(rig.server, rec, "evidential", reason="a", actor=ACTOR, now=rig.clock())
    lifecycle.place_hold(rig.server, rec, "C-1", reason="b", actor=ACTOR, now=rig.clock())
    lifecycle.release_hold(rig.server, rec, "C-1", reason="c", actor=ACTOR, now=rig.clock())
    lifecycle.set_category(
        rig.server, rec, "non-evidential", reason="d", actor=ACTOR, now=rig.clock()
    )
    report = verify_audit(rig.server.meta)
    assert report.ok, report.problems
    meta = rig.server.meta
    with meta.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit).order_by(audit.c.seq))]
    assert [r["action"] for r in rows] == [
        "device_enrolled",
        "ingest",
        "category",
        "hold",
        "release",
        "category",
    ]
    assert {r["actor"] for r in rows[2:]} == {ACTOR}
    assert rows[2]["detail"] == {"from": "uncategorized", "to": "evidential", "reason": "a"}
    assert all(r["signature"] for r in rows)
    # Rewrite the hold's reason and recompute every hash from there: the chain holds,
    # the server's signatures do not.
    rows[3]["detail"] = {**rows[3]["detail"], "reason": "nothing to see"}
    prev = rows[2]["hash"]
    with meta.write() as conn:
        for row in rows[3:]:
            row["prev_hash"] = prev
            row["hash"] = prev = entry_hash(row)
            conn.execute(
                update(audit)
                .where(audit.c.seq == row["seq"])
                .values(detail=row["detail"], prev_hash=row["prev_hash"], hash=row["hash"])
            )
    problems = verify_audit(meta).problems
    assert problems == [
        f"audit seq {n}: signature does not match (field edited or signed by another key) by "
        "the server key (entry written or rewritten without it)"
        for n in range(3, 6)
    ]
    with meta.write() as conn:
        conn.execute(delete(audit).where(audit.c.seq == 4))
    problems = verify_audit(meta).problems
    assert "audit seq 5: expected seq 4 (entry removed)" in problems


# -- config and policy --------------------------------------------------------------------------
def test_retention_config_is_strict_and_keeps_the_built_in_categories(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text("[retention.categories]\ntraffic-stop = 1095\nnon-evidential = 28\n")
    categories = load_server_config(path).retention.categories
    assert categories == {
        "uncategorized": 31,
        "non-evidential": 28,
        "evidential": None,
        "traffic-stop": 1095,
    }
    for text, complaint in [
        ("[retention.categories]\nx = 0", 'retention.categories.x: expected days (1-36500) or "'),
        ('[retention.categories]\nx = "forever"', "got 'forever'"),
        ("[retention.categories]\nBad = 3", "category 'Bad': expected a name of 1-64 lowercase"),
        ("[retention]\nrestor_days = 3", "unknown key (did you mean 'restore_days'?)"),
        ("[retention]\nrestore_days = 0", "retention.restore_days: expected at least 1, got 0"),
    ]:
        path.write_text(text)
        with pytest.raises(InputError) as caught:
            load_server_config(path)
        assert complaint in str(caught.value) and "\n" not in str(caught.value)


def test_a_category_the_config_no_longer_names_is_kept(rig: Rig, recs: list[Path]) -> None:
    rec = recs[0].name
    rig.upload(recs[0])
    with rig.server.meta.write() as conn:
        rig.server.meta.update_recording(conn, rec, category="retired-category")
    report = sweep(rig.server, rig.clock.to(5000 * DAY))
    assert report.queued == [] and report.unknown_category == [rec]
    assert rig.row(rec)["retained_until"] == "until released"


def test_an_unknown_category_or_recording_is_one_line(rig: Rig, recs: list[Path]) -> None:
    rig.upload(recs[0])
    with pytest.raises(InputError, match="category 'secret': expected one of evidential, "):
        lifecycle.set_category(
            rig.server, recs[0].name, "secret", reason="x", actor=ACTOR, now=rig.clock()
        )
    with pytest.raises(InputError, match="not held here"):
        lifecycle.place_hold(
            rig.server, recs[1].name, "C", reason="x", actor=ACTOR, now=rig.clock()
        )
    with pytest.raises(InputError, match="--reason: expected some text"):
        lifecycle.restore(rig.server, recs[0].name, reason="  ", actor=ACTOR, now=rig.clock())


def test_the_policy_never_asks_the_store_to_shorten_or_weaken() -> None:
    policy = Policy.from_config(ServerConfig().retention)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rec = Recording(
        id="BWC-0001_20260101T000000Z_0001",
        device=DEVICE,
        status="verified",
        manifest_sha256="0" * 64,
        files={},
        receipt=None,
        chain=None,
        frames=None,
        received_utc="2026-01-01T00:00:00.000Z",
        previous_recording=None,
        previous_sha256=None,
        category="non-evidential",
        retention_from_utc="2026-01-01T00:00:00.000Z",
        lock_mode="compliance",
        lock_until="2026-12-01T00:00:00.000Z",
    )
    assert policy.needs_lock(rec, now) is None  # governance would only lengthen the COMPLIANCE
    assert policy.deletable(rec) == datetime(2026, 12, 1, tzinfo=UTC)
    ran_out = datetime(2026, 12, 2, tzinfo=UTC)
    assert policy.needs_lock(rec, ran_out) is None  # the category's date is long past too
    fresh = rec.__class__(**{**rec.__dict__, "lock_mode": None, "lock_until": None})
    lock = policy.needs_lock(fresh, now)
    assert lock is not None and (lock.mode, lock.until) == ("governance", now + 31 * DAY)


def test_an_admin_command_beside_a_server_leaves_its_uploads_alone(tmp_path: Path) -> None:
    CasStore(tmp_path).close()
    partial = tmp_path / "tmp" / "0123456789abcdef.partial"
    partial.write_bytes(b"half a segment, still arriving")
    CasStore(tmp_path, clean=False).close()
    assert partial.exists()
    digest = hashlib.sha256(b"").hexdigest()
    assert not CasStore(tmp_path).has(digest)
    assert not partial.exists()


def test_a_receipt_fetched_by_a_camera_is_an_audited_access(
    tmp_path: Path, storage: Path, recs: list[Path]
) -> None:
    data = tmp_path / "data"
    start(data, "", storage).close()
    with live_server(data) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        camera = Camera(client, device_key())
        assert camera.upload(recs[0]).status_code == 200
        assert camera.receipt(recs[0].name).status_code == 200
        assert camera.receipt(recs[1].name).status_code == 404  # not held: nothing accessed
        with live.server.meta.read() as conn:
            rows = conn.execute(select(audit).order_by(audit.c.seq)).all()
        assert [(r.action, r.actor, r.target) for r in rows[-2:]] == [
            ("ingest", f"device:{DEVICE}", recs[0].name),
            ("access", f"device:{DEVICE}", recs[0].name),
        ]
        assert rows[-1].detail == {"what": "receipt"}
        assert verify_audit(live.server.meta).ok
