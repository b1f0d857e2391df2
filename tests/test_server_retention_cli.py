"""``bodycam server category|hold|release|purge|restore|list|export`` as an administrator runs them.

One data directory on the embedded stack (the commands are the library's
functions, tested on both stacks in tests/test_server_retention.py), two
recordings ingested through the server's commit code; then the commands,
beside the open server as they would run beside a live one, each checked
for what it prints, its exit code, and the audit entry it leaves.
`bodycam server audit` verifies the chain at the end, and names an edited
or deleted row.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from camera.cli import main
from camera.evidence.audit import format_utc
from server.datadir import open_server
from server.enroll import enroll
from server.ingest import Ingest
from tests.server_support import DEVICE, files_of, record_three, recordings_of


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_three(tmp_path_factory.mktemp("camera"))


@pytest.fixture
def data(tmp_path: Path, storage: Path) -> Iterator[Path]:
    """A data directory holding the first two recordings (ingested now)."""
    where = tmp_path / "data"
    server = open_server(where, serve=True)
    try:
        enroll(server.meta, storage / f"{DEVICE}.pub.pem")
        assert server.store is not None
        ingest = Ingest(
            server.meta, server.store, server.key, server.data.work, server.data.rejected
        )
        for rec in recordings_of(storage)[:2]:
            files = files_of(rec)
            for name, sha in files.items():
                body = (rec / name).read_bytes()
                server.store.put(sha, io.BytesIO(body), len(body))
            assert ingest.commit(DEVICE, rec.name, files).status == 200
    finally:
        server.close()
    yield where


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["server", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def later(days: float) -> str:
    return format_utc(datetime.now(UTC) + timedelta(days=days))


def test_the_retention_commands_end_to_end(
    capsys: pytest.CaptureFixture[str], data: Path, storage: Path, tmp_path: Path
) -> None:
    first, second = (r.name for r in recordings_of(storage)[:2])
    d = str(data)
    code, out, err = cli(
        capsys, "category", "--data", d, second, "evidential", "--reason", "charged",
        "--actor", "sgt-1",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert (
        out == f"recording {second}: category uncategorized -> evidential (kept until released)\n"
    )
    code, out, _ = cli(
        capsys, "hold", "--data", d, first, "--case", "CASE-9", "--reason", "complaint"
    )
    assert (code, out) == (0, f"recording {first}: held for case CASE-9\n")
    code, out, _ = cli(capsys, "list", "--data", d)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["RECORDING", "STATUS", "CATEGORY", "HOLDS", "RETENTION"]
    assert lines[1].split() == [first, "kept", "uncategorized", "CASE-9", "held"]
    assert lines[2].split() == [second, "kept", "evidential", "-", "until", "released"]
    # A held recording is not queued however late it is; released, it is.
    code, out, _ = cli(capsys, "purge", "--data", d, "--now", later(40))
    assert (code, out) == (0, "0 queued, 0 purged, 0 refused, 0 lock(s) sent to the store\n")
    code, out, _ = cli(
        capsys, "release", "--data", d, first, "--case", "CASE-9", "--reason", "closed"
    )
    assert (code, out) == (0, f"recording {first}: hold for case CASE-9 released; no hold left\n")
    code, out, _ = cli(capsys, "purge", "--data", d, "--now", later(40))
    assert (code, out) == (
        0,
        f"QUEUED  {first}\n1 queued, 0 purged, 0 refused, 0 lock(s) sent to the store\n",
    )
    [row] = [
        r
        for r in json.loads(cli(capsys, "list", "--data", d, "--json")[1])
        if r["recording"] == first
    ]
    assert row["status"] == "queued" and row["restorable_until"]
    code, out, _ = cli(capsys, "restore", "--data", d, first, "--reason", "wrong date")
    assert code == 0 and out.startswith(f"recording {first}: restored (retained 31 days, to ")
    # Early purge, then the sweep a week later.
    code, out, _ = cli(capsys, "purge", "--data", d, first, "--reason", "privacy")
    assert code == 0 and "queued for deletion; restorable until" in out
    code, out, _ = cli(capsys, "purge", "--data", d, "--now", later(8))
    assert (code, out) == (
        0,
        f"PURGED  {first}\n0 queued, 1 purged, 0 refused, 0 lock(s) sent to the store\n",
    )
    code, out, _ = cli(capsys, "list", "--data", d)
    assert f"{first}  purged" in out and "privacy" in out
    # An export is an audited read; the copy verifies.
    code, out, _ = cli(
        capsys, "export", "--data", d, second, "--out", str(tmp_path / "out"), "--reason", "CPS"
    )
    assert code == 0, out
    assert out.splitlines()[-1] == "OK    the copy: verified"
    assert files_of(tmp_path / "out" / second) == files_of(recordings_of(storage)[1])
    code, out, _ = cli(capsys, "audit", "--data", d)
    assert code == 0 and "chain intact" in out
    with sqlite3.connect(data / "evidence.db") as db:
        actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY seq")]
        actors = {r[0] for r in db.execute("SELECT actor FROM audit WHERE action = 'category'")}
    assert actions == [
        "device_enrolled", "ingest", "ingest", "category", "hold", "release", "queued",
        "restored", "queued", "purging", "purged", "access",
    ]  # fmt: skip
    assert actors == {"sgt-1"}
    # An edited row, then a deleted one: both named, exit 1.
    with sqlite3.connect(data / "evidence.db") as db:
        db.execute("UPDATE audit SET actor = 'nobody' WHERE action = 'hold'")
    code, out, _ = cli(capsys, "audit", "--data", d)
    assert code == 1 and "FAIL  audit seq 4: hash does not match its fields (entry edited)" in out
    with sqlite3.connect(data / "evidence.db") as db:
        db.execute("DELETE FROM audit WHERE action = 'restored'")
    code, out, _ = cli(capsys, "audit", "--data", d)
    assert code == 1 and "FAIL  audit seq 8: expected seq 7 (entry removed)" in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["category", "REC", "secret", "--reason", "x"], "category 'secret': expected one of "),
        (
            ["hold", "BWC-0001_20990101T000000Z_0001", "--case", "C", "--reason", "x"],
            "not held here",
        ),
        (["purge", "--reason", "x"], "--reason goes with RECORDING"),
        (["purge", "--now", "yesterday"], "--now 'yesterday': expected an ISO 8601 time"),
        (["purge", "--now", "2026-01-01T00:00:00"], "with its zone"),
        (["restore", "REC", "--reason", "x"], "not queued for deletion; nothing to restore"),
        (["release", "REC", "--case", "C", "--reason", "x"], "no hold for case C (held for: none)"),
        (["category", "REC", "evidential", "--reason", " "], "--reason: expected some text"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    data: Path,
    storage: Path,
    argv: list[str],
    complaint: str,
) -> None:
    rec = recordings_of(storage)[0].name
    argv = [rec if a == "REC" else a for a in argv]
    code, out, err = cli(capsys, argv[0], "--data", str(data), *argv[1:])
    assert (code, out) == (2, "")
    assert err.startswith(f"bodycam server {argv[0]}: ") and complaint in err, err
    assert err.count("\n") == 1


def test_commands_on_a_data_directory_that_does_not_exist_are_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "list", "--data", str(tmp_path / "none"))
    assert code == 2 and "no server data directory" in err


def test_an_object_deleted_behind_the_servers_back_is_named_by_export(
    capsys: pytest.CaptureFixture[str], data: Path, storage: Path, tmp_path: Path
) -> None:
    """The embedded store is not WORM against root; what root deleted is at least noticed."""
    rec = recordings_of(storage)[0]
    sha = files_of(rec)["segment-0001.ts"]
    (data / "objects" / sha[:2] / sha[2:4] / sha).unlink()
    code, out, err = cli(
        capsys, "export", "--data", str(data), rec.name, "--out", str(tmp_path / "o"),
        "--reason", "court",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err == (
        f"bodycam server export: segment-0001.ts: its object {sha} is missing from the store "
        "(deleted outside the application?)\n"
    )
