"""The evidence store's metadata: devices, recordings, objects, rejections and the audit log.

SQLAlchemy Core, one schema that runs unchanged on SQLite (the embedded
default) and PostgreSQL (a department's). Times are stored as the RFC 3339
text the receipts and the audit log carry (``YYYY-mm-ddTHH:MM:SS.fffZ``), not
as database timestamps, so the audit chain hashes exactly what is stored on
either database.

Writes are serialized (:meth:`Meta.write`): SQLite's ``BEGIN IMMEDIATE``, a
PostgreSQL transaction-scoped advisory lock. Every write that matters is
audited in the same transaction, and the audit log is a chain whose next
link depends on the last one, so two writers must never interleave. The
server's write rate (a few commits a second at most) makes one lock cheap.

Retention lives on the recording's row (its category, whether it is queued
for deletion, what the object store was told to lock) with legal holds in a
table of their own; a purged recording's row stays, as a tombstone (status
``purged``, when and why). ``recording_objects`` says which recordings name
which object, so an object shared by two recordings (a re-signed manifest, a
rejected copy beside the genuine one) is deleted only when none still needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from camera.errors import ConfigError
from camera.evidence.keys import DeviceKey

__all__ = [
    "SIGNER",
    "Hold",
    "Meta",
    "Recording",
    "audit",
    "devices",
    "holds",
    "metadata",
    "objects",
    "recording_objects",
    "recordings",
    "rejections",
]

metadata = MetaData()

#: One row per key a device has had; a replaced key stays, inactive (recordings name it).
devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(64), primary_key=True),
    Column("public_key_pem", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("enrolled_utc", String(32), nullable=False),
)

#: One row per recording id the store has seen a commit for: verified, rejected so
#: far, or purged (a tombstone: the record that it existed and why it went stays).
recordings = Table(
    "recordings",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("device", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # verified | rejected | purged
    Column("manifest_sha256", String(64), nullable=False),
    Column("files", JSON, nullable=False),
    Column("receipt", JSON),
    Column("chain", Text),
    Column("frames", Integer),
    Column("received_utc", String(32), nullable=False),
    Column("category", String(64)),
    # The manifest's ``previous``: links checked in both directions at ingest.
    Column("previous_recording", String(255), index=True),
    Column("previous_sha256", String(64)),
    # Retention (server.retention): the category's days count from here (receipt, or restore).
    Column("retention_from_utc", String(32)),
    # Queued for deletion: when, why, by whom; cleared by a restore.
    Column("queued_utc", String(32)),
    Column("queue_reason", Text),
    Column("queue_actor", String(128)),
    # The purge: begun (objects being deleted; no restore from here), done.
    Column("purge_started_utc", String(32)),
    Column("purged_utc", String(32)),
    Column("purge_reason", Text),
    # What the object store has been told for this recording's objects (reconciled by the sweep).
    Column("lock_mode", String(16)),
    Column("lock_until", String(32)),
    Column("lock_hold", Boolean, nullable=False, default=False),
)

#: Which objects each recording names: an object is deleted only when no held recording does.
recording_objects = Table(
    "recording_objects",
    metadata,
    Column("recording", String(255), primary_key=True),
    Column("sha256", String(64), primary_key=True, index=True),
)

#: Legal holds: a held recording is never queued nor purged. Released, a row stays.
holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording", String(255), nullable=False, index=True),
    Column("case_id", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("placed_utc", String(32), nullable=False),
    Column("released_utc", String(32)),
    Column("released_by", String(128)),
    Column("release_reason", Text),
)

objects = Table(
    "objects",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("first_seen_utc", String(32), nullable=False),
)

#: Every refused commit, kept as ``rejected/<recording>/<n>/``.
rejections = Table(
    "rejections",
    metadata,
    Column("recording", String(255), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("device", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("problems", JSON, nullable=False),
    Column("files", JSON, nullable=False),
    Column("utc", String(32), nullable=False),
)

#: Hash-chained: ``hash`` covers every other field and ``prev_hash``; ``signature`` is
#: the server key's over the hash (server.audit), so a rewrite of the whole table shows.
audit = Table(
    "audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("utc", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("signature", Text),
)

_ADVISORY_LOCK = 0x0B0D_CA16  # PostgreSQL: one lock id for every write of this schema
_WRITE = "bodycam_write"
#: ``Connection.info`` key of the key that signs audit entries (set by :meth:`Meta.write`).
SIGNER = "bodycam_audit_signer"


@dataclass(frozen=True)
class Recording:
    id: str
    device: str
    status: str
    manifest_sha256: str
    files: dict[str, str]
    receipt: dict[str, Any] | None
    chain: str | None
    frames: int | None
    received_utc: str
    previous_recording: str | None
    previous_sha256: str | None
    category: str | None = None
    retention_from_utc: str | None = None
    queued_utc: str | None = None
    queue_reason: str | None = None
    queue_actor: str | None = None
    purge_started_utc: str | None = None
    purged_utc: str | None = None
    purge_reason: str | None = None
    lock_mode: str | None = None
    lock_until: str | None = None
    lock_hold: bool = False


@dataclass(frozen=True)
class Hold:
    id: int
    recording: str
    case_id: str
    reason: str
    actor: str
    placed_utc: str


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # SQLAlchemy's begin event says BEGIN, not pysqlite
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
        cursor.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_engine(url: str) -> Engine:
    """An engine for ``url``; ConfigError (one line) for a URL SQLAlchemy cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"metadata URL {url!r}: expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            return _sqlite_engine(url)
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise ConfigError(f"metadata URL {url!r}: {' '.join(str(exc).split())[:200]}") from None


