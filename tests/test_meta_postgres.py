"""Concurrent writers on the metadata database keep one unbroken audit chain.

Each audit entry names the hash of the one before, so two writers that read
the same "last entry" would fork the chain (or collide on its sequence
number). server.meta serializes writes: SQLite's BEGIN IMMEDIATE, and on
PostgreSQL a transaction-scoped advisory lock. These tests run writers in
threads, each with its own connection, against the real PostgreSQL of
tests/services.py and against SQLite, and check that every write landed and
the chain verifies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server import audit
from server.audit import verify_audit
from server.meta import Meta
from server.meta import audit as audit_table

UTC = "2026-01-01T08:00:00.000Z"
WRITERS = 4
EACH = 15


@pytest.fixture(params=["sqlite", "postgresql"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Meta]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'evidence.db'}"
    else:
        url = str(request.getfixturevalue("fresh_postgres_url"))
    opened = Meta(url)
    yield opened
    opened.close()


def _writer(meta: Meta, name: str, start: threading.Barrier, failures: list[BaseException]) -> None:
    try:
        start.wait(timeout=30)
        for i in range(EACH):
            with meta.write() as conn:
                audit.append(
                    conn, utc=UTC, actor=name, action="note", target=f"{name}-{i}", detail={"i": i}
                )
    except BaseException as exc:  # reported by the test, not lost in the thread
        failures.append(exc)


def test_concurrent_writers_make_one_unbroken_chain(meta: Meta) -> None:
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(meta, f"w{n}", start, failures))
        for n in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer is stuck"
    assert failures == []
    report = verify_audit(meta)
    assert report.problems == []
    assert report.entries == WRITERS * EACH
    with meta.read() as conn:
        per_writer = dict(
            conn.execute(
                select(audit_table.c.actor, func.count()).group_by(audit_table.c.actor)
            ).all()
        )
    assert per_writer == {f"w{n}": EACH for n in range(WRITERS)}


def test_a_write_that_fails_leaves_no_entry(meta: Meta) -> None:
    """An entry and the change it records commit together or not at all."""
    with pytest.raises(RuntimeError), meta.write() as conn:
        audit.append(conn, utc=UTC, actor="t", action="note", target="x", detail={})
        raise RuntimeError("the change it records failed")
    assert verify_audit(meta).entries == 0
    with meta.write() as conn:
        entry = audit.append(conn, utc=UTC, actor="t", action="note", target="y", detail={})
    assert entry["seq"] == 0  # the failed one left no gap