class Meta:
    """The metadata database: the schema created if absent, and the queries the server asks.

    ``signer``: the server key; every audit entry written through :meth:`write`
    is signed with it (None: unsigned, for tests of the schema alone).
    """

    def __init__(self, url: str, signer: DeviceKey | None = None) -> None:
        self.url = url
        self.signer = signer
        self.engine = open_engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            shown = make_url(url).render_as_string(hide_password=True)
            raise ConfigError(
                f"metadata {shown}: cannot open: {' '.join(str(exc).split())[:200]}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction, serialized with every other writer; committed unless it raises."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
                conn.info[SIGNER] = self.signer
                try:
                    yield conn
                finally:
                    conn.info.pop(SIGNER, None)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # -- devices -----------------------------------------------------------------
    def device_keys(
        self, conn: Connection, device: str, active_only: bool = True
    ) -> dict[str, str]:
        """{key id: public key PEM} of a device (only its active keys, by default)."""
        query = select(devices.c.key_id, devices.c.public_key_pem).where(devices.c.id == device)
        if active_only:
            query = query.where(devices.c.active.is_(True))
        return {row.key_id: row.public_key_pem for row in conn.execute(query)}

    def key_owner(self, conn: Connection, key_id: str) -> str | None:
        """The device a key is enrolled for, if any."""
        row = conn.execute(select(devices.c.id).where(devices.c.key_id == key_id)).first()
        return None if row is None else row.id

    # -- objects -------------------------------------------------------------------
    def object_seen(self, conn: Connection, sha256: str, size: int, utc: str) -> bool:
        """Note an object the store holds; True if it was not noted before."""
        held = conn.execute(select(objects.c.sha256).where(objects.c.sha256 == sha256)).first()
        if held is not None:
            return False
        conn.execute(objects.insert().values(sha256=sha256, size=size, first_seen_utc=utc))
        return True

    # -- recordings ----------------------------------------------------------------
    def recording(self, conn: Connection, recording_id: str) -> Recording | None:
        row = conn.execute(select(recordings).where(recordings.c.id == recording_id)).first()
        return None if row is None else _recording(row)

    def following(self, conn: Connection, device: str, recording_id: str) -> list[Recording]:
        """Verified recordings of ``device`` whose manifest names ``recording_id`` as previous."""
        rows = conn.execute(
            select(recordings).where(
                recordings.c.device == device,
                recordings.c.status == "verified",
                recordings.c.previous_recording == recording_id,
            )
        )
        return [_recording(row) for row in rows]

    def put_recording(self, conn: Connection, values: dict[str, Any]) -> None:
        """Insert the row, or replace a rejected one (never a verified or a purged one)."""
        held = self.recording(conn, values["id"])
        if held is None:
            conn.execute(recordings.insert().values(**values))
        elif held.status != "rejected":
            raise ValueError(f"recording {values['id']} is {held.status} already: never replaced")
        else:
            conn.execute(
                recordings.update().where(recordings.c.id == values["id"]).values(**values)
            )
            conn.execute(
                recording_objects.delete().where(recording_objects.c.recording == values["id"])
            )
        shas = sorted(set(values["files"].values()))
        if shas:
            conn.execute(
                recording_objects.insert(), [{"recording": values["id"], "sha256": s} for s in shas]
            )

    def update_recording(self, conn: Connection, recording_id: str, **values: Any) -> None:
        conn.execute(recordings.update().where(recordings.c.id == recording_id).values(**values))

    def all_recordings(self, conn: Connection) -> list[Recording]:
        return [_recording(r) for r in conn.execute(select(recordings).order_by(recordings.c.id))]

    def others_naming(self, conn: Connection, sha256: str, recording_id: str) -> list[Recording]:
        """The other recordings (any status) whose files include the object ``sha256``."""
        rows = conn.execute(
            select(recordings)
            .join(recording_objects, recording_objects.c.recording == recordings.c.id)
            .where(recording_objects.c.sha256 == sha256, recordings.c.id != recording_id)
        )
        return [_recording(row) for row in rows]

    def purging_objects(self, conn: Connection, shas: list[str]) -> set[str]:
        """Those of ``shas`` named by a recording whose purge has begun (they may be gone)."""
        if not shas:
            return set()
        rows = conn.execute(
            select(recording_objects.c.sha256)
            .join(recordings, recording_objects.c.recording == recordings.c.id)
            .where(
                recording_objects.c.sha256.in_(shas),
                recordings.c.purge_started_utc.is_not(None),
            )
        )
        return {row.sha256 for row in rows}

    def forget_object(self, conn: Connection, sha256: str) -> None:
        """The store no longer holds it (purged): its ``objects`` row goes."""
        conn.execute(objects.delete().where(objects.c.sha256 == sha256))

    # -- holds ---------------------------------------------------------------------
    def active_holds(self, conn: Connection, recording_id: str | None = None) -> list[Hold]:
        """Holds not released (of one recording, or of all)."""
        query = select(holds).where(holds.c.released_utc.is_(None)).order_by(holds.c.id)
        if recording_id is not None:
            query = query.where(holds.c.recording == recording_id)
        return [
            Hold(r.id, r.recording, r.case_id, r.reason, r.actor, r.placed_utc)
            for r in conn.execute(query)
        ]

    # -- rejections ----------------------------------------------------------------
    def last_rejection(self, conn: Connection, recording_id: str) -> int:
        """The highest rejection number of a recording (0: none yet)."""
        n = conn.execute(
            select(func.max(rejections.c.n)).where(rejections.c.recording == recording_id)
        ).scalar()
        return int(n or 0)


def _recording(row: Any) -> Recording:
    return Recording(
        id=row.id,
        device=row.device,
        status=row.status,
        manifest_sha256=row.manifest_sha256,
        files=dict(row.files),
        receipt=dict(row.receipt) if row.receipt is not None else None,
        chain=row.chain,
        frames=row.frames,
        received_utc=row.received_utc,
        previous_recording=row.previous_recording,
        previous_sha256=row.previous_sha256,
        category=row.category,
        retention_from_utc=row.retention_from_utc,
        queued_utc=row.queued_utc,
        queue_reason=row.queue_reason,
        queue_actor=row.queue_actor,
        purge_started_utc=row.purge_started_utc,
        purged_utc=row.purged_utc,
        purge_reason=row.purge_reason,
        lock_mode=row.lock_mode,
        lock_until=row.lock_until,
        lock_hold=bool(row.lock_hold),
    )
